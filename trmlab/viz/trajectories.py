"""Figures of trajectory analysis (:mod:`trmlab.trace.trajectories`): drawing only, no model runs.

* :func:`class_counts_figure`: how many puzzles fall in each trajectory class, with Wilson 95%
  intervals; one bar per task or model when given several;
* :func:`reliability_figure`: the halting head's calibration, the fraction right against the predicted
  halting probability per bin, with the diagonal (perfect calibration) and the bins' counts below;
* :func:`decode_entropy_figure`: per supervision step, the entropy of y and of z decoded through the
  output head (left) and the accuracy of each decoding (right);
* :func:`z_change_figure`: per supervision step, how far z moves (median and interquartile band over
  the puzzles of each class; log scale);
* :func:`recovery_figure`: after an intervention (:mod:`trmlab.trace.recovery`), the fraction of puzzles
  that recover by the step of the intervention (with intervals), and the accuracy step by step;
* :func:`recovery_example_figure`: one puzzle's answers before and after the intervention, the cell hit
  circled.

Example::

    >>> from trmlab.trace import sudoku_spec
    >>> from trmlab.trace.tiny import random_batch, tiny_model
    >>> from trmlab.trace.trajectories import classify, halting_calibration, model_steps
    >>> steps, ent = model_steps(tiny_model(sudoku_spec(4), n_supervision=4), random_batch(sudoku_spec(4), 8))
    >>> figs = [class_counts_figure(classify(steps)), reliability_figure(halting_calibration(steps)),
    ...         decode_entropy_figure(ent), z_change_figure(steps, classify(steps))]
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from trmlab.trace.recovery import KIND_TEXT, Recovery
from trmlab.trace.tasks import TaskSpec
from trmlab.trace.trajectories import (CLASSES, Z_CHANGE_KINDS, Calibration, DecodeEntropy, StepAnswers,
                                      TrajectoryClasses)

from .grids import grid_figure

#: how each class is named and coloured
CLASS_STYLE = {
    "solved_at_once": ("solved at once", "#2ca02c"),
    "solved_late": ("solved late", "#98df8a"),
    "stuck": ("stuck (wrong fixed point)", "#d62728"),
    "oscillating": ("oscillating", "#ff7f0e"),
    "wandering": ("wandering", "#9467bd"),
}
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
Y_COLOUR, Z_COLOUR = "#1f77b4", "#ff7f0e"


def _named(items, kind: str) -> list[tuple[str, object]]:
    """One result, a sequence of them, or a mapping name -> result -> [(name, result)]."""
    if isinstance(items, Mapping):
        out = [(str(k), v) for k, v in items.items()]
    elif isinstance(items, (list, tuple)):
        out = [(getattr(v, "name", "") or f"{kind} {i + 1}", v) for i, v in enumerate(items)]
    else:
        out = [(getattr(items, "name", "") or "", items)]
    if not out:
        raise ValueError(f"nothing to draw: no {kind}")
    return out


def class_counts_figure(classes: Union[TrajectoryClasses, Sequence[TrajectoryClasses], Mapping[str, TrajectoryClasses]],
                        title: str = "", height: int = 400) -> go.Figure:
    """The share of puzzles in each class (%, with 95% Wilson intervals; the count written on the bar).
    ``classes``: one :class:`TrajectoryClasses`, several (their ``name``), or a mapping name -> one (a
    task or a model each): one bar per name in each class's group."""
    named = _named(classes, "classification")
    fig = go.Figure()
    xs = [CLASS_STYLE[c][0] for c in CLASSES]
    for i, (name, cl) in enumerate(named):
        rows = cl.counts()
        frac = np.array([r["fraction"] for r in rows]) * 100
        lo = np.array([r["low"] for r in rows]) * 100
        hi = np.array([r["high"] for r in rows]) * 100
        single = len(named) == 1
        fig.add_trace(go.Bar(
            x=xs, y=frac, name=name or "puzzles", showlegend=not single,
            marker_color=[CLASS_STYLE[c][1] for c in CLASSES] if single else _PALETTE[i % len(_PALETTE)],
            error_y=dict(type="data", symmetric=False, array=hi - frac, arrayminus=frac - lo),
            text=[str(r["count"]) for r in rows], textposition="outside",
            hovertext=[f"{name + ': ' if name else ''}{r['count']}/{r['puzzles']} = {100 * r['fraction']:.1f}% "
                       f"[{100 * r['low']:.1f}, {100 * r['high']:.1f}]" for r in rows], hoverinfo="text"))
    n = ", ".join(f"{name + ': ' if name else ''}{cl.n_puzzles} puzzles, {cl.n_steps} steps" for name, cl in named)
    fig.update_layout(title=title or f"Trajectory classes (95% intervals; {n})", barmode="group", height=height,
                      yaxis=dict(title="puzzles (%)", rangemode="tozero"), plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(gridcolor="#eee")
    return fig


def reliability_figure(cal: Union[Calibration, Sequence[Calibration], Mapping[str, Calibration]], title: str = "",
                       height: int = 520) -> go.Figure:
    """Top: the fraction of answers right against the mean predicted halting probability of each bin
    (95% intervals; marker area by count), with the diagonal where a calibrated head lies; the legend
    gives each one's expected calibration error. Bottom: how many (puzzle, step) pairs fall in each bin."""
    named = _named(cal, "calibration")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#999", dash="dash"),
                             name="calibrated (diagonal)", hoverinfo="skip"), row=1, col=1)
    for i, (name, c) in enumerate(named):
        colour = _PALETTE[i % len(_PALETTE)]
        full = c.count > 0
        acc, mp = c.accuracy[full], c.mean_prob[full]
        size = 6 + 18 * np.sqrt(c.count[full] / max(int(c.count.max()), 1))
        label = f"{name + ': ' if name else ''}ECE {c.ece:.3f} (n={c.n})"
        fig.add_trace(go.Scatter(
            x=mp, y=acc, mode="lines+markers", name=label, line=dict(color=colour),
            marker=dict(size=size, color=colour),
            error_y=dict(type="data", symmetric=False, array=c.high[full] - acc, arrayminus=acc - c.low[full]),
            customdata=np.stack([c.count[full], c.edges[:-1][full], c.edges[1:][full]], -1),
            hovertemplate="predicted %{x:.2f} (bin %{customdata[1]:.2f}-%{customdata[2]:.2f})<br>right %{y:.1%} "
                          "of %{customdata[0]}<extra>" + (name or "") + "</extra>"), row=1, col=1)
        centres = (c.edges[:-1] + c.edges[1:]) / 2
        fig.add_trace(go.Bar(x=centres, y=c.count, width=np.diff(c.edges) * (0.9 / len(named)),
                             marker_color=colour, opacity=0.6, showlegend=False, name=name or "count",
                             hovertemplate="%{y} in the bin around %{x:.2f}<extra></extra>"), row=2, col=1)
    where = named[0][1].where
    fig.update_xaxes(range=[-0.02, 1.02], row=1, col=1)
    fig.update_xaxes(title="predicted halting probability sigmoid(halt logit)", range=[-0.02, 1.02], row=2, col=1)
    fig.update_yaxes(title="fraction of answers right", range=[-0.02, 1.05], tickformat=".0%", row=1, col=1)
    fig.update_yaxes(title="count", rangemode="tozero", row=2, col=1)
    fig.update_layout(title=title or "Is the halting head calibrated?" + (f"<br><sup>{where}</sup>" if where else ""),
                      height=height, barmode="group", plot_bgcolor="white", legend=dict(orientation="h", y=-0.18))
    return fig


