"""Is an answer a valid solution of its puzzle? The rules of Sudoku and of mazes, checked on tokens.

The paper's numbers use no verifier: a model's answer is right when it equals the label. A rule check
is a different judge, one that knows the puzzle's rules but not its solution:

* **Sudoku**: every cell holds a digit 1..n, no digit twice in a row, a column or a box, and every
  given is kept;
* **maze**: the answer keeps the question's walls, start and goal, marks only open cells, and the
  marked cells form a shortest path from S to G through open cells (``trmlab.data.maze.check_maze``,
  the check the dataset builders use).

ARC has no rules to check (the output of a task is defined only by its demonstrations):
:func:`rule_check` returns None for it. Wherever a rule check picks or judges an answer, trmlab labels
the result "uses the rule check".

>>> ok = rule_check("sudoku", inputs, preds)          # bool [B]
>>> rule_violations("sudoku", inputs[0], preds[0])    # ['row 3 has 7 twice (columns 2 and 8)', ...]
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..data import maze, sudoku

FAMILIES_WITH_RULES = ("sudoku", "maze")


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def sudoku_valid(inputs, preds) -> np.ndarray:
    """Bool [B]: each predicted board (tokens [B, n*n]: 1 blank, digit d -> d + 1) is a complete valid
    Sudoku that keeps the givens of its question (tokens [B, n*n])."""
    q = _as_numpy(inputs).astype(np.int64)
    p = _as_numpy(preds).astype(np.int64)
    if q.ndim == 1:
        q, p = q[None], p[None]
    B, L = p.shape
    n = sudoku.size_of(L)
    br, bc = sudoku.BOXES[n]
    d = p - 1                                             # digits; 0 = blank, < 0 = pad
    ok = ((d >= 1) & (d <= n)).all(axis=1)
    given = q >= 2
    ok &= ((p == q) | ~given).all(axis=1)
    g = np.clip(d, 0, n).reshape(B, n, n)
    target = np.arange(1, n + 1)
    rows = np.sort(g, axis=2)
    cols = np.sort(g.transpose(0, 2, 1), axis=2)
    boxes = np.sort(g.reshape(B, n // br, br, n // bc, bc).transpose(0, 1, 3, 2, 4).reshape(B, n, n), axis=2)
    for part in (rows, cols, boxes):
        ok &= (part == target).all(axis=(1, 2))
    return ok


def sudoku_violations(inputs, preds) -> list[str]:
    """Where one predicted board breaks the rules: blanks, a digit twice in a row, column or box (with
    the cells, counted from 1), a given changed. Empty when the board is a valid solution."""
    q = sudoku.decode(_as_numpy(inputs).reshape(-1))
    a = sudoku.decode(_as_numpy(preds).reshape(-1))
    n = a.shape[0]
    br, bc = sudoku.BOXES[n]
    out = []
    blanks = np.argwhere(a == 0)
    if len(blanks):
        cells = ", ".join(f"row {r + 1} column {c + 1}" for r, c in blanks[:4])
        out.append(f"{len(blanks)} cell(s) left blank ({cells}{', ...' if len(blanks) > 4 else ''})")
    for r in range(n):
        for v in range(1, n + 1):
            cs = np.nonzero(a[r] == v)[0]
            if len(cs) > 1:
                out.append(f"row {r + 1} has {v} twice (columns {', '.join(str(c + 1) for c in cs)})")
    for c in range(n):
        for v in range(1, n + 1):
            rs = np.nonzero(a[:, c] == v)[0]
            if len(rs) > 1:
                out.append(f"column {c + 1} has {v} twice (rows {', '.join(str(r + 1) for r in rs)})")
    for b0 in range(0, n, br):
        for c0 in range(0, n, bc):
            box = a[b0:b0 + br, c0:c0 + bc]
            for v in range(1, n + 1):
                cells = np.argwhere(box == v)
                if len(cells) > 1:
                    where = ", ".join(f"row {b0 + r + 1} column {c0 + c + 1}" for r, c in cells)
                    out.append(f"box at row {b0 + 1}, column {c0 + 1} has {v} twice ({where})")
    changed = np.argwhere((q != 0) & (q != a))
    for r, c in changed:
        out.append(f"the given {int(q[r, c])} at row {r + 1} column {c + 1} became {int(a[r, c])}")
    return out


def maze_violation(inputs, preds) -> Optional[str]:
    """Why one predicted maze answer is not a shortest S -> G path through open cells (None if it is)."""
    q = maze.decode(_as_numpy(inputs).reshape(-1))
    a = maze.decode(_as_numpy(preds).reshape(-1))
    return maze.check_maze(q, a)[0]


def maze_valid(inputs, preds) -> np.ndarray:
    """Bool [B]: each predicted maze answer (tokens) is a shortest S -> G path of its question."""
    q = _as_numpy(inputs)
    p = _as_numpy(preds)
    if q.ndim == 1:
        q, p = q[None], p[None]
    return np.array([maze_violation(qi, pi) is None for qi, pi in zip(q, p)], dtype=bool)


def rule_check(family: str, inputs, preds) -> Optional[np.ndarray]:
    """Bool [B]: the answers ``preds`` are valid solutions of the questions ``inputs`` (tokens), by the
    rules of ``family`` (``sudoku`` | ``maze``); None for a family with no rules to check (``arc``)."""
    if family == "sudoku":
        return sudoku_valid(inputs, preds)
    if family == "maze":
        return maze_valid(inputs, preds)
    return None


def rule_violations(family: str, inputs, preds) -> Optional[list[str]]:
    """What breaks the rules in one answer, in words (empty: valid); None for a family with no rules."""
    if family == "sudoku":
        return sudoku_violations(inputs, preds)
    if family == "maze":
        why = maze_violation(inputs, preds)
        return [] if why is None else [why]
    return None
