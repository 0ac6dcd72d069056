"""Evaluating a run for notebooks/03-evaluate.ipynb: orchestration, and the numbers the figures draw.

:func:`evaluate_for_notebook` loads one checkpoint of a run once (saying which and how it was chosen)
and evaluates it on a test split with fixed steps (``halting="max"``: every puzzle runs all steps, the
reference's protocol) and with learned halting (``"learned"``: each puzzle stops when its halting head
says so), at the run's evaluation steps N and, with ``extra_steps``, at N + extra_steps too (more steps
than the run was evaluated, and the model trained, with). Every evaluation is
:func:`trmlab.eval.evaluate.evaluate` with per-puzzle records; when it covers the run's own whole test
split it is saved in the run folder as ``eval_<checkpoint>_N<N>_<halting>.json``
(:func:`trmlab.eval.evaluate.save_evaluation`), the file reports, the index and 05-compare read.

The :class:`RunEvaluation` it returns gives what :mod:`trmlab.viz.evaluation` draws: accuracy against
supervision steps with 95% Wilson intervals, fixed against learned halting, the halting steps of right
and wrong answers, and the failures (puzzle, model answer, truth).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..eval.arc_vote import ArcEvaluator
from ..eval.batch_size import test_loader
from ..eval.evaluate import HALTING, evaluate, save_evaluation
from ..paths import resolve
from ..runs import cfg_dtype, open_run, resolve_run
from ..trace.tasks import TaskSpec, dataset_task
from ..viz.tables import Table

#: the ``halting`` parameter of the notebook -> the evaluations run at each step budget
MODES = {"both": ("max", "learned"), "max": ("max",), "learned": ("learned",)}
RECORD_FIELDS = ("halt_step", "correct_at_halt", "correct_by_step", "preds", "inputs", "labels")


def check_records(records: dict, where: str = "records") -> dict:
    """The per-puzzle records as numpy arrays, checked: every field there and one row per puzzle."""
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


@dataclass
class Result:
    """One evaluation: a halting mode at a step budget, its metrics (as saved), records and file."""

    halting: str  # "max" (every puzzle runs all steps) | "learned" (the halting head stops each puzzle)
    n_supervision: int
    metrics: dict
    records: dict
    saved_to: Optional[Path] = None

    @property
    def label(self) -> str:
        return (f"fixed {self.n_supervision} steps" if self.halting == "max"
                else f"learned halting, ≤ {self.n_supervision} steps")

    def answered(self) -> dict:
        """Per puzzle: the step whose answer was given (N under fixed steps) and whether it was right."""
        r = check_records(self.records, self.label)
        if self.halting == "max":
            return {"step": np.full(r["halt_step"].shape, self.n_supervision, int),
                    "correct": r["correct_by_step"][:, self.n_supervision - 1].astype(bool)}
        return {"step": r["halt_step"].astype(int), "correct": r["correct_at_halt"].astype(bool)}

    def summary(self) -> dict:
        """Exact accuracy with its 95% interval and the steps used, as the saved metrics say."""
        m = self.metrics
        key = "all" if self.halting == "max" else "halt"
        mean = float(self.n_supervision if self.halting == "max" else m["halt/mean_steps"])
        return {"label": self.label, "halting": self.halting, "max_steps": self.n_supervision,
                "accuracy": m[f"{key}/exact_accuracy"], "low": m[f"{key}/exact_accuracy_low"],
                "high": m[f"{key}/exact_accuracy_high"], "count": int(m[f"{key}/count"]),
                "token_accuracy": m.get(f"{key}/token_accuracy"), "mean_steps": mean,
                "compute_saved": 1.0 - mean / self.n_supervision}


def accuracy_curve(metrics: dict, label: str = "fixed steps") -> dict:
    """Exact accuracy after each supervision step 1..N of a fixed-steps evaluation, with the Wilson
    interval of each: ``{"label", "steps", "accuracy", "low", "high", "count"}``."""
    n = int(metrics["n_supervision"])
    missing = [k for k in range(1, n + 1) if f"step{k}/exact_accuracy" not in metrics]
    if missing:
        raise ValueError(f"accuracy_curve: no step{missing[0]}/exact_accuracy in the metrics (a learned-halting "
                         f"evaluation has no per-step accuracy; use a fixed-steps one)")
    ks = range(1, n + 1)
    return {"label": label, "steps": list(ks), "accuracy": [metrics[f"step{k}/exact_accuracy"] for k in ks],
            "low": [metrics[f"step{k}/exact_accuracy_low"] for k in ks],
            "high": [metrics[f"step{k}/exact_accuracy_high"] for k in ks], "count": int(metrics[f"step{n}/count"])}


@dataclass
class RunEvaluation:
    """A run evaluated for the notebook: which checkpoint, on which data, and every :class:`Result`."""

    run: Path
    data: Path
    task: TaskSpec
    checkpoint: dict  # checkpoint (file), checkpoint_step, checkpoint_choice (how it was chosen)
    train_steps: int  # N_sup the model was trained with
    eval_steps: int  # N: the run's evaluation steps (or the notebook's ``steps``)
    results: list = field(default_factory=list)
    not_saved: str = ""  # why the results were not written to the run folder ("" when they were)

    def result(self, halting: str, n_supervision: Optional[int] = None) -> Result:
        """The evaluation with ``halting`` at ``n_supervision`` steps (default: the largest budget)."""
        found = [r for r in self.results if r.halting == halting and n_supervision in (None, r.n_supervision)]
        if not found:
            have = ", ".join(f"{r.halting} at {r.n_supervision}" for r in self.results) or "none"
            raise KeyError(f"no {halting!r} evaluation at {n_supervision or 'any'} steps (evaluated: {have})")
        return max(found, key=lambda r: r.n_supervision)

    @property
    def count(self) -> int:
        return int(np.asarray(self.results[0].records["halt_step"]).shape[0]) if self.results else 0

    def describe(self) -> str:
        """What was evaluated, in a few lines: the checkpoint and how it was chosen, the data, the steps,
        each evaluation's exact accuracy with its interval and the file it was saved to."""
        ck = self.checkpoint
        top = max((r.n_supervision for r in self.results), default=self.eval_steps)
        lines = [f"run:        {self.run}",
                 f"checkpoint: {ck['checkpoint']} (optimiser step {ck.get('checkpoint_step')})",
                 f"chosen:     {ck['checkpoint_choice']}",
                 f"data:       {self.data} ({self.count} test puzzles, {self.task.name})",
                 f"steps:      trained with N_sup={self.train_steps}; evaluated at N={self.eval_steps}"
                 + (f" and at {top}" if top > self.eval_steps else "")]
        lines.append("exact accuracy [95% CI], mean supervision steps used, file written:")
        for r in self._sorted():
            s = r.summary()
            where = r.saved_to.name if r.saved_to else "not saved"
            arc = "  ".join(f"{k} {100 * v:.2f}%" for k, v in sorted(r.metrics.items())
                            if k.startswith(("ARC/pass@", "ARC_pooled/pass@")) and isinstance(v, float))
            lines.append(f"  {s['label']:<27} {100 * s['accuracy']:6.2f}% [{100 * s['low']:5.2f}, "
                         f"{100 * s['high']:6.2f}]  {s['mean_steps']:5.2f}  {where}" + (f"\n{'':29}{arc}" if arc else ""))
        if self.not_saved:
            lines.append(f"not saved in the run folder: {self.not_saved}")
        return "\n".join(lines)

    def curves(self) -> list[dict]:
        """Accuracy against supervision steps, from the fixed-steps evaluation with the largest budget."""
        if not any(r.halting == "max" for r in self.results):
            return []
        return [accuracy_curve(self.result("max").metrics, label="fixed steps (every puzzle runs them all)")]

    def learned_points(self) -> list[dict]:
        """Learned halting at each budget: accuracy of the answers given and the mean steps used."""
        return [r.summary() for r in self._sorted() if r.halting == "learned"]

    def halting_rows(self) -> list[dict]:
        """Fixed against learned halting: one row per evaluation, by budget then mode."""
        return [r.summary() for r in self._sorted()]

    def halting_table(self) -> Table:
        """:meth:`halting_rows` as a table (percentages)."""
        rows = [{"evaluation": r["label"],
                 "exact accuracy [95% CI]": f"{100 * r['accuracy']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}]",
                 "puzzles": r["count"], "token accuracy": f"{100 * r['token_accuracy']:.1f}%",
                 "mean steps": f"{r['mean_steps']:.2f}", "compute saved": f"{100 * r['compute_saved']:.0f}%"}
                for r in self.halting_rows()]
        return Table(rows, title="Fixed steps and learned halting")

    def halting_groups(self) -> list[dict]:
        """The halting step of each puzzle and whether its answer there was right, one group per
        learned-halting evaluation (with fixed steps only: where learned halting would have stopped)."""
        learned = [r for r in self._sorted() if r.halting == "learned"]
        if learned:
            return [{"label": r.label, "max_steps": r.n_supervision, "halt_step": r.answered()["step"],
                     "correct": r.answered()["correct"]} for r in learned]
        out = []
        for r in self._sorted():
            rec = check_records(r.records, r.label)
            out.append({"label": f"where learned halting would stop, of {r.n_supervision} steps run",
                        "max_steps": r.n_supervision, "halt_step": rec["halt_step"].astype(int),
                        "correct": rec["correct_at_halt"].astype(bool)})
        return out

    def failures(self, limit: int = 6) -> dict:
        """The first ``limit`` puzzles answered wrongly at the run's evaluation steps (fixed steps when
        evaluated, else learned halting), in test-split order: ``inputs``, ``preds``, ``labels`` [K, L],
        ``captions``, ``failed`` (how many failed in all) and ``label`` (which evaluation)."""
        at_n = [r for r in self._sorted() if r.n_supervision == self.eval_steps] or self._sorted()
        r = at_n[0]  # fixed steps sort first
        rec = check_records(r.records, r.label)
        ans = r.answered()
        wrong_rows = np.flatnonzero(~ans["correct"])
        rows = wrong_rows[:max(int(limit), 0)]
        labels, preds = rec["labels"][rows], rec["preds"][rows]
        wrong = ((preds != labels) & (labels >= 0)).sum(-1)
        index = rec.get("index", np.arange(len(ans["step"])))
        captions = [f"test #{int(index[i])}: {int(w)} wrong cell{'s' if w != 1 else ''}, step {int(ans['step'][i])}"
                    for i, w in zip(rows, wrong)]
        return {"inputs": rec["inputs"][rows], "preds": preds, "labels": labels, "captions": captions,
                "failed": int(wrong_rows.size), "count": int(ans["correct"].size), "label": r.label}

    def _sorted(self) -> list:
        return sorted(self.results, key=lambda r: (r.n_supervision, r.halting != "max"))