def decode_entropy_figure(ent: DecodeEntropy, title: str = "", height: int = 400) -> go.Figure:
    """Left: the mean entropy per cell of y and of z decoded through the output head at each supervision
    step (with log V, a uniform decoding, dotted). Right: the cell accuracy of each decoding (solid) and
    its exact accuracy (dashed), when the labels are known."""
    m = ent.mean()
    labels = "y_accuracy" in m
    fig = make_subplots(rows=1, cols=2 if labels else 1, horizontal_spacing=0.12,
                        subplot_titles=(f"entropy of the decoding ({ent.unit} per cell)",
                                        "accuracy of the decoding") if labels else None)
    steps = m["steps"]
    for w, colour, what in (("y", Y_COLOUR, "y (the answer)"), ("z", Z_COLOUR, "z (the latent), decoded")):
        fig.add_trace(go.Scatter(x=steps, y=m[f"{w}_entropy"], mode="lines+markers", name=what, legendgroup=w,
                                 line=dict(color=colour)), row=1, col=1)
        if labels:
            fig.add_trace(go.Scatter(x=steps, y=m[f"{w}_accuracy"], mode="lines+markers", legendgroup=w,
                                     name=f"{what}: cells right", line=dict(color=colour), showlegend=False),
                          row=1, col=2)
            fig.add_trace(go.Scatter(x=steps, y=m[f"{w}_exact"], mode="lines", legendgroup=w,
                                     name=f"{what}: exact", line=dict(color=colour, dash="dash"), showlegend=False),
                          row=1, col=2)
    fig.add_hline(y=ent.max_entropy, line=dict(color="#999", dash="dot"), row=1, col=1,
                  annotation_text=f"uniform: log {ent.vocab_size}", annotation_position="top right")
    fig.update_xaxes(title="supervision step", dtick=1 if len(steps) <= 20 else None)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    if labels:
        fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=1, col=2)
    fig.update_layout(title=title or f"How sure are y and z? (mean over {ent.y_entropy.shape[1]} puzzles, "
                                     f"{'labelled' if ent.cells == 'all' else 'to-fill'} cells; dashed: exact)",
                      height=height, plot_bgcolor="white", legend=dict(orientation="h", y=-0.2))
    return fig


