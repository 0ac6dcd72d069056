"""Static exports of a trace: a self-contained HTML animation and a PNG strip.

``animation_figure`` is the player's figure with one plotly frame per position, a Play/Pause
button (``updatemenus``) and a step slider; ``export_html`` writes it with plotly.js inline, so the
file plays in a browser with no kernel and no network (about 4.7 MB of plotly.js plus the frames;
pass ``include_plotlyjs=False`` when the page already loads plotly.js once). ``png_strip`` draws the
decoded answer (and latent) at a few records side by side with matplotlib (``grids.draw_panel``), for
papers.
"""
from __future__ import annotations

import os
from typing import Iterable, Optional

import numpy as np
import plotly.graph_objects as go

from trmlab.trace.recorder import Trace

from .figure import DYNAMIC, TraceView, _go
from .grids import draw_panel


def _positions(n: int, max_frames: Optional[int]) -> list[int]:
    if not max_frames or n <= max_frames:
        return list(range(n))
    pos = np.unique(np.linspace(0, n - 1, max_frames).round().astype(int))
    return [int(p) for p in pos]


def animation_figure(trace: Trace, puzzle: int = 0, events: Optional[Iterable[str]] = None,
                     max_frames: Optional[int] = 400, frame_ms: int = 300, view: Optional[TraceView] = None,
                     **figure_kw) -> go.Figure:
    """A plotly figure with frames: Play / Pause buttons and a slider labelled with each step's index."""
    view = view or TraceView(trace, puzzle, events=events)
    positions = _positions(len(view), max_frames)
    fig = view.figure(positions[0], **figure_kw)
    frames = []
    for p in positions:
        upd = [_go(t) for t in view.frame_updates(p)]
        frames.append(go.Frame(name=str(p), data=upd, traces=DYNAMIC, layout=dict(title=dict(text=view.label(p)))))
    fig.frames = frames
    play_args = dict(frame=dict(duration=frame_ms, redraw=True), fromcurrent=True, mode="immediate",
                     transition=dict(duration=0))
    many = len(positions) > 24  # too many tick labels to read: show only the current one
    fig.update_layout(
        updatemenus=[dict(
            type="buttons", direction="left", x=0.0, y=-0.13, xanchor="left", yanchor="top", showactive=False,
            pad=dict(r=6, t=0),
            buttons=[dict(label="▶ Play", method="animate", args=[None, play_args]),
                     dict(label="❚❚ Pause", method="animate",
                          args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate",
                                             transition=dict(duration=0))])],
        )],
        sliders=[dict(
            active=0, x=0.17, y=-0.10, len=0.83, xanchor="left", yanchor="top", pad=dict(t=0, b=0),
            currentvalue=dict(prefix="step ", font=dict(size=12)), ticklen=0 if many else 4,
            font=dict(color="rgba(0,0,0,0)" if many else "#444", size=9),
            steps=[dict(label=view.short_label(p), method="animate",
                        args=[[str(p)], dict(frame=dict(duration=0, redraw=True), mode="immediate",
                                             transition=dict(duration=0))]) for p in positions],
        )],
    )
    fig.update_layout(height=fig.layout.height + 80, margin=dict(b=150),
                      legend=dict(orientation="h", y=-0.05, x=0.0))
    return fig


def export_html(trace: Trace, path: Optional[str] = None, puzzle: int = 0, events: Optional[Iterable[str]] = None,
                max_frames: Optional[int] = 400, frame_ms: int = 300, full_html: bool = False,
                include_plotlyjs=True, div_id: Optional[str] = None, **figure_kw) -> str:
    """The animation as an HTML fragment (``full_html=False``) or page, plotly.js inline by default.
    Writes it to ``path`` when given; returns the HTML."""
    fig = animation_figure(trace, puzzle, events, max_frames, frame_ms, **figure_kw)
    html = fig.to_html(full_html=full_html, include_plotlyjs=include_plotlyjs, auto_play=False, div_id=div_id,
                       config=dict(displaylogo=False, responsive=False))
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(html)
    return html


def strip_records(trace: Trace, n: int = 8, events: Iterable[str] = ("supervision",)) -> list[int]:
    """``n`` records spread over the trace (by default the end of each supervision step)."""
    recs = trace.records(events=list(events))
    if not len(recs):
        recs = np.arange(len(trace))
    return [int(r) for r in recs[np.unique(np.linspace(0, len(recs) - 1, min(n, len(recs))).round().astype(int))]]


def png_strip(trace: Trace, path: str, puzzle: int = 0, records: Optional[Iterable[int]] = None, n: int = 8,
              rows: Iterable[str] = ("y", "z"), cell_px: float = 0.18, dpi: int = 150) -> str:
    """A PNG: the puzzle, then the decoded answer y (and latent z) at ``records`` (default: the end
    of ``n`` supervision steps spread over the trace), each titled with its index and accuracy."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    view = TraceView(trace, puzzle, records=range(len(trace)))
    recs = list(records) if records is not None else strip_records(trace, n)
    rows = list(rows)
    h, w = view.crop if trace.task.family == "arc" else (trace.task.rows, trace.task.cols)
    side = max(1.2, cell_px * max(h, w))
    fig, axes = plt.subplots(len(rows), len(recs) + 1, figsize=(side * (len(recs) + 1), side * len(rows) + 0.6),
                             squeeze=False)
    puzzle_task = trace.task if trace.task.family != "arc" else None
    for r, which in enumerate(rows):
        ax = axes[r, 0]
        if r == 0:
            draw_panel(ax, *view.puzzle_panel(), task=puzzle_task, title="puzzle")
        else:
            ax.axis("off")
        for c, k in enumerate(recs):
            ax = axes[r, c + 1]
            rgb, text, marks = view.answer_panel(which, int(k))
            draw_panel(ax, rgb, text, marks, task=trace.task)
            s, t, i = (int(v) for v in trace.index[k])
            title = f"{which} · step {s + 1}"
            ev = trace.event_name(k)
            if ev != "supervision":
                title += f" t{t + 1}" + (f" i{i + 1}" if ev == "latent" else " (y)")
            acc = trace.accuracy(which)
            if acc is not None:
                title += f"\n{100 * acc[k, puzzle]:.0f}% cells"
            ax.set_title(title, fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
