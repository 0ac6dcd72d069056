"""Test-time scaling: think longer (more supervision steps), think in parallel (K noisy trajectories),
and vote over validity-preserving transforms of the puzzle; every accuracy with its cost.

One call of :func:`run_trajectories` solves B puzzles along C = A x K candidate trajectories each: A
transforms of the puzzle (transform 0 is the puzzle itself; Sudoku: digit relabelling and the
permutations that keep a grid valid, i.e. bands, stacks, rows within a band, columns within a stack,
transposition; mazes: the 8 dihedral transforms) times K trajectories per transform, where trajectory 0
runs as the plain evaluation and trajectories 1..K-1 get Gaussian noise of scale ``sigma`` on z before
every supervision step (and, with ``init_noise``, on the initial y and z). All B x C rows run as one
batch through the model's own supervision loop (:func:`trmlab.model.supervision_steps`, in chunks of
``batch_size`` rows). After every step each candidate's answer is brought back to the puzzle's frame
and recorded as what the selectors need: right or wrong, an id of the answer, the halting logit, and
(Sudoku, mazes) whether it obeys the puzzle's rules (:mod:`trmlab.eval.rules`).

:func:`select` then scores any setting that the run contains -- any number of steps up to the run's,
the first k trajectories and first a transforms, a halting rule per trajectory and a selector -- without
running the model again:

* halting rules: ``max`` (every trajectory runs all the steps), ``learned`` (a trajectory's answer is
  the one of the first step its halting head says halt), ``fixed_point`` (the first step at which the
  answer has not changed for ``fixed_point`` steps: a rule that needs no trained head);
* selectors: ``halt`` (the answer whose halting logit is highest), ``first`` (the trajectory that halts
  first; all stop then), ``vote`` (the most frequent answer; ties by summed halting probability),
  ``rule`` (the most confident answer that obeys the puzzle's rules, else ``halt``: **uses the rule
  check**, a verifier the paper's numbers do not use), ``oracle`` (right if any candidate is: the
  ceiling, not a method).

Cost: network calls per puzzle (one call = one application of the network, T x (n + 1) per supervision
step) counted to each trajectory's stop, and wall seconds per puzzle (the run's measured time per
row-step, times the row-steps the setting uses). ``calls_ratio`` is relative to the plain evaluation
at 16 supervision steps. K = 1, A = 1, sigma = 0 is the plain evaluation, step for step.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch

from ..data import sudoku
from ..data.augment import TokenTransforms, dihedral_transforms
from ..data.format import family_of
from ..io import atomic_write
from ..model import Carry, DeepSupervision, started_carry, supervision_steps
from .metrics import IGNORE_INDEX, wilson_interval
from .rules import rule_check

HALTING_RULES = ("max", "learned", "fixed_point")
SELECTORS = ("halt", "first", "vote", "rule", "oracle")
#: selectors that use a verifier the paper's numbers do not use
USES_RULE_CHECK = ("rule",)
#: selectors that know the labels: a ceiling, not a method
USES_LABELS = ("oracle",)
#: the reference's evaluation, which costs are given against: 16 supervision steps, one trajectory
BASE_STEPS = 16


@dataclass
class Thinking:
    """One way to think: how a puzzle is solved at test time (see the module docstring).

    ``steps``: supervision steps; ``k``: trajectories per transform; ``sigma``: noise scale on z;
    ``init_noise``: noise on the initial y and z too; ``augment``: transforms of the puzzle (1 = the
    puzzle alone); ``halting``: ``max`` | ``learned`` | ``fixed_point`` (with ``fixed_point`` steps);
    ``select``: the selector; ``seed``: for the transforms and the noise."""

    steps: int = BASE_STEPS
    k: int = 1
    sigma: float = 0.0
    init_noise: bool = False
    augment: int = 1
    halting: str = "max"
    fixed_point: int = 2
    select: str = "halt"
    seed: int = 0

    def __post_init__(self):
        self.validate()

    def validate(self) -> "Thinking":
        for name, lo in (("steps", 1), ("k", 1), ("augment", 1), ("fixed_point", 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise ValueError(f"thinking: {name} must be an integer >= {lo}, got {v!r}")
        if not isinstance(self.sigma, (int, float)) or self.sigma < 0 or not math.isfinite(self.sigma):
            raise ValueError(f"thinking: sigma must be a number >= 0, got {self.sigma!r}")
        if self.halting not in HALTING_RULES:
            raise ValueError(f"thinking: halting must be one of {', '.join(HALTING_RULES)}, got {self.halting!r}")
        if self.select not in SELECTORS:
            raise ValueError(f"thinking: select must be one of {', '.join(SELECTORS)}, got {self.select!r}")
        if self.select in USES_LABELS:
            raise ValueError("thinking: the oracle knows the labels; it is reported as a ceiling, not used to answer")
        return self

    @property
    def uses_rule_check(self) -> bool:
        return self.select in USES_RULE_CHECK

    def describe(self) -> str:
        return describe_setting({**self.to_dict(), "selector": self.select})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "thinking") -> "Thinking":
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected an object with keys {', '.join(cls.__dataclass_fields__)}")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid: "
                             f"{', '.join(cls.__dataclass_fields__)}")
        return cls(**d)

    @classmethod
    def parse(cls, text: str) -> "Thinking":
        """``"augment=32,steps=16,select=vote"`` -> Thinking (unknown keys and bad values are errors)."""
        out: dict = {}
        for part in [p.strip() for p in text.split(",") if p.strip()]:
            if "=" not in part:
                raise ValueError(f"--think: {part!r} is not KEY=VALUE (keys: {', '.join(cls.__dataclass_fields__)})")
            key, value = (x.strip() for x in part.split("=", 1))
            if key not in cls.__dataclass_fields__:
                raise ValueError(f"--think: unknown key {key!r}; valid: {', '.join(cls.__dataclass_fields__)}")
            typ = cls.__dataclass_fields__[key].type
            try:
                if typ in ("int", int):
                    out[key] = int(value)
                elif typ in ("float", float):
                    out[key] = float(value)
                elif typ in ("bool", bool):
                    if value.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(value)
                    out[key] = value.lower() in ("true", "1")
                else:
                    out[key] = value
            except ValueError:
                raise ValueError(f"--think: {key}={value!r} is not a valid {typ}") from None
        return cls(**out)


def describe_setting(r: dict, selector: bool = True) -> str:
    """A setting in words (a :class:`Thinking` as a dict, or a row of :func:`select`): steps, transforms,
    trajectories and noise, the halting rule and (``selector``) who chooses, saying what it knows."""
    parts = [f"{r['steps']} steps"]
    if r.get("augment", 1) > 1:
        parts.append(f"{r['augment']} transforms")
    if r.get("k", 1) > 1:
        parts.append(f"K={r['k']} (sigma {r.get('sigma', 0):g}{', initial states too' if r.get('init_noise') else ''})")
    halting = r.get("halting", "max")
    if halting != "max":
        parts.append(f"{halting} halting" + (f" ({r.get('fixed_point', 2)} unchanged steps)"
                                              if halting == "fixed_point" else ""))
    if selector:
        sel = r.get("selector", r.get("select"))
        parts.append(f"select by {sel}" + (" (uses the rule check)" if sel in USES_RULE_CHECK else "")
                     + (" (knows the labels: the ceiling)" if sel in USES_LABELS else ""))
    return ", ".join(parts)


def puzzle_transforms(family: str, seq_len: int, vocab_size: int, count: int, rng: np.random.Generator) -> TokenTransforms:
    """``count`` validity-preserving transforms of one puzzle of ``family`` (transform 0 = identity)."""
    if count == 1:
        return TokenTransforms(np.arange(seq_len)[None], np.arange(vocab_size)[None])
    if family == "sudoku":
        return sudoku.token_transforms(sudoku.size_of(seq_len), count, rng)
    if family == "maze":
        if count > 8:
            raise ValueError(f"augment: a maze has 8 dihedral transforms; asked for {count}")
        return dihedral_transforms(int(round(seq_len ** 0.5)), vocab_size, count)
    raise ValueError(f"augment: transforms of {family or 'this task'}'s puzzles are not defined here (ARC votes "
                     f"over the dataset's own augmented versions: `trmlab eval` on an ARC run); use augment=1")


@dataclass
class Trajectories:
    """What every candidate of every puzzle did at every supervision step. Arrays [S, B, C] (steps,
    puzzles, candidates c = a * K + k: transform a, trajectory k)."""

    family: Optional[str]
    k: int
    augment: int
    sigma: float
    init_noise: bool
    correct: np.ndarray  # bool: the answer (in the puzzle's frame) equals the label
    answer_id: np.ndarray  # int64: equal answers, equal ids
    halt_logit: np.ndarray  # float32
    wants: np.ndarray  # bool: the halting head says halt (the model's own rule)
    valid: Optional[np.ndarray]  # bool: obeys the puzzle's rules (None: no rules, e.g. ARC)
    last_answers: np.ndarray  # int16 [B, C, L]: every candidate's answer after the last step
    answers: Optional[np.ndarray]  # int8 [S, B, C, L]: every answer of every step (``keep_answers``), else None
    inputs: np.ndarray  # [B, L]
    labels: np.ndarray  # [B, L]
    calls_per_step: int  # network calls per supervision step of one trajectory: T x (n + 1)
    seconds_per_row_step: float  # measured wall time of one supervision step of one row
    meta: dict = field(default_factory=dict)
    ran_steps: Optional[np.ndarray] = None  # int [B, C]: steps each candidate ran (stop_when_halted), else all

    @property
    def steps(self) -> int:
        return int(self.correct.shape[0])

    @property
    def n_puzzles(self) -> int:
        return int(self.correct.shape[1])

    def candidates(self, k: Optional[int] = None, augment: Optional[int] = None) -> np.ndarray:
        """Indices of the candidates of the first ``augment`` transforms and first ``k`` trajectories."""
        k = self.k if k is None else k
        a = self.augment if augment is None else augment
        if not (1 <= k <= self.k and 1 <= a <= self.augment):
            raise ValueError(f"this run has k <= {self.k} and augment <= {self.augment}; asked for k={k}, augment={a}")
        return (np.arange(a)[:, None] * self.k + np.arange(k)[None, :]).reshape(-1)


def _answer_ids(preds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A 64-bit id of every answer row (equal rows, equal ids; unequal rows collide with odds ~2^-60)."""
    with np.errstate(over="ignore"):
        return (preds.astype(np.int64) * weights).sum(axis=-1)