def z_change_figure(steps: StepAnswers, classes: TrajectoryClasses, title: str = "", height: int = 420) -> go.Figure:
    """How far z moves at each supervision step, per class: the median over the class's puzzles (a line)
    and the interquartile range (a band), log scale. What is measured: ``steps.z_change_kind``."""
    if steps.z_change is None:
        raise ValueError("z_change_figure: these StepAnswers have no z change sizes (from a model or a trace with "
                         "latent records, or give z_change)")
    if classes.n_puzzles != steps.n_puzzles:
        raise ValueError(f"z_change_figure: {classes.n_puzzles} classified puzzles but {steps.n_puzzles} with z sizes")
    fig = go.Figure()
    xs = list(steps.steps)
    for c in CLASSES:
        sel = classes.label == c
        if not sel.any():
            continue
        name, colour = CLASS_STYLE[c]
        dz = steps.z_change[:, sel]
        q1, med, q3 = np.nanpercentile(dz, [25, 50, 75], axis=1)
        fig.add_trace(go.Scatter(x=xs + xs[::-1], y=list(q3) + list(q1)[::-1], fill="toself", fillcolor=colour,
                                 opacity=0.15, line=dict(width=0), hoverinfo="skip", showlegend=False,
                                 legendgroup=c))
        fig.add_trace(go.Scatter(x=xs, y=med, mode="lines+markers", name=f"{name} ({int(sel.sum())})",
                                 line=dict(color=colour), legendgroup=c,
                                 hovertemplate="step %{x}: median %{y:.3g}<extra>" + name + "</extra>"))
    kind = Z_CHANGE_KINDS.get(steps.z_change_kind or "", "")
    fig.update_layout(title=title or "How far z moves at each step, by class (median, interquartile band)"
                      + (f"<br><sup>{kind}</sup>" if kind else ""), height=height, plot_bgcolor="white",
                      xaxis=dict(title="supervision step", dtick=1 if len(xs) <= 20 else None),
                      yaxis=dict(title="z change (RMS over cells, log)", type="log"),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def recovery_figure(recoveries: Mapping[str, Recovery], title: str = "", height: int = 420) -> go.Figure:
    """Left: the share of puzzles right again at the last step, against the number of steps run before the
    intervention (one line per kind, 95% Wilson intervals). Right: exact accuracy after every supervision
    step, without an intervention (grey) and with one after each number of steps (a dotted line marks it)."""
    if not recoveries:
        raise ValueError("nothing to draw: no recovery measured")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("recovered by the last step", "exact accuracy, step by step"))
    for k, (kind, rec) in enumerate(recoveries.items()):
        colour = _PALETTE[k % len(_PALETTE)]
        rows = rec.rows()
        xs = [r["after"] for r in rows]
        frac = np.array([r["fraction"] for r in rows]) * 100
        lo = frac - np.array([r["low"] for r in rows]) * 100
        hi = np.array([r["high"] for r in rows]) * 100 - frac
        fig.add_trace(go.Scatter(x=xs, y=frac, mode="lines+markers", name=KIND_TEXT.get(kind, kind),
                                 line=dict(color=colour), error_y=dict(type="data", array=hi, arrayminus=lo),
                                 customdata=[[r["recovered"], r["puzzles"]] for r in rows],
                                 hovertemplate="after %{x} steps: %{y:.1f}% (%{customdata[0]}/%{customdata[1]})"
                                               "<extra></extra>"), row=1, col=1)
        steps = np.arange(1, rec.n_supervision + 1)
        acc = rec.accuracy_by_step() * 100
        for j, a in enumerate(rec.after):
            fig.add_trace(go.Scatter(x=steps, y=acc[j], mode="lines", line=dict(color=colour, width=1.5),
                                     opacity=0.35 + 0.65 * (j + 1) / len(rec.after), showlegend=False,
                                     name=f"{KIND_TEXT.get(kind, kind)}, after {a}",
                                     hovertemplate=f"after {a}: step %{{x}}, %{{y:.1f}}%<extra></extra>"), row=1, col=2)
    first = next(iter(recoveries.values()))
    if first.plain.shape[1]:
        fig.add_trace(go.Scatter(x=np.arange(1, first.n_supervision + 1), y=first.plain.mean(-1) * 100, mode="lines",
                                 line=dict(color="#7f7f7f", width=3), name="no intervention"), row=1, col=2)
    for a in first.after:
        fig.add_vline(x=a + 0.5, line=dict(color="#bbbbbb", dash="dot", width=1), row=1, col=2)
    fig.update_xaxes(title_text="supervision steps before the intervention", type="log", row=1, col=1)
    fig.update_yaxes(title_text="% of puzzles", range=[0, 102], row=1, col=1)
    fig.update_xaxes(title_text="supervision step", row=1, col=2)
    fig.update_yaxes(title_text="% exact", range=[0, 102], row=1, col=2)
    fig.update_layout(height=height, title=title or None, legend=dict(orientation="h", y=-0.2),
                      margin=dict(l=50, r=20, t=60, b=80))
    return fig


