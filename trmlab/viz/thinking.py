"""Figures of test-time scaling (06-thinking): accuracy against supervision steps, against the number of
trajectories K and of transforms, against cost, and puzzles with the answers each way of thinking gave.

Every function takes the rows that :mod:`trmlab.eval.thinking` scores (``curve``, ``cheapest``): plain
dicts with ``selector``, ``steps``/``k``/``augment``, ``exact_accuracy``, ``low``, ``high``,
``calls_per_puzzle``, ``calls_ratio``, ``uses_rule_check``, ``uses_labels``. Drawing only.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..eval.thinking import describe_setting
from .grids import grid_figure

#: how each selector is named and drawn
STYLE = {
    "halt": ("halting head (most confident)", "#1f77b4", "solid"),
    "first": ("halting head (first to halt)", "#17becf", "dot"),
    "vote": ("majority vote", "#2ca02c", "solid"),
    "rule": ("rule check (uses the rule check)", "#d62728", "dash"),
    "oracle": ("oracle (any candidate right: the ceiling)", "#7f7f7f", "dot"),
}
HALTING_NAMES = {"max": "fixed steps", "learned": "learned halting", "fixed_point": "fixed point (y unchanged)"}


def _band(fig, xs, lo, hi, colour, row=None, col=None):
    kw = {} if row is None else {"row": row, "col": col}
    fig.add_trace(go.Scatter(x=list(xs) + list(xs)[::-1], y=list(hi) + list(lo)[::-1], fill="toself",
                             fillcolor=colour, opacity=0.15, line=dict(width=0), hoverinfo="skip",
                             showlegend=False), **kw)


def steps_figure(rows: Sequence[dict], title: str = "", train_steps: Optional[int] = None) -> go.Figure:
    """Exact accuracy against supervision steps for each halting rule (one plain trajectory) and the rule
    check, with 95% intervals."""
    fig = go.Figure()
    groups = {}
    for r in rows:
        key = (r["halting"], r["selector"])
        groups.setdefault(key, []).append(r)
    colours = {"max": "#1f77b4", "learned": "#ff7f0e", "fixed_point": "#9467bd"}
    for (h, sel), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["steps"])
        xs = [r["steps"] for r in rs]
        name = HALTING_NAMES[h] if sel == "halt" else STYLE[sel][0]
        colour = colours.get(h, "#1f77b4") if sel == "halt" else STYLE[sel][1]
        _band(fig, xs, [r["low"] for r in rs], [r["high"] for r in rs], colour)
        fig.add_trace(go.Scatter(x=xs, y=[r["exact_accuracy"] for r in rs], mode="lines", name=name,
                                 line=dict(color=colour, dash="dash" if sel == "rule" else "solid"),
                                 customdata=[[r["calls_per_puzzle"], r["calls_ratio"]] for r in rs],
                                 hovertemplate="%{x} steps: %{y:.1%}<br>%{customdata[0]:.0f} calls/puzzle "
                                               "(%{customdata[1]:.1f}x 16 steps)<extra>" + name + "</extra>"))
    if train_steps:
        fig.add_vline(x=train_steps, line=dict(color="#999", dash="dot"),
                      annotation_text=f"N_sup in training ({train_steps})", annotation_position="bottom right")
    fig.update_layout(title=title or "Thinking longer: exact accuracy against supervision steps (95% intervals)",
                      xaxis_title="supervision steps", yaxis_title="exact accuracy", yaxis_tickformat=".0%",
                      height=420, legend=dict(orientation="h", y=-0.2))
    return fig


def width_figure(rows: Sequence[dict], over: str, title: str = "") -> go.Figure:
    """Exact accuracy against K (``over="k"``) or the number of transforms (``"augment"``) for each
    selector, with 95% intervals; the x axis in powers of two."""
    fig = go.Figure()
    for sel in [s for s in STYLE if any(r["selector"] == s for r in rows)]:
        rs = sorted((r for r in rows if r["selector"] == sel), key=lambda r: r[over])
        name, colour, dash = STYLE[sel]
        xs = [r[over] for r in rs]
        _band(fig, xs, [r["low"] for r in rs], [r["high"] for r in rs], colour)
        fig.add_trace(go.Scatter(x=xs, y=[r["exact_accuracy"] for r in rs], mode="lines+markers", name=name,
                                 line=dict(color=colour, dash=dash),
                                 customdata=[[r["calls_per_puzzle"], r["calls_ratio"]] for r in rs],
                                 hovertemplate="%{x}: %{y:.1%}<br>%{customdata[0]:.0f} calls/puzzle "
                                               "(%{customdata[1]:.1f}x 16 steps)<extra>" + name + "</extra>"))
    what = "parallel trajectories K" if over == "k" else "transforms of the puzzle"
    fig.update_layout(title=title or f"Thinking in parallel: exact accuracy against {what} (95% intervals)",
                      xaxis=dict(title=what, type="log", tickvals=sorted({r[over] for r in rows})),
                      yaxis_title="exact accuracy", yaxis_tickformat=".0%", height=420,
                      legend=dict(orientation="h", y=-0.2))
    return fig


def cost_figure(rows: Sequence[dict], frontier: Sequence[dict], title: str = "") -> go.Figure:
    """Every setting as a point (accuracy against network calls per puzzle, log scale) and, per selector,
    the cheapest setting that reaches each accuracy (a line)."""
    fig = go.Figure()
    for sel in [s for s in STYLE if any(r["selector"] == s for r in rows)]:
        name, colour, dash = STYLE[sel]
        pts = [r for r in rows if r["selector"] == sel]
        fig.add_trace(go.Scatter(x=[r["calls_per_puzzle"] for r in pts], y=[r["exact_accuracy"] for r in pts],
                                 mode="markers", marker=dict(color=colour, size=5, opacity=0.35), name=name,
                                 legendgroup=sel, showlegend=False, hoverinfo="skip"))
        fr = sorted((r for r in frontier if r["selector"] == sel), key=lambda r: r["calls_per_puzzle"])
        if fr:
            fig.add_trace(go.Scatter(x=[r["calls_per_puzzle"] for r in fr], y=[r["exact_accuracy"] for r in fr],
                                     mode="lines+markers", line=dict(color=colour, dash=dash, shape="hv"), name=name,
                                     legendgroup=sel, text=[describe_setting(r, selector=False) for r in fr],
                                     hovertemplate="%{text}<br>%{x:.0f} calls/puzzle: %{y:.1%}<extra></extra>"))
    fig.update_layout(title=title or "Accuracy against cost: the cheapest setting that reaches each accuracy",
                      xaxis=dict(title="network calls per puzzle (log)", type="log"), yaxis_title="exact accuracy",
                      yaxis_tickformat=".0%", height=440, legend=dict(orientation="h", y=-0.2))
    return fig


def examples_figure(examples: dict, task, titles: Optional[dict] = None) -> Optional[go.Figure]:
    """One row per example puzzle (``longer``, ``parallel``, ``none``): the puzzle, then each answer (green
    right, red wrong; the parallel ones are the halting head's choice), then the solution. None when there
    is no example."""
    if not examples:
        return None
    titles = titles or {"longer": "only by thinking longer", "parallel": "only in parallel", "none": "by no method"}
    ncols = 1 + max(len(e["answers"]) for e in examples.values()) + 1
    names = []
    for what, e in examples.items():
        names += [f"puzzle {e['index']}, solved {titles.get(what, what)}"] + list(e["answers"]) + ["solution"]
        names += [""] * (ncols - 2 - len(e["answers"]))
    fig = make_subplots(rows=len(examples), cols=ncols, subplot_titles=names, horizontal_spacing=0.03,
                        vertical_spacing=0.08)
    for i, e in enumerate(examples.values(), start=1):
        x = np.asarray(e["inputs"])
        y = np.asarray(e["labels"])
        givens = np.asarray(task.givens(x[None]))[0]
        panels = [(x, None, "puzzle")] + [(np.asarray(v), np.asarray(v) == y, "answer") for v in e["answers"].values()]
        panels.append((np.where(y < 0, x, y), None, "answer"))
        for j, (tokens, correct, role) in enumerate(panels, start=1):
            sub = grid_figure(task, tokens, correct=correct, givens=givens, role=role)
            for tr in sub.data:
                fig.add_trace(tr, row=i, col=j)
            fig.update_xaxes(visible=False, row=i, col=j)
            fig.update_yaxes(visible=False, autorange="reversed", row=i, col=j)
    fig.update_layout(height=260 * len(examples), showlegend=False, margin=dict(l=10, r=10, t=40, b=10))
    return fig
