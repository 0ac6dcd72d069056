"""Optimisers, the learning-rate schedule and the EMA (docs/reference.md section 7).

* :class:`AdamATan2` -- the reference's optimiser for the dense weights, in plain PyTorch. The
  ``adam-atan2`` package it uses needs a CUDA extension (reference issue #34); the maintained
  ``adam-atan2-pytorch`` package uses a different rule (scaled ``atan2(m_hat, b*sqrt(v_hat))`` with
  a=1.27), so it does not reproduce the reference exactly. The rule here is the ``adam-atan2``
  package's (its CUDA kernel and its own reference test), with both bias corrections inside the atan2::

      p <- p * (1 - lr * wd)
      m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
      p <- p - lr * atan2(m / (1 - b1^t), sqrt(v) / sqrt(1 - b2^t))

  tests/train/test_math.py checks 5 steps with weight decay on a fixed fp64 tensor against a hand
  computation of these four lines (to 1e-7). The package keeps its state in the parameter's dtype and
  computes in fp32 (fp64 for fp64 parameters); here the arithmetic is in the parameter's dtype.

* ``torch.optim.AdamW`` (the paper's text) is the alternative (``train.optimizer=adamw``).
* :class:`SparseSignSGD` -- the puzzle-embedding table: only the rows in the (global) batch change:
  ``w <- w (1 - lr wd) - lr sign(sum of the row's gradients)``; gradients are gathered across ranks.
* :func:`make_schedule` -- linear warm-up then cosine to ``lr_min_ratio`` (1.0 = constant, the
  reference), as a ``LambdaLR``.
* :class:`EMA` -- shadow of the trainable parameters, updated with ``torch.optim.swa_utils``'s EMA rule.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.distributed as dist
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import get_ema_multi_avg_fn


class AdamATan2(Optimizer):
    """Adam with atan2 instead of division: bounded steps and no epsilon; decoupled weight decay.

    One step, t counted from 1: ``p <- p (1 - lr wd)``; ``m <- b1 m + (1 - b1) g``;
    ``v <- b2 v + (1 - b2) g^2``; ``p <- p - lr atan2(m / (1 - b1^t), sqrt(v) / sqrt(1 - b2^t))``.
    """

    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.95), weight_decay: float = 0.0):
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = float(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                g = p.grad
                p.mul_(1.0 - lr * wd)
                m.lerp_(g, 1.0 - b1)
                v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
                m_hat = m / (1.0 - b1 ** t)
                v_hat_sqrt = v.sqrt() / math.sqrt(1.0 - b2 ** t)
                p.add_(torch.atan2(m_hat, v_hat_sqrt), alpha=-lr)
        return loss


class SparseSignSGD(Optimizer):
    """Sign-SGD with decoupled weight decay for a :class:`~trmlab.model.embedding.PuzzleEmbedding`.

    The embedding copies the batch's rows into ``local_weights`` (a leaf that receives the gradient) and
    remembers ``local_ids``. ``step()`` gathers (ids, grads) from every rank, sums the gradients per id
    and updates only those rows; untouched rows get neither decay nor update.
    """

    def __init__(self, embedding, lr: float = 1e-2, weight_decay: float = 0.0):
        self.embedding = embedding
        super().__init__([embedding.weights], dict(lr=lr, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        emb = self.embedding
        if emb.local_weights is None or emb.local_weights.grad is None:
            return None
        grads, ids = emb.local_weights.grad, emb.local_ids
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            world = dist.get_world_size()
            all_grads = [torch.empty_like(grads) for _ in range(world)]
            all_ids = [torch.empty_like(ids) for _ in range(world)]
            dist.all_gather(all_grads, grads.contiguous())
            dist.all_gather(all_ids, ids.contiguous())
            grads, ids = torch.cat(all_grads), torch.cat(all_ids)
        unique_ids, inverse = ids.unique(return_inverse=True)
        summed = torch.zeros(unique_ids.shape[0], grads.shape[1], dtype=grads.dtype, device=grads.device)
        summed.index_add_(0, inverse, grads)
        group = self.param_groups[0]
        lr, wd = group["lr"], group["weight_decay"]
        table = emb.weights
        rows = table[unique_ids]
        table[unique_ids] = rows * (1.0 - lr * wd) - lr * torch.sign(summed.to(table.dtype))
        emb.local_weights.grad = None
        return None

    def zero_grad(self, set_to_none: bool = True):
        if self.embedding.local_weights is not None:
            self.embedding.local_weights.grad = None


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier of the base lr at optimiser step ``step`` (counted from 1, as the reference)."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_schedule(optimizer: Optimizer, warmup_steps: int, total_steps: int, min_ratio: float) -> LambdaLR:
    """LambdaLR whose k-th step (k from 0) uses the reference's lr at step k+1."""
    return LambdaLR(optimizer, lambda k: lr_factor(k + 1, warmup_steps, total_steps, min_ratio))


class EMA:
    """Exponential moving average of the trainable parameters (buffers are not averaged).

    ``shadow <- decay * shadow + (1 - decay) * param`` after every optimiser step, using
    ``torch.optim.swa_utils.get_ema_multi_avg_fn``. The shadow starts equal to the parameters.
    """

    def __init__(self, module: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self._update = get_ema_multi_avg_fn(decay)

    @torch.no_grad()
    def update(self) -> None:
        self._update(self.shadow, [p.detach() for p in self.params], 1)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": [s.clone() for s in self.shadow]}

    def load_state_dict(self, d: dict) -> None:
        if len(d["shadow"]) != len(self.shadow):
            raise ValueError(f"EMA state has {len(d['shadow'])} tensors, the model {len(self.shadow)}")
        for s, v in zip(self.shadow, d["shadow"]):
            s.copy_(v)

    @contextlib.contextmanager
    def applied(self):
        """Temporarily put the EMA weights in the model (for evaluation and checkpoints)."""
        backup = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, s in zip(self.params, self.shadow):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, b in zip(self.params, backup):
                    p.copy_(b)
