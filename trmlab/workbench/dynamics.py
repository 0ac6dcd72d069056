"""What 06-thinking shows of the trajectories themselves, after test-time scaling (:mod:`.thinking`): the
trajectory classes, the halting head's calibration, what the latent z would answer, and how the model
recovers when knocked off course.

>>> st = study(task="sudoku9", data="sudoku9-givens28")
>>> dy = dynamics(st)                  # classes, calibration, decodings, recovery (cached)
>>> dy.classes.counts(), dy.calibration.ece, dy.recovery["answer"].rows()

* **classes** (:func:`trmlab.trace.trajectories.classify`) and **calibration** (every (puzzle, step)
  pair) come from the study's plain ``depth`` run (one trajectory per puzzle, ``max_steps`` steps):
  nothing is run again;
* **decodings** (:func:`trmlab.trace.trajectories.model_steps`): y and z decoded through the output head
  at every step, with their entropy, and z's displacement per step, on the first ``entropy_puzzles``;
* **recovery** (:func:`trmlab.trace.recovery.recovery`): on the first ``recovery_puzzles`` puzzles that the
  plain run solves at ``steps``, a wrong answer cell forced into y, or a given corrupted for one step,
  after each of ``after`` steps; kept in ``<run outputs>/thinking/<data>-<split>-recovery-<kind>.json``
  (read back when made with the same settings).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..data.loader import split_arrays
from ..eval.thinking import load_trajectories
from ..io import write_json_atomic
from ..paths import display_path
from ..runs import cfg_dtype, open_run
from ..runs.resolve import ZOO_OUTPUTS
from ..trace.hooks import run_with_cache
from ..trace.recovery import KIND_TEXT, KINDS, Recovery, interventions_for, recovery
from ..trace.tasks import infer_task
from ..trace.trajectories import (CLASSES, Calibration, DecodeEntropy, StepAnswers, TrajectoryClasses, classify,
                                  halting_calibration, model_steps)
from .thinking import Study


@dataclass
class Dynamics:
    """What :func:`dynamics` found (module docstring)."""

    classes: TrajectoryClasses  # every puzzle of the study, from its depth run
    calibration: Calibration  # the halting head over every (puzzle, step) of the depth run
    steps: StepAnswers  # the decoded run of the first entropy_puzzles (z's displacement per step)
    steps_classes: TrajectoryClasses  # the classes of those puzzles over that run
    entropy: DecodeEntropy
    recovery: dict  # kind -> Recovery
    example: dict = field(default_factory=dict)  # one recovery, step by step (see recovery_example)
    open_command: str = ""  # how to open a puzzle of the split in the player (04-recursion)
    files: dict = field(default_factory=dict)

    def class_rows(self) -> list[dict]:
        """Counts by class with intervals, and the first few puzzles of each (split indices)."""
        return [dict(r, puzzles=", ".join(str(p) for p in self.classes.puzzles_of(r["class"])[:8]))
                for r in self.classes.counts()]

    def recovery_rows(self) -> list[dict]:
        return [dict(r, intervention=KIND_TEXT[r["kind"]]) for rec in self.recovery.values() for r in rec.rows()]

    def summary(self) -> dict:
        """What the report and the README quote (plain JSON types)."""
        return _plain({"classes": self.classes.counts(), "class_puzzles": {c: self.classes.puzzles_of(c)[:20] for c in CLASSES},
                "calibration": {"ece": self.calibration.ece, "rows": self.calibration.rows(), "where": "every_step"},
                "entropy": self.entropy.mean(), "recovery": self.recovery_rows(),
                "files": {k: display_path(v) for k, v in self.files.items()}})


def _plain(o):
    """``o`` with numpy arrays and scalars as lists and Python numbers, NaN as None (for JSON)."""
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if isinstance(o, np.ndarray):
        return _plain(o.tolist())
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and o != o:
        return None
    return o


def studied_classes(root, split: str = "test") -> dict:
    """The trajectory classes of every zoo model's plain runs studied so far under ``root`` (the ``depth``
    runs in ``runs/zoo/<name>/thinking/*-<split>-depth.npz``), named "<model> · <data>": one figure then
    compares tasks and zoo models. Nothing is run."""
    out = {}
    for path in sorted((Path(root) / ZOO_OUTPUTS).glob(f"*/thinking/*-{split}-depth.npz")):
        data = path.name[: -len(f"-{split}-depth.npz")]
        out[f"{path.parent.parent.name} · {data}"] = classify(StepAnswers.from_trajectories(load_trajectories(path)),
                                                             name=data)
    return out


def _recovery_cached(path: Path, settings: dict, make, echo) -> Recovery:
    if path.is_file():
        d = json.loads(path.read_text())
        if d.get("settings") == settings:
            echo(f"read {display_path(path)}")
            return Recovery.from_dict(d["recovery"])
    rec = make()
    write_json_atomic(path, {"settings": settings, "recovery": rec.to_dict()})
    echo(f"wrote {display_path(path)}")
    return rec


def dynamics(st: Study, entropy_puzzles: int = 50, recovery_puzzles: int = 100,
             after: Sequence[int] = (1, 2, 4, 8), seed: int = 0, device: str = "auto", echo=print) -> Dynamics:
    """Classes, calibration, decodings and recovery of the study's model on its split (module docstring).
    ``recovery_puzzles``: puzzles offered (the ones the plain run solves are measured); 0 skips recovery."""
    depth = st.runs["depth"]
    trajectories = StepAnswers.from_trajectories(depth)
    classes = classify(trajectories, name=st.data.name)
    calibration = halting_calibration(trajectories, where="every_step")
    model, cfg, choice = open_run(st.run, device=device, dtype=cfg_dtype(device))
    x, y, pid = split_arrays(st.data, st.split, max(entropy_puzzles, recovery_puzzles, 1))
    n = min(entropy_puzzles, len(x))
    steps, entropy = model_steps(model, {"inputs": x[:n], "labels": y[:n], "puzzle_identifiers": pid[:n]},
                                 n_supervision=depth.steps)
    steps_classes = classify(steps, name=f"{st.data.name} (first {n})")
    out_dir = st.run.outputs / "thinking"
    tag = f"{st.data.name}-{st.split}"
    recs, files = {}, {}
    m = min(recovery_puzzles, len(x))
    if m:
        for kind in KINDS:
            settings = {"checkpoint": choice.as_dict()["checkpoint"], "data": str(st.data), "split": st.split,
                        "puzzles": int(m), "after": [int(a) for a in after], "steps": int(st.steps), "seed": seed,
                        "kind": kind}
            path = out_dir / f"{tag}-recovery-{kind}.json"
            recs[kind] = _recovery_cached(path, settings, lambda kind=kind: recovery(
                model, x[:m], y[:m], kind=kind, after=after, n_supervision=st.steps, puzzle_identifiers=pid[:m],
                seed=seed), echo)
            files[f"recovery-{kind}"] = path
    example = recovery_example(model, recs["answer"], x, y, pid) if "answer" in recs else {}
    data_arg = display_path(st.data)
    command = f"trmlab run 04-recursion -p run {st.run.zoo_name or display_path(st.run.folder)} -p data {data_arg} " \
              f"-p split {st.split} -p pick index -p index N"
    return Dynamics(classes, calibration, steps, steps_classes, entropy, recs, example, command, files)


def recovery_example(model, rec: Recovery, x: np.ndarray, y: np.ndarray, pid: np.ndarray,
                     after: Optional[int] = None) -> dict:
    """One measured puzzle that recovers, step by step: its answer before the intervention, right after,
    and at later steps, with the cell that was hit. Preferred: a puzzle right before the intervention, wrong
    right after it and right again at the last step, at the middle intervention step of ``rec.after`` (or
    ``after``), else at another; failing that, one wrong right after and right at the end; else the first."""
    if not len(rec.puzzles):
        return {}
    order = [rec.after.index(after)] if after is not None else sorted(
        range(len(rec.after)), key=lambda j: abs(j - len(rec.after) // 2))
    pick = None
    for strict in (True, False):
        for j in order:
            a = rec.after[j]
            if a >= rec.n_supervision:
                continue
            ok = ~rec.exact[j, a, :] & rec.exact[j, -1, :]
            if strict:
                ok &= rec.plain[a - 1]
            if ok.any():
                pick = (j, int(np.nonzero(ok)[0][0]))
                break
        if pick:
            break
    j, q = pick or (order[0], 0)
    a = rec.after[j]
    b = int(rec.puzzles[q])
    cell, token = int(rec.cells[j, q]), int(rec.tokens[j, q])
    hits = interventions_for(rec.kind, a, cell, token, int(x[b, cell]), (0,), rec.n_supervision)
    batch = {"inputs": torch.as_tensor(x[b:b + 1], dtype=torch.int32),
             "puzzle_identifiers": torch.as_tensor(pid[b:b + 1], dtype=torch.int32)}
    outputs, _ = run_with_cache(model, batch, n_supervision=rec.n_supervision, interventions=hits,
                                names=lambda point: False)
    answers = [s.preds[0].cpu().numpy() for s in outputs.per_step]
    shown = sorted({a, a + 1, a + 2, a + 4, rec.n_supervision} & set(range(1, rec.n_supervision + 1)))
    names = {s: f"step {s}" + (" (before)" if s == a else "") for s in shown}
    task = infer_task(model.cfg.vocab_size, model.cfg.seq_len)
    r, c = divmod(cell, task.cols)
    what = (f"the answer at row {r + 1}, column {c + 1} forced to {task.symbol(token)!r}" if rec.kind == "answer" else
            f"the given at row {r + 1}, column {c + 1} changed to {task.symbol(token)!r} for one step")
    specs = " ".join(f"--intervene {h.spec()}" for h in hits)
    return {"index": b, "after": a, "cell": cell, "token": token, "kind": rec.kind,
            "description": f"puzzle {b}: after {a} supervision steps, {what} ({specs})",
            "inputs": x[b], "labels": y[b], "answers": {names[s]: answers[s - 1] for s in shown}}


def save_summary(st: Study, dy: Dynamics) -> Path:
    """The study's summary (:meth:`Study.save_summary`) with the dynamics under ``"dynamics"`` (atomic)."""
    return st.save_summary({"dynamics": dy.summary()})
