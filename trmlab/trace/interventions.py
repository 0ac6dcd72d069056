"""Ready-made interventions on the recursion: set a cell, reset a state, swap two puzzles' states, add noise.

Each is a small frozen dataclass that says where it acts and on which puzzles (batch rows):

* ``step`` (0-based supervision step) alone: at the START of that step, before its first update (the
  carry the step starts from; ``step=0``: the initial states);
* ``step`` and ``recursion`` t: right after the answer update of recursion t (y <- f(y + z));
* ``step``, ``recursion`` t and ``latent_step`` i: right after latent update i of recursion t (z <- f(z + y + x));
* ``rows``: the puzzles it changes (indices into the batch; default all).

Grid cell c of a puzzle is position ``c + model.core.puzzle_positions`` in y and z (the puzzle-embedding
positions come first).

>>> SetAnswerCell(step=4, cell=12, token=5)       # y decodes token 5 at cell 12 from step 4's start
>>> SetInputCell(step=3, cell=0, token=7)         # the puzzle's cell 0 is token 7 from step 3 on
>>> Reset(step=5, state="latent")                 # z back to its initial state (model.core.initial_state)
>>> Swap(step=4, state="latent", rows=(0, 1))     # puzzles 0 and 1 exchange z
>>> Noise(step=2, sigma=0.3, seed=0)              # z += 0.3 * N(0, 1), seeded
>>> run_with_cache(model, batch, interventions=[Reset(step=5, state="latent")])
>>> trace(model, batch, interventions=[Noise(step=2, sigma=0.3)])
>>> of, between = hooks_for([SetInputCell(step=3, cell=0, token=7)])(model, solver_batch(model, batch), 4)
>>> solve(model, batch, 4, observer_factory=of, between=between)

The command line writes them as ``KIND:KEY=VALUE,...`` (:func:`parse_intervention`,
``trmlab solve RUN --sudoku ... --intervene SPEC``)::

    answer-cell:step=4,cell=12,token=5          input-cell:step=3,cell=0,token=7
    reset:step=5,state=latent                   swap:step=4,state=latent,rows=0-1
    noise:step=2,sigma=0.3,seed=0               ...,recursion=1,latent_step=4,rows=0+2+5

Keys are the dataclasses' fields; ``rows`` is ``A`` , ``A-B`` (A to B inclusive) or ``A+B+C``. Tokens are
the model's (Sudoku: blank 1, digit d is token d + 1).
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import ClassVar, Optional

import numpy as np
import torch

from trmlab.model import StepHooks

from .hooks import Hooks, HookPoint, Site


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True, kw_only=True)
class Intervention:
    """Where an intervention acts (see the module docstring) and on which rows; the kinds below say what."""

    kind: ClassVar[str] = ""
    step: int
    recursion: Optional[int] = None
    latent_step: Optional[int] = None
    rows: Optional[tuple] = None

    def __post_init__(self):
        name = type(self).__name__
        if not _is_int(self.step) or self.step < 0:
            raise ValueError(f"{name}.step must be an integer >= 0 (0-based supervision step), got {self.step!r}")
        for key in ("recursion", "latent_step"):
            v = getattr(self, key)
            if v is not None and (not _is_int(v) or v < 0):
                raise ValueError(f"{name}.{key} must be an integer >= 0 or None, got {v!r}")
        if self.latent_step is not None and self.recursion is None:
            raise ValueError(f"{name}: latent_step={self.latent_step} needs recursion (latent update i of recursion t)")
        if self.rows is not None:
            rows = (self.rows,) if _is_int(self.rows) else tuple(self.rows)
            if not rows or not all(_is_int(r) and r >= 0 for r in rows):
                raise ValueError(f"{name}.rows must be batch rows (integers >= 0) or None for all, got {self.rows!r}")
            object.__setattr__(self, "rows", tuple(int(r) for r in rows))

    # -- where -----------------------------------------------------------------------------------------------

    def point(self) -> HookPoint:
        """The hook point where it acts."""
        if self.recursion is None:
            return HookPoint("start", self.step)
        if self.latent_step is None:
            return HookPoint("answer", self.step, self.recursion)
        return HookPoint("latent", self.step, self.recursion, self.latent_step)

    def acts_at(self, point: HookPoint) -> bool:
        return str(point) == str(self.point())

    def where(self) -> str:
        """Where it acts and on which puzzles, in words (steps, recursions and updates 0-based)."""
        return f"{self.at_text()}, {self.rows_text()}"

    def at_text(self) -> str:
        """Where it acts, in words: 'at the start of supervision step 4 (0-based)'."""
        if self.recursion is None:
            at = "at the start of"
        elif self.latent_step is None:
            at = f"after the answer update of recursion {self.recursion} of"
        else:
            at = f"after latent update {self.latent_step} of recursion {self.recursion} of"
        return f"{at} supervision step {self.step} (0-based)"

    def rows_text(self) -> str:
        if self.rows is None:
            return "all puzzles"
        return ("puzzle " if len(self.rows) == 1 else "puzzles ") + ", ".join(str(r) for r in self.rows)

    def check(self, model, batch_size: int) -> None:
        """A ValueError naming the field when this intervention cannot act on ``model`` and a batch of
        ``batch_size`` rows (a cell, token, recursion or row out of range)."""
        cfg, name = model.cfg, type(self).__name__
        if self.recursion is not None and self.recursion >= cfg.n_recursions:
            raise ValueError(f"{name}.recursion={self.recursion}: the model has T={cfg.n_recursions} recursions "
                             f"(0..{cfg.n_recursions - 1})")
        if self.latent_step is not None and self.latent_step >= cfg.n_latent_steps:
            raise ValueError(f"{name}.latent_step={self.latent_step}: the model has n={cfg.n_latent_steps} latent "
                             f"updates (0..{cfg.n_latent_steps - 1}); for the answer update give recursion alone")
        for r in self.rows or ():
            if r >= batch_size:
                raise ValueError(f"{name}.rows: row {r} is not in the batch of {batch_size} puzzle(s)")
        for key in ("cell",):
            v = getattr(self, key, None)
            if v is not None and v >= cfg.seq_len:
                raise ValueError(f"{name}.{key}={v}: the puzzles have {cfg.seq_len} cells (0..{cfg.seq_len - 1})")
        v = getattr(self, "token", None)
        if v is not None and v >= cfg.vocab_size:
            raise ValueError(f"{name}.token={v}: the model's vocabulary has {cfg.vocab_size} tokens "
                             f"(0..{cfg.vocab_size - 1})")

    # -- what ------------------------------------------------------------------------------------------------

    def apply(self, site: Site, answer: torch.Tensor, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (answer, latent) the recursion continues from (new tensors; the given ones are not changed)."""
        return answer, latent

    def edit_inputs(self, site: Site, data: dict) -> dict:
        """The puzzle data the step runs (``inputs``, ``puzzle_identifiers``, ...), at the start of a step."""
        return data

    def describe(self) -> str:
        """What it does, where and to which puzzles, in one line."""
        return f"{self.kind or type(self).__name__} {self.where()}"

    def spec(self) -> str:
        """The command-line spelling, which :func:`parse_intervention` reads back."""
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if f.default is not MISSING and v == f.default:
                continue
            parts.append(f"{f.name}={_format_rows(v) if f.name == 'rows' else v}")
        return f"{self.kind}:" + ",".join(parts)


