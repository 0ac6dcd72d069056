"""Record what the recursion does: y and z at every latent update, answer update and supervision step.

``trace(model, batch)`` runs the model in evaluation mode through ``n_supervision`` supervision steps of
its own loop (``trmlab.model.supervision_steps``, the evaluator's) with an observer on the recursion
(docs/contracts.md: ``observer(event, recursion, latent_step, answer, latent)``) and keeps, for every
record:

* the answer y decoded through the output head (argmax and the probability of the argmax; with
  ``full_probs=True`` every token's probability), and the latent z decoded through the same head
  (what z would answer);
* the halting and continue logits of y (and the halting probability sigmoid(halt logit));
* the RMS norms of y and z over the grid cells and how much each moved since the previous record
  (RMS over cells of the per-cell change);
* y and z projected on a PCA plane fitted on the trace's per-cell states: per cell, and pooled (the
  mean over cells, projected with the same fit, so a pooled point is the centre of its cell cloud).

Records come in the model's order; each has an explicit index ``(supervision step, recursion t of T,
latent update i of n)`` and an event: ``latent`` (after z update i of recursion t), ``answer`` (after
the y update of recursion t; latent_step = n) and ``supervision`` (the step's output: the model's own
logits and halting logit; recursion = T-1, latent_step = n). So a full trace has
``N_sup * (T * (n + 1) + 1)`` records.

With the observer off (``observer=None``) the model's forward does nothing extra: tracing costs only
when it runs. Memory is proportional to what is kept: ``keep_puzzles`` slices the batch before the
model runs, ``keep_steps`` and ``events`` choose which records are stored. The per-cell PCA needs the
states themselves: they are held (float16, grid cells only) while the trace runs when that fits in
``state_budget_mb``, otherwise the model is run a second time (evaluation is deterministic) to project.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np
import torch

from trmlab.io import atomic_write
from trmlab.model import SupervisionStep, supervision_steps, wants_to_halt

from .hooks import Hooks, batch_on, model_device
from .projection import PCA, CovarianceAccumulator
from .tasks import IGNORE_LABEL, TaskSpec, infer_task

EVENTS = ("latent", "answer", "supervision")
_EVENT_CODE = {e: k for k, e in enumerate(EVENTS)}

#: per-record arrays: name -> True when it has a per-cell axis
RECORD_ARRAYS = {
    "y_pred": True, "z_pred": True, "y_conf": True, "z_conf": True,
    "halt_prob": False, "halt_logit": False, "continue_logit": False, "y_norm": False, "z_norm": False, "y_delta": False, "z_delta": False,
    "y_pc": False, "z_pc": False, "y_cell_pc": True, "z_cell_pc": True, "halted": False,
}


@dataclass
class Trace:
    """A recorded recursion. Arrays are numpy; the leading axes are [record, puzzle, (cell)].

    ``index`` [R, 3]: (supervision step, recursion t, latent step i); ``event`` [R]: codes into EVENTS.
    ``inputs``/``labels`` [B, seq_len] (labels may be None); ``arrays`` holds the per-record arrays
    listed in RECORD_ARRAYS (+ ``y_probs``/``z_probs`` [R, B, L, V] with ``full_probs``).
    """

    task: TaskSpec
    index: np.ndarray
    event: np.ndarray
    inputs: np.ndarray
    labels: Optional[np.ndarray]
    arrays: dict
    meta: dict = field(default_factory=dict)
    #: the (y, z) PCA planes the per-cell and pooled points were projected on (``trace(planes=...)``
    #: takes them back, so a continued run draws on the same plane); not saved: None after ``load``
    planes: Optional[tuple] = field(default=None, repr=False, compare=False)

    # -- shape and names ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @property
    def n_puzzles(self) -> int:
        return int(self.inputs.shape[0])

    def __getattr__(self, name):
        arrays = self.__dict__.get("arrays")
        if arrays is not None and name in arrays:
            return arrays[name]
        raise AttributeError(name)

    def event_name(self, k: int) -> str:
        return EVENTS[int(self.event[k])]

    def step_label(self, k: int) -> str:
        """The record's index spelled out, e.g. 'supervision step 2/16 · recursion 1/3 · latent update 4/6'."""
        s, t, i = (int(v) for v in self.index[k])
        N, T, n = self.meta["n_supervision"], self.meta["n_recursions"], self.meta["n_latent_steps"]
        ev = self.event_name(k)
        head = f"supervision step {s + 1}/{N}"
        if ev == "latent":
            return f"{head} · recursion {t + 1}/{T} · latent update z {i + 1}/{n}"
        if ev == "answer":
            return f"{head} · recursion {t + 1}/{T} · answer update y"
        return f"{head} · output (end of step)"

    def records(self, events: Optional[Iterable[str]] = None, steps: Optional[Iterable[int]] = None) -> np.ndarray:
        """Record numbers, optionally only some events / supervision steps."""
        keep = np.ones(len(self), bool)
        if events is not None:
            codes = [_EVENT_CODE[e] for e in events]
            keep &= np.isin(self.event, codes)
        if steps is not None:
            keep &= np.isin(self.index[:, 0], list(steps))
        return np.nonzero(keep)[0]

    # -- correctness ----------------------------------------------------------------------------------

    def label_mask(self, cells: str = "all") -> Optional[np.ndarray]:
        """Bool [B, L]: the cells scored. ``cells="all"``: every cell with a label (not ignored), as
        ``trmlab eval`` scores; ``cells="to_fill"``: only those the puzzle leaves to the model (not its
        givens: Sudoku digits, maze walls/S/G), which is what the views draw as predictions."""
        if self.labels is None:
            return None
        mask = self.labels != IGNORE_LABEL
        if cells == "to_fill":
            return mask & ~self.task.givens(self.inputs)
        if cells != "all":
            raise ValueError(f"cells must be 'all' or 'to_fill', got {cells!r}")
        return mask

    def correct(self, which: str = "y", cells: str = "all") -> Optional[np.ndarray]:
        """Bool [R, B, L]: the decoded y (or z) equals the label (False on cells not scored)."""
        if self.labels is None:
            return None
        pred = self.arrays[f"{which}_pred"]
        return (pred == self.labels[None]) & self.label_mask(cells)[None]

    def accuracy(self, which: str = "y", cells: str = "all") -> Optional[np.ndarray]:
        """[R, B]: fraction of the scored cells right (``cells``: see :meth:`label_mask`)."""
        c = self.correct(which, cells)
        if c is None:
            return None
        n = np.maximum(self.label_mask(cells).sum(-1), 1)
        return c.sum(-1) / n[None]

    def exact(self, which: str = "y", cells: str = "all") -> Optional[np.ndarray]:
        """Bool [R, B]: every scored cell right."""
        c = self.correct(which, cells)
        if c is None:
            return None
        return c.sum(-1) == self.label_mask(cells).sum(-1)[None]

    def final_answer(self) -> np.ndarray:
        """[B, L] tokens: the answer at the last record."""
        return self.arrays["y_pred"][-1]

    def wants_to_halt(self) -> np.ndarray:
        """Bool [R, B]: at each record, the model's halting rule (``trmlab.model.wants_to_halt``) says
        halt: halt logit > 0, or halt > continue for a model trained with the continue loss
        (``act_continue`` in the traced model's config)."""
        act_continue = bool((self.meta.get("model") or {}).get("act_continue", False))
        if "halt_logit" in self.arrays:
            halt = self.arrays["halt_logit"]
        else:  # a trace written before the logits were kept: the logit from the probability
            p = np.clip(self.arrays["halt_prob"].astype(np.float64), 1e-12, 1 - 1e-12)
            halt = np.log(p) - np.log1p(-p)
        if act_continue and "continue_logit" not in self.arrays:
            raise ValueError("this trace has no continue logits (written by an older trmlab), but the model "
                             "halts on halt > continue (act_continue): trace it again")
        cont = self.arrays["continue_logit"] if act_continue else None
        return np.asarray(wants_to_halt(halt, cont, act_continue), bool)

    def halted_at(self) -> np.ndarray:
        """[B]: the first supervision step (0-based) at whose output the model's halting rule says halt
        (see :meth:`wants_to_halt`), or the last step if it never does."""
        sup = self.records(events=["supervision"])
        out = np.full(self.n_puzzles, int(self.index[-1, 0]) if len(self) else 0)
        if len(sup):
            wants = self.wants_to_halt()[sup]
            for b in range(self.n_puzzles):
                hits = np.nonzero(wants[:, b])[0]
                if len(hits):
                    out[b] = int(self.index[sup[hits[0]], 0])
        return out

    def puzzle(self, b: int) -> "Trace":
        """A trace of one puzzle (shares nothing mutable with this one)."""
        arrays = {k: v[:, b:b + 1].copy() for k, v in self.arrays.items()}
        meta = dict(self.meta)
        for key in ("puzzle_index", "puzzle_identifiers"):
            if key in meta and isinstance(meta[key], list) and len(meta[key]) == self.n_puzzles:
                meta[key] = [meta[key][b]]
        return Trace(self.task, self.index.copy(), self.event.copy(), self.inputs[b:b + 1].copy(),
                     None if self.labels is None else self.labels[b:b + 1].copy(), arrays, meta, self.planes)

    # -- save / load -----------------------------------------------------------------------------------

    def save(self, path: str) -> tuple[str, str]:
        """Write ``<stem>.npz`` (arrays) and ``<stem>.json`` (task, index meaning, model config, PCA),
        each atomically."""
        stem = path[:-4] if path.endswith((".npz", ".json")) else path
        if path.endswith(".json"):
            stem = path[:-5]
        os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
        arrays = {"index": self.index, "event": self.event, "inputs": self.inputs}
        if self.labels is not None:
            arrays["labels"] = self.labels
        arrays.update({f"rec__{k}": v for k, v in self.arrays.items()})
        atomic_write(stem + ".npz", lambda f: np.savez_compressed(f, **arrays))
        doc = {"format": "trmlab.trace/1", "events": list(EVENTS), "task": self.task.to_dict(),
               "index_columns": ["supervision_step", "recursion", "latent_step"], "meta": self.meta,
               "records": len(self), "puzzles": self.n_puzzles}
        atomic_write(stem + ".json", lambda f: json.dump(doc, f, indent=1, default=_json_default), binary=False)
        return stem + ".npz", stem + ".json"

    @classmethod
    def load(cls, path: str) -> "Trace":
        stem = path
        for ext in (".npz", ".json"):
            if stem.endswith(ext):
                stem = stem[: -len(ext)]
        with open(stem + ".json") as f:
            doc = json.load(f)
        with np.load(stem + ".npz") as z:
            data = {k: z[k] for k in z.files}
        arrays = {k[5:]: v for k, v in data.items() if k.startswith("rec__")}
        return cls(TaskSpec.from_dict(doc["task"]), data["index"], data["event"], data["inputs"],
                   data.get("labels"), arrays, doc.get("meta", {}))


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    return str(o)


