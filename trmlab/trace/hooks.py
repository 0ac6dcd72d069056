"""Reach into the recursion: every state by name (run with a cache), and hooks that read or replace them.

Like TransformerLens's ``run_with_cache`` and hooks, for TRM's recursion. Each state has a name, a
:class:`HookPoint` (0-based indices; T recursions of n latent updates and one answer update per supervision
step, N_sup steps; reference names: y = ``z_H``, z = ``z_L``, T = ``H_cycles``, n = ``L_cycles``)::

    step3.input            x, the embedded puzzle of supervision step 3 (model.core.embed_input)
    step3.start            before the first update of step 3: the (y, z) the step starts from
    step3.rec1.latent4     after latent update i=4 of recursion t=1 (z <- f(z + y + x))
    step3.rec2.answer      after the answer update of recursion t=2 (y <- f(y + z))

>>> outputs, cache = run_with_cache(model, batch)                  # every state of every step
>>> cache["latent", 3, 1, 4].shape                                  # z: [B, P + seq_len, D]
>>> cache["step3.rec2.answer"], cache["input", 3], cache.stack("latent").shape   # [N*T*n, B, L, D]
>>> outputs.preds, outputs.per_step[3].q_halt_logits
>>> def clamp(point, answer, latent):                              # a hook: replace z
...     return answer, latent.clamp(-3, 3)
>>> outputs, _ = run_with_cache(model, batch, hooks=[("latent", clamp)], names=["answer"])

A hook is a pair ``(filter, fn)``: ``filter`` is a name (``"latent"``, ``"answer"``, ``"start"``), a
pattern of hook-point strings (``"step3.*"``, ``"step*.rec2.answer"``; shell wildcards), a
callable ``(point) -> bool``, or a list of those (any); ``fn(point, answer, latent)`` returns None (it only
reads) or a pair ``(answer, latent)`` (tensors shaped like those it was given) from which the recursion
continues. At ``start`` points the pair replaces the carry the step starts from. Interventions
(:mod:`trmlab.trace.interventions`: set a cell, reset, swap, add noise) are ready-made hooks.

:class:`Hooks` turns hooks and interventions into what the model's loop takes
(:func:`trmlab.model.supervision_steps`'s ``observer_factory`` and ``between``); :func:`run_with_cache`,
:func:`trmlab.trace.trace`, ``trmlab.runs.inference.solve`` and ``trmlab.eval.evaluate.evaluate`` all run
that loop. With no hooks and no interventions nothing changes (the observer is None and the model's
compiled path runs).

Single-z ablation (``latent_mode="single_z"``): the one state z is shown as both answer and latent; a
replacement changes that one state (:func:`trmlab.model.one_state`).
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np
import torch

from trmlab.model import Carry, ObserverFactory, checked_replacement, one_state, supervision_steps

#: the kinds of hook points, in the order they come within a step
HOOK_NAMES = ("input", "start", "latent", "answer")
_POINT = re.compile(r"^step(\d+)\.(?:(input|start)|rec(\d+)\.(?:latent(\d+)|(answer)))$")


@dataclass(frozen=True)
class HookPoint:
    """Where a state is: ``name`` (one of :data:`HOOK_NAMES`), supervision ``step`` (0-based),
    ``recursion`` t and ``latent_step`` i (latent points; answer points have i = n, or None when parsed
    from a string, which does not spell it). ``str(point)`` is its name, e.g. ``step3.rec1.latent4``.

    >>> str(HookPoint("latent", 3, 1, 4)), str(HookPoint("answer", 3, 2, 6)), str(HookPoint("start", 0))
    ('step3.rec1.latent4', 'step3.rec2.answer', 'step0.start')
    >>> HookPoint.parse("step3.rec1.latent4")
    HookPoint(name='latent', step=3, recursion=1, latent_step=4)
    """

    name: str
    step: int
    recursion: Optional[int] = None
    latent_step: Optional[int] = None

    def __post_init__(self):
        if self.name not in HOOK_NAMES:
            raise ValueError(f"HookPoint.name must be one of {', '.join(HOOK_NAMES)}, got {self.name!r}")
        for key in ("step", "recursion", "latent_step"):
            v = getattr(self, key)
            if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0):
                raise ValueError(f"HookPoint.{key} must be an integer >= 0, got {v!r}")
        if self.step is None:
            raise ValueError("HookPoint.step must be an integer >= 0, got None")
        needs = {"input": (False, False), "start": (False, False), "latent": (True, True), "answer": (True, None)}
        for key, need in zip(("recursion", "latent_step"), needs[self.name]):
            v = getattr(self, key)
            if need is True and v is None:
                raise ValueError(f"HookPoint {self.name!r} needs {key}")
            if need is False and v is not None:
                raise ValueError(f"HookPoint {self.name!r} has no {key} (got {v!r})")

    def __str__(self) -> str:
        if self.name in ("input", "start"):
            return f"step{self.step}.{self.name}"
        if self.name == "latent":
            return f"step{self.step}.rec{self.recursion}.latent{self.latent_step}"
        return f"step{self.step}.rec{self.recursion}.answer"

    @classmethod
    def parse(cls, text: str) -> "HookPoint":
        """The point a string names (``step3.input``, ``step3.start``, ``step3.rec1.latent4``,
        ``step3.rec2.answer``); anything else is a ValueError showing those forms."""
        m = _POINT.match(str(text).strip())
        if m is None:
            raise ValueError(f"{text!r} is not a hook point; expected stepS.input, stepS.start, "
                             f"stepS.recT.latentI or stepS.recT.answer (e.g. step3.rec1.latent4)")
        step, plain, t, i, _ = m.groups()
        if plain:
            return cls(plain, int(step))
        if i is not None:
            return cls("latent", int(step), int(t), int(i))
        return cls("answer", int(step), int(t))


HookFilter = Union[str, Callable[[HookPoint], bool], Sequence]
HookFn = Callable[[HookPoint, torch.Tensor, torch.Tensor], Optional[tuple]]


def point_filter(spec: HookFilter) -> Callable[[HookPoint], bool]:
    """A filter as a predicate on hook points: a name of :data:`HOOK_NAMES`, a pattern of hook-point
    strings with shell wildcards (``"step3.*"``, ``"step*.rec2.answer"``), a callable, or a list or
    tuple of those (a point matches when any does).

    >>> point_filter("step3.rec*.answer")(HookPoint("answer", 3, 0, 2))
    True
    """
    if callable(spec):
        return spec
    if isinstance(spec, str):
        if spec in HOOK_NAMES:
            return lambda p: p.name == spec
        if not (spec.startswith("step") or spec.startswith("*")):
            raise ValueError(f"hook filter {spec!r} is neither a name ({', '.join(HOOK_NAMES)}) nor a pattern of "
                             f"hook points such as 'step3.*' or 'step*.rec1.latent4'")
        return lambda p: fnmatch.fnmatchcase(str(p), spec)
    if isinstance(spec, (list, tuple)) and spec:
        parts = [point_filter(s) for s in spec]
        return lambda p: any(f(p) for f in parts)
    raise ValueError(f"hook filter {spec!r}: expected a name ({', '.join(HOOK_NAMES)}), a hook-point pattern, a "
                     f"callable (point) -> bool, or a non-empty list of those")


def _hook_pairs(hooks) -> list[tuple[Callable[[HookPoint], bool], HookFn]]:
    out = []
    for k, pair in enumerate(hooks or ()):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not callable(pair[1]):
            raise ValueError(f"hooks[{k}]: expected a pair (filter, fn) with fn(point, answer, latent), got {pair!r}")
        out.append((point_filter(pair[0]), pair[1]))
    return out


# -- batches on the model's device ----------------------------------------------------------------------


def model_device(model) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a model with neither."""
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def batch_on(batch: dict, device) -> dict:
    """The batch with its tensors and numpy arrays as torch tensors on ``device``, and
    ``puzzle_identifiers`` (zeros) when it has none."""
    out = {}
    for k, v in batch.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(v)
        if isinstance(v, torch.Tensor):
            v = v.to(device)
        out[k] = v
    if "puzzle_identifiers" not in out:
        out["puzzle_identifiers"] = torch.zeros(out["inputs"].shape[0], dtype=torch.int32, device=device)
    return out


