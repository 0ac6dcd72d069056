"""Metrics for Sudoku / Maze (and any fixed-length sequence task): exact and token accuracy with a
95% Wilson interval, the reference's per-batch metric sums, and an accumulator that scores the
answer after any supervision step and under learned halting in a single pass.

Pure torch / numpy; from the model only the halting rule (``trmlab.model.wants_to_halt``) is used.
Inputs may be torch tensors or numpy arrays.

Definitions (labels equal to ``ignore_index`` (-100) are not scored):

* a sequence *counts* when its row is valid (``valid`` mask, e.g. not a padding row) and it has at
  least one scored label;
* ``exact_accuracy``: fraction of counted sequences whose every scored token is right;
* ``token_accuracy``: the mean over counted sequences of the per-sequence token accuracy (this is
  the reference's ``accuracy`` metric); ``token_accuracy_micro`` is right tokens / scored tokens;
* the Wilson score interval (z = 1.96, 95%) is given for ``exact_accuracy``.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..model.act import wants_to_halt

IGNORE_INDEX = -100

__all__ = [
    "IGNORE_INDEX",
    "wilson_interval",
    "sequence_correctness",
    "ExactAccuracy",
    "StepwiseAccuracy",
    "reference_metric_sums",
    "normalise_metric_sums",
]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n``.

    ``z = 1.96`` gives the 95% interval. With ``n == 0`` the proportion is unknown and the whole
    range ``(0.0, 1.0)`` is returned. Bounds are clipped to [0, 1] (they only leave it by rounding).
    """
    successes = int(successes)
    n = int(n)
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = (z / denom) * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    return torch.as_tensor(np.asarray(x))


def _preds_from(preds_or_logits: Any, labels: torch.Tensor) -> torch.Tensor:
    """Predicted tokens: argmax over the last axis when given logits ([B, L, V]), else as is."""
    p = _as_tensor(preds_or_logits)
    if p.dim() == labels.dim() + 1:
        p = p.argmax(dim=-1)
    if p.shape != labels.shape:
        raise ValueError(f"predictions {tuple(p.shape)} do not match labels {tuple(labels.shape)}")
    return p.to(labels.device)


def sequence_correctness(
    preds_or_logits: Any, labels: Any, ignore_index: int = IGNORE_INDEX
) -> dict[str, torch.Tensor]:
    """Per-sequence correctness of a batch, as the reference computes it.

    Returns a dict of [B] tensors: ``n_scored`` (scored labels), ``n_correct`` (scored and right),
    ``token_accuracy`` (n_correct / max(n_scored, 1), fp32) and ``exact`` (bool: n_correct ==
    n_scored; True for a row with no scored label, exactly like the reference).
    """
    lab = _as_tensor(labels).long()
    raw = _as_tensor(preds_or_logits)
    if lab.dim() == 1:  # a single sequence
        lab = lab.unsqueeze(0)
        raw = raw.unsqueeze(0)
    preds = _preds_from(raw, lab)
    mask = lab != ignore_index
    n_scored = mask.sum(-1)
    n_correct = (mask & (preds.long() == lab)).sum(-1)
    return {
        "n_scored": n_scored,
        "n_correct": n_correct,
        "token_accuracy": n_correct.float() / n_scored.clamp_min(1).float(),
        "exact": n_correct == n_scored,
    }


def _valid_rows(valid: Any, batch: int, device: torch.device) -> torch.Tensor:
    if valid is None:
        return torch.ones(batch, dtype=torch.bool, device=device)
    v = _as_tensor(valid).to(device=device, dtype=torch.bool).reshape(-1)
    if v.numel() != batch:
        raise ValueError(f"valid mask has {v.numel()} entries for a batch of {batch}")
    return v


# ---------------------------------------------------------------------------------------------
# Accumulators
# ---------------------------------------------------------------------------------------------


