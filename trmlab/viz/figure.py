"""One figure for a traced puzzle, shared by the live player and the static animation.

Layout (plotly subplots)::

    [ puzzle (ARC: demonstrations + test input) ] [ answer y, decoded ] [ latent z, decoded ]
    [ halting probability and accuracy along the records     ] [ PCA plane: y and z paths  ]

A :class:`TraceView` builds the full figure at one position and, for any position, the updates of
its dynamic traces only (``frame_updates``): the player pushes those into a FigureWidget, the static
export turns them into plotly frames. Positions index ``view.records`` (a subset of the trace's
records, e.g. only answer updates); the record's index is spelled out by ``view.label(pos)``.
"""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from trmlab.data.arc import decode_arc_grid
from trmlab.trace.recorder import Trace

from .grids import arc_rgb, arc_task_image, cell_panel, grid_axes, panel_traces, region

Y_COLOUR, Z_COLOUR, HALT_COLOUR = "#1f77b4", "#9467bd", "#ff7f0e"

#: figure trace numbers
PUZZLE, Y_IMG, Y_TXT, Z_IMG, Z_TXT = 0, 2, 3, 4, 5
HALT, Y_ACC, Z_ACC, CURSOR = 6, 7, 8, 9
Y_PATH, Z_PATH, Y_CELLS, Z_CELLS, CURRENT = 10, 11, 12, 13, 14
DYNAMIC = [Y_IMG, Y_TXT, Z_IMG, Z_TXT, CURSOR, Y_CELLS, Z_CELLS, CURRENT]


def _go(trace: dict):
    kind = trace["type"]
    kw = {k: v for k, v in trace.items() if k != "type"}
    return go.Image(**kw) if kind == "image" else go.Scatter(**kw)