def _noise_hook(model: DeepSupervision, thinking_rows: dict, sigma: float, init_noise: bool, noisy: torch.Tensor,
                generator: torch.Generator):
    """The ``between`` hook: noise on z (and at the start on y and z) of the noisy rows. The noise of a step
    is drawn for every row of the batch and then taken for the rows still running, so a row gets the same
    noise whether or not other rows have stopped (learned halting drops them from the batch)."""
    total = noisy.shape[0]

    def draw(like: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        full = torch.randn((total, *like.shape[1:]), generator=generator, dtype=torch.float32)
        return full[rows.cpu()].to(device=like.device, dtype=like.dtype) * noisy[rows].view(-1, 1, 1).to(like.dtype)

    def between(step: int, carry: Carry, rows: torch.Tensor) -> Carry:
        if sigma == 0 or (step == 0 and not init_noise):
            return carry
        if step == 0:
            y0, z0 = model.core.initial_state(rows.numel(), rows.device)
            return started_carry(carry, y0 + sigma * draw(y0, rows), z0 + sigma * draw(z0, rows), data=thinking_rows)
        return Carry(carry.answer, carry.latent + sigma * draw(carry.latent, rows), carry.steps, carry.halted,
                     carry.current_data)
    return between


@torch.no_grad()
def run_trajectories(model: DeepSupervision, inputs, labels, puzzle_identifiers=None, steps: int = BASE_STEPS,
                     k: int = 1, sigma: float = 0.0, augment: int = 1, init_noise: bool = False, seed: int = 0,
                     batch_size: int = 256, family: Optional[str] = None, progress: bool = False,
                     keep_answers: bool = False, stop_when_halted: bool = False) -> Trajectories:
    """Run every puzzle of ``inputs`` [B, L] (tokens; ``labels`` [B, L], ignore = -100) along ``augment``
    transforms x ``k`` trajectories for ``steps`` supervision steps, ``batch_size`` rows at a time (the
    copies of a puzzle stay in one batch), and record what :func:`select` needs (see the module docstring).
    ``keep_answers``: also keep every candidate's answer at every step (``answers``; memory S x B x C x L bytes).
    ``stop_when_halted``: a trajectory stops when its halting head says halt (learned halting, the compute
    really saved); its answer is then frozen, every later step records the same, and ``ran_steps`` says how
    many steps each ran, so :func:`select` counts only those. Any setting scored on such a run is learned
    halting, whatever ``halting`` it is asked for."""
    Thinking(steps=steps, k=k, sigma=float(sigma), augment=augment, init_noise=init_noise, seed=seed)
    x = np.asarray(inputs.cpu() if torch.is_tensor(inputs) else inputs).astype(np.int64)
    y = np.asarray(labels.cpu() if torch.is_tensor(labels) else labels).astype(np.int64)
    if x.ndim == 1:
        x, y = x[None], y[None]
    B, L = x.shape
    pid = (np.zeros(B, np.int64) if puzzle_identifiers is None else
           np.asarray(puzzle_identifiers.cpu() if torch.is_tensor(puzzle_identifiers) else puzzle_identifiers)
           .astype(np.int64).reshape(-1))
    cfg = model.cfg
    family = family or family_of(cfg.vocab_size, cfg.seq_len)
    rng = np.random.default_rng(seed)
    transforms = [puzzle_transforms(family, L, cfg.vocab_size, augment, rng) for _ in range(B)]
    C = augment * k
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    weights = np.random.default_rng(12345).integers(1, 2 ** 62, size=L, dtype=np.int64)
    scored = y != IGNORE_INDEX
    out = {name: np.zeros((steps, B, C), dt) for name, dt in
           (("correct", bool), ("answer_id", np.int64), ("halt_logit", np.float32), ("wants", bool))}
    has_rules = family in ("sudoku", "maze")
    valid = np.zeros((steps, B, C), bool) if has_rules else None
    last = np.zeros((B, C, L), np.int16)
    kept = np.zeros((steps, B, C, L), np.int8) if keep_answers else None
    per_chunk = max(1, batch_size // C)
    ran_steps = np.zeros((B, C), np.int64)
    elapsed, row_steps = 0.0, 0
    was_training = model.training
    model.eval()
    chunks = range(0, B, per_chunk)
    if progress:
        from tqdm.auto import tqdm  # lazy: a progress bar only when asked

        chunks = tqdm(chunks, desc=f"thinking ({C} candidates x {steps} steps)", dynamic_ncols=True)
    try:
        for b0 in chunks:
            b1 = min(B, b0 + per_chunk)
            nb = b1 - b0
            moved = np.stack([transforms[b].apply(x[b]) for b in range(b0, b1)])          # [nb, A, L]
            rows_in = np.repeat(moved[:, :, None, :], k, axis=2).reshape(nb * C, L)
            batch = {"inputs": torch.as_tensor(rows_in, dtype=torch.int32, device=device),
                     "puzzle_identifiers": torch.as_tensor(np.repeat(pid[b0:b1], C), dtype=torch.int32, device=device),
                     "labels": torch.full((nb * C, L), IGNORE_INDEX, dtype=torch.int64, device=device)}
            noisy = torch.as_tensor(np.tile(np.arange(k) > 0, nb * augment), device=device)
            hook = _noise_hook(model, batch, float(sigma), init_noise, noisy, generator)
            t0 = time.perf_counter()
            cur = np.zeros((nb * C, L), np.int64)
            cur_logit = np.zeros(nb * C, np.float32)
            cur_wants = np.zeros(nb * C, bool)
            ran = np.zeros(nb * C, np.int64)
            done = 0
            for s in supervision_steps(model, batch, steps, "learned" if stop_when_halted else "max",
                                       compact=stop_when_halted, between=hook):
                r = s.rows.cpu().numpy()
                cur[r] = s.out["logits"].argmax(-1).cpu().numpy()
                cur_logit[r] = s.out["q_halt_logits"].float().cpu().numpy()
                cur_wants[r] = s.wants.cpu().numpy() | s.stops.cpu().numpy() if stop_when_halted else s.wants.cpu().numpy()
                ran[r] = s.step
                row_steps += len(r)
                preds = cur.reshape(nb, augment, k, L)
                back = np.stack([transforms[b0 + i].invert(preds[i].transpose(1, 0, 2)).transpose(1, 0, 2)
                                 for i in range(nb)]).reshape(nb, C, L)                    # puzzle's frame
                i = s.step - 1
                out["correct"][i, b0:b1] = ((back == y[b0:b1, None, :]) | ~scored[b0:b1, None, :]).all(-1)
                out["answer_id"][i, b0:b1] = _answer_ids(back, weights)
                out["halt_logit"][i, b0:b1] = cur_logit.reshape(nb, C)
                out["wants"][i, b0:b1] = cur_wants.reshape(nb, C)
                if has_rules:
                    q = np.repeat(x[b0:b1], C, axis=0)
                    valid[i, b0:b1] = rule_check(family, q, back.reshape(nb * C, L)).reshape(nb, C)
                if kept is not None:
                    kept[i, b0:b1] = back
                last[b0:b1] = back
                done = s.step
            for i in range(done, steps):  # every trajectory stopped early: the later steps keep its answer
                for name in out:
                    out[name][i, b0:b1] = out[name][done - 1, b0:b1]
                if valid is not None:
                    valid[i, b0:b1] = valid[done - 1, b0:b1]
                if kept is not None:
                    kept[i, b0:b1] = kept[done - 1, b0:b1]
            ran_steps[b0:b1] = ran.reshape(nb, C)
            elapsed += time.perf_counter() - t0
    finally:
        model.train(was_training)
    T, n = cfg.n_recursions, cfg.n_latent_steps
    return Trajectories(family, k, augment, float(sigma), init_noise, out["correct"], out["answer_id"],
                        out["halt_logit"], out["wants"], valid, last, kept, x, y, calls_per_step=T * (n + 1),
                        seconds_per_row_step=elapsed / max(row_steps, 1),
                        meta={"seed": seed, "batch_size": batch_size, "wall_seconds": elapsed,
                              "stop_when_halted": stop_when_halted},
                        ran_steps=ran_steps if stop_when_halted else None)


def _stop_steps(tr: Trajectories, cand: np.ndarray, steps: int, halting: str, fixed_point: int) -> np.ndarray:
    """[B, c]: the step (1-based) whose answer each candidate gives under ``halting``, at most ``steps``."""
    B, c = tr.n_puzzles, len(cand)
    last = np.full((B, c), steps, np.int64)
    if halting == "max":
        return last
    if halting == "learned":
        hit = tr.wants[:steps][:, :, cand]                               # [S, B, c]
    else:  # fixed_point: unchanged for `fixed_point` consecutive steps
        ids = tr.answer_id[:steps][:, :, cand]
        same = np.zeros_like(ids, dtype=bool)
        same[1:] = ids[1:] == ids[:-1]
        run = np.zeros_like(same, dtype=np.int64)
        for s in range(1, steps):
            run[s] = np.where(same[s], run[s - 1] + 1, 0)
        hit = run >= fixed_point
    first = np.where(hit.any(0), hit.argmax(0) + 1, steps)
    return np.minimum(first, last)


def _take(a: np.ndarray, stop: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """a [S, B, C] at each candidate's stop step -> [B, c]."""
    sub = a[:, :, cand]                                                   # [S, B, c]
    return np.take_along_axis(sub, (stop - 1)[None], axis=0)[0]


def select(tr: Trajectories, selector: str = "halt", steps: Optional[int] = None, k: Optional[int] = None,
           augment: Optional[int] = None, halting: str = "max", fixed_point: int = 2) -> dict:
    """Score one setting contained in the run ``tr`` (see the module docstring). Returns ``exact_accuracy``
    with its 95% Wilson interval (``low``, ``high``), ``correct`` [B], the chosen candidate [B] (-1 for the
    oracle), the step it answered at [B], network calls and wall seconds per puzzle, and the calls relative
    to the plain evaluation at 16 steps; ``uses_rule_check`` / ``uses_labels`` say what the selector knew."""
    if selector not in SELECTORS:
        raise ValueError(f"selector must be one of {', '.join(SELECTORS)}, got {selector!r}")
    if halting not in HALTING_RULES:
        raise ValueError(f"halting must be one of {', '.join(HALTING_RULES)}, got {halting!r}")
    steps = tr.steps if steps is None else int(steps)
    if not 1 <= steps <= tr.steps:
        raise ValueError(f"this run has {tr.steps} steps; asked for {steps}")
    cand = tr.candidates(k, augment)
    B, c = tr.n_puzzles, len(cand)
    stop = _stop_steps(tr, cand, steps, halting, fixed_point)           # [B, c]
    ran = stop if tr.ran_steps is None else np.minimum(stop, tr.ran_steps[:, cand])  # steps really computed
    correct = _take(tr.correct, stop, cand)
    logit = _take(tr.halt_logit, stop, cand)
    rows = np.arange(B)
    if selector == "oracle":
        chosen = np.full(B, -1)
        ok = correct.any(1)
        used = ran.sum(1)
    elif selector == "first":
        first = stop.min(1)
        key = np.where(stop == first[:, None], logit, -np.inf)
        chosen = key.argmax(1)
        ok = correct[rows, chosen]
        used = np.minimum(ran, first[:, None]).sum(1)                    # every trajectory stops with the first
    elif selector == "vote":
        ids = _take(tr.answer_id, stop, cand)
        prob = 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))
        chosen = np.zeros(B, np.int64)
        for b in range(B):
            uniq, inv, counts = np.unique(ids[b], return_inverse=True, return_counts=True)
            weight = np.bincount(inv, weights=prob[b], minlength=len(uniq))
            best = np.lexsort((-weight, -counts))[0]                     # most votes, then most confident
            members = np.nonzero(inv == best)[0]
            chosen[b] = members[np.argmax(logit[b, members])]
        ok = correct[rows, chosen]
        used = ran.sum(1)
    else:
        key = logit.astype(np.float64)
        if selector == "rule":
            if tr.valid is None:
                raise ValueError(f"selector 'rule': {tr.family or 'this task'} has no rules to check")
            key = np.where(_take(tr.valid, stop, cand), key + 1e9, key)  # any valid answer beats every invalid one
        chosen = key.argmax(1)
        ok = correct[rows, chosen]
        used = ran.sum(1)
    n_ok = int(ok.sum())
    lo, hi = wilson_interval(n_ok, B)
    calls = used.astype(np.float64) * tr.calls_per_step
    base = BASE_STEPS * tr.calls_per_step
    answered_at = np.where(chosen >= 0, stop[rows, np.maximum(chosen, 0)], stop.max(1))
    return {"selector": selector, "halting": halting, "steps": steps, "k": c // (augment or tr.augment),
            "augment": augment or tr.augment, "sigma": tr.sigma if (k or tr.k) > 1 else 0.0,
            "puzzles": B, "exact_accuracy": n_ok / max(B, 1), "low": lo, "high": hi,
            "calls_per_puzzle": float(calls.mean()), "calls_ratio": float(calls.mean() / base),
            "seconds_per_puzzle": float(used.mean() * tr.seconds_per_row_step),
            "uses_rule_check": selector in USES_RULE_CHECK, "uses_labels": selector in USES_LABELS,
            "correct": ok, "chosen": chosen, "answered_at": answered_at}


def rule_check_rate(tr: Trajectories, selector: str = "halt", **setting) -> Optional[float]:
    """The fraction of puzzles whose chosen answer obeys the puzzle's rules (None without rules)."""
    if tr.valid is None or selector == "oracle":
        return None
    r = select(tr, selector, **setting)
    cand = tr.candidates(setting.get("k"), setting.get("augment"))
    stop = _stop_steps(tr, cand, r["steps"], r["halting"], setting.get("fixed_point", 2))
    valid = _take(tr.valid, stop, cand)
    return float(valid[np.arange(tr.n_puzzles), r["chosen"]].mean())


def curve(tr: Trajectories, over: str, values: Iterable[int], selectors: Sequence[str] = ("halt", "vote", "oracle"),
          **setting) -> list[dict]:
    """Rows of :func:`select` for each value of ``over`` (``steps`` | ``k`` | ``augment``) and selector,
    without the per-puzzle arrays (what the 06-thinking report tabulates and draws)."""
    if over not in ("steps", "k", "augment"):
        raise ValueError(f"over must be steps, k or augment, got {over!r}")
    rows = []
    for v in values:
        for sel in selectors:
            if sel == "rule" and tr.valid is None:
                continue
            r = select(tr, sel, **{**setting, over: int(v)})
            rows.append({key: val for key, val in r.items() if not isinstance(val, np.ndarray)})
    return rows


def cheapest(rows: Sequence[dict]) -> list[dict]:
    """The accuracy-against-cost frontier: for each selector, the rows that no cheaper row of that selector
    beats (sorted by cost): the cheapest setting that reaches each accuracy."""
    out = []
    for sel in dict.fromkeys(r["selector"] for r in rows):
        best = -1.0
        for r in sorted((r for r in rows if r["selector"] == sel), key=lambda r: (r["calls_per_puzzle"], -r["exact_accuracy"])):
            if r["exact_accuracy"] > best:
                out.append(r)
                best = r["exact_accuracy"]
    return out


def think(model: DeepSupervision, inputs, labels=None, puzzle_identifiers=None, thinking: Optional[Thinking] = None,
          batch_size: int = 256, family: Optional[str] = None) -> dict:
    """Answer puzzles the way ``thinking`` says (a :class:`Thinking`; default the plain 16 steps): returns
    ``answers`` [B, L] (tokens, in the puzzle's frame), ``halt_prob`` [B] (the halting head's probability
    for the chosen answer), ``steps`` [B] (the step it answered at), ``rule_ok`` [B] (None without
    rules) and the ``thinking`` used. ``labels`` are optional (scored when given: ``correct`` [B])."""
    th = (thinking or Thinking()).validate()
    x = np.asarray(inputs.cpu() if torch.is_tensor(inputs) else inputs).astype(np.int64)
    if x.ndim == 1:
        x = x[None]
    y = np.full_like(x, IGNORE_INDEX) if labels is None else np.asarray(
        labels.cpu() if torch.is_tensor(labels) else labels).astype(np.int64).reshape(x.shape)
    tr = run_trajectories(model, x, y, puzzle_identifiers, th.steps, th.k, th.sigma, th.augment, th.init_noise,
                          th.seed, batch_size, family, keep_answers=th.halting != "max")
    r = select(tr, th.select, halting=th.halting, fixed_point=th.fixed_point)
    cand = tr.candidates()
    rows = np.arange(tr.n_puzzles)
    stop = _stop_steps(tr, cand, tr.steps, th.halting, th.fixed_point)
    at = stop[rows, r["chosen"]]
    if tr.answers is None:
        answers = tr.last_answers[rows, r["chosen"]].astype(np.int64)
    else:
        answers = tr.answers[at - 1, rows, cand[r["chosen"]]].astype(np.int64)
    logit = _take(tr.halt_logit, stop, cand)[rows, r["chosen"]]
    rule_ok = None if tr.valid is None else _take(tr.valid, stop, cand)[rows, r["chosen"]]
    return {"answers": answers, "halt_prob": 1.0 / (1.0 + np.exp(-logit.astype(np.float64))), "steps": at,
            "rule_ok": rule_ok, "thinking": th, "correct": r["correct"] if labels is not None else None,
            "calls_per_puzzle": r["calls_per_puzzle"], "seconds_per_puzzle": r["seconds_per_puzzle"]}


def settings_grid(tr: Trajectories, max_ratio: float = 64.0, selectors: Sequence[str] = ("halt", "first", "vote"),
                  halting: Sequence[str] = ("max", "learned")) -> list[dict]:
    """Every setting the run ``tr`` contains (steps and K and transforms in powers of two, halting rules,
    selectors that use neither labels nor the rule check) that costs at most ``max_ratio`` times the plain
    evaluation at 16 steps, scored: what :func:`best_setting` chooses from."""
    def powers(top):
        return sorted({min(top, 2 ** i) for i in range(0, int(math.log2(top)) + 2)})

    rows = []
    if tr.ran_steps is not None:  # its trajectories stopped when their heads said halt: learned halting only
        halting = ("learned",)
    steps = sorted({s for s in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128) if s <= tr.steps} | {tr.steps})
    for s in steps:
        for k in powers(tr.k):
            for a in powers(tr.augment):
                for h in halting:
                    for sel in selectors:
                        if sel in USES_RULE_CHECK or sel in USES_LABELS:
                            continue
                        if sel == "first" and h != "learned":
                            continue  # 'first' needs a halting head that stops the trajectories
                        r = select(tr, sel, steps=s, k=k, augment=a, halting=h)
                        if r["calls_ratio"] <= max_ratio + 1e-9:
                            rows.append({key: v for key, v in r.items() if not isinstance(v, np.ndarray)})
    return rows


