"""Evaluating a run for notebooks/03-evaluate.ipynb: orchestration and the numbers the figures draw.

:func:`evaluate_for_notebook` loads a run's checkpoint once and evaluates it on a test split with fixed
steps (``halting="max"``) and with learned halting (``"learned"``), at the run's evaluation steps N and,
when asked, at N + ``extra_steps`` (more steps than the run was evaluated with, and than the model was
trained with). Each evaluation keeps the per-puzzle records of :func:`trmlab.eval.evaluate.evaluate`
and, when it covers the run's own whole test split, is saved as the run's eval JSON (the file reports
and the index read). The :class:`RunEvaluation` it returns turns the records into what
:mod:`trmlab.viz.evaluation` draws: accuracy by supervision step with 95% Wilson intervals, fixed
against learned halting, the halting steps of right and wrong answers, and the failures.

Per-puzzle records (columns, one row per test puzzle): ``halt_step`` [P] (1-based step whose answer
is scored), ``correct_at_halt`` [P], ``correct_by_step`` [P, S] (the answer after each step 1..S),
``preds`` / ``inputs`` / ``labels`` [P, L] tokens, ``puzzle_identifiers`` [P], ``q_halt`` (halt logits).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..eval.metrics import wilson_interval
from ..trace.tasks import TaskSpec

RECORD_FIELDS = ("halt_step", "correct_at_halt", "correct_by_step", "preds", "inputs", "labels")


def check_records(records: dict, where: str = "records") -> dict:
    """The records as numpy arrays, checked: every field present and one row per puzzle."""
    missing = [k for k in RECORD_FIELDS if k not in records]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}; expected {', '.join(RECORD_FIELDS)}")
    out = {k: np.asarray(v) for k, v in records.items()}
    n = out["halt_step"].shape[0]
    for k in RECORD_FIELDS:
        if out[k].shape[0] != n:
            raise ValueError(f"{where}: field {k} has {out[k].shape[0]} rows, halt_step has {n}")
    if out["correct_by_step"].ndim != 2:
        raise ValueError(f"{where}: correct_by_step must be [puzzles, steps], got shape {out['correct_by_step'].shape}")
    return out


def interval(successes: int, n: int) -> dict:
    """Exact accuracy with its 95% Wilson interval, as a dict of ``accuracy``, ``low``, ``high``, ``count``."""
    low, high = wilson_interval(successes, n)
    return {"accuracy": successes / n if n else float("nan"), "low": low, "high": high, "count": int(n),
            "right": int(successes)}


def accuracy_by_step(records: dict, label: str = "fixed steps") -> dict:
    """Exact accuracy of the answer after each supervision step 1..S, each with its Wilson interval:
    ``{"label", "steps", "accuracy", "low", "high", "count"}``."""
    r = check_records(records)
    cbs = r["correct_by_step"].astype(bool)
    n = cbs.shape[0]
    per = [interval(int(cbs[:, s].sum()), n) for s in range(cbs.shape[1])]
    return {"label": label, "steps": list(range(1, cbs.shape[1] + 1)), "accuracy": [p["accuracy"] for p in per],
            "low": [p["low"] for p in per], "high": [p["high"] for p in per], "count": n}


def halting_steps(records: dict) -> dict:
    """The step each puzzle halted at and whether its answer there was right."""
    r = check_records(records)
    return {"halt_step": r["halt_step"].astype(int), "correct": r["correct_at_halt"].astype(bool)}


def failure_rows(records: dict, limit: int = 6) -> list[int]:
    """Rows of the first ``limit`` puzzles answered wrongly (test-split order)."""
    r = check_records(records)
    return [int(i) for i in np.flatnonzero(~r["correct_at_halt"].astype(bool))[:max(int(limit), 0)]]


@dataclass
class Result:
    """One evaluation: a halting mode at a step budget, its metrics, records and where it was saved."""

    halting: str  # "max" (every puzzle runs all steps) | "learned" (the halt head stops each puzzle)
    n_supervision: int
    metrics: dict
    records: dict
    saved_to: Optional[Path] = None

    @property
    def label(self) -> str:
        return f"fixed {self.n_supervision} steps" if self.halting == "max" else f"learned halting, ≤ {self.n_supervision}"

    def summary(self) -> dict:
        """Accuracy with interval and mean steps used, from the records (the row of the comparison)."""
        hs = halting_steps(self.records)
        iv = interval(int(hs["correct"].sum()), hs["correct"].size)
        mean = float(hs["halt_step"].mean()) if hs["halt_step"].size else float("nan")
        return {"label": self.label, "halting": self.halting, "max_steps": self.n_supervision, "mean_steps": mean,
                "saved_steps": 1.0 - mean / self.n_supervision, **iv}


@dataclass
class RunEvaluation:
    """A run evaluated for the notebook: which checkpoint, on which data, and every :class:`Result`."""

    run: Path
    data: Path
    task: TaskSpec
    checkpoint: dict  # name, file, step, choice (how it was chosen)
    train_steps: int  # N_sup the model was trained with
    eval_steps: int  # N, the run's evaluation steps (or the notebook's ``steps``)
    results: list = field(default_factory=list)

    def result(self, halting: str, n_supervision: Optional[int] = None) -> Result:
        """The result of ``halting`` at ``n_supervision`` steps (default: the largest budget evaluated)."""
        found = [r for r in self.results if r.halting == halting and (n_supervision is None or r.n_supervision == n_supervision)]
        if not found:
            have = ", ".join(f"{r.halting}@{r.n_supervision}" for r in self.results) or "none"
            raise KeyError(f"no {halting!r} evaluation at {n_supervision or 'any'} steps (evaluated: {have})")
        return max(found, key=lambda r: r.n_supervision)

    @property
    def count(self) -> int:
        return int(self.results[0].records["halt_step"].shape[0]) if self.results else 0

    def describe(self) -> str:
        """What was evaluated: the checkpoint and how it was chosen, the data, the steps."""
        ck = self.checkpoint
        step = f" (optimiser step {ck['step']})" if ck.get("step") is not None else ""
        lines = [f"run:        {self.run}",
                 f"checkpoint: {ck['name']}{step}: {ck['file']}",
                 f"            chosen: {ck['choice']}",
                 f"data:       {self.data} ({self.count} test puzzles, {self.task.name})",
                 f"steps:      trained with N_sup={self.train_steps}; evaluated at N={self.eval_steps}"
                 + (f" and up to {max(r.n_supervision for r in self.results)}" if self.results and max(
                     r.n_supervision for r in self.results) > self.eval_steps else "")]
        for r in self.results:
            s = r.summary()
            saved = f" -> {r.saved_to.name}" if r.saved_to else " (not saved: not the run's whole test split)"
            lines.append(f"  {s['label']:<28} exact {100 * s['accuracy']:6.2f}% [{100 * s['low']:.2f}, "
                         f"{100 * s['high']:.2f}]  mean steps {s['mean_steps']:.2f}{saved}")
        return "\n".join(lines)

    def curves(self) -> list[dict]:
        """Accuracy against supervision steps: one curve from the longest fixed-steps evaluation."""
        if not any(r.halting == "max" for r in self.results):
            return []
        r = self.result("max")
        return [accuracy_by_step(r.records, label="fixed steps (every puzzle runs them all)")]

    def learned_points(self) -> list[dict]:
        """Learned halting at each budget: accuracy at the halting step and mean steps used."""
        return [r.summary() for r in sorted(self.results, key=lambda r: r.n_supervision) if r.halting == "learned"]

    def halting_rows(self) -> list[dict]:
        """Fixed against learned halting, one row per evaluation (budget, then mode)."""
        return [r.summary() for r in sorted(self.results, key=lambda r: (r.n_supervision, r.halting != "max"))]

    def halting_groups(self) -> list[dict]:
        """Halting steps of right and wrong answers, one group per learned-halting evaluation."""
        return [{"label": r.label, "max_steps": r.n_supervision, **halting_steps(r.records)}
                for r in sorted(self.results, key=lambda r: r.n_supervision) if r.halting == "learned"]

    def failures(self, limit: int = 6, halting: str = "max") -> dict:
        """The first ``limit`` failures at the run's evaluation steps (``halting``'s result there):
        ``inputs``, ``preds``, ``labels`` [K, L] and a caption per puzzle."""
        have = [r for r in self.results if r.halting == halting and r.n_supervision == self.eval_steps]
        r = have[0] if have else self.result(halting)
        rec = check_records(r.records)
        rows = failure_rows(rec, limit)
        labels = rec["labels"][rows]
        preds = rec["preds"][rows]
        wrong = ((preds != labels) & (labels >= 0)).sum(-1)
        captions = [f"#{i} ({int(w)} wrong cell{'s' if w != 1 else ''}, step {int(rec['halt_step'][i])})"
                    for i, w in zip(rows, wrong)]
        return {"inputs": rec["inputs"][rows], "preds": preds, "labels": labels, "captions": captions,
                "rows": rows, "label": r.label, "failed": int((~rec["correct_at_halt"].astype(bool)).sum())}
