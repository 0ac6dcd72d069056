"""Training curves from a run folder's ``metrics.jsonl`` (matplotlib, for docs and reports)."""
from __future__ import annotations

import os
import re
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