class TraceView:
    """The drawing of one puzzle of a trace. ``events`` limits the positions to some record kinds;
    ``demos`` (ARC: list of {"input", "output"} grids) defaults to ``trace.task.extra["demos"]``."""

    def __init__(self, trace: Trace, puzzle: int = 0, events: Optional[Iterable[str]] = None,
                 records: Optional[Iterable[int]] = None, demos: Optional[list] = None, cell_cloud: bool = True):
        if not 0 <= puzzle < trace.n_puzzles:
            raise IndexError(f"puzzle {puzzle} out of range: the trace has {trace.n_puzzles} puzzle(s)")
        self.trace, self.b, self.task = trace, puzzle, trace.task
        self.records = np.asarray(list(records) if records is not None else trace.records(events=events), int)
        if not len(self.records):
            raise ValueError("no records to show (check events/records)")
        b = puzzle
        self.inputs = trace.inputs[b]
        self.labels = None if trace.labels is None else trace.labels[b]
        self.givens = self.task.givens(self.inputs)
        self.crop = region(self.task, self.inputs, self.labels, trace.y_pred[self.records, b])
        self.correct = {w: (None if trace.labels is None else trace.correct(w)[:, b]) for w in ("y", "z")}
        acc = {w: trace.accuracy(w) for w in ("y", "z")}
        self.acc = {w: (None if a is None else a[self.records, b]) for w, a in acc.items()}
        self.halt = trace.halt_prob[self.records, b]
        self.cell_cloud = cell_cloud
        meta_demos = (trace.task.extra or {}).get("demos") if trace.task.extra else None
        self.demos = demos if demos is not None else (meta_demos or [])

    def __len__(self) -> int:
        return len(self.records)

    def label(self, pos: int) -> str:
        k = int(self.records[pos])
        return f"record {k + 1}/{len(self.trace)} · " + self.trace.step_label(k)

    def short_label(self, pos: int) -> str:
        s, t, i = (int(v) for v in self.trace.index[self.records[pos]])
        ev = self.trace.event_name(self.records[pos])
        return {"latent": f"{s + 1}.{t + 1}.z{i + 1}", "answer": f"{s + 1}.{t + 1}.y"}.get(ev, f"{s + 1}.out")

    # -- panels -------------------------------------------------------------------------------------------

    def _answer(self, which: str, k: int) -> list[dict]:
        return panel_traces(*self.answer_panel(which, k), name=which)

    def answer_panel(self, which: str, k: int) -> tuple:
        """(rgb, text, marks) of the decoded answer y (``which="y"``) or latent z at record ``k``."""
        tr, b = self.trace, self.b
        pred = tr.arrays[f"{which}_pred"][k, b]
        conf = tr.arrays[f"{which}_conf"][k, b].astype(np.float32)
        correct = None if self.correct[which] is None else self.correct[which][k]
        if self.task.family == "sudoku":  # givens: show the puzzle's digit, not the head's guess
            pred = np.where(self.givens, self.inputs, pred)
        return cell_panel(self.task, pred, conf, correct, self.givens, self.labels,
                          crop=self.crop if self.task.family == "arc" else None)

    def _puzzle(self) -> list[dict]:
        return panel_traces(*self.puzzle_panel(), name="puzzle")

    def puzzle_panel(self) -> tuple:
        """(rgb, text, marks) of the puzzle (ARC: the demonstrations above the test input)."""
        if self.task.family == "arc":
            test = decode_arc_grid(self.inputs)
            img = arc_task_image(self.demos, test) if self.demos else arc_rgb(test)
            return img, np.full(img.shape[:2], "", dtype=object), []
        rgb, text, _ = cell_panel(self.task, self.inputs, givens=self.givens, role="puzzle")
        return rgb, text, []

    def _cursor(self, pos: int) -> dict:
        return dict(type="scatter", x=[pos, pos], y=[0, 1], mode="lines", line=dict(color="#444", dash="dot"),
                    name="now", showlegend=False, hoverinfo="skip")

    def _cells(self, which: str, k: int) -> dict:
        pc = self.trace.arrays[f"{which}_cell_pc"][k, self.b] if self.cell_cloud else np.zeros((0, 2))
        return dict(type="scatter", x=pc[:, 0], y=pc[:, 1], mode="markers", name=f"{which} cells (now)",
                    marker=dict(size=4, color=Y_COLOUR if which == "y" else Z_COLOUR, opacity=0.35),
                    showlegend=False, hoverinfo="skip")

    def _current(self, k: int) -> dict:
        y = self.trace.y_pc[k, self.b]
        z = self.trace.z_pc[k, self.b]
        return dict(type="scatter", x=[float(y[0]), float(z[0])], y=[float(y[1]), float(z[1])], mode="markers+text",
                    text=["y", "z"], textposition="top center", name="now", showlegend=False,
                    marker=dict(size=13, color=[Y_COLOUR, Z_COLOUR], line=dict(width=2, color="#000")))

    def frame_updates(self, pos: int) -> list[dict]:
        """The dynamic traces at ``pos``, in the order of DYNAMIC."""
        k = int(self.records[pos])
        return [*self._answer("y", k), *self._answer("z", k), self._cursor(pos),
                self._cells("y", k), self._cells("z", k), self._current(k)]

    # -- the whole figure ----------------------------------------------------------------------------------

    def figure(self, pos: int = 0, height: int = 760, width: int = 1060) -> go.Figure:
        fam = self.task.family
        puzzle_title = "task: demonstrations, test input" if (fam == "arc" and self.demos) else "puzzle"
        fig = make_subplots(
            rows=2, cols=3, specs=[[{}, {}, {}], [{"colspan": 2}, None, {}]], row_heights=[0.56, 0.44],
            horizontal_spacing=0.04, vertical_spacing=0.1,
            subplot_titles=(puzzle_title, "answer y (decoded)", "latent z (decoded: what z would answer)",
                            "halting probability and accuracy", "PCA plane: pooled paths, cells now"),
        )
        dyn = self.frame_updates(pos)
        x = np.arange(len(self))
        hover = [self.label(p) for p in range(len(self))]
        static = {
            "puzzle": self._puzzle(),
            HALT: dict(type="scatter", x=x, y=self.halt, name="halt prob.", mode="lines",
                       line=dict(color=HALT_COLOUR), hovertext=hover, hoverinfo="text+y"),
            Y_ACC: dict(type="scatter", x=x, y=self.acc["y"] if self.acc["y"] is not None else [], name="accuracy y",
                        mode="lines", line=dict(color=Y_COLOUR), hovertext=hover, hoverinfo="text+y"),
            Z_ACC: dict(type="scatter", x=x, y=self.acc["z"] if self.acc["z"] is not None else [], name="accuracy z",
                        mode="lines", line=dict(color=Z_COLOUR, dash="dash"), hovertext=hover, hoverinfo="text+y"),
        }
        ypc, zpc = self.trace.y_pc[self.records, self.b], self.trace.z_pc[self.records, self.b]
        paths = [dict(type="scatter", x=ypc[:, 0], y=ypc[:, 1], mode="lines+markers", name="y path",
                      line=dict(color=Y_COLOUR), marker=dict(size=3), hovertext=hover, hoverinfo="text"),
                 dict(type="scatter", x=zpc[:, 0], y=zpc[:, 1], mode="lines+markers", name="z path",
                      line=dict(color=Z_COLOUR), marker=dict(size=3), hovertext=hover, hoverinfo="text")]
        placed = [(t, 1, 1) for t in static["puzzle"]]
        placed += [(t, 1, 2) for t in dyn[0:2]] + [(t, 1, 3) for t in dyn[2:4]]
        placed += [(static[HALT], 2, 1), (static[Y_ACC], 2, 1), (static[Z_ACC], 2, 1), (dyn[4], 2, 1)]
        placed += [(paths[0], 2, 3), (paths[1], 2, 3), (dyn[5], 2, 3), (dyn[6], 2, 3), (dyn[7], 2, 3)]
        for t, r, c in placed:
            showlegend = t.get("name") in ("halt prob.", "accuracy y", "accuracy z", "y path", "z path")
            t = dict(t)
            if t["type"] != "image":
                t.setdefault("showlegend", showlegend)
            fig.add_trace(_go(t), row=r, col=c)
        assert len(fig.data) == 15
        # grid axes
        puzzle_shape = (static["puzzle"][0]["z"].shape[0], static["puzzle"][0]["z"].shape[1])
        answer_shape = dyn[0]["z"].shape[:2]
        for col, shape in ((1, puzzle_shape), (2, answer_shape), (3, answer_shape)):
            xa, ya, shapes = grid_axes(self.task, shape) if not (col == 1 and fam == "arc") else grid_axes(
                type(self.task)("arc", *shape, 12, 0), shape)
            fig.update_xaxes(row=1, col=col, **xa)
            fig.update_yaxes(row=1, col=col, scaleanchor=f"x{col if col > 1 else ''}", **ya)
            for s in shapes:
                fig.add_shape(s, row=1, col=col)
        # supervision-step boundaries on the curves
        steps = self.trace.index[self.records, 0]
        starts = [p for p in range(len(self)) if p == 0 or steps[p] != steps[p - 1]]
        for p in starts[1:]:
            fig.add_vline(x=p - 0.5, line=dict(color="#ccc", width=1), row=2, col=1)
        fig.update_xaxes(row=2, col=1, tickvals=starts, ticktext=[f"s{int(steps[p]) + 1}" for p in starts],
                         range=[-0.5, len(self) - 0.5])
        fig.update_yaxes(row=2, col=1, range=[-0.02, 1.02])
        allpc = np.concatenate([ypc, zpc])
        if self.cell_cloud:
            cells = np.concatenate([self.trace.y_cell_pc[self.records, self.b].reshape(-1, 2),
                                    self.trace.z_cell_pc[self.records, self.b].reshape(-1, 2)])
            allpc = np.concatenate([allpc, cells])
        lo, hi = np.nanpercentile(allpc, 1, axis=0), np.nanpercentile(allpc, 99, axis=0)
        lo = np.minimum(lo, np.nanmin(np.concatenate([ypc, zpc]), 0))
        hi = np.maximum(hi, np.nanmax(np.concatenate([ypc, zpc]), 0))
        pad = (hi - lo) * 0.08 + 1e-6
        ev = self.trace.meta.get("pca_pooled_explained", {}).get("y", [0, 0])
        fig.update_xaxes(row=2, col=3, range=[float(lo[0] - pad[0]), float(hi[0] + pad[0])],
                         title_text=f"PC1 ({100 * ev[0]:.0f}% of pooled variance)" if ev else "PC1")
        fig.update_yaxes(row=2, col=3, range=[float(lo[1] - pad[1]), float(hi[1] + pad[1])],
                         title_text="PC2")
        fig.update_layout(
            height=height, width=width, plot_bgcolor="white", title=dict(text=self.label(pos), x=0.01, font=dict(size=14)),
            margin=dict(l=30, r=20, t=70, b=40), legend=dict(orientation="h", y=-0.08, x=0.0),
            uirevision="trace",
        )
        return fig
