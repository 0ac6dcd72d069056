"""The evaluation loop: run a model over a test split and score it.

For every test batch the model starts fresh and runs ``n_supervision`` steps (which may exceed what it
was trained with: slots are kept running, never refilled). In one pass this scores the answer after
every step (``step<k>/...``), the answer at the last step (the reference's metric, ``all/...``) and the
answer chosen by learned halting (``halt/...``), each with exact accuracy, token accuracy and a 95%
Wilson interval; ARC batches also go to the :class:`~trmlab.eval.arc_vote.ArcEvaluator`.
Used by the trainer (every ``eval_interval``), by ``trmlab eval`` and from notebooks.
"""
from __future__ import annotations

from typing import Iterable, Optional

import torch

from ..model import DeepSupervision
from .metrics import StepwiseAccuracy


@torch.no_grad()
def run_steps(model: DeepSupervision, batch: dict, n_supervision: int):
    """Yield (step, out) for ``n_supervision`` supervision steps from a fresh start, no refilling."""
    carry = model.initial_carry(batch)
    for step in range(1, n_supervision + 1):
        carry, out = model(carry, batch, n_supervision=n_supervision)
        yield step, carry, out
        carry.halted = torch.zeros_like(carry.halted)  # keep every slot on its puzzle


@torch.no_grad()
def evaluate(model: DeepSupervision, batches: Iterable[dict], n_supervision: Optional[int] = None,
             arc_evaluator=None, device: torch.device | str = "cpu", merge=None, progress: bool = False,
             max_batches: Optional[int] = None) -> dict:
    """Score ``model`` on ``batches`` (a test loader). Returns a flat dict of metrics.

    ``merge(state) -> list of states`` gathers accumulator states from every rank (distributed);
    ``progress`` shows a tqdm bar. Keys: ``all/exact_accuracy`` (after the last step, the headline for
    Sudoku and Maze), ``all/exact_accuracy_low``/``_high``, ``all/token_accuracy``, ``all/count``,
    ``step<k>/exact_accuracy`` for k = 1..N, ``halt/exact_accuracy`` and ``halt/mean_steps`` (learned
    halting), ``q_halt_accuracy``, and ``ARC/pass@K`` when an ARC evaluator is given.
    """
    N = n_supervision or model.cfg.n_supervision
    was_training = model.training
    model.eval()
    acc = StepwiseAccuracy(report_steps=range(1, N + 1), learned_halting=True)
    if arc_evaluator is not None:
        arc_evaluator.begin()
    q_right = q_count = 0
    iterator = batches
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(batches, desc="eval", leave=False)
    for b, batch in enumerate(iterator):
        if max_batches is not None and b >= max_batches:
            break
        batch = {k: v.to(device) for k, v in batch.items()}
        valid = batch.get("valid")
        acc.start_batch(batch["labels"], valid)
        for step, carry, out in run_steps(model, batch, N):
            acc.step(out["logits"], out["q_halt_logits"])
        acc.end_batch()
        preds = out["logits"].argmax(-1)
        labels = batch["labels"]
        scored = labels != -100
        seq_correct = ((preds == labels) | ~scored).all(-1)
        rows = (valid if valid is not None else torch.ones_like(seq_correct)) & scored.any(-1)
        q_right += int(((out["q_halt_logits"] >= 0) == seq_correct)[rows].sum())
        q_count += int(rows.sum())
        if arc_evaluator is not None:
            keep = rows if valid is not None else torch.ones_like(rows)
            arc_evaluator.update(batch["inputs"][keep], batch["puzzle_identifiers"][keep], preds[keep],
                                 out["q_halt_logits"][keep])
    model.train(was_training)

    state = {"acc": _stepwise_state(acc), "q": (q_right, q_count),
             "arc": arc_evaluator.state() if arc_evaluator is not None else None}
    states = merge(state) if merge is not None else [state]
    _merge_stepwise(acc, [s["acc"] for s in states])
    q_right = sum(s["q"][0] for s in states)
    q_count = sum(s["q"][1] for s in states)
    if arc_evaluator is not None and len(states) > 1:
        arc_evaluator.merge([s["arc"] for s in states])

    metrics = {k: v for k, v in acc.compute().items()}
    for k, v in list(metrics.items()):
        if k.startswith(f"step{N}/"):
            metrics["all/" + k.split("/", 1)[1]] = v
    metrics["q_halt_accuracy"] = q_right / max(q_count, 1)
    metrics["n_supervision"] = N
    if arc_evaluator is not None:
        res = arc_evaluator.result()
        metrics.update({k: v for k, v in res.items() if k.startswith("ARC/")})
    return metrics


def _stepwise_state(acc: StepwiseAccuracy) -> dict:
    return {"at_step": {k: v.state() for k, v in acc.at_step.items()}, "halt": acc.halt.state(),
            "halt_steps_sum": acc.halt_steps_sum, "halted_early": acc.halted_early}


def _merge_stepwise(acc: StepwiseAccuracy, states: list) -> None:
    if len(states) <= 1:
        return
    for k, a in acc.at_step.items():
        a.reset()
        a.merge(s["at_step"][k] for s in states)
    acc.halt.reset()
    acc.halt.merge(s["halt"] for s in states)
    acc.halt_steps_sum = sum(s["halt_steps_sum"] for s in states)
    acc.halted_early = sum(s["halted_early"] for s in states)


def headline(metrics: dict) -> tuple[str, float]:
    """The metric a run is judged by: ARC pass@2 when present, else exact accuracy after N_sup steps."""
    if "ARC/pass@2" in metrics:
        return "ARC/pass@2", metrics["ARC/pass@2"]
    return "all/exact_accuracy", metrics.get("all/exact_accuracy", 0.0)