def _state_check(name: str, state: str, allowed=("latent", "answer")) -> None:
    if state not in allowed:
        raise ValueError(f"{name}.state must be one of {', '.join(allowed)}, got {state!r}")


def _replace(state_name: str, answer, latent, new):
    return (new, latent) if state_name == "answer" else (answer, new)


@dataclass(frozen=True, kw_only=True)
class SetAnswerCell(Intervention):
    """Force the answer y at grid ``cell`` so that the output head decodes ``token`` there, by at least
    ``margin`` (logits) over every other token.

    How: the head is linear, logits = W y_p (+ b) at position p = cell + P. While some token j comes
    within ``margin`` of ``token``, y_p moves along W[token] - W[j] for the closest such j, by exactly
    what lifts that gap to ``margin``: the smallest change that fixes one competitor (DeepFool's step),
    repeated (at most 100 times; the gaps are checked in the state's own dtype). Only y_p changes; the
    other cells and z are left as they are. Single-z ablation: the one state z changes."""

    kind: ClassVar[str] = "answer-cell"
    cell: int
    token: int
    margin: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        for key in ("cell", "token"):
            v = getattr(self, key)
            if not _is_int(v) or v < 0:
                raise ValueError(f"SetAnswerCell.{key} must be an integer >= 0, got {v!r}")
        if not isinstance(self.margin, (int, float)) or not np.isfinite(self.margin) or self.margin <= 0:
            raise ValueError(f"SetAnswerCell.margin must be a number > 0, got {self.margin!r}")

    def describe(self) -> str:
        return f"set answer cell {self.cell} to token {self.token} (margin {self.margin:g}) {self.where()}"

    def apply(self, site, answer, latent):
        mask = site.mask(self.rows)
        if not bool(mask.any()):
            return answer, latent
        head = site.model.core.lm_head
        p = self.cell + site.model.core.puzzle_positions
        new = answer.clone()
        new[mask, p] = force_token(head.weight, head.bias, answer[mask, p], self.token, self.margin)
        return new, latent


