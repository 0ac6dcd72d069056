"""What each puzzle's answer does across the supervision steps: settles, oscillates or wanders; which of
five classes it falls in; how well the halting head's probability matches the answers being right; and
how sure the latent z is when decoded through the output head, beside the answer y.

Everything works from a puzzle's answer at each supervision step, held in a :class:`StepAnswers`
(arrays [S, B]: steps, puzzles). Build one from

* a :class:`~trmlab.trace.Trace` (its ``supervision`` records): :meth:`StepAnswers.from_trace`;
* :class:`trmlab.eval.thinking.Trajectories` (one candidate; with ``keep_answers=True`` the answers are
  compared on the scored cells, else by the run's answer ids): :meth:`StepAnswers.from_trajectories`;
* plain arrays, answers [S, B, L] tokens and labels [B, L] (ignore = -100, not scored), optionally the
  z change sizes [S, B] and halting probabilities [S, B]: :meth:`StepAnswers.from_arrays`;
* the model and a batch (one run of the model's own loop, :func:`trmlab.model.supervision_steps`):
  :meth:`StepAnswers.from_model` / :func:`model_steps`.

Then:

* :func:`dynamics`: per puzzle the settle step (1-based: the first step from which the answer never
  changes again; -1 when the last step still changed it), the number of changes, the answers it
  returned to (an oscillation, e.g. the 2-cycle A, B, A, B) and whether it wanders (still changing at
  the last step and never returning to an earlier answer);
* :func:`classify`: five classes, ``solved_at_once``, ``solved_late``, ``stuck``, ``oscillating``,
  ``wandering`` (rules in :data:`CLASS_RULES`), with counts, Wilson 95% intervals and the puzzles of
  each class (to open in the player);
* :func:`halting_calibration` / :func:`calibration`: a reliability diagram's data (the halting head's
  probability sigmoid(halt logit), binned, against the fraction of answers right) and the expected
  calibration error;
* :func:`decode_entropy`: per step the mean entropy (nats, or bits) of z decoded through the output
  head and of y's, and the accuracy of each decoding.

Example (an untrained tiny model: the numbers mean nothing, the shapes are what a trained one gives)::

    >>> from trmlab.trace import sudoku_spec
    >>> from trmlab.trace.tiny import random_batch, tiny_model
    >>> from trmlab.trace.trajectories import StepAnswers, classify, decode_entropy, halting_calibration
    >>> model = tiny_model(sudoku_spec(4), n_supervision=4)
    >>> steps = StepAnswers.from_model(model, random_batch(sudoku_spec(4), batch_size=8))
    >>> classes = classify(steps)
    >>> [r["class"] for r in classes.counts()]
    ['solved_at_once', 'solved_late', 'stuck', 'oscillating', 'wandering']
    >>> int(halting_calibration(steps, n_bins=5).count.sum())       # every (puzzle, step) pair
    32
    >>> decode_entropy(model, random_batch(sudoku_spec(4), batch_size=8)).mean()["z_entropy"].shape
    (4,)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch

from trmlab.eval.metrics import wilson_interval
from trmlab.eval.thinking import Trajectories
from trmlab.model import supervision_steps

from .hooks import batch_on, model_device
from .recorder import Trace
from .tasks import IGNORE_LABEL, infer_task

#: the five classes, in the order they are counted and drawn
CLASSES = ("solved_at_once", "solved_late", "stuck", "oscillating", "wandering")
#: how :func:`classify` decides, in the order the rules are tried
CLASS_RULES = {
    "solved_at_once": "right at the last step, and the answer has not changed since a step <= at_once "
                      "(the right answer, settled early)",
    "solved_late": "right at the last step, but settled on it after step at_once (or changed at the last step)",
    "stuck": "wrong at the last step, on a fixed point: unchanged over the last stuck_for steps "
             "(over every step when there are no more)",
    "oscillating": "wrong, not stuck, and at some step it returned to an earlier, different answer "
                   "(e.g. the 2-cycle A, B, A, B)",
    "wandering": "wrong, not stuck, never returned to an earlier answer: it keeps moving to new answers",
}
#: z_change_kind: what ``StepAnswers.z_change`` measures
Z_CHANGE_KINDS = {
    "displacement": "RMS over the grid cells of z(step s) - z(step s-1), z(0) the initial state",
    "path": "sum over the step's latent updates of the trace's z_delta (the distance z travelled, >= the "
            "displacement)",
    "given": "given by the caller",
}


# -----------------------------------------------------------------------------------------------------
# The per-step answers
# -----------------------------------------------------------------------------------------------------


def _ids_of(answers: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
    """answers [S, B, L] -> [S, B] int64: per puzzle, equal answers (on the ``mask`` [B, L] cells) get
    equal ids, different ones different ids (exact: numbered per puzzle, no hashing)."""
    S, B, _ = answers.shape
    ids = np.zeros((S, B), np.int64)
    for b in range(B):
        rows = answers[:, b] if mask is None else answers[:, b, mask[b]]
        ids[:, b] = np.unique(rows, axis=0, return_inverse=True)[1].reshape(S)
    return ids


def _sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


@dataclass
class StepAnswers:
    """Each puzzle's answer at each supervision step, as the analysis needs it. Arrays [S, B].

    ``steps`` [S]: the 1-based supervision step of each row (a trace kept with ``keep_steps`` may skip
    some); ``answer_id``: equal ids, equal answers (within one puzzle; compared on the scored cells);
    ``correct`` (bool, None without labels): every scored cell right; ``z_change`` (float, optional): how
    much z moved over the step, measured as ``z_change_kind`` says (:data:`Z_CHANGE_KINDS`);
    ``halt_prob`` (optional): the halting head's probability sigmoid(halt logit) after the step;
    ``puzzles`` [B]: the puzzle's number (its dataset index when known, else its batch row), what a
    class's puzzle list gives; ``source``: where the data came from, in words.
    """

    steps: np.ndarray
    answer_id: np.ndarray
    correct: Optional[np.ndarray] = None
    z_change: Optional[np.ndarray] = None
    halt_prob: Optional[np.ndarray] = None
    puzzles: Optional[np.ndarray] = None
    z_change_kind: Optional[str] = None
    source: str = "arrays"

    def __post_init__(self):
        self.answer_id = np.asarray(self.answer_id)
        if self.answer_id.ndim != 2 or self.answer_id.shape[0] < 1:
            raise ValueError(f"StepAnswers.answer_id: expected [steps, puzzles] with at least one step, got shape "
                             f"{self.answer_id.shape}")
        S, B = self.answer_id.shape
        self.steps = np.asarray(self.steps, np.int64).reshape(-1)
        if self.steps.shape != (S,):
            raise ValueError(f"StepAnswers.steps: expected {S} step numbers (one per row of answer_id), got "
                             f"{self.steps.shape[0]}")
        for name in ("correct", "z_change", "halt_prob"):
            v = getattr(self, name)
            if v is None:
                continue
            v = np.asarray(v, bool if name == "correct" else np.float64)
            if v.shape != (S, B):
                raise ValueError(f"StepAnswers.{name}: expected shape {(S, B)} [steps, puzzles], got {v.shape}")
            setattr(self, name, v)
        if self.halt_prob is not None and np.any((self.halt_prob < 0) | (self.halt_prob > 1)):
            raise ValueError("StepAnswers.halt_prob: probabilities must lie in [0, 1] (pass sigmoid(halt logit))")
        self.puzzles = np.arange(B) if self.puzzles is None else np.asarray(self.puzzles, np.int64).reshape(-1)
        if self.puzzles.shape != (B,):
            raise ValueError(f"StepAnswers.puzzles: expected {B} puzzle numbers, got {self.puzzles.shape[0]}")
        if self.z_change is not None and self.z_change_kind is None:
            self.z_change_kind = "given"
        if self.z_change_kind is not None and self.z_change_kind not in Z_CHANGE_KINDS:
            raise ValueError(f"StepAnswers.z_change_kind must be one of {', '.join(Z_CHANGE_KINDS)}, got "
                             f"{self.z_change_kind!r}")

    @property
    def n_steps(self) -> int:
        return int(self.answer_id.shape[0])

    @property
    def n_puzzles(self) -> int:
        return int(self.answer_id.shape[1])

    # -- constructors ----------------------------------------------------------------------------------

    @classmethod
    def from_arrays(cls, answers, labels=None, z_change=None, halt_prob=None, steps=None, puzzles=None,
                    mask=None, source: str = "arrays") -> "StepAnswers":
        """From answers [S, B, L] (tokens) and labels [B, L] (``-100``: not scored, and not compared when
        telling answers apart); ``z_change`` / ``halt_prob`` [S, B]; ``steps`` [S] (default 1..S);
        ``mask`` [B, L] bool: the cells to score and compare (default: the labelled cells, or every cell
        without labels).

        >>> import numpy as np
        >>> a = np.array([[[2, 3]], [[2, 4]], [[2, 4]]])          # 3 steps, 1 puzzle, 2 cells
        >>> s = StepAnswers.from_arrays(a, labels=np.array([[2, 4]]))
        >>> s.answer_id[:, 0].tolist(), s.correct[:, 0].tolist()
        ([0, 1, 1], [False, True, True])
        """
        answers = np.asarray(answers)
        if answers.ndim != 3:
            raise ValueError(f"answers: expected [steps, puzzles, cells] tokens, got shape {answers.shape}")
        S, B, L = answers.shape
        correct = None
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (B, L):
                raise ValueError(f"labels: expected shape {(B, L)} [puzzles, cells], got {labels.shape}")
            scored = labels != IGNORE_LABEL
            mask = scored if mask is None else np.asarray(mask, bool) & scored
            correct = ((answers == labels[None]) | ~mask[None]).all(-1)
        elif mask is not None:
            mask = np.asarray(mask, bool)
        if mask is not None and mask.shape != (B, L):
            raise ValueError(f"mask: expected shape {(B, L)} [puzzles, cells], got {mask.shape}")
        return cls(np.arange(1, S + 1) if steps is None else steps, _ids_of(answers, mask), correct, z_change,
                   halt_prob, puzzles, source=source)

    @classmethod
    def from_trace(cls, tr: Trace, which: str = "y", cells: str = "all", z_change=None) -> "StepAnswers":
        """From a trace's ``supervision`` records: the decoded ``which`` ("y", the answer; or "z", what
        the latent would answer), compared on ``cells`` ("all": every labelled cell; "to_fill": not the
        puzzle's givens; see :meth:`Trace.label_mask`). The halting probability is sigmoid(halt logit)
        of each record. ``z_change`` [S, B] when given; else, when the trace kept its ``latent`` records,
        the distance z travelled over each step (the sum of those records' ``z_delta``,
        ``z_change_kind="path"``); else None. (The ``z_delta`` of a supervision record itself is 0: z
        does not move between the last answer update and the step's output.)"""
        if which not in ("y", "z"):
            raise ValueError(f"which must be 'y' or 'z', got {which!r}")
        sup = tr.records(events=["supervision"])
        if len(sup) == 0:
            raise ValueError("this trace has no 'supervision' records: trace with events including 'supervision'")
        answers = np.asarray(tr.arrays[f"{which}_pred"][sup]).astype(np.int64)
        mask = tr.label_mask(cells)
        if tr.labels is None and cells != "all":
            raise ValueError(f"cells={cells!r} needs the trace's labels")
        if "halt_logit" in tr.arrays:
            halt = _sigmoid(tr.arrays["halt_logit"][sup])
        else:
            halt = np.asarray(tr.arrays["halt_prob"][sup], np.float64)
        steps = tr.index[sup, 0].astype(np.int64) + 1
        kind = None
        if z_change is None and "latent" in tr.meta.get("events", []) and "z_delta" in tr.arrays:
            lat = tr.records(events=["latent"])
            z_change = np.stack([tr.arrays["z_delta"][lat[tr.index[lat, 0] == s - 1]].astype(np.float64).sum(0)
                                 for s in steps])
            kind = "path"
        rows = tr.meta.get("puzzle_index") or tr.meta.get("puzzle_rows")
        puzzles = rows if rows is not None and len(rows) == tr.n_puzzles else None
        labels = None if tr.labels is None else np.where(mask, tr.labels, IGNORE_LABEL)
        out = cls.from_arrays(answers, labels, z_change, halt, steps, puzzles, source=f"trace ({which})")
        if kind is not None:
            out.z_change_kind = kind
        return out

    @classmethod
    def from_trajectories(cls, tr: Trajectories, candidate: int = 0) -> "StepAnswers":
        """From one candidate (default 0: the plain evaluation, untransformed and noiseless) of a
        :class:`trmlab.eval.thinking.Trajectories` run: answers compared on the scored cells when the run
        kept them (``keep_answers=True``), else by the run's answer ids (every cell); right or wrong as
        the run scored it; the halting probability from its halt logits. No z sizes (the run keeps no
        states). A run with ``stop_when_halted`` repeats a stopped trajectory's answer, so it looks settled
        from there on."""
        C = tr.correct.shape[2]
        if not 0 <= candidate < C:
            raise ValueError(f"candidate must be in 0..{C - 1} (this run has {C} candidates), got {candidate}")
        halt = _sigmoid(tr.halt_logit[:, :, candidate])
        where = f"thinking run (candidate {candidate})"
        if tr.answers is not None:
            out = cls.from_arrays(tr.answers[:, :, candidate].astype(np.int64), tr.labels, halt_prob=halt,
                                  source=where)
            out.correct = np.asarray(tr.correct[:, :, candidate], bool)  # as the run scored it (puzzle's frame)
            return out
        ids = np.asarray(tr.answer_id[:, :, candidate], np.int64)
        return cls(np.arange(1, tr.steps + 1), ids, np.asarray(tr.correct[:, :, candidate], bool), None, halt,
                   source=where)

    @classmethod
    def from_model(cls, model, batch: dict, n_supervision: Optional[int] = None, cells: str = "all") -> "StepAnswers":
        """Run ``model`` on ``batch`` (every puzzle all ``n_supervision`` steps, default the model's N_sup)
        and keep y's answer, the halting probability and z's displacement over each step
        (``z_change_kind="displacement"``). See :func:`model_steps` (which also measures the decodings)."""
        return model_steps(model, batch, n_supervision, cells=cells)[0]


# -----------------------------------------------------------------------------------------------------
# Dynamics and classes
# -----------------------------------------------------------------------------------------------------


@dataclass
class Dynamics:
    """How each puzzle's answer moved. Arrays [B].

    ``settle_step``: the first (1-based) step from which the answer never changes again (with one step:
    1); -1 when the last step still changed it. ``final_run``: how many last steps give the same answer.
    ``changes``: steps at which the answer differs from the step before. ``distinct``: different answers
    seen. ``revisits``: steps at which it returned to an earlier answer different from the one just
    before (A, B, A, B has 2). ``oscillates``: revisits > 0. ``wanders``: still changing at the last step
    and never returning to an earlier answer."""

    settle_step: np.ndarray
    final_run: np.ndarray
    changes: np.ndarray
    distinct: np.ndarray
    revisits: np.ndarray

    @property
    def oscillates(self) -> np.ndarray:
        return self.revisits > 0

    @property
    def wanders(self) -> np.ndarray:
        return (self.settle_step == -1) & ~self.oscillates


def dynamics(steps: StepAnswers) -> Dynamics:
    """The settle step, changes and revisits of every puzzle (see :class:`Dynamics`).

    >>> import numpy as np
    >>> ids = np.array([[0, 0], [1, 1], [0, 2], [1, 2]])      # puzzle 0: A B A B; puzzle 1: A B C C
    >>> d = dynamics(StepAnswers(np.arange(1, 5), ids))
    >>> d.settle_step.tolist(), d.revisits.tolist(), d.final_run.tolist()
    ([-1, 3], [2, 0], [1, 2])
    """
    ids = steps.answer_id
    S, B = ids.shape
    same = ids[1:] == ids[:-1]                                            # [S-1, B]
    final_run = np.ones(B, np.int64)
    still = np.ones(B, bool)
    for t in range(S - 2, -1, -1):
        still &= same[t]
        final_run += still
    settle = np.where(final_run >= 2, S - final_run + 1, -1) if S > 1 else np.ones(B, np.int64)
    revisits = np.zeros(B, np.int64)
    for t in range(2, S):
        revisits += ~same[t - 1] & (ids[:t - 1] == ids[t]).any(0)
    distinct = np.array([len(np.unique(ids[:, b])) for b in range(B)], np.int64)
    return Dynamics(settle.astype(np.int64), final_run, (~same).sum(0).astype(np.int64), distinct, revisits)


@dataclass
class TrajectoryClasses:
    """Each puzzle's class (:data:`CLASSES`, rules in :data:`CLASS_RULES`) and what decided it.

    ``label`` [B] class names; ``correct`` [B]: right at the last step; ``dynamics``: :class:`Dynamics`;
    ``puzzles`` [B]: puzzle numbers (dataset indices when known); ``at_once`` / ``stuck_for``: the
    parameters; ``n_steps``: steps per trajectory; ``source``: the data's origin."""

    label: np.ndarray
    correct: np.ndarray
    dynamics: Dynamics
    puzzles: np.ndarray
    at_once: int
    stuck_for: int
    n_steps: int
    source: str = ""
    name: str = ""

    @property
    def n_puzzles(self) -> int:
        return int(self.label.shape[0])

    def counts(self) -> list[dict]:
        """One row per class (in :data:`CLASSES` order): ``class``, ``count``, ``fraction`` and its Wilson
        95% interval ``low``, ``high``, and ``puzzles`` (the total)."""
        n = self.n_puzzles
        rows = []
        for c in CLASSES:
            k = int((self.label == c).sum())
            lo, hi = wilson_interval(k, n)
            rows.append({"class": c, "count": k, "fraction": k / n if n else float("nan"), "low": lo, "high": hi,
                         "puzzles": n})
        return rows

    def puzzles_of(self, cls: str) -> list[int]:
        """The puzzle numbers of one class (what ``puzzles`` holds: dataset indices when known)."""
        if cls not in CLASSES:
            raise ValueError(f"unknown class {cls!r}; classes: {', '.join(CLASSES)}")
        return [int(p) for p in self.puzzles[self.label == cls]]

    def by_class(self) -> dict[str, list[int]]:
        """Class -> its puzzle numbers."""
        return {c: self.puzzles_of(c) for c in CLASSES}

    def summary(self) -> str:
        """One line per class: count, percent and interval, e.g. 'stuck  12  (7.5%, 95% CI 4.3-12.7%)'."""
        return "\n".join(f"{r['class']:15s} {r['count']:5d}  ({100 * r['fraction']:.1f}%, 95% CI "
                         f"{100 * r['low']:.1f}-{100 * r['high']:.1f}%)" for r in self.counts())


def classify(steps: StepAnswers, at_once: int = 2, stuck_for: int = 2, name: str = "") -> TrajectoryClasses:
    """Put every puzzle in one of :data:`CLASSES` by the rules of :data:`CLASS_RULES`, tried in order.

    ``at_once`` (default 2): a right answer settled by this step counts as solved at once (the trained
    models answer most puzzles they solve within a couple of steps; 1 keeps only those right and
    unchanged from the first step). ``stuck_for`` (default 2, like ``Thinking.fixed_point``): a wrong
    answer unchanged over the last ``stuck_for`` steps (that is, the last ``stuck_for + 1`` answers
    equal; with fewer steps, every answer equal) is stuck. ``name``: a label for figures (a task or a
    model). Needs the labels (``steps.correct``).

    >>> import numpy as np
    >>> ids = np.array([[0, 0, 0, 0, 0], [0, 1, 1, 1, 1], [0, 2, 1, 0, 2], [0, 2, 1, 1, 3]])  # [step, puzzle]
    >>> right = np.array([[1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 0, 0, 0]], bool)
    >>> classify(StepAnswers(np.arange(1, 5), ids, right)).label.tolist()
    ['solved_at_once', 'solved_late', 'stuck', 'oscillating', 'wandering']
    """
    for pname, v in (("at_once", at_once), ("stuck_for", stuck_for)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"classify: {pname} must be an integer >= 1, got {v!r}")
    if steps.correct is None:
        raise ValueError("classify needs the labels: StepAnswers.correct is None (give labels)")
    d = dynamics(steps)
    S = steps.n_steps
    right = steps.correct[-1]
    early = (d.settle_step >= 1) & (d.settle_step <= at_once)
    stuck = d.final_run >= min(stuck_for, S - 1) + 1
    label = np.where(right, np.where(early, "solved_at_once", "solved_late"),
                     np.where(stuck, "stuck", np.where(d.oscillates, "oscillating", "wandering")))
    return TrajectoryClasses(label.astype(object), right.copy(), d, steps.puzzles.copy(), int(at_once),
                             int(stuck_for), S, steps.source, name)


# -----------------------------------------------------------------------------------------------------
# Halting-head calibration
# -----------------------------------------------------------------------------------------------------

CALIBRATION_WHERE = {"every_step": "every (puzzle, supervision step) pair: the halting head's probability "
                                   "after the step against that step's answer being right (what the head is "
                                   "trained to predict at every step)",
                     "final_step": "each puzzle's last step only"}


@dataclass
class Calibration:
    """A reliability diagram's data: ``n_bins`` equal-width bins of the predicted probability on [0, 1]
    (the last bin includes 1). Per bin [n_bins]: ``count``, ``mean_prob`` (the mean predicted
    probability; nan when empty), ``accuracy`` (the fraction right; nan when empty) and its Wilson 95%
    interval ``low``, ``high``. ``ece``: the expected calibration error, sum over bins of
    count / n * |accuracy - mean_prob| (0: calibrated). ``where``: what was binned, in words."""

    edges: np.ndarray
    count: np.ndarray
    mean_prob: np.ndarray
    accuracy: np.ndarray
    low: np.ndarray
    high: np.ndarray
    ece: float
    n: int
    where: str = ""
    name: str = ""

    def rows(self) -> list[dict]:
        """One dict per non-empty bin: ``lo``/``hi`` edges, ``count``, ``mean_prob``, ``accuracy``, ``low``,
        ``high``."""
        return [{"lo": float(self.edges[i]), "hi": float(self.edges[i + 1]), "count": int(self.count[i]),
                 "mean_prob": float(self.mean_prob[i]), "accuracy": float(self.accuracy[i]),
                 "low": float(self.low[i]), "high": float(self.high[i])}
                for i in range(len(self.count)) if self.count[i]]


def calibration(prob, correct, n_bins: int = 10, where: str = "", name: str = "") -> Calibration:
    """Bin predicted probabilities ``prob`` (any shape) against outcomes ``correct`` (same shape, bool).

    >>> import numpy as np
    >>> c = calibration(np.array([0.25] * 4 + [0.75] * 4), np.array([1, 0, 0, 0, 1, 1, 1, 0], bool), n_bins=2)
    >>> c.count.tolist(), c.accuracy.tolist(), c.ece
    ([4, 4], [0.25, 0.75], 0.0)
    """
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"calibration: n_bins must be an integer >= 1, got {n_bins!r}")
    p = np.asarray(prob, np.float64).reshape(-1)
    ok = np.asarray(correct, bool).reshape(-1)
    if p.shape != ok.shape:
        raise ValueError(f"calibration: prob and correct must have the same number of values, got {p.size} and "
                         f"{ok.size}")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("calibration: prob must be probabilities in [0, 1] (no nan)")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(b, minlength=n_bins)
    right = np.bincount(b, weights=ok.astype(np.float64), minlength=n_bins)
    psum = np.bincount(b, weights=p, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.where(count > 0, psum / np.maximum(count, 1), np.nan)
        acc = np.where(count > 0, right / np.maximum(count, 1), np.nan)
    ci = [wilson_interval(int(round(r)), int(c)) for r, c in zip(right, count)]
    n = int(p.size)
    ece = float(np.sum(count[count > 0] * np.abs(acc[count > 0] - mean_prob[count > 0])) / n) if n else float("nan")
    return Calibration(edges, count.astype(np.int64), mean_prob, acc, np.array([c[0] for c in ci]),
                       np.array([c[1] for c in ci]), ece, n, where, name)


def halting_calibration(steps: StepAnswers, where: str = "every_step", n_bins: int = 10,
                        name: str = "") -> Calibration:
    """The halting head's calibration: its probability sigmoid(halt logit) against the answer being
    exactly right, over ``where`` (:data:`CALIBRATION_WHERE`: ``every_step`` or ``final_step``). For a
    model trained with the continue loss (``act_continue``) it halts on halt > continue, but the halt
    logit is still trained to predict a right answer, so this is its calibration too."""
    if where not in CALIBRATION_WHERE:
        raise ValueError(f"where must be one of {', '.join(CALIBRATION_WHERE)}, got {where!r}")
    if steps.halt_prob is None:
        raise ValueError("halting_calibration: StepAnswers.halt_prob is None (give the halting probabilities)")
    if steps.correct is None:
        raise ValueError("halting_calibration needs the labels: StepAnswers.correct is None")
    if where == "final_step":
        return calibration(steps.halt_prob[-1], steps.correct[-1], n_bins, CALIBRATION_WHERE[where], name)
    return calibration(steps.halt_prob, steps.correct, n_bins, CALIBRATION_WHERE[where], name)


# -----------------------------------------------------------------------------------------------------
# z and y decoded through the output head
# -----------------------------------------------------------------------------------------------------


def entropy(probs, bits: bool = False, axis: int = -1) -> np.ndarray:
    """The entropy of probability vectors along ``axis`` (0 log 0 = 0), in nats (``bits=True``: bits).

    >>> round(float(entropy(np.full(8, 1 / 8), bits=True)), 6)
    3.0
    """
    p = np.asarray(probs, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis)
    return h / math.log(2) if bits else h


@dataclass
class DecodeEntropy:
    """y and z decoded through the output head at each supervision step. Arrays [S, B] (per puzzle, the
    mean over its ``cells``).

    ``y_entropy`` / ``z_entropy``: mean entropy per cell of the decoded distribution, in ``unit``
    ("nats" or "bits"; the most is log V, ``max_entropy``); ``y_accuracy`` / ``z_accuracy``: fraction of
    the scored cells the decoding's argmax gets right; ``y_exact`` / ``z_exact``: every scored cell right
    (the accuracies None without labels). ``cells``: "all" (the labelled cells; every cell without
    labels) or "to_fill" (not the puzzle's givens)."""

    steps: np.ndarray
    y_entropy: np.ndarray
    z_entropy: np.ndarray
    y_accuracy: Optional[np.ndarray]
    z_accuracy: Optional[np.ndarray]
    y_exact: Optional[np.ndarray]
    z_exact: Optional[np.ndarray]
    unit: str
    vocab_size: int
    cells: str = "all"
    name: str = ""

    @property
    def max_entropy(self) -> float:
        """log V in ``unit``: a uniform decoding."""
        return math.log(self.vocab_size) / (math.log(2) if self.unit == "bits" else 1.0)

    def mean(self) -> dict:
        """Per step [S], the means over puzzles: ``y_entropy``, ``z_entropy`` and (with labels)
        ``y_accuracy``, ``z_accuracy``, ``y_exact``, ``z_exact``; and ``steps``."""
        out = {"steps": self.steps}
        for k in ("y_entropy", "z_entropy", "y_accuracy", "z_accuracy", "y_exact", "z_exact"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v.astype(np.float64).mean(1)
        return out

    def rows(self) -> list[dict]:
        """One dict per step with the means of :meth:`mean` (a table's rows)."""
        m = self.mean()
        return [{k: (int(v[i]) if k == "steps" else float(v[i])) for k, v in m.items()} for i in range(len(self.steps))]


def _cell_mask(labels: Optional[np.ndarray], inputs: np.ndarray, task, cells: str) -> np.ndarray:
    if cells not in ("all", "to_fill"):
        raise ValueError(f"cells must be 'all' or 'to_fill', got {cells!r}")
    mask = np.ones(inputs.shape, bool) if labels is None else labels != IGNORE_LABEL
    if cells == "to_fill":
        mask &= ~task.givens(inputs)
    return mask


def _per_puzzle(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """values [S, B, L], mask [B, L] -> [S, B]: the mean over each puzzle's masked cells (nan: none)."""
    n = mask.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (values * mask[None]).sum(-1) / np.maximum(n, 1), np.nan)


def _scores(pred: np.ndarray, labels: Optional[np.ndarray], mask: np.ndarray):
    if labels is None:
        return None, None
    right = (pred == labels[None]) & mask[None]
    n = np.maximum(mask.sum(-1), 1)
    return right.sum(-1) / n[None], right.sum(-1) == mask.sum(-1)[None]


def _decode_entropy_of_trace(tr: Trace, bits: bool, cells: str) -> DecodeEntropy:
    if "y_probs" not in tr.arrays or "z_probs" not in tr.arrays:
        raise ValueError("decode_entropy: this trace has no token probabilities; trace with full_probs=True "
                         "(or pass the model and a batch)")
    sup = tr.records(events=["supervision"])
    if len(sup) == 0:
        raise ValueError("this trace has no 'supervision' records: trace with events including 'supervision'")
    mask = _cell_mask(tr.labels, tr.inputs, tr.task, cells)
    out = {}
    for w in ("y", "z"):
        h = entropy(tr.arrays[f"{w}_probs"][sup].astype(np.float32), bits)           # [S, B, L]
        out[f"{w}_entropy"] = _per_puzzle(h, mask)
        out[f"{w}_accuracy"], out[f"{w}_exact"] = _scores(tr.arrays[f"{w}_pred"][sup].astype(np.int64), tr.labels, mask)
    return DecodeEntropy(tr.index[sup, 0].astype(np.int64) + 1, unit="bits" if bits else "nats",
                         vocab_size=int(tr.arrays["y_probs"].shape[-1]), cells=cells, **out)


def model_steps(model, batch: dict, n_supervision: Optional[int] = None, bits: bool = False,
                cells: str = "all") -> tuple[StepAnswers, DecodeEntropy]:
    """One run of ``model`` on ``batch`` through its own loop (:func:`trmlab.model.supervision_steps`,
    every puzzle all ``n_supervision`` steps, default N_sup; evaluation mode, as ``trace`` runs it), and
    from each step's output: y's answer, the halting probability, z's displacement over the step
    (``z_change_kind="displacement"``) as a :class:`StepAnswers`; and y's and z's decodings through the
    output head (``model.decode``) as a :class:`DecodeEntropy`. ``batch``: ``inputs`` [B, L] (and
    ``labels``, ``puzzle_identifiers``, ``index``), torch or numpy. Memory: [S, B] numbers plus one
    step's states."""
    device = model_device(model)
    batch = batch_on(batch, device)
    inputs = batch["inputs"].cpu().numpy().astype(np.int64)
    B, L = inputs.shape
    labels = batch["labels"].cpu().numpy().astype(np.int64) if "labels" in batch else None
    task = infer_task(model.cfg.vocab_size, L)
    mask = _cell_mask(labels, inputs, task, cells)
    log_base = math.log(2) if bits else 1.0
    keep: dict = {k: [] for k in ("pred", "halt", "dz", "y_h", "z_h", "z_pred")}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            prev_z = model.core.initial_state(B, device)[1][:, -L:].float()
            for s in supervision_steps(model, batch, n_supervision, "max", with_carry=True):
                z = s.carry.latent[:, -L:].float()
                keep["dz"].append((z - prev_z).pow(2).sum(-1).mean(-1).sqrt().cpu().numpy())
                prev_z = z
                keep["halt"].append(torch.sigmoid(s.out["q_halt_logits"].double()).cpu().numpy())
                for w, logits in (("y", s.out["logits"]), ("z", model.decode(s.carry.latent))):
                    logp = torch.log_softmax(logits.float(), -1)
                    keep[f"{w}_h"].append((-(logp.exp() * logp).sum(-1) / log_base).cpu().numpy())
                    keep["pred" if w == "y" else "z_pred"].append(logp.argmax(-1).cpu().numpy().astype(np.int64))
    finally:
        model.train(was_training)
    pred, z_pred = np.stack(keep["pred"]), np.stack(keep["z_pred"])
    S = pred.shape[0]
    idx = batch.get("index")
    puzzles = idx.cpu().numpy().astype(np.int64) if isinstance(idx, torch.Tensor) else None
    score_labels = None if labels is None else np.where(mask, labels, IGNORE_LABEL)
    answers = StepAnswers.from_arrays(pred, score_labels, np.stack(keep["dz"]), np.stack(keep["halt"]),
                                      puzzles=puzzles, mask=None if labels is not None else mask, source="model")
    answers.z_change_kind = "displacement"
    y_acc, y_ex = _scores(pred, labels, mask)
    z_acc, z_ex = _scores(z_pred, labels, mask)
    ent = DecodeEntropy(np.arange(1, S + 1), _per_puzzle(np.stack(keep["y_h"]), mask),
                        _per_puzzle(np.stack(keep["z_h"]), mask), y_acc, z_acc, y_ex, z_ex,
                        "bits" if bits else "nats", int(model.cfg.vocab_size), cells)
    return answers, ent


def decode_entropy(source: Union[Trace, "torch.nn.Module"], batch: Optional[dict] = None,
                   n_supervision: Optional[int] = None, bits: bool = False, cells: str = "all") -> DecodeEntropy:
    """Per supervision step, how sure y and z are when decoded through the output head (the mean entropy
    per cell, nats by default, bits with ``bits=True``) and how right each decoding is
    (:class:`DecodeEntropy`). ``source``: a :class:`Trace` recorded with ``full_probs=True`` (its
    ``supervision`` records), or the model with a ``batch`` (one run: :func:`model_steps`)."""
    if isinstance(source, Trace):
        if batch is not None:
            raise ValueError("decode_entropy: a trace carries its own puzzles; pass no batch with it")
        return _decode_entropy_of_trace(source, bits, cells)
    if batch is None:
        raise ValueError("decode_entropy: with a model, pass the batch to run it on")
    return model_steps(source, batch, n_supervision, bits, cells)[1]
