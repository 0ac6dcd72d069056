"""Knock the recursion off course and watch it come back: how often, and how fast, a trained model
recovers after an intervention (:mod:`trmlab.trace.interventions`) on puzzles it solves.

>>> rec = recovery(model, inputs, labels, kind="answer", after=(1, 2, 4, 8), n_supervision=16)
>>> rec.rows()          # one row per intervention step: recovered / puzzles, the 95% interval, steps to recover

Two kinds, each on every measured puzzle at once (one cell per puzzle, chosen with ``seed``):

* ``"answer"``: after ``a`` supervision steps, a cell the puzzle leaves to the model is forced to a wrong
  token in the answer y (:class:`~trmlab.trace.interventions.SetAnswerCell`: the output head now decodes
  it there), and the recursion continues from that state;
* ``"given"``: after ``a`` steps, a cell the puzzle gives is corrupted for one supervision step (the
  model reads a wrong given: :class:`~trmlab.trace.interventions.SetInputCell`), then restored.

Wrong tokens: Sudoku, another digit; mazes, an open cell of the answer flips between path and open, and a
given wall becomes open; other tasks, another token the labels use. Only puzzles the plain run (no
intervention, all ``n_supervision`` steps) gets exactly right at its last step are measured, so a failure
to recover is the intervention's doing. A puzzle *recovers* when its answer is exactly right again at the
last step; its *steps to recover* count from the intervention to the first step whose answer is right.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from ..eval.metrics import wilson_interval
from .hooks import run_with_cache
from .interventions import SetAnswerCell, SetInputCell
from .tasks import IGNORE_LABEL, MAZE_OPEN, MAZE_PATH, MAZE_WALL, SUDOKU_BLANK, infer_task

KINDS = ("answer", "given")
KIND_TEXT = {"answer": "a wrong answer cell forced into y",
             "given": "a given corrupted for one step, then restored"}


@dataclass
class Recovery:
    """What :func:`recovery` measured. ``exact`` [len(after), S, P]: the answer exactly right after each
    supervision step (1..S) with the intervention after ``after[j]`` steps; ``plain`` [S, P]: the same
    without it; ``puzzles`` [P]: the measured puzzles (indices into the inputs given); ``cells`` and
    ``tokens`` [len(after), P]: the cell hit and the wrong token put there."""

    kind: str
    after: tuple
    n_supervision: int
    puzzles: np.ndarray
    exact: np.ndarray
    plain: np.ndarray
    cells: np.ndarray
    tokens: np.ndarray
    offered: int  # puzzles given; ``len(puzzles)`` of them the plain run solves

    def recovered(self) -> np.ndarray:
        """Bool [len(after), P]: exactly right again at the last step."""
        return self.exact[:, -1, :]

    def steps_to_recover(self) -> np.ndarray:
        """Int [len(after), P]: supervision steps from the intervention to the first exactly right answer
        (1 = right at the next step); -1 where it never is."""
        out = np.full(self.exact.shape[::2], -1, np.int64)
        for j, a in enumerate(self.after):
            later = self.exact[j, a:, :]  # steps a+1 .. S
            hit = later.any(0)
            out[j, hit] = later.argmax(0)[hit] + 1
        return out

    def rows(self) -> list[dict]:
        """One row per intervention step: puzzles, recovered, fraction with its Wilson 95% interval, the
        fraction right just after (at step ``after + 1``), and the median steps to recover (of those that do)."""
        rows = []
        rec, steps = self.recovered(), self.steps_to_recover()
        for j, a in enumerate(self.after):
            n, k = int(rec.shape[1]), int(rec[j].sum())
            low, high = wilson_interval(k, n)
            ok = steps[j][steps[j] > 0]
            rows.append({"kind": self.kind, "after": int(a), "puzzles": n, "recovered": k,
                         "fraction": k / n if n else float("nan"), "low": low, "high": high,
                         "right_next_step": float(self.exact[j, a, :].mean()) if n and a < self.n_supervision else float("nan"),
                         "median_steps_to_recover": float(np.median(ok)) if len(ok) else float("nan")})
        return rows

    def accuracy_by_step(self) -> np.ndarray:
        """[len(after), S]: the fraction of measured puzzles exactly right after each step."""
        return self.exact.mean(-1) if self.exact.shape[-1] else np.full(self.exact.shape[:2], np.nan)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "after": list(self.after), "n_supervision": self.n_supervision,
                "offered": self.offered, "puzzles": self.puzzles.tolist(), "exact": self.exact.tolist(),
                "plain": self.plain.tolist(), "cells": self.cells.tolist(), "tokens": self.tokens.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Recovery":
        S = int(d["n_supervision"])
        P = len(d["puzzles"])
        return cls(d["kind"], tuple(d["after"]), S, np.asarray(d["puzzles"], np.int64),
                   np.asarray(d["exact"], bool).reshape(len(d["after"]), S, P),
                   np.asarray(d["plain"], bool).reshape(S, P),
                   np.asarray(d["cells"], np.int64).reshape(len(d["after"]), P),
                   np.asarray(d["tokens"], np.int64).reshape(len(d["after"]), P), int(d["offered"]))


def _exact_by_step(outputs, labels: torch.Tensor) -> np.ndarray:
    scored = labels != IGNORE_LABEL
    return np.stack([((s.preds == labels) | ~scored).all(-1).cpu().numpy() for s in outputs.per_step])


def _pick(rng: np.random.Generator, family: str, kind: str, x: np.ndarray, y: np.ndarray,
          vocab: int) -> tuple[int, int]:
    """(cell, wrong token) for one puzzle (see the module docstring), or (-1, -1) when it has no such cell."""
    scored = y != IGNORE_LABEL
    if family == "sudoku":
        digits = np.arange(SUDOKU_BLANK + 1, vocab)
        cells = np.nonzero((x == SUDOKU_BLANK) & scored if kind == "answer" else x > SUDOKU_BLANK)[0]
        if not len(cells):
            return -1, -1
        c = int(rng.choice(cells))
        right = y[c] if kind == "answer" else x[c]
        return c, int(rng.choice(digits[digits != right]))
    if family == "maze":
        if kind == "answer":
            cells = np.nonzero((x == MAZE_OPEN) & scored)[0]
            if not len(cells):
                return -1, -1
            c = int(rng.choice(cells))
            return c, MAZE_OPEN if y[c] == MAZE_PATH else MAZE_PATH
        cells = np.nonzero(x == MAZE_WALL)[0]
        return (int(rng.choice(cells)), MAZE_OPEN) if len(cells) else (-1, -1)
    if kind == "answer":
        cells = np.nonzero(scored & (x != y))[0] if (scored & (x != y)).any() else np.nonzero(scored)[0]
    else:
        cells = np.nonzero(scored & (x == y))[0]
    if not len(cells):
        return -1, -1
    c = int(rng.choice(cells))
    right = y[c] if kind == "answer" else x[c]
    used = np.unique(y[scored])
    others = used[used != right]
    return (c, int(rng.choice(others))) if len(others) else (-1, -1)


def interventions_for(kind: str, after: int, cell: int, token: int, given: int, rows: tuple,
                      n_supervision: int) -> list:
    """The interventions of one measurement (module docstring) on the batch ``rows``: ``"answer"``, the
    answer cell set to ``token`` after ``after`` steps; ``"given"``, the given cell set to ``token`` for
    step ``after + 1`` and put back to ``given`` from the next step on (when one runs after it)."""
    if kind == "answer":
        return [SetAnswerCell(step=after, cell=cell, token=token, rows=rows)]
    out = [SetInputCell(step=after, cell=cell, token=token, rows=rows)]
    if after + 1 < n_supervision:
        out.append(SetInputCell(step=after + 1, cell=cell, token=given, rows=rows))
    return out


@torch.no_grad()
def recovery(model, inputs, labels, kind: str = "answer", after: Sequence[int] = (1, 2, 4, 8),
             n_supervision: Optional[int] = None, puzzle_identifiers=None, seed: int = 0,
             batch_size: int = 256) -> Recovery:
    """Measure recovery (module docstring) on the puzzles ``inputs`` [B, L] with ``labels`` [B, L] that the
    plain run solves. ``after``: numbers of supervision steps run before the intervention (each
    ``1 <= a < n_supervision``). One cell per puzzle and intervention step, drawn with ``seed``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    S = int(n_supervision or model.cfg.n_supervision)
    after = tuple(int(a) for a in after)
    bad = [a for a in after if not 1 <= a < S]
    if not after or bad:
        raise ValueError(f"after: each intervention step must be 1..{S - 1} (steps run before it, of "
                         f"n_supervision={S}), got {list(after)}")
    x = np.asarray(inputs.cpu() if torch.is_tensor(inputs) else inputs).astype(np.int64)
    y = np.asarray(labels.cpu() if torch.is_tensor(labels) else labels).astype(np.int64)
    if x.ndim != 2 or x.shape != y.shape or x.shape[1] != model.cfg.seq_len:
        raise ValueError(f"inputs and labels must both be [puzzles, {model.cfg.seq_len}] tokens; got "
                         f"{list(x.shape)} and {list(y.shape)}")
    B = len(x)
    pid = (np.zeros(B, np.int64) if puzzle_identifiers is None else
           np.asarray(puzzle_identifiers.cpu() if torch.is_tensor(puzzle_identifiers) else puzzle_identifiers)
           .astype(np.int64).reshape(-1))
    family = infer_task(model.cfg.vocab_size, model.cfg.seq_len).family
    was_training = model.training
    model.eval()

    def run(rows: np.ndarray, interventions=()) -> np.ndarray:
        batch = {"inputs": torch.as_tensor(x[rows], dtype=torch.int32),
                 "puzzle_identifiers": torch.as_tensor(pid[rows], dtype=torch.int32)}
        outputs, _ = run_with_cache(model, batch, n_supervision=S, interventions=interventions,
                                    names=lambda point: False)
        return _exact_by_step(outputs, torch.as_tensor(y[rows], device=outputs.per_step[0].logits.device))

    try:
        plain = np.concatenate([run(np.arange(b0, min(B, b0 + batch_size))) for b0 in range(0, B, batch_size)],
                               axis=1) if B else np.zeros((S, 0), bool)
        rng = np.random.default_rng(seed)
        solved = np.nonzero(plain[-1])[0]
        picks = np.array([[_pick(rng, family, kind, x[b], y[b], model.cfg.vocab_size) for b in solved]
                          for _ in after], np.int64).reshape(len(after), len(solved), 2)
        usable = (picks[..., 0] >= 0).all(0)
        puzzles, picks = solved[usable], picks[:, usable]
        exact = np.zeros((len(after), S, len(puzzles)), bool)
        for j, a in enumerate(after):
            for p0 in range(0, len(puzzles), batch_size):
                part = np.arange(p0, min(len(puzzles), p0 + batch_size))
                interventions = []
                for r, q in enumerate(part):
                    cell, token = (int(v) for v in picks[j, q])
                    interventions += interventions_for(kind, a, cell, token, int(x[puzzles[q], cell]), (r,), S)
                exact[j][:, part] = run(puzzles[part], interventions)
    finally:
        model.train(was_training)
    return Recovery(kind, after, S, puzzles, exact, plain[:, puzzles], picks[..., 0], picks[..., 1], B)
