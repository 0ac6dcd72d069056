"""Training curves: from a run folder's ``metrics.jsonl`` (matplotlib, for docs) and as a plotly figure that
redraws while a notebook trains (:class:`LiveCurves`, fed by the trainer's ``on_log`` callback)."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Optional

from ..train.logging import read_metrics


def eval_table(run_dir: str | os.PathLike) -> list[dict]:
    """One row per evaluation: step, minutes since the run started, exact accuracy per supervision step."""
    recs = read_metrics(run_dir)
    start = next((r["time"] for r in recs if r.get("split") == "info"), recs[0]["time"] if recs else 0.0)
    rows = []
    for r in recs:
        if r.get("split") != "eval":
            continue
        steps = sorted(int(m.group(1)) for k in r if (m := re.fullmatch(r"step(\d+)/exact_accuracy", k)))
        rows.append({"step": r["step"], "minutes": (r["time"] - start) / 60,
                     "exact_by_supervision_step": [r[f"step{s}/exact_accuracy"] for s in steps],
                     "exact_accuracy": r.get("all/exact_accuracy"), "low": r.get("all/exact_accuracy_low"),
                     "high": r.get("all/exact_accuracy_high"), "halt_exact_accuracy": r.get("halt/exact_accuracy"),
                     "halt_mean_steps": r.get("halt/mean_steps")})
    return rows


def plot_training_curves(run_dir: str | os.PathLike, out: Optional[str | os.PathLike] = None, title: str = ""):
    """Left: training loss and exact accuracy per step. Right: test exact accuracy at each evaluation,
    one line per number of supervision steps at inference. Returns the figure; saves it to ``out``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    train = read_metrics(run_dir, "train")
    evals = eval_table(run_dir)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in train]
    a.plot(steps, [r.get("lm_loss") for r in train], lw=0.6, color="tab:blue", label="train lm_loss")
    a.set_xlabel("optimiser step")
    a.set_ylabel("lm_loss (per puzzle)")
    a2 = a.twinx()
    a2.plot(steps, [r.get("exact_accuracy") for r in train], lw=0.4, color="tab:orange", alpha=0.6,
            label="train exact (halted slots)")
    a2.set_ylim(0, 1.02)
    a2.set_ylabel("train exact accuracy")
    a.set_title("training")
    if evals:
        n = len(evals[-1]["exact_by_supervision_step"])
        for s in range(n):
            b.plot([e["step"] for e in evals], [e["exact_by_supervision_step"][s] if s < len(
                e["exact_by_supervision_step"]) else None for e in evals], marker="o", label=f"{s + 1} step(s)")
        b.fill_between([e["step"] for e in evals], [e["low"] for e in evals], [e["high"] for e in evals],
                       alpha=0.15, color="gray", label="95% CI, all steps")
    b.set_ylim(0, 1.02)
    b.set_xlabel("optimiser step")
    b.set_ylabel("test exact accuracy")
    b.set_title("test: exact accuracy by supervision steps at inference")
    b.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    return fig


# -- plotly: the training figure, drawn from metrics records (live in a notebook, or from a run folder) ----------

def running_mean(values: list, counts: list, window: int) -> list:
    """Count-weighted running mean over the last ``window`` records: train metrics are averaged over the
    puzzles that halted at that step (none on some steps), so the raw per-step value jumps to 0."""
    out, num, den = [], [], []
    for v, c in zip(values, counts):
        c = float(c or 0)
        num.append((v or 0.0) * c)
        den.append(c)
        if len(num) > window:
            num.pop(0)
            den.pop(0)
        out.append(sum(num) / sum(den) if sum(den) > 0 else None)
    return out