class ExactAccuracy:
    """Accumulates exact and token accuracy over an evaluation set.

    ``update(preds_or_logits, labels, valid=None)``: ``preds_or_logits`` is [B, L] tokens or
    [B, L, V] logits, ``labels`` [B, L] with ``ignore_index`` for unscored cells, ``valid`` an optional
    [B] bool mask (False for padding rows). Rows with no scored label are skipped.
    ``compute()`` returns ``count``, ``exact``, ``exact_accuracy`` and its Wilson interval
    ``exact_accuracy_low`` / ``exact_accuracy_high``, ``token_accuracy`` (mean per-sequence, the
    reference's ``accuracy``) and ``token_accuracy_micro``. ``state()`` / ``merge(states)`` combine
    accumulators across ranks (the state is a small dict of numbers).
    """

    _FIELDS = ("count", "exact", "token_acc_sum", "tokens_correct", "tokens_scored")

    def __init__(self, ignore_index: int = IGNORE_INDEX, z: float = 1.96):
        self.ignore_index = ignore_index
        self.z = z
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.exact = 0
        self.token_acc_sum = 0.0
        self.tokens_correct = 0
        self.tokens_scored = 0

    def update(self, preds_or_logits: Any, labels: Any, valid: Any = None) -> None:
        c = sequence_correctness(preds_or_logits, labels, self.ignore_index)
        self._add(c, _valid_rows(valid, c["exact"].shape[0], c["exact"].device))

    def _add(self, c: Mapping[str, torch.Tensor], rows: torch.Tensor) -> None:
        rows = rows & (c["n_scored"] > 0)
        self.count += int(rows.sum())
        self.exact += int((rows & c["exact"]).sum())
        self.token_acc_sum += float(c["token_accuracy"][rows].double().sum())
        self.tokens_correct += int(c["n_correct"][rows].sum())
        self.tokens_scored += int(c["n_scored"][rows].sum())

    def compute(self) -> dict[str, float]:
        n = self.count
        low, high = wilson_interval(self.exact, n, self.z)
        nan = float("nan")
        return {
            "count": n,
            "exact": self.exact,
            "exact_accuracy": self.exact / n if n else nan,
            "exact_accuracy_low": low,
            "exact_accuracy_high": high,
            "token_accuracy": self.token_acc_sum / n if n else nan,
            "token_accuracy_micro": self.tokens_correct / self.tokens_scored if self.tokens_scored else nan,
        }

    def state(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self._FIELDS}

    def merge(self, states: Iterable[Mapping[str, float]]) -> None:
        """Add other accumulators' ``state()`` into this one (do not pass this one's own state)."""
        for s in states:
            for k in self._FIELDS:
                setattr(self, k, getattr(self, k) + s[k])


