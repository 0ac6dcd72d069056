"""Figures of a run's evaluation (notebooks/03-evaluate.ipynb): drawing only.

The numbers come from :mod:`trmlab.workbench.evaluation` as plain dicts and arrays:

* ``accuracy_by_steps_figure``: exact accuracy against the number of supervision steps with 95% Wilson
  intervals (a band), lines at the training N_sup and the run's evaluation steps, and learned halting
  as a point at its mean number of steps;
* ``halting_figure``: fixed steps against learned halting, accuracy with intervals and the steps used;
* ``halting_steps_figure``: how many puzzles halted at each step, right and wrong answers apart;
* ``failure_gallery_figure``: puzzle, model answer and truth for a few failures, drawn with the grid
  renderer of :mod:`trmlab.viz.grids`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from trmlab.trace.tasks import TaskSpec

from .grids import cell_panel, grid_axes, panel_traces, region

RIGHT_COLOUR, WRONG_COLOUR, FIXED_COLOUR, LEARNED_COLOUR = "#2ca02c", "#d62728", "#1f77b4", "#ff7f0e"
LEARNED_SHADES = [LEARNED_COLOUR, "#a0522d", "#e377c2", "#bcbd22"]  # one per learned-halting budget
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


def _percent(v) -> list:
    return [None if x is None or not np.isfinite(x) else 100.0 * float(x) for x in np.asarray(v, float)]


def accuracy_by_steps_figure(curves: Sequence[dict], train_steps: Optional[int] = None,
                             eval_steps: Optional[int] = None, learned: Sequence[dict] = (),
                             title: str = "Exact accuracy against supervision steps", height: int = 420,
                             width: Optional[int] = None) -> go.Figure:
    """Accuracy (%) against supervision steps.

    ``curves``: dicts with ``label``, ``steps`` (1-based step counts), ``accuracy``, ``low``, ``high``
    (fractions); each is a line with its 95% interval as a band. ``learned``: dicts with ``label``,
    ``mean_steps``, ``accuracy``, ``low``, ``high``: learned halting, a point with an error bar at the
    mean number of steps it used. Dotted lines mark ``train_steps`` (the N_sup the model was trained
    with) and ``eval_steps`` (the steps the run is evaluated at); steps past ``eval_steps`` are shaded.
    """
    if not curves and not learned:
        raise ValueError("accuracy_by_steps_figure: nothing to draw (no curve and no learned-halting point)")
    fig = go.Figure()
    last = 1
    for i, c in enumerate(curves):
        steps = [int(s) for s in c["steps"]]
        if not steps:
            raise ValueError(f"accuracy_by_steps_figure: curve {c.get('label', i)!r} has no steps")
        if not len(steps) == len(c["accuracy"]) == len(c["low"]) == len(c["high"]):
            raise ValueError(f"accuracy_by_steps_figure: curve {c.get('label', i)!r}: steps, accuracy, low and "
                             f"high must have the same length")
        last = max(last, max(steps))
        colour = c.get("colour") or _PALETTE[i % len(_PALETTE)]
        fig.add_trace(go.Scatter(x=steps + steps[::-1], y=_percent(c["high"]) + _percent(c["low"])[::-1],
                                 fill="toself", fillcolor=_rgba(colour, 0.15), line=dict(width=0), mode="lines",
                                 hoverinfo="skip", showlegend=False, name=f"{c['label']} 95% CI"))
        count = c.get("count")
        hover = [f"{s} step(s): {100 * a:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]" + (f" of {count}" if count else "")
                 for s, a, lo, hi in zip(steps, c["accuracy"], c["low"], c["high"])]
        fig.add_trace(go.Scatter(x=steps, y=_percent(c["accuracy"]), mode="lines+markers", name=c["label"],
                                 line=dict(color=colour), hovertext=hover, hoverinfo="text"))
    for j, p in enumerate(learned):
        acc, lo, hi = float(p["accuracy"]), float(p["low"]), float(p["high"])
        last = max(last, int(np.ceil(p["mean_steps"])))
        fig.add_trace(go.Scatter(
            x=[float(p["mean_steps"])], y=[100 * acc], mode="markers", name=p["label"],
            marker=dict(symbol="diamond", size=12, color=p.get("colour") or LEARNED_SHADES[j % len(LEARNED_SHADES)],
                        line=dict(width=1, color="#333")),
            error_y=dict(type="data", symmetric=False, array=[100 * (hi - acc)], arrayminus=[100 * (acc - lo)]),
            hovertext=[f"{p['label']}: {100 * acc:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] "
                       f"in {p['mean_steps']:.2f} steps on average"], hoverinfo="text"))
    if eval_steps and last > eval_steps:
        fig.add_vrect(x0=eval_steps + 0.5, x1=last + 0.5, fillcolor="#999", opacity=0.08, line_width=0,
                      annotation_text="beyond the evaluation steps", annotation_position="top left")
    marks = {}
    if train_steps:
        marks.setdefault(int(train_steps), []).append(f"trained N_sup={train_steps}")
    if eval_steps:
        marks.setdefault(int(eval_steps), []).append(f"evaluated at {eval_steps}")
    for x, text in marks.items():
        fig.add_vline(x=x, line=dict(color="#555", dash="dot", width=1), annotation_text=" · ".join(text),
                      annotation_position="bottom right")
    fig.update_xaxes(title_text="supervision steps at inference", range=[0.5, last + 0.5], dtick=1 if last <= 24 else None)
    fig.update_yaxes(title_text="exact accuracy (%)", range=[-2, 102])
    fig.update_layout(title=title, height=height, width=width, plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.2), margin=dict(l=60, r=20, t=60, b=80))
    fig.update_xaxes(showgrid=True, gridcolor="#eee")
    fig.update_yaxes(showgrid=True, gridcolor="#eee")
    return fig


def halting_figure(rows: Sequence[dict], title: str = "Fixed steps against learned halting", height: int = 380,
                   width: Optional[int] = None) -> go.Figure:
    """Left: exact accuracy with its 95% interval per setting; right: mean supervision steps used.

    ``rows``: dicts with ``label``, ``halting`` (``"max"`` or ``"learned"``), ``accuracy``, ``low``,
    ``high`` and ``mean_steps`` (``max_steps`` optional, drawn as a tick)."""
    if not rows:
        raise ValueError("halting_figure: no evaluation to draw")
    labels = [r["label"].replace(", ", "<br>") for r in rows]
    colours = [LEARNED_COLOUR if r["halting"] == "learned" else FIXED_COLOUR for r in rows]
    acc = np.array([r["accuracy"] for r in rows], float)
    lo = np.array([r["low"] for r in rows], float)
    hi = np.array([r["high"] for r in rows], float)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("exact accuracy (%), 95% CI", "supervision steps used (mean)"))
    fig.add_trace(go.Bar(x=labels, y=100 * acc, marker_color=colours, showlegend=False,
                         error_y=dict(type="data", symmetric=False, array=100 * (hi - acc), arrayminus=100 * (acc - lo)),
                         text=[f"{100 * a:.1f}%" for a in acc], textposition="inside",
                         hovertext=[f"{l}: {100 * a:.1f}% [{100 * x:.1f}, {100 * y:.1f}]" for l, a, x, y in
                                    zip(labels, acc, lo, hi)], hoverinfo="text"), row=1, col=1)
    steps = [float(r["mean_steps"]) for r in rows]
    fig.add_trace(go.Bar(x=labels, y=steps, marker_color=colours, showlegend=False,
                         text=[f"{s:.2f}" for s in steps], textposition="inside", hoverinfo="x+y"), row=1, col=2)
    budgets = [r.get("max_steps") for r in rows]
    if any(b is not None for b in budgets):
        fig.add_trace(go.Scatter(x=labels, y=budgets, mode="markers", name="step budget",
                                 marker=dict(symbol="line-ew", size=30, line=dict(width=2, color="#333"))),
                      row=1, col=2)
    fig.update_yaxes(range=[0, 105], row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_layout(title=title, height=height, width=width, plot_bgcolor="white",
                      margin=dict(l=50, r=20, t=80, b=60), legend=dict(orientation="h", y=-0.15))
    return fig


def halting_steps_figure(groups: Sequence[dict], title: str = "At which step did each puzzle halt?",
                         height: int = 360, width: Optional[int] = None) -> go.Figure:
    """The distribution of halting steps, right and wrong answers side by side.

    ``groups``: dicts with ``label``, ``halt_step`` [P] (1-based), ``correct`` [P] (bool) and
    ``max_steps``; one panel per group (e.g. learned halting with the run's budget and with more)."""
    if not groups:
        raise ValueError("halting_steps_figure: no learned-halting evaluation to draw")
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=[g["label"] for g in groups],
                        horizontal_spacing=0.08)
    for k, g in enumerate(groups, start=1):
        steps = np.asarray(g["halt_step"], int).reshape(-1)
        right = np.asarray(g["correct"], bool).reshape(-1)
        if steps.shape != right.shape:
            raise ValueError(f"halting_steps_figure: {g['label']}: halt_step and correct differ in length "
                             f"({steps.size} vs {right.size})")
        top = int(max(g.get("max_steps") or 0, steps.max() if steps.size else 1))
        if steps.size and steps.min() < 1:
            raise ValueError(f"halting_steps_figure: {g['label']}: halt_step is 1-based, found {steps.min()}")
        xs = np.arange(1, top + 1)
        n = max(steps.size, 1)
        for name, mask, colour in (("right", right, RIGHT_COLOUR), ("wrong", ~right, WRONG_COLOUR)):
            counts = np.bincount(steps[mask], minlength=top + 1)[1:top + 1]
            fig.add_trace(go.Bar(x=xs, y=counts, name=f"{name} answers", marker_color=colour,
                                 legendgroup=name, showlegend=k == 1,
                                 hovertext=[f"{c} {name} ({100 * c / n:.1f}% of puzzles) halted at step {x}"
                                            for x, c in zip(xs, counts)], hoverinfo="text"), row=1, col=k)
        fig.update_xaxes(title_text="halting step", dtick=1 if top <= 24 else None, row=1, col=k)
    fig.update_yaxes(title_text="puzzles", row=1, col=1)
    fig.update_layout(title=title, barmode="group", height=height, width=width, plot_bgcolor="white",
                      margin=dict(l=50, r=20, t=80, b=60), legend=dict(orientation="h", y=-0.2))
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[k:k + 2], 16) for k in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _truth_panel(task: TaskSpec, truth, givens, crop):
    """The true answer, drawn plainly: Sudoku givens grey and the rest white, the maze path green."""
    if task.family == "maze":
        return cell_panel(task, truth, correct=np.ones(truth.shape, bool), givens=givens, labels=truth, crop=crop)
    return cell_panel(task, truth, givens=givens, crop=crop, role="puzzle")


