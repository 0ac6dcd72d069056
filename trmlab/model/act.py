"""Deep supervision with adaptive halting: the carry and the N_sup loop (trm-reference.md section 1.6).

One call of :class:`DeepSupervision` is ONE supervision step (and, in training, one optimiser step).
The carry keeps each batch slot's puzzle, its (y, z) states and its step count across calls: halted slots
are reset to the initial states and refilled from the new batch, the others keep their puzzle. In
training a slot halts when the halt logit > 0 (or, with the continue loss, when halt > continue),
subject to the exploration rule, and always at ``n_supervision``; in evaluation every slot runs all
``n_supervision`` steps (the reference), or halts when its halt logit > 0 with ``eval_halting="learned"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..config import ModelConfig
from .trm import Observer, TinyRecursiveModel

BATCH_KEYS = ("inputs", "labels", "puzzle_identifiers")


@dataclass
class Carry:
    """What persists between supervision steps."""

    answer: torch.Tensor  # y (reference: z_H), [B, P + seq_len, D]
    latent: torch.Tensor  # z (reference: z_L)
    steps: torch.Tensor  # [B] int32: supervision steps taken by the slot's current puzzle
    halted: torch.Tensor  # [B] bool: the slot is reset and refilled at the next call
    current_data: dict  # the slot's puzzle: inputs, labels, puzzle_identifiers

    def state_dict(self) -> dict:
        return {"answer": self.answer, "latent": self.latent, "steps": self.steps, "halted": self.halted,
                **{f"data.{k}": v for k, v in self.current_data.items()}}

    @classmethod
    def from_state_dict(cls, d: dict) -> "Carry":
        data = {k[5:]: v for k, v in d.items() if k.startswith("data.")}
        return cls(d["answer"], d["latent"], d["steps"], d["halted"], data)

    def to(self, device) -> "Carry":
        return Carry(self.answer.to(device), self.latent.to(device), self.steps.to(device),
                     self.halted.to(device), {k: v.to(device) for k, v in self.current_data.items()})


def wants_to_halt(q_halt_logits, q_continue_logits, act_continue: bool):
    """The halting rule, the one place it is written: halt logit > 0 (sigmoid > 0.5, the reference's
    TRM), or halt > continue for models trained with the Q-learning continue loss (``act_continue``).
    Works on torch tensors and numpy arrays alike."""
    if act_continue:
        return q_halt_logits > q_continue_logits
    return q_halt_logits > 0


def _where_rows(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)


class DeepSupervision(nn.Module):
    """The recursive model inside its deep-supervision / ACT wrapper (reference: ``..._ACTV1``)."""

    def __init__(self, core: TinyRecursiveModel):
        super().__init__()
        self.core = core
        self.cfg: ModelConfig = core.cfg

    # Convenience passthroughs for tracing and inference.
    @property
    def forward_dtype(self) -> torch.dtype:
        return self.core.forward_dtype

    def set_forward_dtype(self, dtype: torch.dtype) -> None:
        self.core.forward_dtype = dtype

    def decode(self, state: torch.Tensor) -> torch.Tensor:
        return self.core.decode(state)

    def halt_logit(self, answer: torch.Tensor) -> torch.Tensor:
        return self.core.halt_logit(answer)

    @property
    def puzzle_emb(self):
        return self.core.embed.puzzle_emb

    def initial_carry(self, batch: dict) -> Carry:
        """Empty states with every slot halted, so the first call fills every slot from its batch."""
        B = batch["inputs"].shape[0]
        device = batch["inputs"].device
        y, z = self.core.initial_state(B, device)
        return Carry(
            answer=torch.empty_like(y), latent=torch.empty_like(z),
            steps=torch.zeros(B, dtype=torch.int32, device=device),
            halted=torch.ones(B, dtype=torch.bool, device=device),
            current_data={k: torch.empty_like(batch[k]) for k in BATCH_KEYS if k in batch},
        )

    def forward(self, carry: Carry, batch: dict, observer: Optional[Observer] = None,
                n_supervision: Optional[int] = None) -> tuple[Carry, dict]:
        """One supervision step. ``n_supervision`` overrides N_sup (e.g. more steps at evaluation)."""
        N = n_supervision or self.cfg.n_supervision
        # 1. Reset halted slots: fresh (y, z), step 0, and the new batch's puzzle in that slot.
        y0, z0 = self.core.initial_state(carry.halted.shape[0], carry.halted.device)
        y = _where_rows(carry.halted, y0, carry.answer.to(y0.dtype))
        z = _where_rows(carry.halted, z0, carry.latent.to(z0.dtype))
        steps = torch.where(carry.halted, torch.zeros_like(carry.steps), carry.steps)
        data = {k: _where_rows(carry.halted, batch[k], v) for k, v in carry.current_data.items()}

        # 2. One supervision step of recursive reasoning.
        y, z, logits, q = self.core(data["inputs"], data["puzzle_identifiers"], y, z, observer)
        out = {"logits": logits, "q_halt_logits": q[:, 0], "q_continue_logits": q[:, 1]}

        # 3. Halting.
        with torch.no_grad():
            steps = steps + 1
            is_last = steps >= N
            halted = is_last
            if N > 1 and (self.training or self.cfg.eval_halting == "learned"):
                halted = halted | self._wants_to_halt(q)
            if self.training and N > 1:
                # Exploration: with prob. p a slot must run at least U{2..N} steps.
                explore = torch.rand_like(q[:, 0]) < self.cfg.halt_exploration_prob
                min_steps = explore * torch.randint_like(steps, low=2, high=N + 1)
                halted = halted & (steps >= min_steps)
                if self.cfg.act_continue:
                    out["target_q_continue"] = self._continue_target(data, y, z, is_last)
        return Carry(y, z, steps.to(torch.int32), halted, data), out

    def _wants_to_halt(self, q: torch.Tensor) -> torch.Tensor:
        return wants_to_halt(q[:, 0], q[:, 1], self.cfg.act_continue)

    def _continue_target(self, data: dict, y: torch.Tensor, z: torch.Tensor, is_last: torch.Tensor) -> torch.Tensor:
        """Q-learning target for the continue head: the next step's value (one extra, gradient-free,
        forward). Works here; the reference's TRM crashes on this path (its HRM has it)."""
        with torch.no_grad():
            was_training = self.core.training
            _, _, _, next_q = self.core(data["inputs"], data["puzzle_identifiers"], y, z)
            self.core.train(was_training)
            next_halt, next_continue = next_q[:, 0], next_q[:, 1]
            return torch.sigmoid(torch.where(is_last, next_halt, torch.maximum(next_halt, next_continue)))