class StepwiseAccuracy:
    """Scores, in one pass over the supervision steps, the answer after chosen step counts and the
    answer chosen by learned halting.

    Use per batch::

        acc.start_batch(labels, valid)          # labels [B, L], valid [B] (optional)
        for step in range(n_steps):             # e.g. 16 (N_sup) or more than training used
            carry, out = model(carry, batch)    # caller's loop; the model must keep the slot
            acc.step(out["logits"], out["q_halt_logits"], out["q_continue_logits"])
        per_row = acc.end_batch()

    * ``report_steps``: step counts (1-based) whose answer is scored, e.g. ``(16, 32)`` to score the
      training N_sup and twice that. Steps beyond the last observed step of a batch are not scored.
    * learned halting: a sequence halts after the first step whose halting head says halt -- the rule
      of :func:`trmlab.model.wants_to_halt`: ``q_halt_logit > 0`` (sigmoid > 0.5, the reference's), or
      ``q_halt > q_continue`` with ``act_continue=True`` (models trained with the continue loss) -- or
      after the last observed step when it never does; its answer at that step is scored and the
      step count is recorded. ``halt_threshold`` moves the 0 of the first rule (no effect with
      ``act_continue``).
    * ``step(..., rows=idx)`` gives outputs for only the batch rows ``idx`` (an evaluator that drops
      halted puzzles from the batch passes the rows still running); rows not given at a step keep
      the answer they halted with. ``report_steps`` are then scored over the given rows only, so an
      evaluator running with learned halting passes ``report_steps=()``.
    * ``max_steps``: the N the steps are counted against (default: the most steps observed); it
      sets the histogram's range, ``halt/halted_early`` and ``halt/compute_saved``.

    ``compute()`` returns ``{"step<k>/<metric>": ..., "halt/<metric>": ..., "halt/mean_steps",
    "halt/halted_early" (fraction halted before max_steps), "halt/steps_hist/<k>" (puzzles halted at
    step k, k = 1..max_steps), "halt/compute_saved" (1 - mean_steps / max_steps)}`` with the metrics
    of :class:`ExactAccuracy`. ``end_batch()`` returns the batch's per-row results (see there).
    """

    def __init__(
        self,
        report_steps: Sequence[int] = (16,),
        learned_halting: bool = True,
        halt_threshold: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
        act_continue: bool = False,
        max_steps: int | None = None,
    ):
        self.report_steps = tuple(sorted(set(int(s) for s in report_steps)))
        if any(s < 1 for s in self.report_steps):
            raise ValueError("report_steps are 1-based step counts")
        self.learned_halting = learned_halting
        self.halt_threshold = float(halt_threshold)
        self.ignore_index = ignore_index
        self.act_continue = bool(act_continue)
        self.max_steps = None if max_steps is None else int(max_steps)
        self.at_step = {s: ExactAccuracy(ignore_index) for s in self.report_steps}
        self.halt = ExactAccuracy(ignore_index)
        self.halt_steps_sum = 0
        self.halted_early = 0
        self.halt_steps_hist: dict[int, int] = {}
        self.observed_steps = 0
        self._batch: dict[str, Any] | None = None

    def start_batch(self, labels: Any, valid: Any = None) -> None:
        lab = _as_tensor(labels).long()
        rows = _valid_rows(valid, lab.shape[0], lab.device)
        B = lab.shape[0]
        zeros = torch.zeros(B, dtype=torch.long, device=lab.device)
        self._batch = {
            "labels": lab,
            "rows": rows,
            "step": 0,
            "halted": torch.zeros_like(rows),
            "halt_step": zeros.clone(),
            "exact_by_step": [],
            "chosen": {"n_scored": zeros.clone(), "n_correct": zeros.clone(),
                       "token_accuracy": torch.zeros(B, dtype=torch.float32, device=lab.device),
                       "exact": torch.zeros_like(rows)},
        }

    def _wants(self, q_halt_logits: Any, q_continue_logits: Any, n: int, device) -> torch.Tensor:
        if q_halt_logits is None:
            raise ValueError("learned halting needs q_halt_logits")
        q = _as_tensor(q_halt_logits).to(device).float().reshape(-1)
        if self.act_continue:
            if q_continue_logits is None:
                raise ValueError("act_continue halting (halt > continue) needs q_continue_logits")
            qc = _as_tensor(q_continue_logits).to(device).float().reshape(-1)
            wants = wants_to_halt(q, qc, True)
        else:
            wants = wants_to_halt(q - self.halt_threshold, None, False)
        if wants.numel() != n:
            raise ValueError(f"{wants.numel()} halting logits for {n} rows")
        return wants

    def step(self, preds_or_logits: Any, q_halt_logits: Any = None, q_continue_logits: Any = None,
             rows: Any = None) -> None:
        b = self._batch
        if b is None:
            raise RuntimeError("call start_batch() before step()")
        b["step"] += 1
        B = b["labels"].shape[0]
        dev = b["labels"].device
        idx = torch.arange(B, device=dev) if rows is None else _as_tensor(rows).to(dev).long().reshape(-1)
        c = sequence_correctness(preds_or_logits, b["labels"][idx], self.ignore_index)
        if b["step"] in self.at_step:
            self.at_step[b["step"]]._add(c, b["rows"][idx])
        exact = torch.zeros(B, dtype=torch.bool, device=dev)
        exact[idx] = c["exact"]
        b["exact_by_step"].append(exact)
        if not self.learned_halting:
            return
        wants = self._wants(q_halt_logits, q_continue_logits, idx.numel(), dev)
        open_ = ~b["halted"][idx]
        # Rows not halted yet take this step's answer; once halted it is frozen.
        for k, v in c.items():
            cur = b["chosen"][k]
            cur[idx] = torch.where(open_, v.to(cur.dtype), cur[idx])
        b["halt_step"][idx] = torch.where(open_, torch.full_like(idx, b["step"]), b["halt_step"][idx])
        b["halted"][idx] = b["halted"][idx] | (open_ & wants)

    def end_batch(self) -> dict[str, torch.Tensor]:
        """Close the batch. Returns its per-row results: ``halt_step`` [B] (0 for a row never
        observed), ``exact_at_halt`` [B] bool, ``exact_by_step`` [B, steps observed] bool (False
        where a row was not given at that step) and ``counted`` [B] bool (valid, >= 1 scored label)."""
        b = self._batch
        if b is None:
            raise RuntimeError("end_batch() without start_batch()")
        self._batch = None
        B = b["labels"].shape[0]
        by_step = (torch.stack(b["exact_by_step"], dim=1) if b["exact_by_step"]
                   else torch.zeros(B, 0, dtype=torch.bool, device=b["labels"].device))
        rows = b["rows"] & (b["chosen"]["n_scored"] > 0)
        self.observed_steps = max(self.observed_steps, b["step"])
        if self.learned_halting and b["step"] > 0:
            self.halt._add(b["chosen"], rows)
            hs = b["halt_step"][rows]
            self.halt_steps_sum += int(hs.sum())
            n_max = self.max_steps if self.max_steps is not None else b["step"]
            self.halted_early += int((hs < n_max).sum())
            for k, n in zip(*torch.unique(hs, return_counts=True)):
                self.halt_steps_hist[int(k)] = self.halt_steps_hist.get(int(k), 0) + int(n)
        return {"halt_step": b["halt_step"], "exact_at_halt": b["chosen"]["exact"] & (b["chosen"]["n_scored"] > 0),
                "exact_by_step": by_step, "counted": rows}

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for s, acc in self.at_step.items():
            for k, v in acc.compute().items():
                out[f"step{s}/{k}"] = v
        if self.learned_halting:
            for k, v in self.halt.compute().items():
                out[f"halt/{k}"] = v
            n = self.halt.count
            n_max = self.max_steps if self.max_steps is not None else max(self.observed_steps, 1)
            mean = self.halt_steps_sum / n if n else float("nan")
            out["halt/mean_steps"] = mean
            out["halt/halted_early"] = self.halted_early / n if n else float("nan")
            out["halt/compute_saved"] = 1.0 - mean / n_max if n else float("nan")
            for k in range(1, n_max + 1):
                out[f"halt/steps_hist/{k}"] = self.halt_steps_hist.get(k, 0)
        return out

    # -- distributed ----------------------------------------------------------------------------

    def state(self) -> dict:
        """This accumulator's counts (picklable), for :meth:`merge` on another rank."""
        return {"at_step": {k: v.state() for k, v in self.at_step.items()}, "halt": self.halt.state(),
                "halt_steps_sum": self.halt_steps_sum, "halted_early": self.halted_early,
                "halt_steps_hist": dict(self.halt_steps_hist), "observed_steps": self.observed_steps}

    def merge(self, states: Iterable[Mapping]) -> None:
        """Add other accumulators' ``state()`` into this one (do not pass this one's own state)."""
        for s in states:
            for k, a in self.at_step.items():
                a.merge([s["at_step"][k]])
            self.halt.merge([s["halt"]])
            self.halt_steps_sum += s["halt_steps_sum"]
            self.halted_early += s["halted_early"]
            for k, n in s["halt_steps_hist"].items():
                self.halt_steps_hist[int(k)] = self.halt_steps_hist.get(int(k), 0) + int(n)
            self.observed_steps = max(self.observed_steps, s["observed_steps"])


