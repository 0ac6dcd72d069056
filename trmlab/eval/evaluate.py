"""The evaluation loop: run a model over a test split and score it.

For every test batch the model starts fresh; every puzzle keeps its batch slot (never refilled). Two
ways to run it (``halting``):

* ``"max"`` (default, the reference): every puzzle runs all ``n_supervision`` steps (which may exceed
  what the model was trained with). One pass scores the answer after every step (``step<k>/...``),
  the answer at the last step (the reference's metric, ``all/...``) and what learned halting *would*
  have answered (``halt/...``).
* ``"learned"``: each puzzle stops at the first step its halting head says halt
  (:func:`trmlab.model.wants_to_halt`: halt logit > 0, or halt > continue for models trained with the
  continue loss) or at step N, and halted puzzles leave the batch, so the compute is really saved
  (a batch ends when all its puzzles have halted). ``halt/...`` is then the accuracy of the answers
  actually given; ``step<k>/`` and ``all/`` are not reported.

Each accuracy comes with exact accuracy, token accuracy and a 95% Wilson interval. ARC batches go to
the :class:`~trmlab.eval.arc_vote.ArcEvaluator` with each puzzle's answer at the step it stopped
(the last step under ``"max"``). Used by the trainer (every ``eval_interval``), by ``trmlab eval`` and
from notebooks.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import torch

from ..io import write_json_atomic

from ..model import DeepSupervision, StepHooks, supervision_steps, wants_to_halt
from .metrics import StepwiseAccuracy, sequence_correctness

HALTING = ("max", "learned")


@torch.no_grad()
def evaluate(model: DeepSupervision, batches: Iterable[dict], n_supervision: Optional[int] = None,
             arc_evaluator=None, device: torch.device | str = "cpu", merge=None, progress: bool = False,
             max_batches: Optional[int] = None, halting: str = "max", records: bool = False,
             hooks: Optional[StepHooks] = None) -> dict:
    """Score ``model`` on ``batches`` (a test loader). Returns a flat dict of metrics.

    ``halting``: ``"max"`` (all N steps) or ``"learned"`` (each puzzle stops at its own step); see the
    module docstring. ``merge(state) -> list of states`` gathers the accumulator states of every rank,
    this one's included (distributed, e.g. ``all_gather_object``); ``progress`` shows a tqdm bar;
    ``max_batches`` stops early. ``hooks(model, batch, N) -> (observer_factory, between)``: called for each
    batch (on ``device``) before it runs; what it returns goes to :func:`trmlab.model.supervision_steps`
    (an observer may read or replace y and z after every network call, ``between`` the carry before each
    step; docs/contracts.md). ``trmlab.trace.interventions`` makes them from interventions.

    Keys (N = ``n_supervision``, default the model's):

    * both modes: ``halt/exact_accuracy`` (+ ``_low``/``_high``, the 95% Wilson interval),
      ``halt/token_accuracy``, ``halt/count``: the answer at the halting step (under ``"max"``: the
      answer learned halting would have given); ``halt/mean_steps``; ``halt/steps_hist/<k>`` (puzzles
      halted at step k, k = 1..N); ``halt/halted_early`` (fraction before step N);
      ``halt/compute_saved`` = 1 - mean_steps / N (under ``"max"``: what learned halting would save);
      ``steps_run``: supervision steps actually computed, summed over the (non-padding) puzzles;
      ``q_halt_accuracy``: [head says halt == answer right] at the answered step (the last step
      under ``"max"``, the halting step under ``"learned"``); ``n_supervision``; ``halting``;
      ``ARC/pass@K`` (and ``ARC_pooled/pass@K`` when the evaluator pools) with an ARC evaluator.
    * ``"max"`` only: ``step<k>/...`` for k = 1..N and ``all/...`` (= ``step<N>/...``, the
      reference's headline for Sudoku and Maze).

    ``records=True`` adds ``metrics["records"]``, per-puzzle numpy arrays over the P non-padding
    puzzles evaluated (sorted by example index when the loader gives one); keep it out of JSON files:

    * ``halt_step`` [P] int: the step the puzzle halted at (would have, under ``"max"``);
    * ``correct_at_halt`` [P] bool: its answer at that step is exactly right;
    * ``correct_by_step`` [P, N] bool: exactly right after step k+1. Under ``"learned"`` only steps
      1..halt_step were run; later entries are False and mean "not run";
    * ``preds`` [P, L]: the answer given (at the halting step under ``"learned"``, the last step
      under ``"max"``); ``inputs`` [P, L], ``labels`` [P, L] (-100 = not scored),
      ``puzzle_identifiers`` [P], ``index`` [P] (example index in the split, -1 if unknown);
    * ``q_halt`` [P], ``q_continue`` [P]: the halting head's logits paired with ``preds``.
    """
    if halting not in HALTING:
        raise ValueError(f"halting must be one of {', '.join(HALTING)}, got {halting!r}")
    learned = halting == "learned"
    N = n_supervision or model.cfg.n_supervision
    act_continue = bool(model.cfg.act_continue)
    was_training = model.training
    model.eval()
    acc = StepwiseAccuracy(report_steps=() if learned else range(1, N + 1), learned_halting=True,
                           act_continue=act_continue, max_steps=N)
    if arc_evaluator is not None:
        arc_evaluator.begin()
    q_right = q_count = steps_run = 0
    rec_parts: list[dict] = []
    iterator = batches
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(batches, desc=f"eval ({halting} halting)", leave=False)
    try:
        for b, batch in enumerate(iterator):
            if max_batches is not None and b >= max_batches:
                break
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch["labels"]
            B = labels.shape[0]
            valid = batch.get("valid")
            active = valid.bool() if valid is not None else torch.ones(B, dtype=torch.bool, device=labels.device)
            acc.start_batch(labels, valid)
            preds = torch.zeros_like(labels)
            q_halt = torch.zeros(B, dtype=torch.float32, device=labels.device)
            q_cont = torch.zeros_like(q_halt)
            observer_factory, between = hooks(model, batch, N) if hooks is not None else (None, None)
            for s in supervision_steps(model, batch, N, halting, active=active, observer_factory=observer_factory,
                                       between=between):
                steps_run += int(active[s.rows].sum())
                out = s.out
                acc.step(out["logits"], out["q_halt_logits"], out["q_continue_logits"], rows=s.rows)
                idx = s.rows[s.stops]
                preds[idx] = out["logits"][s.stops].argmax(-1).to(preds.dtype)
                q_halt[idx] = out["q_halt_logits"][s.stops].float()
                q_cont[idx] = out["q_continue_logits"][s.stops].float()
            per_row = acc.end_batch()
            exact = sequence_correctness(preds, labels)["exact"]
            counted = active & (labels != -100).any(-1)
            says_halt = wants_to_halt(q_halt, q_cont, act_continue)
            q_right += int((says_halt == exact)[counted].sum())
            q_count += int(counted.sum())
            if arc_evaluator is not None:
                arc_evaluator.update(batch["inputs"][active], batch["puzzle_identifiers"][active], preds[active],
                                     q_halt[active])
            if records:
                by_step = torch.zeros(B, N, dtype=torch.bool, device=labels.device)
                by_step[:, :per_row["exact_by_step"].shape[1]] = per_row["exact_by_step"]
                index = batch.get("index")
                if index is None:
                    index = torch.full((B,), -1, dtype=torch.long, device=labels.device)
                part = {"halt_step": per_row["halt_step"], "correct_at_halt": per_row["exact_at_halt"],
                        "correct_by_step": by_step, "preds": preds, "inputs": batch["inputs"], "labels": labels,
                        "puzzle_identifiers": batch["puzzle_identifiers"], "index": index,
                        "q_halt": q_halt, "q_continue": q_cont}
                rec_parts.append({k: v[active].cpu().numpy() for k, v in part.items()})
    finally:
        model.train(was_training)

    state = {"acc": acc.state(), "q": (q_right, q_count), "steps_run": steps_run,
             "arc": arc_evaluator.state() if arc_evaluator is not None else None,
             "records": _concat_records(rec_parts, N) if records else None}
    states = [state]
    if merge is not None:
        states = merge(state)  # every rank's state, this one's included
        acc = StepwiseAccuracy(report_steps=() if learned else range(1, N + 1), learned_halting=True,
                               act_continue=act_continue, max_steps=N)
        acc.merge(s["acc"] for s in states)
    if arc_evaluator is not None and len(states) > 1:
        arc_evaluator.merge([s["arc"] for s in states])

    metrics: dict = dict(acc.compute())
    if not learned:
        for k, v in list(metrics.items()):
            if k.startswith(f"step{N}/"):
                metrics["all/" + k.split("/", 1)[1]] = v
    q_right = sum(s["q"][0] for s in states)
    q_count = sum(s["q"][1] for s in states)
    metrics["q_halt_accuracy"] = q_right / q_count if q_count else float("nan")
    metrics["steps_run"] = sum(s["steps_run"] for s in states)
    metrics["n_supervision"] = N
    metrics["halting"] = halting
    if arc_evaluator is not None:
        res = arc_evaluator.result()
        metrics.update({k: v for k, v in res.items() if k.startswith(("ARC/", "ARC_pooled/"))})
    if records:
        metrics["records"] = _sort_records(_concat_records([s["records"] for s in states], N))
    return metrics


def _concat_records(parts: list, N: int) -> dict:
    parts = [p for p in parts if p is not None and len(p["halt_step"])]
    keys = ("halt_step", "correct_at_halt", "correct_by_step", "preds", "inputs", "labels",
            "puzzle_identifiers", "index", "q_halt", "q_continue")
    if not parts:
        return {k: np.zeros((0, N) if k == "correct_by_step" else (0,)) for k in keys}
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def _sort_records(rec: dict) -> dict:
    index = rec["index"]
    if len(index) and (index >= 0).all():
        order = np.argsort(index, kind="stable")
        rec = {k: v[order] for k, v in rec.items()}
    return rec


def headline(metrics: dict) -> tuple[str, float]:
    """The metric a run is judged by: ARC pass@2 when present, else exact accuracy of the answers
    given (after N_sup steps; at the halting step for a learned-halting evaluation)."""
    if "ARC/pass@2" in metrics:
        return "ARC/pass@2", metrics["ARC/pass@2"]
    if metrics.get("halting") == "learned":
        return "halt/exact_accuracy", metrics.get("halt/exact_accuracy", 0.0)
    return "all/exact_accuracy", metrics.get("all/exact_accuracy", 0.0)


#: the metrics ``trmlab train``, ``trmlab eval`` and ``trmlab zoo train`` print, when present
HEADLINE_KEYS = ("all/exact_accuracy", "all/exact_accuracy_low", "all/exact_accuracy_high", "all/token_accuracy",
                 "halt/exact_accuracy", "halt/mean_steps", "q_halt_accuracy", "ARC/pass@1", "ARC/pass@2")


def format_metrics(metrics: dict) -> str:
    """The headline metrics of an evaluation, one ``key: value`` a line (:data:`HEADLINE_KEYS`)."""
    return "\n".join(f"{k}: {metrics[k]:.4f}" for k in HEADLINE_KEYS if k in metrics)


def format_halting(metrics: dict) -> str:
    """The halting summary of an evaluation: what was run, accuracy of the answers given, steps used."""
    N = metrics["n_supervision"]
    learned = metrics.get("halting") == "learned"
    key = "halt" if learned else "all"
    lines = [f"{metrics.get('halting', 'max')} halting: exact_accuracy {metrics[f'{key}/exact_accuracy']:.4f} "
             f"[95% CI {metrics[f'{key}/exact_accuracy_low']:.4f}, {metrics[f'{key}/exact_accuracy_high']:.4f}] "
             f"token_accuracy {metrics[f'{key}/token_accuracy']:.4f} over {metrics[f'{key}/count']} puzzles"
             + (f"; step {metrics['checkpoint_step']} ({metrics['checkpoint_choice']})" if "checkpoint_choice" in metrics
                else "")]
    hist = [int(metrics.get(f"halt/steps_hist/{k}", 0)) for k in range(1, N + 1)]
    if learned:
        lines.append(f"steps used: mean {metrics['halt/mean_steps']:.2f} of max {N}; compute saved vs all {N} steps: "
                     f"{metrics['halt/compute_saved']:.1%} ({metrics['steps_run']} supervision steps run)")
    else:
        lines.append(f"learned halting would answer: exact_accuracy {metrics['halt/exact_accuracy']:.4f} with mean "
                     f"{metrics['halt/mean_steps']:.2f} of {N} steps (would save {metrics['halt/compute_saved']:.1%}); "
                     f"run with --halting learned to stop each puzzle at its own step")
    lines.append("puzzles halted at step: " + ", ".join(f"{k}: {n}" for k, n in enumerate(hist, start=1)))
    for k in sorted(metrics):
        if k.startswith("ARC_pooled/"):
            lines.append(f"{k}: {metrics[k]:.4f} (votes pooled over checkpoints "
                         f"{', '.join(metrics.get('arc_pooled_checkpoints', []))}; ARC/... is this checkpoint alone)")
    return "\n".join(lines)


def format_evaluation(metrics: dict) -> str:
    """What ``trmlab eval`` prints: the checkpoint and how it was chosen, exact accuracy by supervision
    step, the headline metrics (:func:`format_metrics`) and the halting summary (:func:`format_halting`)."""
    lines = [f"checkpoint {metrics['checkpoint']} (step {metrics['checkpoint_step']}), "
             f"chosen as: {metrics['checkpoint_choice']}"]
    steps = sorted(int(k[4:].split("/")[0]) for k in metrics if k.startswith("step") and k.endswith("/exact_accuracy"))
    if steps:
        lines.append("exact accuracy by supervision step: " + ", ".join(
            f"{s}: {metrics[f'step{s}/exact_accuracy']:.3f}" for s in steps))
    head = format_metrics(metrics)
    return "\n".join(lines + ([head] if head else []) + [format_halting(metrics)])


def save_evaluation(run: str | os.PathLike, metrics: dict, checkpoint: str, n_supervision: int,
                    halting: str) -> Path:
    """Write an evaluation's metrics as ``<run>/eval_<checkpoint>_N<n_supervision>_<halting>.json`` (the
    file reports, the index and 05-compare read) and return its path. Per-puzzle ``records`` are left out."""
    path = Path(run) / f"eval_{checkpoint}_N{n_supervision}_{halting}.json"
    write_json_atomic(path, {k: v for k, v in metrics.items() if k != "records"}, indent=2, sort_keys=True,
                      default=float)
    return path