# -----------------------------------------------------------------------------------------------------
# Recording
# -----------------------------------------------------------------------------------------------------

StepFilter = Union[None, Sequence[int], Callable[[int], bool]]


def _step_keeper(keep_steps: StepFilter) -> Callable[[int], bool]:
    if keep_steps is None:
        return lambda s: True
    if callable(keep_steps):
        return keep_steps
    if isinstance(keep_steps, slice):
        return lambda s: s in range(*keep_steps.indices(10 ** 9))
    wanted = {int(s) for s in keep_steps}
    return lambda s: s in wanted


def _q_logits(model, answer: torch.Tensor) -> torch.Tensor:
    """[B, 2] float32: the halting and continue logits the model reads from the answer y."""
    core = getattr(model, "core", None)
    if core is not None and hasattr(core, "q_logits"):
        return core.q_logits(answer).float()
    halt = model.halt_logit(answer).float()
    return torch.stack([halt, torch.full_like(halt, float("nan"))], -1)


def _rms(x: torch.Tensor) -> torch.Tensor:
    """[B, L, D] -> [B]: sqrt(mean over cells of the squared per-cell norm)."""
    return x.pow(2).sum(-1).mean(-1).sqrt()


class _Recorder:
    """The observer: decodes and measures every kept record, tracks previous states for the deltas."""

    def __init__(self, model, seq_len: int, keep: Callable[[int], bool], events: set, full_probs: bool,
                 hold_states: bool, pca_mode: str):
        self.model, self.seq_len, self.keep, self.events = model, seq_len, keep, events
        self.full_probs, self.hold_states, self.pca_mode = full_probs, hold_states, pca_mode
        self.step = 0
        self.prev_y = self.prev_z = None
        self.index, self.event = [], []
        self.rec = {k: [] for k in RECORD_ARRAYS if not k.endswith("_pc")}
        self.rec["y_probs"], self.rec["z_probs"] = [], []
        self.states_y, self.states_z = [], []  # per-cell states (float16) when held
        self.pooled_y, self.pooled_z = [], []  # [B, D] float32, always (small)
        self.cells_acc = {"y": CovarianceAccumulator(), "z": CovarianceAccumulator()}

    def cells(self, state: torch.Tensor) -> torch.Tensor:
        return state.detach()[:, state.shape[1] - self.seq_len:].float()

    def __call__(self, event: str, recursion: int, latent_step: int, answer: torch.Tensor, latent: torch.Tensor):
        y, z = self.cells(answer), self.cells(latent)
        keep = self.keep(self.step) and event in self.events
        if keep:
            q = _q_logits(self.model, answer)
            self._record(event, recursion, latent_step, y, z, self.model.decode(answer), self.model.decode(latent),
                         q, halted=None)
        self.prev_y, self.prev_z = y.clone(), z.clone()

    def supervision(self, s: SupervisionStep):
        """The step's own output, as the model's loop (:func:`trmlab.model.supervision_steps`) yields it."""
        if not (self.keep(self.step) and "supervision" in self.events):
            return
        out, carry = s.out, s.carry
        y, z = self.cells(carry.answer), self.cells(carry.latent)
        T, n = self.model.cfg.n_recursions, self.model.cfg.n_latent_steps
        q = torch.stack([out["q_halt_logits"].float(), out["q_continue_logits"].float()], -1)
        self._record("supervision", T - 1, n, y, z, out["logits"], self.model.decode(carry.latent), q,
                     halted=carry.halted)

    def _record(self, event, t, i, y, z, y_logits, z_logits, q, halted):
        self.index.append((self.step, t, i))
        self.event.append(_EVENT_CODE[event])
        for name, logits in (("y", y_logits), ("z", z_logits)):
            probs = torch.softmax(logits.detach().float(), -1)
            conf, pred = probs.max(-1)
            self.rec[f"{name}_pred"].append(pred.to(torch.int16).cpu().numpy())
            self.rec[f"{name}_conf"].append(conf.to(torch.float16).cpu().numpy())
            if self.full_probs:
                self.rec[f"{name}_probs"].append(probs.to(torch.float16).cpu().numpy())
        self.rec["halt_prob"].append(torch.sigmoid(q[:, 0]).cpu().numpy().astype(np.float32))
        self.rec["halt_logit"].append(q[:, 0].cpu().numpy().astype(np.float32))
        self.rec["continue_logit"].append(q[:, 1].cpu().numpy().astype(np.float32))
        self.rec["y_norm"].append(_rms(y).cpu().numpy())
        self.rec["z_norm"].append(_rms(z).cpu().numpy())
        for name, now, prev in (("y", y, self.prev_y), ("z", z, self.prev_z)):
            d = _rms(now - prev) if prev is not None else torch.full((now.shape[0],), float("nan"))
            self.rec[f"{name}_delta"].append(d.cpu().numpy())
        B = y.shape[0]
        self.rec["halted"].append(np.zeros(B, bool) if halted is None else halted.cpu().numpy().astype(bool))
        self.add_states(y, z)

    def add_states(self, y: torch.Tensor, z: torch.Tensor):
        """PCA bookkeeping for one record: accumulate the per-cell covariance (the one fit), keep the
        pooled states (mean over cells), hold the per-cell states when they fit."""
        if self.pca_mode == "none":
            return
        joint = self.pca_mode == "joint"
        self.cells_acc["y"].add(y)
        self.cells_acc["y" if joint else "z"].add(z)
        self.pooled_y.append(y.mean(1).cpu().numpy())
        self.pooled_z.append(z.mean(1).cpu().numpy())
        if self.hold_states:
            self.states_y.append(y.to(torch.float16).cpu())
            self.states_z.append(z.to(torch.float16).cpu())


