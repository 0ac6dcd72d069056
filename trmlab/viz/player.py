"""The live player: Play/Pause, a step slider, the step's index spelled out, and the trace figure.

``Player(trace)`` shows (ipywidgets + plotly, in JupyterLab or Notebook 7):

* a ``Play`` widget linked to an ``IntSlider`` with ``jslink`` (they move together in the browser,
  also in a notebook saved with its widget state and opened without a kernel);
* an HTML line spelling out the record's index (supervision step, recursion t of T, latent update
  i of n, or the answer update / the step's output);
* the figure of :mod:`trmlab.viz.figure` as a plotly ``FigureWidget`` (needs ``anywidget``): moving
  the slider pushes only the dynamic traces (two grids, the cursor, the PCA points), which keeps a
  30x30 maze or an ARC task well under a second per redraw (docs/recursion.md). Without anywidget
  the figure is re-drawn into an ``Output`` widget instead (slower, same picture);
* a puzzle selector when the trace holds several puzzles.
"""
from __future__ import annotations

import html
from typing import Iterable, Optional

import ipywidgets as widgets

from trmlab.trace.recorder import Trace

from .figure import DYNAMIC, TraceView


def _figure_widget(fig):
    try:
        import plotly.graph_objects as go

        return go.FigureWidget(fig)
    except ImportError:  # plotly >= 6 needs anywidget for FigureWidget
        return None


class Player:
    """An ipywidgets player of one trace. Display it (last expression of a cell, or ``display(p)``)."""

    def __init__(self, trace: Trace, puzzle: int = 0, events: Optional[Iterable[str]] = None,
                 interval_ms: int = 400, demos: Optional[list] = None, **figure_kw):
        self.trace, self.events, self.demos, self.figure_kw = trace, events, demos, figure_kw
        self.view = TraceView(trace, puzzle, events=events, demos=demos)
        n = len(self.view)
        self.play = widgets.Play(value=0, min=0, max=n - 1, step=1, interval=interval_ms, description="Play",
                                 show_repeat=True)
        self.slider = widgets.IntSlider(value=0, min=0, max=n - 1, step=1, description="step",
                                        continuous_update=True, layout=widgets.Layout(width="420px"))
        self.link = widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.label = widgets.HTML(value=self._label_html(0))
        self.puzzle = widgets.Dropdown(options=[(f"puzzle {b}", b) for b in range(trace.n_puzzles)], value=puzzle,
                                       description="puzzle", layout=widgets.Layout(width="160px"))
        fig = self.view.figure(0, **figure_kw)
        self.fig = _figure_widget(fig)
        self.output = None
        if self.fig is None:
            self.output = widgets.Output()
            self._static = fig
            self._render_static()
        self.slider.observe(self._on_step, names="value")
        self.puzzle.observe(self._on_puzzle, names="value")
        controls = [self.play, self.slider] + ([self.puzzle] if trace.n_puzzles > 1 else [])
        self.widget = widgets.VBox([widgets.HBox(controls), self.label, self.fig if self.fig is not None else self.output])

    # -- drawing --------------------------------------------------------------------------------------

    def _label_html(self, pos: int) -> str:
        return f"<b>{html.escape(self.view.label(pos))}</b>"

    def show(self, pos: int) -> None:
        """Draw position ``pos`` (what the slider does)."""
        pos = int(pos)
        self.label.value = self._label_html(pos)
        updates = self.view.frame_updates(pos)
        if self.fig is not None:
            with self.fig.batch_update():
                for idx, upd in zip(DYNAMIC, updates):
                    target = self.fig.data[idx]
                    for key, value in upd.items():
                        if key in ("type", "name", "showlegend", "hoverinfo"):
                            continue
                        target[key] = value
                self.fig.layout.title.text = self.view.label(pos)
        else:
            self._static = self.view.figure(pos, **self.figure_kw)
            self._render_static()

    def _render_static(self) -> None:
        from IPython.display import display

        with self.output:
            self.output.clear_output(wait=True)
            display(self._static)

    def _on_step(self, change) -> None:
        self.show(change["new"])

    def _on_puzzle(self, change) -> None:
        self.view = TraceView(self.trace, change["new"], events=self.events, demos=self.demos)
        fig = self.view.figure(self.slider.value if self.slider.value < len(self.view) else 0, **self.figure_kw)
        if self.fig is not None:
            with self.fig.batch_update():
                for target, src in zip(self.fig.data, fig.data):
                    target.update(src.to_plotly_json())
                self.fig.layout.update(fig.layout.to_plotly_json())
        else:
            self._static = fig
            self._render_static()
        self.show(self.slider.value)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
