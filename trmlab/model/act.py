"""Deep supervision with adaptive halting: the carry and the N_sup loop (docs/reference.md section 5).

One call of :class:`DeepSupervision` is ONE supervision step (and, in training, one optimiser step).
The carry keeps each batch slot's puzzle, its (y, z) states and its step count across calls: halted slots
are reset to the initial states and refilled from the new batch, the others keep their puzzle. In
training a slot halts when the halt logit > 0 (or, with the continue loss, when halt > continue),
subject to the exploration rule, and always at ``n_supervision``; in evaluation every slot runs all
``n_supervision`` steps (the reference), or halts by the same rule with ``eval_halting="learned"``.

:func:`supervision_steps` solves a batch from scratch step by step, with ``halting="max"`` (all steps)
or ``"learned"`` (each puzzle stops at its own step, and stopped puzzles leave the batch so compute is
saved); :func:`run_to_halt` and the evaluator (``trmlab.eval.evaluate``) are built on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from ..config import ModelConfig
from .trm import Observer, TinyRecursiveModel, count_parameters

BATCH_KEYS = ("inputs", "labels", "puzzle_identifiers")

#: ``between(step, carry, rows) -> carry``: called before each supervision step (see :func:`supervision_steps`).
Between = Callable[[int, "Carry", torch.Tensor], "Carry"]
#: ``observer_factory(step) -> observer or None``: each supervision step's observer (docs/contracts.md).
ObserverFactory = Callable[[int], Optional[Observer]]
#: ``hooks(model, batch, n_supervision) -> (observer_factory, between)`` (either may be None): what a caller
#: that builds its own batches (``trmlab.runs.inference.solve_text``, ``trmlab.eval.evaluate.evaluate``) asks
#: for each batch it is about to run from scratch for ``n_supervision`` steps; ``rows`` in ``between``
#: index that batch.
StepHooks = Callable[["DeepSupervision", dict, int], tuple[Optional[ObserverFactory], Optional[Between]]]


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

    def summary(self) -> str:
        """A few lines naming the network, its parts with their parameter counts, and the recursion's shape
        in trmlab's names and the reference's (``trmlab model``)."""
        core = self.core
        lines = [f"{type(core).__name__}  (deep supervision wrapper: {type(self).__name__})"]
        for name, child in core.named_children():
            n = count_parameters(child)
            if n or name in ("embed",):
                lines.append(f"  {name:12s} {type(child).__name__:18s} {n:>12,d} params")
        c = core.cfg
        lines.append(f"  recursion: T={c.n_recursions} (H_cycles) x [n={c.n_latent_steps} latent updates (L_cycles) + 1 "
                     f"answer update], N_sup={c.n_supervision} (halt_max_steps); "
                     f"mixer={'mlp_t' if c.mlp_t else 'attention'}, gradient={c.gradient}, latent={c.latent_mode}, "
                     f"separate_networks={c.separate_networks}")
        return "\n".join(lines)

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


@dataclass
class SupervisionStep:
    """What :func:`supervision_steps` yields after each supervision step of a batch solved from scratch.

    ``rows``: indices (into the batch) of the rows ``out`` holds, in order; ``out``: the model's
    outputs for those rows (``logits``, ``q_halt_logits``, ``q_continue_logits``); ``wants``: the
    halting head says halt (:func:`wants_to_halt`); ``running``: the row had not stopped before this
    step; ``stops``: the row's answer is final at this step (first time: ``wants`` under learned
    halting, or the last step). All masks are bool tensors over ``rows``. ``carry`` (only when
    :func:`supervision_steps` is asked ``with_carry=True``, else None): the :class:`Carry` the wrapper
    returned for those rows (the step's answer y and latent z, ``steps``, and ``halted`` as the wrapper
    set it); a reference, nothing is copied, and the loop never changes it (the next step gets a new
    carry).
    """

    step: int
    rows: torch.Tensor
    out: dict
    wants: torch.Tensor
    running: torch.Tensor
    stops: torch.Tensor
    carry: Optional[Carry] = None


def _take_rows(carry: Carry, keep: torch.Tensor) -> Carry:
    return Carry(carry.answer[keep], carry.latent[keep], carry.steps[keep], carry.halted[keep],
                 {k: v[keep] for k, v in carry.current_data.items()})


@torch.no_grad()
def supervision_steps(model: DeepSupervision, batch: dict, n_supervision: Optional[int] = None,
                      halting: str = "max", active: Optional[torch.Tensor] = None, compact: bool = True,
                      observer_factory=None, restart_halted: bool = False, with_carry: bool = False,
                      between: Optional[Between] = None):
    """Run a batch from a fresh start, one supervision step at a time, and yield a
    :class:`SupervisionStep` after each. The loop behind :func:`run_to_halt` and the evaluator.

    Every row keeps its puzzle (halted slots are never refilled). The halting rule is
    :func:`wants_to_halt` (halt logit > 0, or halt > continue for ``act_continue`` models):

    * ``halting="max"``: every row runs all ``n_supervision`` steps (the reference's evaluation);
      ``wants`` still says where learned halting would have stopped.
    * ``halting="learned"``: a row stops at the first step its head wants to halt (or at the last
      step), and the loop ends as soon as every row has stopped. With ``compact=True`` (default)
      stopped rows are dropped from the batch, so later steps run only the rows still going (the
      compute is really saved); with ``compact=False`` the batch keeps its size until every row has
      stopped (an observer then always sees the whole batch).

    ``active``: optional bool [B]; rows that are False (padding) are not run at all. The model is put
    in eval mode by the caller.

    ``observer_factory``: called with the 0-based step before each step; what it returns is passed
    to the model as that step's observer (docs/contracts.md). ``with_carry``: each step also carries
    the wrapper's :class:`Carry` (the tracer reads y and z from it); off by default, so a consumer that
    holds a step while the next one runs does not also hold a batch's states. ``restart_halted``
    (only with ``halting="max"``): leave the wrapper's ``halted`` flags as it set them, so a row the wrapper
    halted (in eval mode: the last step, or the head's wish with ``cfg.eval_halting="learned"``) is
    reset by the wrapper at the next step and solves its puzzle again from the initial states
    (``trmlab.trace.trace(..., continue_after_halt=False)``). By default every row keeps refining.

    ``between(step, carry, rows) -> carry``: called before each step with the carry that step starts
    from (``step`` = the steps done so far, 0 before the first; ``rows`` = the batch rows the carry
    holds); what it returns is what the step starts from. Test-time scaling adds noise to z here
    (:mod:`trmlab.eval.thinking`). Before the first step the carry is the empty one of
    :meth:`DeepSupervision.initial_carry`, every slot halted, so the step starts from the initial
    states; :func:`started_carry` gives a carry that starts from given states instead.
    """
    if halting not in ("max", "learned"):
        raise ValueError(f"halting must be 'max' or 'learned', got {halting!r}")
    if restart_halted and halting != "max":
        raise ValueError("restart_halted needs halting='max' (a row that restarts has no final answer)")
    N = n_supervision or model.cfg.n_supervision
    B = batch["inputs"].shape[0]
    device = batch["inputs"].device
    rows = torch.arange(B, device=device)
    if active is not None:
        rows = rows[active.to(device=device, dtype=torch.bool)]
    if rows.numel() == 0:
        return
    sub = {k: v[rows] if rows.numel() != B else v for k, v in batch.items()
           if torch.is_tensor(v) and v.dim() >= 1 and v.shape[0] == B}
    carry = model.initial_carry(sub)
    stopped = torch.zeros(rows.numel(), dtype=torch.bool, device=device)
    for step in range(1, N + 1):
        if between is not None:
            carry = between(step - 1, carry, rows)
        observer = observer_factory(step - 1) if observer_factory is not None else None
        carry, out = model(carry, sub, observer=observer, n_supervision=N)
        wants = wants_to_halt(out["q_halt_logits"], out["q_continue_logits"], model.cfg.act_continue)
        running = ~stopped
        if step == N:
            stops = running.clone()
        elif halting == "learned":
            stops = running & wants
        else:
            stops = torch.zeros_like(running)
        yield SupervisionStep(step, rows, out, wants, running, stops, carry if with_carry else None)
        stopped = stopped | stops
        if bool(stopped.all()):
            break
        if compact and bool(stopped.any()):
            keep = ~stopped
            rows, carry, stopped = rows[keep], _take_rows(carry, keep), stopped[keep]
            sub = {k: v[keep] for k, v in sub.items()}
        if not restart_halted:
            # keep every slot on its puzzle (a halted slot would otherwise be reset and refilled from the
            # batch); a new Carry, so the one just yielded keeps the wrapper's flags
            carry = Carry(carry.answer, carry.latent, carry.steps, torch.zeros_like(carry.halted),
                          carry.current_data)


def started_carry(carry: Carry, answer: torch.Tensor, latent: torch.Tensor, data: Optional[dict] = None) -> Carry:
    """A carry from which the next step starts at ``answer`` (y) and ``latent`` (z) rather than at the
    initial states, every slot on its puzzle: ``data`` (the rows' ``inputs``, ``labels``,
    ``puzzle_identifiers``; default the carry's own, which the first step fills). What a ``between`` hook
    of :func:`supervision_steps` returns to start from chosen states."""
    current = carry.current_data if data is None else {k: data[k] for k in carry.current_data if k in data}
    return Carry(answer, latent, carry.steps, torch.zeros_like(carry.halted), current)


@torch.no_grad()
def run_to_halt(model: DeepSupervision, batch: dict, n_supervision: Optional[int] = None,
                halting: str = "max", observer_factory=None,
                between: Optional[Between] = None) -> dict:
    """Solve a batch from scratch: run supervision steps until every slot has halted.

    ``halting="max"`` runs all ``n_supervision`` steps (the reference's evaluation); ``"learned"`` stops
    each puzzle at the first step whose halt logit is > 0 (halt > continue for models trained with the
    continue loss: :func:`wants_to_halt`). Returns the outputs each puzzle had when it halted:
    ``logits``, ``preds``, ``q_halt_logits``, ``q_continue_logits`` and ``steps`` (steps used) per slot.
    With an ``observer_factory`` the batch is not compacted (the observer sees every row every step).
    ``observer_factory`` and ``between`` go to :func:`supervision_steps` (an observer may read or replace
    the states after every network call, ``between`` the carry before each step: docs/contracts.md).
    """
    was_training = model.training
    model.eval()
    final: dict = {}
    try:
        for s in supervision_steps(model, batch, n_supervision, halting, compact=observer_factory is None,
                                   observer_factory=observer_factory, between=between):
            idx = s.rows[s.stops]
            for key in ("logits", "q_halt_logits", "q_continue_logits"):
                v = s.out[key]
                if key not in final:
                    final[key] = torch.zeros((batch["inputs"].shape[0], *v.shape[1:]), dtype=v.dtype,
                                             device=v.device)
                final[key][idx] = v[s.stops]
            if "steps" not in final:
                final["steps"] = torch.zeros(batch["inputs"].shape[0], dtype=torch.int32,
                                             device=batch["inputs"].device)
            final["steps"][idx] = s.step
    finally:
        model.train(was_training)
    final["preds"] = final["logits"].argmax(-1)
    return final