def force_token(weight: torch.Tensor, bias: Optional[torch.Tensor], h: torch.Tensor, token: int,
                margin: float = 1.0, max_steps: int = 100) -> torch.Tensor:
    """States ``h`` [n, D] moved (see :class:`SetAnswerCell`) until ``weight @ h + bias`` ranks ``token``
    first by ``margin``; returned in ``h``'s dtype. A ValueError when that cannot be done (e.g. two
    tokens with the same head row).

    >>> W = torch.eye(3); h = torch.tensor([[1.0, 0.0, 0.0]])
    >>> force_token(W, None, h, 2).argmax(-1).tolist()
    [2]
    """
    W = weight.detach().float()
    b = torch.zeros(W.shape[0], device=W.device) if bias is None else bias.detach().float()
    x = h.detach().float().clone()
    for _ in range(max_steps + 1):
        logits = x.to(h.dtype).float() @ W.T + b
        gap = logits[:, token:token + 1] - logits
        gap[:, token] = float("inf")
        lead, rival = gap.min(-1)
        need = margin - lead
        if bool((need <= 0).all()):
            return x.to(h.dtype)
        direction = W[token] - W[rival]  # [n, D]
        norm2 = direction.pow(2).sum(-1)
        if bool((norm2[need > 0] == 0).any()):
            raise ValueError(f"cannot make token {token} win: the output head has the same row for a rival token")
        step = need.clamp(min=0) * (1 + 1e-3) / norm2.clamp(min=1e-30)
        x = x + step[:, None] * direction
    raise ValueError(f"could not make token {token} lead by {margin} in {max_steps} moves (dtype {h.dtype})")


@dataclass(frozen=True, kw_only=True)
class SetInputCell(Intervention):
    """The puzzle's grid ``cell`` reads ``token`` from the start of ``step`` on (the input x is embedded
    from the edited tokens at every later step; the states are left as they are). Acts at the start of a
    step only: x is embedded once per step. With ``trace(..., continue_after_halt=False)`` a puzzle that
    restarts starts from its original tokens."""

    kind: ClassVar[str] = "input-cell"
    cell: int
    token: int

    def __post_init__(self):
        super().__post_init__()
        for key in ("cell", "token"):
            v = getattr(self, key)
            if not _is_int(v) or v < 0:
                raise ValueError(f"SetInputCell.{key} must be an integer >= 0, got {v!r}")
        if self.recursion is not None:
            raise ValueError("SetInputCell acts at the start of a step (x is embedded once per step): give step "
                             "alone, not recursion/latent_step")

    def describe(self) -> str:
        return (f"set input cell {self.cell} to token {self.token} from supervision step {self.step} (0-based) on, "
                f"{self.rows_text()}")

    def edit_inputs(self, site, data):
        mask = site.mask(self.rows)
        inputs = data["inputs"].clone()
        inputs[mask, self.cell] = torch.as_tensor(self.token, dtype=inputs.dtype, device=inputs.device)
        return {**data, "inputs": inputs}