def evaluate_for_notebook(run: str | os.PathLike = "", checkpoint: str = "last", steps: int = 0,
                          extra_steps: int = 0, halting: str = "both", data: str | os.PathLike = "",
                          max_puzzles: int = 0, batch_size: int = 0, device: str = "auto",
                          root: Optional[str | os.PathLike] = None, progress: bool = True,
                          save: bool = True, task: str = "") -> RunEvaluation:
    """Evaluate ``checkpoint`` (``last`` | ``best`` | ``step_N``) of ``run`` for 03-evaluate.

    ``run``: a run folder or a zoo name; empty: the zoo model of ``task`` (``trmlab zoo list``). A zoo
    model's dataset is built from its card when missing; its results are written to ``runs/zoo/<name>``.

    ``steps``: the step budget N (0: the run's evaluation steps, ``train.eval_supervision`` or the
    model's N_sup); ``extra_steps`` > 0 also evaluates at N + extra_steps; ``halting``: ``both`` |
    ``max`` | ``learned``; ``data``: a dataset folder ("" = the run's own); ``max_puzzles`` > 0: only
    the first puzzles of the test split (rounded up to whole batches). Paths are taken from the project
    ``root``. Results are written to the run folder (``save``) only when they cover the run's own whole
    test split, so a partial or foreign evaluation never replaces the run's numbers.
    """
    if halting not in MODES:
        raise ValueError(f"halting must be one of {', '.join(MODES)}, got {halting!r}")
    if steps < 0 or extra_steps < 0 or max_puzzles < 0:
        raise ValueError(f"steps, extra_steps and max_puzzles must be >= 0, got {steps}, {extra_steps}, {max_puzzles}")
    if not run and not task:
        raise ValueError("give a run (a run folder or a zoo name) or a task whose zoo model to evaluate")
    resolved = resolve_run(run, root, task=task)
    run_dir = resolved.folder
    if not resolved.is_zoo and not (resolved.checkpoint_file or (run_dir / "checkpoints").is_dir()):
        raise ValueError(f"run: {run_dir} is not a trained run folder (no checkpoints/) nor a zoo model; train one "
                         f"with notebooks/02-train.ipynb or `trmlab demo`, or give a zoo name (`trmlab zoo list`)")
    model, cfg, choice = open_run(resolved, checkpoint, device=device, dtype=cfg_dtype(device))
    if data:
        data_dir = resolve(data, root)
        try:  # the run's own dataset, if it is there, decides whether this one is foreign
            own = resolved.dataset(build=False, cfg=cfg)
        except (FileNotFoundError, ValueError):
            own = None
    else:
        data_dir = own = resolved.dataset(cfg=cfg)
    if not (data_dir / "test").is_dir():
        raise ValueError(f"data: {data_dir} has no test split (test/); build the dataset first "
                         f"(notebooks/01-data.ipynb or `trmlab data`)")
    task = dataset_task(str(data_dir))
    if task.seq_len != cfg.model.seq_len:
        raise ValueError(f"data: {data_dir} holds sequences of {task.seq_len} tokens ({task.name}); the run's model "
                         f"reads {cfg.model.seq_len}")
    N = steps or cfg.train.eval_supervision or cfg.model.n_supervision
    loader = test_loader(cfg, data_dir, batch_size or None, model)
    max_batches = None
    if max_puzzles:
        max_batches = math.ceil(max_puzzles / loader.batch_size)
    foreign = own is None or data_dir.resolve() != own.resolve()
    why = ("another dataset than the run's own" if foreign else
           f"only the first {max_puzzles} puzzles" if max_puzzles and max_batches < len(loader) else
           "save=False" if not save else "")
    dev = next(model.parameters()).device
    results = []
    for n in sorted({N, N + extra_steps}):
        for mode in MODES[halting]:
            arc = _arc_evaluator(cfg, data_dir)
            metrics = evaluate(model, loader, n, arc, dev, progress=progress, max_batches=max_batches,
                               halting=mode, records=True)
            records = metrics.pop("records")
            metrics.update(choice.as_dict())
            saved = None if why else save_evaluation(resolved.outputs, metrics, checkpoint, n, mode)
            results.append(Result(mode, n, metrics, records, saved))
    return RunEvaluation(run=run_dir, data=data_dir, task=task, checkpoint=choice.as_dict(),
                         train_steps=cfg.model.n_supervision, eval_steps=N, results=results, not_saved=why)


def _arc_evaluator(cfg, data_dir: Path):
    if "arc" not in cfg.train.evaluators:
        return None
    return ArcEvaluator.from_dataset(data_dir)


__all__ = ["HALTING", "MODES", "Result", "RunEvaluation", "accuracy_curve", "check_records", "evaluate_for_notebook"]