def recovery_example_figure(example: dict, task: TaskSpec, height: int = 300) -> Optional[go.Figure]:
    """One puzzle, its answers after the steps of ``example["answers"]`` (green right, red wrong) and the
    solution; the cell the intervention hit is circled. None without an example."""
    if not example:
        return None
    x, y = np.asarray(example["inputs"]), np.asarray(example["labels"])
    givens = np.asarray(task.givens(x[None]))[0]
    panels = [("puzzle", x, None, "puzzle")]
    panels += [(name, np.asarray(v), np.asarray(v) == y, "answer") for name, v in example["answers"].items()]
    panels.append(("solution", np.where(y < 0, x, y), None, "answer"))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels], horizontal_spacing=0.02)
    r, c = divmod(int(example["cell"]), task.cols)
    for j, (_, tokens, correct, role) in enumerate(panels, start=1):
        for tr in grid_figure(task, tokens, correct=correct, givens=givens, role=role).data:
            fig.add_trace(tr, row=1, col=j)
        fig.add_trace(go.Scatter(x=[c], y=[r], mode="markers", showlegend=False, hoverinfo="skip",
                                 marker=dict(symbol="circle-open", size=22, color="#000000", line=dict(width=3))),
                      row=1, col=j)
        fig.update_xaxes(visible=False, row=1, col=j)
        fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=f"x{j if j > 1 else ''}", row=1, col=j)
    fig.update_layout(height=height, showlegend=False, margin=dict(l=10, r=10, t=70, b=10),
                      title=example.get("description", ""))
    return fig