class _Projector:
    """Second pass: project each kept record's cells on the fitted planes."""

    def __init__(self, seq_len, keep, events, pca_y: PCA, pca_z: PCA, model):
        self.seq_len, self.keep, self.events, self.model = seq_len, keep, events, model
        self.pca_y, self.pca_z = pca_y, pca_z
        self.step = 0
        self.y, self.z = [], []

    def _add(self, answer, latent):
        y = answer.detach()[:, answer.shape[1] - self.seq_len:].float()
        z = latent.detach()[:, latent.shape[1] - self.seq_len:].float()
        self.y.append(self.pca_y.transform(y))
        self.z.append(self.pca_z.transform(z))

    def __call__(self, event, recursion, latent_step, answer, latent):
        if self.keep(self.step) and event in self.events:
            self._add(answer, latent)

    def supervision(self, s: SupervisionStep):
        if self.keep(self.step) and "supervision" in self.events:
            self._add(s.carry.answer, s.carry.latent)


def _run(model, batch: dict, n_sup: int, observer, continue_after_halt: bool, hooks=(), interventions=()) -> None:
    """Run the batch through the model's own supervision loop (:func:`trmlab.model.supervision_steps`,
    every row all ``n_sup`` steps) with ``observer`` on the recursion, and hand it each step's output.
    ``continue_after_halt=False``: a slot the wrapper halted is reset and restarts its puzzle. ``hooks`` and
    ``interventions`` (:mod:`trmlab.trace.hooks`) act before the observer sees the states."""

    def at_step(step: int):
        observer.step = step
        return observer

    reach = Hooks(model, batch, hooks, interventions, watch=at_step, n_supervision=n_sup)
    for s in supervision_steps(model, batch, n_sup, "max", observer_factory=reach.observer_factory,
                               between=reach.between, restart_halted=not continue_after_halt, with_carry=True):
        observer.supervision(s)