def best_setting(runs: dict, max_ratio: float = 64.0, seed: int = 0) -> tuple[Thinking, dict, list[dict]]:
    """The most accurate setting (ties: the cheaper) among those of every run in ``runs`` (sigma ->
    :class:`Trajectories`, measured on a validation set), at most ``max_ratio`` times the plain cost, with
    no rule check and no labels: (the :class:`Thinking`, its scored row, every row considered)."""
    rows = []
    for sigma, tr in runs.items():
        for r in settings_grid(tr, max_ratio):
            r = dict(r, sigma=float(sigma) if r["k"] > 1 else 0.0, init_noise=bool(tr.init_noise and r["k"] > 1))
            rows.append(r)
    if not rows:
        raise ValueError(f"no setting of these runs costs at most {max_ratio} times the plain evaluation")
    best = max(rows, key=lambda r: (r["exact_accuracy"], -r["calls_per_puzzle"], -r["k"], -r["augment"]))
    th = Thinking(steps=best["steps"], k=best["k"], sigma=best["sigma"], init_noise=best["init_noise"],
                  augment=best["augment"], halting=best["halting"], select=best["selector"], seed=seed)
    return th, best, rows


_ARRAYS = ("correct", "answer_id", "halt_logit", "wants", "valid", "last_answers", "answers", "inputs", "labels",
           "ran_steps")


