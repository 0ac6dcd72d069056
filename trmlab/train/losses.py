"""Losses and the training metrics of the reference's ``ACTLossHead`` (docs/reference.md section 6).

* LM loss: stablemax cross-entropy in float64 (default) or softmax cross-entropy; per sequence the mean
  over supervised cells, summed over the batch (for every slot, halted or not: deep supervision);
* halt loss: BCE-with-logits of the halt logit against "the current answer is exactly right", summed;
* continue loss (only with ``act_continue``): BCE of the continue logit against the bootstrapped target;
* total = lm + halt_loss_weight * (halt + continue); the trainer divides it by the global batch size.

Metrics are sums over the slots that halted at this step and have at least one supervised cell, as the
reference counts them: ``count``, ``accuracy`` (per-sequence token accuracy), ``exact_accuracy``,
``q_halt_accuracy``, ``steps``, and the losses.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_LABEL_ID = -100


def stablemax(x: torch.Tensor) -> torch.Tensor:
    """s(x) = x + 1 for x >= 0, 1 / (1 - x) for x < 0 (Prieto et al. 2025)."""
    return torch.where(x < 0, 1.0 / (1.0 - x + 1e-30), x + 1.0)


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    s = stablemax(x)
    return torch.log(s / s.sum(dim=dim, keepdim=True))


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                            ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    """Per-cell -log stablemax(logits)[label] in float64; 0 where the label is ignored."""
    logp = log_stablemax(logits.to(torch.float64), dim=-1)
    valid = labels != ignore_index
    safe = torch.where(valid, labels, 0).long()
    loss = -torch.gather(logp, -1, safe.unsqueeze(-1)).squeeze(-1)
    return torch.where(valid, loss, torch.zeros_like(loss))


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                          ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    """Per-cell softmax cross-entropy in float32; 0 where the label is ignored."""
    flat = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1).long(),
                           ignore_index=ignore_index, reduction="none")
    return flat.view(labels.shape)


LOSSES = {"stablemax": stablemax_cross_entropy, "softmax": softmax_cross_entropy}


def act_loss(out: dict, labels: torch.Tensor, steps: torch.Tensor, halted: torch.Tensor,
             loss_type: str = "stablemax", halt_loss_weight: float = 0.5) -> tuple[torch.Tensor, dict]:
    """The loss of one supervision step and the reference's metric sums.

    ``out`` is the model's output dict (``logits``, ``q_halt_logits``, ``q_continue_logits`` and, with the
    continue loss, ``target_q_continue``); ``labels`` the slots' current labels; ``steps``/``halted`` from
    the new carry. Returns (total loss summed over the batch, metrics dict of detached sums).
    """
    logits = out["logits"]
    valid = labels != IGNORE_LABEL_ID
    n_valid = valid.sum(-1)
    divisor = n_valid.clamp_min(1).unsqueeze(-1)

    with torch.no_grad():
        preds = logits.argmax(-1)
        correct = valid & (preds == labels)
        seq_correct = correct.sum(-1) == n_valid
        counted = halted & (n_valid > 0)
        q_halt = out["q_halt_logits"]
        metrics = {
            "count": counted.sum(),
            "accuracy": torch.where(counted, (correct.float() / divisor).sum(-1), 0).sum(),
            "exact_accuracy": (counted & seq_correct).sum(),
            "q_halt_accuracy": (counted & ((q_halt >= 0) == seq_correct)).sum(),
            "steps": torch.where(counted, steps, 0).sum(),
        }

    lm_loss = (LOSSES[loss_type](logits, labels) / divisor).sum()
    q_halt_loss = F.binary_cross_entropy_with_logits(q_halt, seq_correct.to(q_halt.dtype), reduction="sum")
    metrics["lm_loss"] = lm_loss.detach()
    metrics["q_halt_loss"] = q_halt_loss.detach()
    q_loss = q_halt_loss
    if "target_q_continue" in out:
        q_continue_loss = F.binary_cross_entropy_with_logits(
            out["q_continue_logits"], out["target_q_continue"], reduction="sum")
        metrics["q_continue_loss"] = q_continue_loss.detach()
        q_loss = q_loss + q_continue_loss
    total = lm_loss.to(torch.float32) + halt_loss_weight * q_loss
    return total, metrics
