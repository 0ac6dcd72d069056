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
* a puzzle selector when the trace holds several puzzles;
* with ``continue_with`` (a callable ``continue_with(interventions) -> Trace`` that the workbench binds
  to the traced model and batch: the player draws, it never runs the model): an edit panel. At the
  frame shown, edit a cell of the answer y or of the puzzle, reset z or y, or swap z with another puzzle
  of the trace, and "continue from here": the recursion continues from the edited state. The frames
  before the edit stay the original's (checked bit-identical, :func:`trmlab.viz.edit.splice`), the cells
  whose decoded answer differs from the original's at the same frame are outlined, the status line says
  what was applied and whether (and how many steps later) the answer is right again; "back to the
  original" returns to the original trajectory. The panel needs a running kernel: in a saved notebook
  or an exported report it shows but does nothing (it says so).
"""
from __future__ import annotations

import html
from typing import Callable, Iterable, Optional, Sequence

import ipywidgets as widgets
import numpy as np

from trmlab.trace.recorder import Trace

from . import edit as E
from .figure import DYNAMIC, PUZZLE, Y_IMG, Z_IMG, TraceView

#: a note under the edit panel: it runs the model in the kernel
KERNEL_NOTE = ("Edit and continue runs the model in the notebook's kernel: in a saved notebook or an exported "
               "report (no kernel) these controls do nothing.")


def _figure_widget(fig):
    try:
        import plotly.graph_objects as go

        return go.FigureWidget(fig)
    except ImportError:  # plotly >= 6 needs anywidget for FigureWidget
        return None


class Player:
    """An ipywidgets player of one trace. Display it (last expression of a cell, or ``display(p)``).

    ``continue_with(interventions) -> Trace``: enables the edit panel (see the module docstring); it must
    trace the same model on the same batch with the original trace's arguments plus the interventions
    (:meth:`trmlab.workbench.recursion.Recursion.continue_with` does). Without it the player has no panel.
    """

    def __init__(self, trace: Trace, puzzle: int = 0, events: Optional[Iterable[str]] = None,
                 interval_ms: int = 400, demos: Optional[list] = None,
                 continue_with: Optional[Callable[[Sequence], Trace]] = None, **figure_kw):
        self.original = self.trace = trace
        self.events, self.demos, self.figure_kw = events, demos, figure_kw
        self.continue_with = continue_with
        self.edits: list = []  # the interventions of the trajectory shown (none: the original)
        self.edit_lines: list = []  # what each one does, in words
        self.input_edits: list = []  # (first record, puzzle row, cell) of the puzzle-cell edits
        self.first_edit: Optional[int] = None  # the first record an edit changed
        self.same_plane = True
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
        fig = self._figure(0)
        self.fig = _figure_widget(fig)
        self.output = None
        if self.fig is None:
            self.output = widgets.Output()
            self._static = fig
            self._render_static()
        self.slider.observe(self._on_step, names="value")
        self.puzzle.observe(self._on_puzzle, names="value")
        controls = [self.play, self.slider] + ([self.puzzle] if trace.n_puzzles > 1 else [])
        rows = [widgets.HBox(controls), self.label]
        self.panel = self._edit_panel() if continue_with is not None else None
        if self.panel is not None:
            rows.append(self.panel)
        rows.append(self.fig if self.fig is not None else self.output)
        self.widget = widgets.VBox(rows)

    # -- the edit panel -------------------------------------------------------------------------------

    def _edit_panel(self):
        task = self.trace.task
        kinds = [(text, key) for key, text in E.KINDS.items() if key != "swap_z" or self.trace.n_puzzles > 1]
        self.kind = widgets.Dropdown(options=kinds, value="answer", description="edit",
                                     layout=widgets.Layout(width="230px"))
        self.cell = widgets.Text(value="", placeholder="row,col (from 1) or index", description="cell",
                                 layout=widgets.Layout(width="230px"))
        token_hint = {"sudoku": "digit, or . for blank", "maze": "# S G o or space", "arc": "colour 0-9"}.get(
            task.family, "token number")
        self.token = widgets.Text(value="", placeholder=token_hint, description="token",
                                  layout=widgets.Layout(width="210px"))
        others = [(f"puzzle {b}", b) for b in range(self.trace.n_puzzles)]
        self.other = widgets.Dropdown(options=others, value=1 if len(others) > 1 else 0, description="with",
                                      layout=widgets.Layout(width="170px"))
        self.continue_button = widgets.Button(description="continue from here", button_style="primary",
                                              tooltip="apply the edit at the frame shown and run the recursion on",
                                              layout=widgets.Layout(width="170px"))
        self.back_button = widgets.Button(description="back to the original", disabled=True,
                                          tooltip="show the original trajectory again",
                                          layout=widgets.Layout(width="170px"))
        self.status = widgets.HTML(value=self._status_html("no edit: the original trajectory."))
        self.where = widgets.HTML(value="")
        note = widgets.HTML(value=f"<small style='color:#666'>{html.escape(KERNEL_NOTE)}</small>")
        self.continue_button.on_click(self._on_continue)
        self.back_button.on_click(self._on_back)
        self.kind.observe(self._on_kind, names="value")
        self._on_kind(None)
        return widgets.VBox([widgets.HBox([self.kind, self.cell, self.token, self.other]),
                             widgets.HBox([self.continue_button, self.back_button, self.where]),
                             self.status, note],
                            layout=widgets.Layout(border="1px solid #ddd", padding="4px", margin="4px 0"))

    @staticmethod
    def _status_html(text: str, error: bool = False) -> str:
        colour = "#b00020" if error else "#222"
        return f"<span style='color:{colour}'>{html.escape(text)}</span>"

    def _on_kind(self, change) -> None:
        kind = self.kind.value
        self.cell.layout.display = "" if kind in E.NEEDS_CELL else "none"
        self.token.layout.display = "" if kind in E.NEEDS_CELL else "none"
        self.other.layout.display = "" if kind == "swap_z" else "none"
        self._update_where()

    def _update_where(self) -> None:
        try:
            _, where = E.edit_point(self.trace, int(self.view.records[self.slider.value]), self.kind.value)
            text = f"acts {where}" + (" (a puzzle cell: x is read once per step)" if self.kind.value == "input" else "")
        except E.EditError as e:
            text = str(e)
        self.where.value = f"<small>{html.escape(text)}</small>"

    def continue_from_here(self) -> str:
        """Apply the panel's edit at the frame shown and continue the recursion (what the button does);
        returns the status line. A bad edit, or a continued run that does not match, is said in the
        status line (red), not raised."""
        pos = int(self.slider.value)
        k = int(self.view.records[pos])
        try:
            iv, line = E.make_intervention(self.trace, k, self.kind.value, self.view.b, self.cell.value,
                                           self.token.value, self.other.value)
            edits = self.edits + [iv]
            first = E.first_affected(self.trace, iv)
            try:
                continued = self.continue_with(list(edits))
            except ValueError as e:  # an intervention the model refuses (trmlab.trace.interventions.check)
                raise E.EditError(str(e)) from None
            spliced, same_plane = E.splice(self.trace, continued, first)
        except E.EditError as e:
            self.status.value = self._status_html(f"not applied: {e}", error=True)
            return self.status.value
        except Exception as e:  # the kernel keeps running; the reader sees what went wrong
            self.status.value = self._status_html(f"not applied: {type(e).__name__}: {e}", error=True)
            return self.status.value
        self.edits, self.edit_lines = edits, self.edit_lines + [line]
        if isinstance(iv, E.SetInputCell):
            self.input_edits.append((first, self.view.b, iv.cell))
        self.first_edit = first if self.first_edit is None else min(self.first_edit, first)
        self.same_plane = self.same_plane and same_plane
        self.trace = spliced
        self._rebuild()
        self.back_button.disabled = False
        self.status.value = self._edited_status()
        return self.status.value

    def _edited_status(self) -> str:
        applied = "; then ".join(self.edit_lines)
        rec = E.recovery(self.trace, self.original, self.first_edit, self.view.b)
        plane = "" if self.same_plane else (" The continued run was projected on another PCA plane: its points "
                                            "are not drawn after the edit.")
        return self._status_html(f"applied: {applied}. Puzzle {self.view.b}: {rec}. Outlined: the cells whose answer "
                                 f"differs from the original's at the same frame.{plane}")

    def back_to_original(self) -> None:
        """Show the original trajectory again (what "back to the original" does)."""
        self.trace, self.edits, self.edit_lines, self.input_edits = self.original, [], [], []
        self.first_edit, self.same_plane = None, True
        self._rebuild()
        if self.panel is not None:
            self.back_button.disabled = True
            self.status.value = self._status_html("back to the original trajectory (no edit).")

    def _on_continue(self, button) -> None:
        self.continue_from_here()

    def _on_back(self, button) -> None:
        self.back_to_original()

    # -- drawing --------------------------------------------------------------------------------------

    def _edited_at(self, pos: int) -> bool:
        return self.first_edit is not None and int(self.view.records[pos]) >= self.first_edit

    def _title(self, pos: int) -> str:
        return self.view.label(pos) + (" · edited run" if self._edited_at(pos) else "")

    def _label_html(self, pos: int) -> str:
        text = f"<b>{html.escape(self.view.label(pos))}</b>"
        if self._edited_at(pos):
            k, b = int(self.view.records[pos]), self.view.b
            n = int(E.changed_cells(self.trace, self.original, k, b).sum())
            text += (f" <span style='color:{E.CHANGED_COLOUR}'>· edited run: {n} answer cell(s) differ from the "
                     f"original here</span>")
        return text

    def _marks(self, pos: int) -> list[dict]:
        """The outlines of the changed cells on the puzzle, y and z panels (empty with no edit)."""
        task, b, k = self.trace.task, self.view.b, int(self.view.records[pos])
        crop = self.view.crop if task.family == "arc" else None
        none = np.zeros(task.seq_len, bool)
        y = E.changed_cells(self.trace, self.original, k, b, "y") if self.edits else none
        z = E.changed_cells(self.trace, self.original, k, b, "z") if self.edits else none
        x = none.copy()
        if not (task.family == "arc" and self.view.demos):  # the ARC puzzle panel stacks the demonstrations
            for first, row, cell in self.input_edits:
                if row == b and k >= first:
                    x[cell] = True
        return [E.outline(task, x, None, "edited puzzle cell"),
                E.outline(task, y, crop), E.outline(task, z, crop)]

    def _figure(self, pos: int):
        """The view's figure at ``pos``, with the outline traces when the panel is on."""
        fig = self.view.figure(pos, **self.figure_kw)
        fig.layout.title.text = self._title(pos)
        if self.continue_with is not None:
            for mark, panel in zip(self._marks(pos), (PUZZLE, Y_IMG, Z_IMG)):
                src = fig.data[panel]
                fig.add_scatter(**{k: v for k, v in mark.items() if k != "type"}, xaxis=src.xaxis, yaxis=src.yaxis)
        return fig

    def show(self, pos: int) -> None:
        """Draw position ``pos`` (what the slider does)."""
        pos = int(pos)
        self.label.value = self._label_html(pos)
        if self.panel is not None:
            self._update_where()
        updates = self.view.frame_updates(pos)
        if self.fig is not None:
            with self.fig.batch_update():
                for idx, upd in zip(DYNAMIC, updates):
                    target = self.fig.data[idx]
                    for key, value in upd.items():
                        if key in ("type", "name", "showlegend", "hoverinfo"):
                            continue
                        target[key] = value
                if self.continue_with is not None:
                    for target, mark in zip(self.fig.data[len(self.fig.data) - 3:], self._marks(pos)):
                        target.x, target.y = mark["x"], mark["y"]
                self.fig.layout.title.text = self._title(pos)
        else:
            self._static = self._figure(pos)
            self._render_static()

    def _render_static(self) -> None:
        from IPython.display import display  # lazy: IPython is only needed when the player draws

        with self.output:
            self.output.clear_output(wait=True)
            display(self._static)

    def _on_step(self, change) -> None:
        self.show(change["new"])

    def _rebuild(self) -> None:
        """A new view of ``self.trace`` for the puzzle selected, every trace and the layout redrawn (the
        static curves and the PCA paths change with the trajectory and the puzzle)."""
        self.view = TraceView(self.trace, self.puzzle.value, events=self.events, demos=self.demos)
        fig = self._figure(self.slider.value if self.slider.value < len(self.view) else 0)
        if self.fig is not None:
            with self.fig.batch_update():
                for target, src in zip(self.fig.data, fig.data):
                    target.update(src.to_plotly_json())
                self.fig.layout.update(fig.layout.to_plotly_json())
        else:
            self._static = fig
            self._render_static()
        self.show(self.slider.value)

    def _on_puzzle(self, change) -> None:
        self._rebuild()
        if self.panel is not None and self.edits:
            self.status.value = self._edited_status()

    def _ipython_display_(self):
        from IPython.display import display  # lazy: IPython is only needed when the player is shown

        display(self.widget)