# ---------------------------------------------------------------------------------------------
# The reference's per-batch metric sums (ACTLossHead)
# ---------------------------------------------------------------------------------------------


def reference_metric_sums(
    preds_or_logits: Any,
    labels: Any,
    q_halt_logits: Any,
    steps: Any,
    halted: Any,
    lm_loss: Any = None,
    q_halt_loss: Any = None,
    q_continue_loss: Any = None,
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, float]:
    """The reference's metric sums for one supervision step of one batch (docs/reference.md section 6.3).

    Only slots that are halted at this step and have >= 1 scored label count:
    ``count``, ``accuracy`` (sum of per-sequence token accuracy), ``exact_accuracy`` (sum of exact
    matches), ``q_halt_accuracy`` (sum of [(q_halt_logit >= 0) == exact]), ``steps`` (sum of step
    counts). ``lm_loss`` is passed through as given (it is the training loss, computed over all
    slots). ``q_halt_loss`` is computed when not given: BCE-with-logits between ``q_halt_logits`` and
    the exact-match target, summed over **all** slots, as the reference does (a padding row, with no
    scored label, counts as exact there). ``q_continue_loss`` is added only when given.
    All values are Python floats; divide with :func:`normalise_metric_sums`.
    """
    c = sequence_correctness(preds_or_logits, labels, ignore_index)
    dev = c["exact"].device
    q = _as_tensor(q_halt_logits).to(dev).float().reshape(-1)
    st = _as_tensor(steps).to(dev).reshape(-1)
    h = _as_tensor(halted).to(dev).bool().reshape(-1)
    valid = h & (c["n_scored"] > 0)
    exact = c["exact"]
    out = {
        "count": float(valid.sum()),
        "accuracy": float(torch.where(valid, c["token_accuracy"], torch.zeros_like(c["token_accuracy"])).double().sum()),
        "exact_accuracy": float((valid & exact).sum()),
        "q_halt_accuracy": float((valid & ((q >= 0) == exact)).sum()),
        "steps": float(torch.where(valid, st.long(), torch.zeros_like(st.long())).sum()),
    }
    if lm_loss is not None:
        out["lm_loss"] = float(_as_tensor(lm_loss).double().sum())
    if q_halt_loss is None:
        q_halt_loss = torch.nn.functional.binary_cross_entropy_with_logits(q, exact.float(), reduction="sum")
    out["q_halt_loss"] = float(_as_tensor(q_halt_loss).double().sum())
    if q_continue_loss is not None:
        out["q_continue_loss"] = float(_as_tensor(q_continue_loss).double().sum())
    return out


def normalise_metric_sums(
    sums: Mapping[str, float], mode: str = "eval", global_batch_size: int | None = None
) -> dict[str, float]:
    """Divide accumulated sums as the reference logs them.

    ``mode="eval"``: every entry (losses included) is divided by the total ``count``; ``count`` is
    kept as the number of sequences. ``mode="train"``: keys ending in ``loss`` are divided by
    ``global_batch_size``, the rest by ``count`` (so ``count`` reads 1, as in the reference's log).
    """
    count = float(sums.get("count", 0.0))
    out: dict[str, float] = {}
    if mode == "eval":
        for k, v in sums.items():
            out[k] = float(v) if k == "count" else (float(v) / count if count else float("nan"))
    elif mode == "train":
        if not global_batch_size:
            raise ValueError("mode='train' needs global_batch_size")
        for k, v in sums.items():
            if k.endswith("loss"):
                out[k] = float(v) / global_batch_size
            else:
                out[k] = float(v) / count if count else float("nan")
    else:
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    return out