@torch.no_grad()
def trace(model, batch: dict, labels=None, n_supervision: Optional[int] = None, keep_steps: StepFilter = None,
          keep_puzzles: Optional[Sequence[int]] = None, events: Iterable[str] = EVENTS, full_probs: bool = False,
          task: Optional[TaskSpec] = None, pca: str = "joint", state_budget_mb: float = 256.0,
          continue_after_halt: bool = True, meta: Optional[dict] = None, interventions: Sequence = (),
          hooks: Sequence = (), planes: Optional[tuple] = None) -> Trace:
    """Run ``model`` on ``batch`` for ``n_supervision`` supervision steps (default: the model's N_sup) and
    record the recursion. See the module docstring for what is recorded.

    ``batch``: dict with ``inputs`` [B, L] (and ``puzzle_identifiers`` [B], ``labels`` [B, L]); torch
    tensors or numpy arrays. ``labels`` overrides ``batch["labels"]``. ``keep_puzzles``: batch rows to
    trace (the batch is sliced before the model runs). ``keep_steps``: supervision steps to store (a
    list, a slice or a predicate); the model still runs every step up to the last. ``events``: which of
    "latent", "answer", "supervision" to store. ``pca``: "joint" (one plane for y and z, so both paths
    share axes) or "separate" (a plane each). ``continue_after_halt`` (default True): a puzzle whose
    halting head says stop keeps being refined (the record's ``halted`` and ``halt_prob`` say where it
    would stop), so every puzzle has the same records; False: a slot the wrapper halted is reset and
    solves its puzzle again from the initial states (in eval mode that happens before the last step
    only for a model with ``eval_halting="learned"``).

    The steps run through the model's own loop, :func:`trmlab.model.supervision_steps` (all steps,
    ``restart_halted = not continue_after_halt``), the one ``trmlab eval`` uses; the ``supervision``
    records are the outputs it yields.

    ``interventions`` (:mod:`trmlab.trace.interventions`) and ``hooks`` (``(filter, fn)`` pairs,
    :mod:`trmlab.trace.hooks`) change the recursion where they act; the records show the states the
    recursion continues from, so every record before the first intervention point is bit-identical to a
    trace without them, and the record at an intervention point shows the changed state. Their ``rows``
    index the traced batch (after ``keep_puzzles``); ``meta["interventions"]`` describes them.

    ``planes``: a (y, z) pair of :class:`~trmlab.trace.projection.PCA` planes to project on instead of
    fitting new ones, e.g. ``other.planes`` of a trace of the same model and batch: a run continued after
    an intervention then draws on the original's plane, and its records before the intervention point
    are bit-identical to the original's, PCA coordinates included. The trace keeps its planes in
    ``Trace.planes``.
    """
    events = set(events)
    unknown = events - set(EVENTS)
    if unknown:
        raise ValueError(f"unknown events {sorted(unknown)}; valid: {', '.join(EVENTS)}")
    if pca not in ("joint", "separate", "none"):
        raise ValueError(f"pca must be 'joint', 'separate' or 'none', got {pca!r}")
    if planes is not None:
        if pca == "none":
            raise ValueError("trace: planes= projects on given PCA planes, pca='none' projects on none: give one")
        if len(planes) != 2 or not all(isinstance(p, PCA) for p in planes):
            raise ValueError("trace: planes must be a (y, z) pair of PCA planes, e.g. another trace's .planes")
        if any(p.mean.shape[-1] != model.cfg.hidden_size for p in planes):
            raise ValueError(f"trace: the planes are for states of size {planes[0].mean.shape[-1]}, the model's "
                             f"are {model.cfg.hidden_size}")
    device = model_device(model)
    batch = batch_on(batch, device)
    if labels is not None:
        batch["labels"] = labels.to(device) if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels), device=device)
    B_all = batch["inputs"].shape[0]
    rows = list(range(B_all)) if keep_puzzles is None else [int(b) for b in keep_puzzles]
    if keep_puzzles is not None:
        idx = torch.as_tensor(rows, dtype=torch.long, device=device)
        batch = {k: (v.index_select(0, idx) if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == B_all else v)
                 for k, v in batch.items()}
    cfg = model.cfg
    N = int(n_supervision or cfg.n_supervision)
    T, n = cfg.n_recursions, cfg.n_latent_steps
    seq_len = int(batch["inputs"].shape[1])
    B = int(batch["inputs"].shape[0])
    keep = _step_keeper(keep_steps)
    kept_steps = sum(1 for s in range(N) if keep(s))
    per_step = T * n * ("latent" in events) + T * ("answer" in events) + ("supervision" in events)
    est_records = kept_steps * per_step
    state_bytes = est_records * B * seq_len * cfg.hidden_size * 2 * 2
    hold = state_bytes <= state_budget_mb * 2 ** 20 and pca != "none"

    was_training = model.training
    model.eval()
    try:
        rec = _Recorder(model, seq_len, keep, events, full_probs, hold, pca)
        y0, z0 = model.core.initial_state(B, device) if hasattr(model, "core") else (None, None)
        if y0 is not None:
            rec.prev_y, rec.prev_z = rec.cells(y0), rec.cells(z0)
        _run(model, batch, N, rec, continue_after_halt, hooks, interventions)
        if not rec.index:
            raise ValueError("trace: nothing recorded (check keep_steps and events)")
        if pca == "none":  # no projection (e.g. ranking puzzles): zero planes
            D = cfg.hidden_size
            pca_cells_y = pca_cells_z = PCA(np.zeros(D), np.zeros((2, D)), np.zeros(2))
        elif planes is not None:  # given planes (a continued run drawn on the original's plane)
            pca_cells_y, pca_cells_z = planes
        else:  # one fit on the per-cell states; the pooled paths are projected with it too
            pca_cells_y = rec.cells_acc["y"].fit(2)
            pca_cells_z = pca_cells_y if pca == "joint" else rec.cells_acc["z"].fit(2)
        if pca == "none":
            shape = (len(rec.index), B, seq_len, 2)
            y_cell_pc = z_cell_pc = np.zeros(shape, np.float32)
        elif hold:
            y_cell_pc = np.stack([pca_cells_y.transform(s.float()) for s in rec.states_y])
            z_cell_pc = np.stack([pca_cells_z.transform(s.float()) for s in rec.states_z])
        else:
            proj = _Projector(seq_len, keep, events, pca_cells_y, pca_cells_z, model)
            _run(model, batch, N, proj, continue_after_halt, hooks, interventions)
            y_cell_pc, z_cell_pc = np.stack(proj.y), np.stack(proj.z)
    finally:
        model.train(was_training)

    arrays = {k: np.stack(v) for k, v in rec.rec.items() if v}
    arrays["y_cell_pc"], arrays["z_cell_pc"] = y_cell_pc, z_cell_pc
    if pca == "none":
        arrays["y_pc"] = arrays["z_pc"] = np.zeros((len(rec.index), B, 2), np.float32)
    else:
        arrays["y_pc"] = pca_cells_y.transform(np.stack(rec.pooled_y))
        arrays["z_pc"] = pca_cells_z.transform(np.stack(rec.pooled_z))
    inputs = batch["inputs"].cpu().numpy().astype(np.int64)
    lab = batch.get("labels")
    lab = None if lab is None else lab.cpu().numpy().astype(np.int64)
    if task is None:
        task = infer_task(cfg.vocab_size, seq_len)
    info = {
        "n_supervision": N, "n_recursions": T, "n_latent_steps": n, "model_n_supervision": cfg.n_supervision,
        "events": [e for e in EVENTS if e in events], "kept_steps": [s for s in range(N) if keep(s)],
        "puzzle_rows": rows, "pca": pca, "pca_states": "held" if hold else "second pass",
        "pca_fit": ("given planes (planes=)" if planes is not None
                    else "per-cell states; pooled paths projected with the same fit"),
        "pca_cells_explained": {"y": pca_cells_y.explained_variance_ratio.tolist(),
                                "z": pca_cells_z.explained_variance_ratio.tolist()},
        "puzzle_identifiers": batch["puzzle_identifiers"].cpu().numpy().astype(int).tolist(),
        "model": dataclasses.asdict(cfg), "continue_after_halt": continue_after_halt,
    }
    if "index" in batch and isinstance(batch["index"], torch.Tensor):
        info["puzzle_index"] = batch["index"].cpu().numpy().astype(int).tolist()
    if interventions:
        info["interventions"] = [iv.describe() for iv in interventions]
    if hooks:
        info["hooks"] = len(list(hooks))
    if meta:
        info.update(meta)
    return Trace(task, np.asarray(rec.index, np.int32).reshape(-1, 3), np.asarray(rec.event, np.int8), inputs, lab,
                 arrays, info, None if pca == "none" else (pca_cells_y, pca_cells_z))


def expected_records(n_supervision: int, n_recursions: int, n_latent_steps: int, events: Iterable[str] = EVENTS) -> int:
    """How many records a full trace has: N_sup * (T * n + T + 1) with every event kept."""
    events = set(events)
    per = n_recursions * n_latent_steps * ("latent" in events) + n_recursions * ("answer" in events)
    return n_supervision * (per + ("supervision" in events))
