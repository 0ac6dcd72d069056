"""Figures comparing runs (notebooks/05-compare.ipynb): drawing only; the numbers come from
:mod:`trmlab.workbench.compare` as plain dicts.

* ``curves_figure``: training loss, training exact accuracy and the test metric at each evaluation
  (with its 95% interval), every run in the same colour on all three shared-axis panels;
* ``final_metrics_figure``: each run's final metric with its interval.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def run_colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return "rgba({},{},{},{})".format(*(int(h[k:k + 2], 16) for k in (0, 2, 4)), alpha)


def _num(values) -> list:
    return [None if v is None or not np.isfinite(float(v)) else float(v) for v in values]


def curves_figure(curves: Sequence[dict], metric: str = "all/exact_accuracy", x: str = "step",
                  title: str = "Training curves", height: int = 420, width: Optional[int] = None) -> go.Figure:
    """Three panels on a shared x axis (``x``: ``"step"`` or ``"minutes"``): training loss, training
    exact accuracy (running means), and ``metric`` at each evaluation with its 95% interval as a band.
    ``curves``: dicts with ``label``, ``train`` {step, minutes, lm_loss, exact_accuracy, window} and
    ``eval`` {step, minutes, value, low, high}."""
    if x not in ("step", "minutes"):
        raise ValueError(f"curves_figure: x must be 'step' or 'minutes', got {x!r}")
    if not curves:
        raise ValueError("curves_figure: no run to draw")
    window = max((c["train"].get("window", 1) for c in curves), default=1)
    if window > 1:
        title += f" (training: running mean of {window} steps)"
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.07,
                        subplot_titles=("training loss", "training exact accuracy", f"test {metric}"))
    for i, c in enumerate(curves):
        colour, label = run_colour(i), c["label"]
        tr, ev = c["train"], c["eval"]
        fig.add_trace(go.Scatter(x=tr[x], y=_num(tr["lm_loss"]), mode="lines", name=label, legendgroup=label,
                                 line=dict(color=colour, width=1.5)), row=1, col=1)
        fig.add_trace(go.Scatter(x=tr[x], y=_num(tr["exact_accuracy"]), mode="lines", name=label, legendgroup=label,
                                 showlegend=False, line=dict(color=colour, width=1.5)), row=1, col=2)
        if ev["value"]:
            low, high = ev["low"], ev["high"]
            if all(v is not None for v in low + high):
                fig.add_trace(go.Scatter(x=list(ev[x]) + list(ev[x])[::-1], y=_num(high) + _num(low)[::-1],
                                         fill="toself", fillcolor=_rgba(colour, 0.15), line=dict(width=0),
                                         mode="lines", hoverinfo="skip", showlegend=False, legendgroup=label,
                                         name=f"{label} 95% CI"), row=1, col=3)
            fig.add_trace(go.Scatter(x=ev[x], y=_num(ev["value"]), mode="lines+markers", name=label, legendgroup=label,
                                     showlegend=False, line=dict(color=colour)), row=1, col=3)
    fig.update_xaxes(matches="x")  # one x range for the three panels
    xlabel = "optimiser step" if x == "step" else "minutes since the run started"
    for col in (1, 2, 3):
        fig.update_xaxes(title_text=xlabel, showgrid=True, gridcolor="#eee", row=1, col=col)
        fig.update_yaxes(showgrid=True, gridcolor="#eee", row=1, col=col)
    fig.update_yaxes(range=[-0.02, 1.02], row=1, col=2)
    if "accuracy" in metric or "pass@" in metric:
        fig.update_yaxes(range=[-0.02, 1.02], row=1, col=3)
    fig.update_layout(title=title, height=height, width=width, plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.25), margin=dict(l=50, r=20, t=80, b=90))
    return fig


def final_metrics_figure(finals: Sequence[dict], metric: str = "all/exact_accuracy", title: str = "",
                         height: int = 360, width: Optional[int] = None) -> go.Figure:
    """Each run's final ``metric`` as a bar with its 95% interval. ``finals``: dicts with ``label``,
    ``value``, ``low``, ``high`` (None when unknown) and ``source``."""
    if not finals:
        raise ValueError("final_metrics_figure: no run to draw")
    labels = [f["label"] for f in finals]
    value = np.array([np.nan if f["value"] is None else f["value"] for f in finals], float)
    low = np.array([np.nan if f.get("low") is None else f["low"] for f in finals], float)
    high = np.array([np.nan if f.get("high") is None else f["high"] for f in finals], float)
    fig = go.Figure(go.Bar(
        x=labels, y=_num(value), marker_color=[run_colour(i) for i in range(len(finals))],
        error_y=dict(type="data", symmetric=False, array=_num(np.where(np.isnan(high), 0, high - value)),
                     arrayminus=_num(np.where(np.isnan(low), 0, value - low))),
        text=["" if np.isnan(v) else f"{v:.3f}" for v in value], textposition="inside",
        hovertext=[f"{f['label']}: {'-' if np.isnan(v) else f'{v:.4f}'}"
                   + ("" if np.isnan(lo) else f" [{lo:.4f}, {hi:.4f}]") + f" · {f.get('source', '')}"
                   for f, v, lo, hi in zip(finals, value, low, high)], hoverinfo="text"))
    if "accuracy" in metric or "pass@" in metric:
        fig.update_yaxes(range=[0, 1.05])
    fig.update_yaxes(title_text=metric, showgrid=True, gridcolor="#eee")
    fig.update_layout(title=title or f"Final {metric} with 95% interval", height=height, width=width,
                      plot_bgcolor="white", margin=dict(l=60, r=20, t=60, b=60))
    return fig