# -- hooks and interventions as the loop's observer_factory and between ----------------------------------


@dataclass
class Site:
    """What an intervention sees where it acts: the ``model``, the hook ``point``, ``rows`` (the batch rows
    the states hold, in order; a tensor of indices into the batch) and ``batch_size`` (the whole batch's)."""

    model: object
    point: HookPoint
    rows: torch.Tensor
    batch_size: int

    def mask(self, rows: Optional[Sequence[int]]) -> torch.Tensor:
        """Bool [len(self.rows)]: which of the held rows are among ``rows`` (None: all)."""
        if rows is None:
            return torch.ones(self.rows.numel(), dtype=torch.bool, device=self.rows.device)
        return torch.isin(self.rows, torch.as_tensor(list(rows), dtype=self.rows.dtype, device=self.rows.device))


class Hooks:
    """Hooks and interventions on one batch, as the model's loop takes them.

    ``observer_factory`` and ``between`` go to :func:`trmlab.model.supervision_steps` (run on the same
    ``batch``: ``rows`` index it). At each hook point the hooks run first, in order, each seeing what the
    previous one left, then the interventions that act there; ``watch(step)`` (an observer factory, e.g.
    the tracer's recorder) then sees the states the recursion continues from, read only, and
    ``watch_start(step, carry, rows)`` sees the carry each step starts from. With nothing to do the
    observer is ``watch``'s own (None without one): the model runs exactly as it does without hooks.

    >>> h = Hooks(model, batch, interventions=[Reset(step=2, state="latent")])
    >>> run_to_halt(model, batch, observer_factory=h.observer_factory, between=h.between)
    """

    def __init__(self, model, batch: dict, hooks=(), interventions=(), watch: Optional[ObserverFactory] = None,
                 watch_start: Optional[Callable[[int, Carry, torch.Tensor], None]] = None,
                 n_supervision: Optional[int] = None):
        self.model, self.batch = model, batch
        self.hooks = _hook_pairs(hooks)
        self.interventions = list(interventions or ())
        self.watch, self.watch_start = watch, watch_start
        self.batch_size = int(batch["inputs"].shape[0])
        self.single = getattr(model.cfg, "latent_mode", "yz") == "single_z"
        for iv in self.interventions:
            if not (callable(getattr(iv, "acts_at", None)) and callable(getattr(iv, "apply", None))):
                raise ValueError(f"interventions: {iv!r} is not an intervention (see trmlab.trace.interventions)")
            iv.check(model, self.batch_size)
            if n_supervision is not None and iv.step >= n_supervision:
                raise ValueError(f"{iv.describe()}: step {iv.step} is never run (the run has {n_supervision} "
                                 f"supervision steps, 0..{n_supervision - 1})")
        self.rows = torch.arange(self.batch_size, device=batch["inputs"].device)

    def as_pair(self) -> tuple[ObserverFactory, Callable]:
        """``(observer_factory, between)``: what :data:`trmlab.model.StepHooks` returns."""
        return self.observer_factory, self.between

    def _resolve(self, where: str, replaced, answer: torch.Tensor, latent: torch.Tensor):
        new_y, new_z = checked_replacement(where, replaced, answer, latent)
        if self.single:
            state = one_state(where, latent, new_y, new_z)
            return state, state
        return new_y, new_z

    def _act(self, point: HookPoint, answer, latent, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Run the hooks and interventions of ``point`` on (answer, latent); says whether any replaced them."""
        replaced = False
        for match, fn in self.hooks:
            if match(point):
                r = fn(point, answer, latent)
                if r is not None:
                    answer, latent = self._resolve(f"hook at {point}", r, answer, latent)
                    replaced = True
        for iv in self.interventions:
            if iv.acts_at(point):
                site = Site(self.model, point, rows, self.batch_size)
                answer, latent = self._resolve(iv.describe(), iv.apply(site, answer, latent), answer, latent)
                replaced = True
        return answer, latent, replaced

    def observer_factory(self, step: int):
        """The observer of supervision step ``step`` (0-based)."""
        watch = self.watch(step) if self.watch is not None else None
        ivs = [iv for iv in self.interventions if iv.step == step]
        if not self.hooks and not ivs:
            return watch
        rows = self.rows

        def observer(event, recursion, latent_step, answer, latent):
            point = HookPoint(event, step, recursion, latent_step)
            answer, latent, replaced = self._act(point, answer, latent, rows)
            if watch is not None:
                watch(event, recursion, latent_step, answer, latent)
            return (answer, latent) if replaced else None

        return observer

    def between(self, step: int, carry: Carry, rows: torch.Tensor) -> Carry:
        """Before supervision step ``step``: the start hooks and interventions (and input edits)."""
        self.rows = rows
        point = HookPoint("start", step)
        acting = [iv for iv in self.interventions if iv.acts_at(point)]
        if acting or any(match(point) for match, _ in self.hooks):
            if bool(carry.halted.any()):  # slots the wrapper would reset: reset them here, so hooks see them
                carry = self.reset_halted(carry, rows)
            data = dict(carry.current_data)
            site = Site(self.model, point, rows, self.batch_size)
            for iv in acting:
                data = iv.edit_inputs(site, data)
            shown_y = carry.latent if self.single else carry.answer
            y, z, replaced = self._act(point, shown_y, carry.latent, rows)
            if not replaced:
                y, z = carry.answer, carry.latent
            carry = Carry(y, z, carry.steps, carry.halted, data)
        if self.watch_start is not None:
            self.watch_start(step, carry, rows)
        return carry

    def reset_halted(self, carry: Carry, rows: torch.Tensor) -> Carry:
        """The carry with its halted slots reset as the wrapper would reset them at the next step (initial
        states, step count 0, the batch's puzzle) and no slot halted: the same step, states in view."""
        halted = carry.halted.view(-1, 1, 1)
        y0, z0 = self.model.core.initial_state(rows.numel(), rows.device)
        y = torch.where(halted, y0, carry.answer.to(y0.dtype))
        z = torch.where(halted, z0, carry.latent.to(z0.dtype))
        steps = torch.where(carry.halted, torch.zeros_like(carry.steps), carry.steps)
        return Carry(y, z, steps, torch.zeros_like(carry.halted), self.data_of(carry, rows))

    def data_of(self, carry: Carry, rows: torch.Tensor) -> dict:
        """The puzzle data each slot of ``carry`` runs at its next step: the batch's row for a slot the
        wrapper resets (halted), else the carry's own (what :class:`trmlab.model.DeepSupervision` does)."""
        out = {}
        for k, v in carry.current_data.items():
            fresh = self.batch[k][rows]
            out[k] = torch.where(carry.halted.view(-1, *([1] * (v.dim() - 1))), fresh, v)
        return out


# -- run with a cache -----------------------------------------------------------------------------------


@dataclass
class StepOutputs:
    """One supervision step's outputs (``step`` 0-based) for every row of the batch: ``logits`` [B, L, V],
    ``q_halt_logits`` and ``q_continue_logits`` [B], ``wants`` (the halting rule says halt) and ``stops``
    (the row's answer is final at this step) [B] bool."""

    step: int
    logits: torch.Tensor
    q_halt_logits: torch.Tensor
    q_continue_logits: torch.Tensor
    wants: torch.Tensor
    stops: torch.Tensor

    @property
    def preds(self) -> torch.Tensor:
        return self.logits.argmax(-1)


@dataclass
class RunOutputs:
    """What :func:`run_with_cache` returns next to the cache: ``per_step`` (a :class:`StepOutputs` per
    step run) and, like :func:`trmlab.model.run_to_halt`, each row's answer where it stopped: ``logits``,
    ``preds``, ``q_halt_logits``, ``q_continue_logits`` and ``steps`` (supervision steps used, from 1)."""

    per_step: list
    logits: torch.Tensor
    preds: torch.Tensor
    q_halt_logits: torch.Tensor
    q_continue_logits: torch.Tensor
    steps: torch.Tensor


CacheKey = Union[HookPoint, str, tuple]


@dataclass
class Cache:
    """The states of a run by hook point: ``cache[key]`` is a tensor [B, P + seq_len, D] (detached copies;
    ``P = model.core.puzzle_positions``: grid cell c is position c + P), where ``key`` is a
    :class:`HookPoint`, its string (``"step3.rec1.latent4"``) or a tuple: ``("latent", s, t, i)`` (z after
    latent update i of recursion t of step s), ``("answer", s, t)`` (y after the answer update of
    recursion t), ``("input", s)`` (x, the embedded puzzle of step s). ``keys()`` lists the points in
    the order the run reached them; ``stack(name)`` stacks one kind, [records, B, L, D].

    That is every state: y does not change during the latent updates (y at ``("latent", s, t, i)`` is the
    last answer before it) and z does not change during the answer update (z at ``("answer", s, t)`` is
    ``("latent", s, t, n - 1)``). ``start`` points are hook points, not cached: the carry a step starts
    from is the previous step's last y and z, unless a start hook changed it."""

    states: dict = field(default_factory=dict)  # str(point) -> tensor
    points: list = field(default_factory=list)

    def keys(self) -> list:
        return list(self.points)

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self):
        return iter(self.points)

    @staticmethod
    def key(key: CacheKey) -> str:
        """The string a key stands for (a tuple, a :class:`HookPoint` or a string)."""
        if isinstance(key, HookPoint):
            return str(key)
        if isinstance(key, str):
            return str(HookPoint.parse(key))
        if isinstance(key, tuple) and key and key[0] in ("input", "start", "latent", "answer"):
            arity = {"input": 2, "start": 2, "latent": 4, "answer": 3}[key[0]]
            if len(key) != arity:
                raise KeyError(f"cache key {key!r}: expected ('input', s), ('latent', s, t, i) or ('answer', s, t)")
            return str(HookPoint(*key))
        raise KeyError(f"cache key {key!r}: expected a HookPoint, a string like 'step3.rec1.latent4', or a tuple "
                       f"('input', s), ('latent', s, t, i), ('answer', s, t)")

    def __contains__(self, key: CacheKey) -> bool:
        try:
            return self.key(key) in self.states
        except (KeyError, ValueError):
            return False

    def __getitem__(self, key: CacheKey) -> torch.Tensor:
        name = self.key(key)
        if name not in self.states:
            held = f"{len(self.points)} states, {self.points[0]} .. {self.points[-1]}" if self.points else "nothing"
            raise KeyError(f"{name} is not in this cache (it holds {held}; the run's `names` filter chooses which)")
        return self.states[name]

    def stack(self, name: str) -> torch.Tensor:
        """The states of one kind (``latent``, ``answer`` or ``input``) in run order: [records, B, L, D]."""
        if name not in ("input", "latent", "answer"):
            raise ValueError(f"stack: name must be 'input', 'latent' or 'answer', got {name!r}")
        kept = [self.states[str(p)] for p in self.points if p.name == name]
        if not kept:
            raise ValueError(f"stack: this cache holds no {name!r} states (see the run's `names` filter)")
        return torch.stack(kept)

    def points_of(self, name: str) -> list:
        """The hook points of one kind, in run order."""
        return [p for p in self.points if p.name == name]

    def add(self, point: HookPoint, state: torch.Tensor) -> None:
        self.points.append(point)
        self.states[str(point)] = state.detach().clone()


@torch.no_grad()
def run_with_cache(model, batch: dict, n_supervision: Optional[int] = None, hooks: Iterable = (),
                   interventions: Iterable = (), names: Optional[HookFilter] = None,
                   halting: str = "max") -> tuple[RunOutputs, Cache]:
    """Run ``model`` on ``batch`` from scratch through its own loop (:func:`trmlab.model.supervision_steps`,
    eval mode, no gradient) and keep every state by name: see the module docstring.

    ``batch``: ``inputs`` [B, seq_len] (``puzzle_identifiers`` [B], zeros when absent); torch or numpy.
    ``n_supervision``: steps (default the model's N_sup). ``halting``: ``"max"`` (every row all steps) or
    ``"learned"`` (the run ends when every row's halting head has said stop; rows are not dropped, so every
    state has all B rows). ``hooks``: ``(filter, fn)`` pairs; ``interventions``: from
    :mod:`trmlab.trace.interventions`. ``names``: which states to keep (a hook filter: ``"latent"``,
    ``["answer", "input"]``, ``"step7.*"``, a callable; default all), to bound memory: a full cache holds
    N_sup * (T * (n + 1) + 1) tensors of B * (P + seq_len) * D numbers.

    >>> outputs, cache = run_with_cache(model, batch, names=["answer"])
    >>> cache.stack("answer").shape      # [N_sup * T, B, P + seq_len, D]
    """
    device = model_device(model)
    batch = batch_on(batch, device)
    N = int(n_supervision or model.cfg.n_supervision)
    keep = point_filter(names) if names is not None else (lambda p: True)
    cache = Cache()

    def watch(step: int):
        def observer(event, recursion, latent_step, answer, latent):
            point = HookPoint(event, step, recursion, latent_step)
            if keep(point):
                cache.add(point, latent if event == "latent" else answer)
        return observer

    def watch_start(step: int, carry: Carry, rows: torch.Tensor) -> None:
        point = HookPoint("input", step)
        if keep(point):
            data = hooked.data_of(carry, rows)
            cache.add(point, model.core.embed_input(data["inputs"], data["puzzle_identifiers"]))

    hooked = Hooks(model, batch, hooks, interventions, watch=watch, watch_start=watch_start, n_supervision=N)
    B = int(batch["inputs"].shape[0])
    per_step: list[StepOutputs] = []
    final: dict = {}
    steps_used = torch.zeros(B, dtype=torch.int32, device=device)
    was_training = model.training
    model.eval()
    try:
        for s in supervision_steps(model, batch, N, halting, compact=False, observer_factory=hooked.observer_factory,
                                   between=hooked.between):
            out = s.out
            per_step.append(StepOutputs(s.step - 1, out["logits"], out["q_halt_logits"], out["q_continue_logits"],
                                        s.wants, s.stops))
            for key in ("logits", "q_halt_logits", "q_continue_logits"):
                if key not in final:
                    final[key] = torch.zeros_like(out[key])
                final[key][s.stops] = out[key][s.stops]
            steps_used[s.stops] = s.step
    finally:
        model.train(was_training)
    outputs = RunOutputs(per_step, final["logits"], final["logits"].argmax(-1), final["q_halt_logits"],
                         final["q_continue_logits"], steps_used)
    return outputs, cache