@torch.no_grad()
def run_to_halt(model: DeepSupervision, batch: dict, n_supervision: Optional[int] = None,
                halting: str = "max", observer_factory=None) -> dict:
    """Solve a batch from scratch: run supervision steps until every slot has halted.

    ``halting="max"`` runs all ``n_supervision`` steps (the reference's evaluation); ``"learned"`` stops
    each puzzle at the first step whose halt logit is > 0 (halt > continue with the continue loss).
    Returns the outputs each puzzle had when it halted: ``logits``, ``preds``, ``q_halt_logits``,
    ``steps`` (steps used), and ``halted_at`` per slot.
    """
    if halting not in ("max", "learned"):
        raise ValueError(f"halting must be 'max' or 'learned', got {halting!r}")
    N = n_supervision or model.cfg.n_supervision
    was_training = model.training
    model.eval()
    saved = model.cfg.eval_halting
    model.cfg.eval_halting = halting
    try:
        carry = model.initial_carry(batch)
        done = torch.zeros_like(carry.halted)
        final: dict = {}
        for step in range(N):
            observer = observer_factory(step) if observer_factory is not None else None
            carry, out = model(carry, batch, observer=observer, n_supervision=N)
            newly = carry.halted & ~done
            for key in ("logits", "q_halt_logits", "q_continue_logits"):
                if key not in final:
                    final[key] = torch.zeros_like(out[key])
                final[key][newly] = out[key][newly]
            if "steps" not in final:
                final["steps"] = torch.zeros_like(carry.steps)
            final["steps"][newly] = carry.steps[newly]
            done |= carry.halted
            if bool(done.all()):
                break
            # Slots that halted would be refilled from `batch` at the next call: keep them running on
            # the same puzzle instead so the batch stays aligned (their outputs are already recorded).
            carry.halted = torch.zeros_like(carry.halted)
    finally:
        model.cfg.eval_halting = saved
        model.train(was_training)
    final["preds"] = final["logits"].argmax(-1)
    return final