def failure_gallery_figure(task: TaskSpec, inputs, preds, labels, captions: Optional[Sequence[str]] = None,
                           title: str = "Failures: puzzle, model answer, truth", panel_px: int = 200) -> go.Figure:
    """One row per puzzle: the puzzle, the model's answer (right cells green, wrong red; Sudoku givens
    grey) and the true answer. ``inputs``, ``preds``, ``labels``: [K, seq_len] tokens (labels -100 =
    not scored); ``captions``: one line per row (e.g. the test index and the step it halted at)."""
    inputs = np.asarray(inputs).reshape(-1, task.seq_len)
    preds = np.asarray(preds).reshape(-1, task.seq_len)
    labels = np.asarray(labels).reshape(-1, task.seq_len)
    k = inputs.shape[0]
    if not preds.shape[0] == labels.shape[0] == k:
        raise ValueError(f"failure_gallery_figure: {k} inputs, {preds.shape[0]} predictions, {labels.shape[0]} labels")
    if k == 0:  # nothing failed: say so instead of an empty grid
        fig = go.Figure()
        fig.add_annotation(text="No failures: every puzzle evaluated was solved.", showarrow=False, font_size=16,
                           x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_layout(title=title, height=160, xaxis_visible=False, yaxis_visible=False, plot_bgcolor="white")
        return fig
    captions = list(captions) if captions is not None else [f"puzzle {i}" for i in range(k)]
    if len(captions) != k:
        raise ValueError(f"failure_gallery_figure: {len(captions)} captions for {k} puzzles")
    titles = []
    for c in captions:
        titles += [f"{c}: puzzle", "model answer", "truth"]
    fig = make_subplots(rows=k, cols=3, subplot_titles=titles, horizontal_spacing=0.03,
                        vertical_spacing=min(0.08, 0.3 / k))
    for r in range(k):
        x, p, lab = inputs[r], preds[r], labels[r]
        scored = lab >= 0
        truth = np.where(scored, lab, x)
        givens = task.givens(x)
        answer = np.where(givens, x, p) if task.family == "sudoku" else p
        correct = (p == lab) | ~scored
        crop = region(task, x, lab, p[None]) if task.family == "arc" else None
        in_crop = region(task, x) if task.family == "arc" else None
        panels = [cell_panel(task, x, givens=givens, crop=in_crop, role="puzzle"),
                  cell_panel(task, answer, correct=correct, givens=givens, labels=truth, crop=crop),
                  _truth_panel(task, truth, givens, crop)]
        for c, (rgb, text, marks) in enumerate(panels, start=1):
            for t in panel_traces(rgb, text, marks, name=titles[3 * r + c - 1]):
                kw = {key: v for key, v in t.items() if key != "type"}
                fig.add_trace(go.Image(**kw) if t["type"] == "image" else go.Scatter(**kw), row=r + 1, col=c)
            xa, ya, shapes = grid_axes(task, rgb.shape[:2])
            fig.update_xaxes(row=r + 1, col=c, **xa)
            n = 3 * r + c
            fig.update_yaxes(row=r + 1, col=c, scaleanchor=f"x{n if n > 1 else ''}", **ya)
            for s in shapes:
                fig.add_shape(s, row=r + 1, col=c)
    fig.update_layout(title=title, height=panel_px * k + 80, width=3 * panel_px + 60, plot_bgcolor="white",
                      margin=dict(l=10, r=10, t=70, b=10), showlegend=False)
    fig.update_annotations(font_size=11)
    return fig