@dataclass(frozen=True, kw_only=True)
class Reset(Intervention):
    """Put ``state`` (``latent`` z, ``answer`` y, or ``both``) back to its initial state,
    ``model.core.initial_state`` (the reference's L_init / H_init)."""

    kind: ClassVar[str] = "reset"
    state: str = "latent"

    def __post_init__(self):
        super().__post_init__()
        _state_check("Reset", self.state, ("latent", "answer", "both"))

    def describe(self) -> str:
        what = {"latent": "z to its initial state", "answer": "y to its initial state",
                "both": "y and z to their initial states"}[self.state]
        return f"reset {what} {self.where()}"

    def apply(self, site, answer, latent):
        mask = site.mask(self.rows).view(-1, 1, 1)
        y0, z0 = site.model.core.initial_state(answer.shape[0], answer.device)
        if self.state in ("answer", "both"):
            answer = torch.where(mask, y0.to(answer.dtype), answer)
        if self.state in ("latent", "both"):
            latent = torch.where(mask, z0.to(latent.dtype), latent)
        return answer, latent


@dataclass(frozen=True, kw_only=True)
class Swap(Intervention):
    """Exchange ``state`` (``latent`` z or ``answer`` y) between the two puzzles ``rows`` = (a, b). If one
    of them is no longer running (learned halting dropped it), nothing is swapped."""

    kind: ClassVar[str] = "swap"
    state: str = "latent"

    def __post_init__(self):
        super().__post_init__()
        _state_check("Swap", self.state)
        if self.rows is None or len(self.rows) != 2 or self.rows[0] == self.rows[1]:
            raise ValueError(f"Swap.rows must be two different batch rows (a, b), got {self.rows!r}")

    def describe(self) -> str:
        what = {"latent": "z", "answer": "y"}[self.state]
        return f"swap {what} between puzzles {self.rows[0]} and {self.rows[1]} {self.at_text()}"

    def apply(self, site, answer, latent):
        a = (site.rows == self.rows[0]).nonzero().flatten()
        b = (site.rows == self.rows[1]).nonzero().flatten()
        if a.numel() == 0 or b.numel() == 0:
            return answer, latent
        old = answer if self.state == "answer" else latent
        new = old.clone()
        new[a], new[b] = old[b], old[a]
        return _replace(self.state, answer, latent, new)


@dataclass(frozen=True, kw_only=True)
class Noise(Intervention):
    """Add ``sigma`` * N(0, 1) to ``state`` (default the latent z). The noise is drawn from a generator
    seeded with ``seed`` for the whole batch [B, P + seq_len, D] on the CPU and then taken for the rows
    held, so a puzzle gets the same noise whatever else runs with it, and every run the same noise."""

    kind: ClassVar[str] = "noise"
    sigma: float
    seed: int = 0
    state: str = "latent"

    def __post_init__(self):
        super().__post_init__()
        _state_check("Noise", self.state)
        if not isinstance(self.sigma, (int, float)) or not np.isfinite(self.sigma) or self.sigma < 0:
            raise ValueError(f"Noise.sigma must be a number >= 0, got {self.sigma!r}")
        if not _is_int(self.seed):
            raise ValueError(f"Noise.seed must be an integer, got {self.seed!r}")

    def describe(self) -> str:
        what = {"latent": "z", "answer": "y"}[self.state]
        return f"add noise {self.sigma:g} * N(0, 1) (seed {self.seed}) to {what} {self.where()}"

    def apply(self, site, answer, latent):
        old = answer if self.state == "answer" else latent
        gen = torch.Generator().manual_seed(int(self.seed))
        full = torch.randn((site.batch_size, *old.shape[1:]), generator=gen, dtype=torch.float32)
        noise = full[site.rows.cpu()].to(device=old.device, dtype=old.dtype)
        mask = site.mask(self.rows).view(-1, 1, 1)
        return _replace(self.state, answer, latent, torch.where(mask, old + self.sigma * noise, old))


