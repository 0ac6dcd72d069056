"""Figures of an ablation study: one line per arm (the mean over its seeds), from plain numbers.

>>> depth_figure({"trm": [[0.5, 0.7, 0.8, 0.8]], "hrm": [[0.4, 0.5, 0.5, 0.5]]}, train_steps=2)
>>> curve_figure({"trm": [[(100, 0.4), (200, 0.6)]]})
>>> halting_figure({"trm": [[(1, 30, 10), (2, 70, 60)]]})
"""
from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

_LAYOUT = dict(template="plotly_white", height=420, margin=dict(l=60, r=20, t=60, b=50),
               legend=dict(orientation="v", x=1.02, y=1))


def _mean(rows: Sequence[Sequence[float]]) -> list[float]:
    n = min(len(r) for r in rows)
    return [sum(r[i] for r in rows) / len(rows) for i in range(n)]


def depth_figure(by_arm: Mapping[str, Sequence[Sequence[float]]], train_steps: int,
                 title: str = "test exact accuracy by supervision step (mean over seeds)") -> go.Figure:
    """Accuracy after 1..K supervision steps per arm; a dotted line at the steps the runs trained with."""
    fig = go.Figure()
    for arm, runs in by_arm.items():
        if not runs:
            continue
        ys = _mean(runs)
        fig.add_trace(go.Scatter(x=list(range(1, len(ys) + 1)), y=ys, mode="lines+markers",
                                 name=f"{arm} ({len(runs)} run{'s' if len(runs) > 1 else ''})"))
    fig.add_vline(x=train_steps, line_dash="dot", annotation_text=f"training: {train_steps} steps")
    fig.update_layout(title=title, xaxis_title="supervision steps at test time", yaxis_title="exact accuracy",
                      yaxis_tickformat=".0%", **_LAYOUT)
    return fig


def curve_figure(by_arm: Mapping[str, Sequence[Sequence[tuple]]],
                 title: str = "test exact accuracy during training (mean over seeds)") -> go.Figure:
    """Accuracy at each evaluation during training against the optimiser step, per arm."""
    fig = go.Figure()
    for arm, runs in by_arm.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        steps = sorted(set.intersection(*(set(s for s, _ in r) for r in runs)))
        ys = [sum(dict(r)[s] for r in runs) / len(runs) for s in steps]
        fig.add_trace(go.Scatter(x=steps, y=ys, mode="lines+markers", name=arm))
    fig.update_layout(title=title, xaxis_title="optimiser step", yaxis_title="exact accuracy",
                      yaxis_tickformat=".0%", **_LAYOUT)
    return fig


def halting_figure(by_arm: Mapping[str, Sequence[Sequence[tuple]]],
                   title: str = "halting: where the halting head stops, and how often it is right there") -> go.Figure:
    """Per arm (pooled over seeds): for each halting step k, the accuracy of the puzzles halted at k
    (marker area: how many halted there)."""
    fig = go.Figure()
    for arm, runs in by_arm.items():
        pooled: dict[int, list] = {}
        for r in runs:
            for k, n, right in r:
                pooled.setdefault(k, [0, 0])
                pooled[k][0] += n
                pooled[k][1] += right
        ks = [k for k in sorted(pooled) if pooled[k][0]]
        if not ks:
            continue
        total = sum(pooled[k][0] for k in ks)
        fig.add_trace(go.Scatter(
            x=ks, y=[pooled[k][1] / pooled[k][0] for k in ks], mode="lines+markers", name=arm,
            marker=dict(size=[6 + 30 * (pooled[k][0] / total) ** 0.5 for k in ks]),
            text=[f"{pooled[k][0]} puzzles ({pooled[k][0] / total:.0%}) halted at step {k}" for k in ks],
            hovertemplate="%{text}<br>right: %{y:.1%}<extra>" + arm + "</extra>"))
    fig.update_layout(title=title, xaxis_title="supervision step the halting head stops at",
                      yaxis_title="exact accuracy of those puzzles", yaxis_tickformat=".0%", **_LAYOUT)
    return fig


__all__ = ["depth_figure", "curve_figure", "halting_figure"]