def training_figure(train: list[dict], evals: list[dict], title: str = "", window: int = 20):
    """A 2x2 plotly figure of a run's metrics records (``metrics.jsonl`` rows, or the trainer's on_log):
    training loss; training accuracy and exact accuracy (running mean over halted puzzles); test exact
    accuracy by the number of supervision steps at each evaluation (95% interval for the last step); and
    halting steps (training: steps the halted puzzles took; test: mean steps with learned halting)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.09, vertical_spacing=0.16, subplot_titles=(
        "training loss", "training accuracy (running mean, halted puzzles)",
        "test exact accuracy by supervision steps", "halting: supervision steps used"))
    steps = [r["step"] for r in train]
    counts = [r.get("count", 1) for r in train]
    fig.add_trace(go.Scatter(x=steps, y=[r.get("lm_loss") for r in train], name="lm_loss", mode="lines",
                             line=dict(width=1, color="#1f77b4")), row=1, col=1)
    if any(r.get("q_halt_loss") is not None for r in train):
        fig.add_trace(go.Scatter(x=steps, y=[r.get("q_halt_loss") for r in train], name="q_halt_loss",
                                 mode="lines", line=dict(width=1, color="#9467bd")), row=1, col=1)
    for key, name, color in (("accuracy", "token accuracy", "#2ca02c"), ("exact_accuracy", "exact accuracy", "#ff7f0e")):
        fig.add_trace(go.Scatter(x=steps, y=running_mean([r.get(key) for r in train], counts, window), name=name,
                                 mode="lines", line=dict(width=1.5, color=color)), row=1, col=2)
    fig.add_trace(go.Scatter(x=steps, y=running_mean([r.get("steps") for r in train], counts, window),
                             name="train: steps at halt", mode="lines", line=dict(width=1.5, color="#8c564b")),
                  row=2, col=2)
    if evals:
        n = max(_n_steps(e) for e in evals)
        xs = [e["step"] for e in evals]
        if any(e.get("all/exact_accuracy_low") is not None for e in evals):
            hi = [e.get("all/exact_accuracy_high") for e in evals]
            lo = [e.get("all/exact_accuracy_low") for e in evals]
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=hi + lo[::-1], fill="toself", mode="lines",
                                     line=dict(width=0), fillcolor="rgba(120,120,120,0.18)",
                                     name=f"95% interval, {n} steps", hoverinfo="skip"), row=2, col=1)
        for s in range(1, n + 1):
            fig.add_trace(go.Scatter(x=xs, y=[e.get(f"step{s}/exact_accuracy") for e in evals], mode="lines+markers",
                                     name=f"test: {s} supervision step{'s' if s > 1 else ''}"), row=2, col=1)
        if any(e.get("halt/mean_steps") is not None for e in evals):
            fig.add_trace(go.Scatter(x=xs, y=[e.get("halt/mean_steps") for e in evals], mode="lines+markers",
                                     name="test: mean steps, learned halting", line=dict(color="#e377c2")),
                          row=2, col=2)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_yaxes(range=[0, 1.02], row=2, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    for r in (1, 2):
        for c in (1, 2):
            fig.update_xaxes(title_text="optimiser step", row=r, col=c)
    fig.update_layout(height=680, title=title or None, margin=dict(l=50, r=20, t=70 if title else 40, b=40),
                      legend=dict(font=dict(size=10), orientation="h", yanchor="top", y=-0.1, x=0),
                      template="plotly_white")
    return fig


def _n_steps(e: dict) -> int:
    return max([int(k[4:].split("/")[0]) for k in e if k.startswith("step") and k.endswith("/exact_accuracy")] or [0])


def eval_table_html(run_dir: str | os.PathLike) -> str:
    """The run's evaluations as an HTML table: step, minutes, exact accuracy by supervision step, the
    last step's 95% interval, learned halting (exact accuracy, mean steps)."""
    import html

    rows = eval_table(run_dir)
    if not rows:
        return "<p>no evaluation yet</p>"
    n = max(len(r["exact_by_supervision_step"]) for r in rows)
    head = "".join(f"<th>{s} step{'s' if s > 1 else ''}</th>" for s in range(1, n + 1))
    out = ["<table class='trmlab-eval'><thead><tr><th>optimiser step</th><th>minutes</th>" + head +
           "<th>95% interval (last step)</th><th>learned halting</th><th>mean steps</th></tr></thead><tbody>"]

    def f(v):
        return "" if v is None else f"{v:.3f}"

    for r in rows:
        cells = "".join(f"<td>{f(v)}</td>" for v in r["exact_by_supervision_step"])
        cells += "<td></td>" * (n - len(r["exact_by_supervision_step"]))
        ci = f"[{f(r['low'])}, {f(r['high'])}]" if r["low"] is not None else ""
        out.append(f"<tr><td>{r['step']}</td><td>{r['minutes']:.1f}</td>{cells}<td>{html.escape(ci)}</td>"
                   f"<td>{f(r['halt_exact_accuracy'])}</td><td>{f(r['halt_mean_steps'])}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


class LiveCurves:
    """The training figure, redrawn in place while a run trains.

    ``update(step, split, metrics)`` is the trainer's ``on_log`` callback: it stores the record and, at
    most every ``every_seconds`` (and at every evaluation), redraws a plotly ``FigureWidget`` shown by
    :meth:`display`, so the curves move in JupyterLab while the cell runs. :meth:`finish` replaces the
    widget by a plain plotly figure of the whole run (through the same display handle), which is what an
    executed notebook keeps (papermill) and what its HTML report shows.
    """

    def __init__(self, title: str = "", every_seconds: float = 1.0, window: int = 20):
        self.title, self.every, self.window = title, every_seconds, window
        self.train: list[dict] = []
        self.evals: list[dict] = []
        self.redraws = 0
        self.widget = None
        self._handle = None
        self._last = 0.0

    def figure(self):
        """The current plain plotly figure."""
        return training_figure(self.train, self.evals, self.title, self.window)

    def bundle(self) -> dict:
        """The figure as a mime bundle for plotly's default renderers (a plotly figure shows itself through
        ``_ipython_display_``, which would ignore a display handle)."""
        import plotly.io as pio

        return pio.renderers._build_mime_bundle(self.figure().to_dict())

    def display(self):
        """Show the live figure (a FigureWidget); returns the display handle."""
        import plotly.graph_objects as go
        from IPython.display import display

        self.widget = go.FigureWidget(self.figure())
        self._handle = display(self.widget, display_id=True)
        self._last = time.time()
        return self._handle

    def update(self, step: int, split: str, metrics: dict) -> None:
        rec = {"step": int(step), **{k: v for k, v in metrics.items() if isinstance(v, (int, float))}}
        (self.evals if split == "eval" else self.train).append(rec)
        if split == "eval" or time.time() - self._last >= self.every:
            self.redraw()

    __call__ = update

    def redraw(self) -> None:
        """Redraw the live figure from the records so far."""
        self._last = time.time()
        self.redraws += 1
        if self.widget is None:
            return
        new = self.figure()
        w = self.widget
        with w.batch_update():
            if [t.name for t in w.data] != [t.name for t in new.data]:
                w.data = ()
                w.add_traces(list(new.data))
            else:
                for old, fresh in zip(w.data, new.data):
                    old.x, old.y = fresh.x, fresh.y

    def finish(self) -> None:
        """Replace the live widget by the plain figure of the whole run (kept by papermill and reports)."""
        self.redraw()
        if self._handle is not None:
            self._handle.update(self.bundle(), raw=True)
        if self.widget is not None:
            self.widget.close()
            self.widget = None