KINDS = {cls.kind: cls for cls in (SetAnswerCell, SetInputCell, Reset, Swap, Noise)}
_FLOATS = ("margin", "sigma")
_STRINGS = ("state",)


def _format_rows(rows) -> str:
    rows = list(rows)
    if len(rows) > 2 and rows == list(range(rows[0], rows[-1] + 1)):
        return f"{rows[0]}-{rows[-1]}"
    return "+".join(str(r) for r in rows)


def _parse_rows(value: str) -> tuple:
    if "-" in value:
        a, b = value.split("-", 1)
        lo, hi = int(a), int(b)
        if hi < lo:
            raise ValueError(value)
        return tuple(range(lo, hi + 1))
    return tuple(int(v) for v in value.split("+"))


def parse_intervention(text: str) -> Intervention:
    """``"KIND:KEY=VALUE,..."`` -> an intervention (see the module docstring for the grammar). An unknown
    kind or key, or a bad value, is a ValueError naming it and listing the valid ones.

    >>> parse_intervention("swap:step=4,state=latent,rows=0-1")
    Swap(step=4, recursion=None, latent_step=None, rows=(0, 1), state='latent')
    """
    where = f"--intervene {text!r}"
    kind, sep, rest = str(text).partition(":")
    kind = kind.strip()
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r}; valid: {', '.join(KINDS)} (e.g. reset:step=5,state=latent)")
    cls = KINDS[kind]
    valid = [f.name for f in fields(cls)]
    values: dict = {}
    for part in [p.strip() for p in rest.split(",") if p.strip()]:
        if "=" not in part:
            raise ValueError(f"{where}: {part!r} is not KEY=VALUE (keys of {kind}: {', '.join(valid)})")
        key, value = (x.strip() for x in part.split("=", 1))
        if key not in valid:
            raise ValueError(f"{where}: unknown key {key!r} for {kind}; valid: {', '.join(valid)}")
        if key in values:
            raise ValueError(f"{where}: key {key!r} given twice")
        try:
            if key == "rows":
                values[key] = _parse_rows(value)
            elif key in _FLOATS:
                values[key] = float(value)
            elif key in _STRINGS:
                values[key] = value
            else:
                values[key] = int(value)
        except ValueError:
            kind_of = {"rows": "rows (A, A-B or A+B+C)"}.get(key, "number" if key in _FLOATS else "integer")
            raise ValueError(f"{where}: {key}={value!r} is not a valid {kind_of}") from None
    required = [f.name for f in fields(cls) if f.name not in values and f.default is MISSING]
    if required:
        raise ValueError(f"{where}: missing {', '.join(required)} (keys of {kind}: {', '.join(valid)})")
    try:
        return cls(**values)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def parse_interventions(texts) -> list:
    """Every ``--intervene`` spec of a command line, in order."""
    return [parse_intervention(t) for t in texts or ()]


def hooks_for(interventions) -> StepHooks:
    """The interventions as :data:`trmlab.model.StepHooks`: ``hooks(model, batch, n_supervision) ->
    (observer_factory, between)``, what ``trmlab.runs.inference.solve_text`` and
    ``trmlab.eval.evaluate.evaluate`` take. Each is checked against the model, the batch and the steps
    run (an intervention at a step that never runs is an error, not a silent no-op).

    >>> solve_text("sudoku9", "sudoku", puzzle, hooks=hooks_for([Reset(step=5)]))
    """
    interventions = list(interventions)

    def hooks(model, batch: dict, n_supervision: int):
        return Hooks(model, batch, interventions=interventions, n_supervision=n_supervision).as_pair()

    return hooks


def describe_all(interventions) -> list:
    """One line per intervention (:meth:`Intervention.describe`)."""
    return [iv.describe() for iv in interventions]