def save_trajectories(tr: Trajectories, path) -> None:
    """``tr`` as one ``.npz`` (arrays) with its settings in a JSON string; written atomically."""
    meta = {"family": tr.family, "k": tr.k, "augment": tr.augment, "sigma": tr.sigma, "init_noise": tr.init_noise,
            "calls_per_step": tr.calls_per_step, "seconds_per_row_step": tr.seconds_per_row_step, "meta": tr.meta}
    arrays = {k: getattr(tr, k) for k in _ARRAYS if getattr(tr, k) is not None}

    def write(f):
        np.savez_compressed(f, _settings=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)

    atomic_write(path, write)


def load_trajectories(path) -> Trajectories:
    """What :func:`save_trajectories` wrote (no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["_settings"]).decode())
        arrays = {k: (z[k] if k in z.files else None) for k in _ARRAYS}
    return Trajectories(meta["family"], meta["k"], meta["augment"], meta["sigma"], meta["init_noise"],
                        arrays["correct"], arrays["answer_id"], arrays["halt_logit"], arrays["wants"], arrays["valid"],
                        arrays["last_answers"], arrays["answers"], arrays["inputs"], arrays["labels"],
                        meta["calls_per_step"], meta["seconds_per_row_step"], meta.get("meta", {}), arrays["ran_steps"])
