"""Choose a puzzle to watch: from a built dataset, the ones where the recursion works hardest, or one
the user types or pastes (a Sudoku string, a maze in text, an ARC task JSON).

Every picker returns a :class:`Picked`: a one-row (or few-row) batch for ``trmlab.trace.trace``, the
task spec, a description, and for ARC the demonstration pairs to draw beside the test input. Parsers
raise :class:`PuzzleFormatError` with a message that says what is wrong and where.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import torch

from trmlab.trace.recorder import Trace, trace
from trmlab.trace.tasks import (ARC_SIZE, IGNORE_LABEL, MAZE_CHARS, MAZE_OPEN, MAZE_PATH, TaskSpec, arc_encode,
                                arc_extent, arc_spec, dataset_task, maze_spec, sudoku_spec)


class PuzzleFormatError(ValueError):
    """A typed or pasted puzzle is malformed; the message says what and where."""


@dataclass
class Picked:
    batch: dict  # inputs int32 [B, L], labels int64 [B, L] (optional), puzzle_identifiers int32 [B]
    task: TaskSpec
    description: str
    demos: list = field(default_factory=list)  # ARC: [{"input": grid, "output": grid}, ...]
    indices: list = field(default_factory=list)  # dataset example indices, when from a dataset

    def trace(self, model, **kw) -> Trace:
        """Trace this puzzle with ``model`` (the task spec and demos go with the trace)."""
        task = TaskSpec.from_dict(self.task.to_dict())
        if self.demos:
            task.extra = dict(task.extra, demos=[{k: np.asarray(v).tolist() for k, v in d.items()} for d in self.demos])
        meta = dict(kw.pop("meta", {}) or {}, description=self.description)
        if self.indices:
            meta["puzzle_index"] = list(self.indices)
        return trace(model, self.batch, task=task, meta=meta, **kw)


def make_batch(inputs, labels=None, puzzle_identifiers=None) -> dict:
    """A batch dict from token arrays ([L] or [B, L])."""
    x = np.atleast_2d(np.asarray(inputs, dtype=np.int64))
    batch = {"inputs": torch.as_tensor(x, dtype=torch.int32)}
    if labels is not None:
        batch["labels"] = torch.as_tensor(np.atleast_2d(np.asarray(labels, dtype=np.int64)), dtype=torch.int64)
    pid = np.zeros(x.shape[0], np.int64) if puzzle_identifiers is None else np.atleast_1d(puzzle_identifiers)
    batch["puzzle_identifiers"] = torch.as_tensor(pid, dtype=torch.int32)
    return batch


# -----------------------------------------------------------------------------------------------------
# Typed puzzles
# -----------------------------------------------------------------------------------------------------

_SUDOKU_BLANKS = ".0_*"
_SUDOKU_SEPARATORS = " \t\r\n|+-,;"


def parse_sudoku(text: str, size: Optional[int] = None) -> Picked:
    """A Sudoku typed as digits with '.', '0', '_' or '*' for blanks, row by row (spaces, new lines and
    '|', '+', '-', ',' between cells are ignored). 16, 36 or 81 cells (4x4, 6x6, 9x9)."""
    if not isinstance(text, str) or not text.strip():
        raise PuzzleFormatError("empty Sudoku: type the cells row by row, '.' or '0' for a blank")
    cells = []
    for pos, ch in enumerate(text):
        if ch in _SUDOKU_SEPARATORS:
            continue
        if ch in _SUDOKU_BLANKS:
            cells.append(0)
        elif ch.isdigit():
            cells.append(int(ch))
        else:
            raise PuzzleFormatError(f"Sudoku: character {ch!r} at position {pos} is not a digit or a blank ('.', '0')")
    n = len(cells)
    sizes = {16: 4, 36: 6, 81: 9}
    if size is not None and n != size * size:
        raise PuzzleFormatError(f"Sudoku: {n} cells, but a {size}x{size} board has {size * size}")
    if n not in sizes:
        raise PuzzleFormatError(f"Sudoku: {n} cells; a 4x4, 6x6 or 9x9 board has 16, 36 or 81")
    s = sizes[n]
    board = np.asarray(cells).reshape(s, s)
    if board.max() > s:
        r, c = np.argwhere(board > s)[0]
        raise PuzzleFormatError(f"Sudoku {s}x{s}: digit {board[r, c]} at row {r + 1}, column {c + 1} is above {s}")
    spec = sudoku_spec(s)
    br, bc = spec.box
    units = [("row", r + 1, board[r]) for r in range(s)] + [("column", c + 1, board[:, c]) for c in range(s)]
    units += [("box", k + 1, board[(k // (s // bc)) * br:(k // (s // bc)) * br + br, (k % (s // bc)) * bc:(k % (s // bc)) * bc + bc].ravel())
              for k in range(s)]
    for kind, num, vals in units:
        v = vals[vals > 0]
        if len(v) != len(set(v.tolist())):
            dup = [d for d in set(v.tolist()) if (v == d).sum() > 1][0]
            raise PuzzleFormatError(f"Sudoku {s}x{s}: digit {dup} appears twice in {kind} {num}")
    if not (board > 0).any():
        raise PuzzleFormatError(f"Sudoku {s}x{s}: no givens at all")
    inputs = board.reshape(-1) + 1
    labels = None
    if (board > 0).all():  # a complete board: a solved example; show it with itself as label
        labels = inputs.copy()
    return Picked(make_batch(inputs, labels), spec, f"typed Sudoku {s}x{s} ({int((board > 0).sum())} givens)")


def parse_maze(text: str, size: Optional[int] = None) -> Picked:
    """A maze in text: '#' wall, ' ' (or '.') open, 'S' start, 'G' goal, 'o' path (optional: a path
    given becomes the label, and the question is the maze without it). Square, one S and one G.
    Lines shorter than the longest are padded with open cells (editors trim trailing spaces)."""
    if not isinstance(text, str) or not text.strip():
        raise PuzzleFormatError("empty maze: one line per row, '#' wall, ' ' open, 'S' start, 'G' goal")
    lines = text.replace("\r", "").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    width = max(len(line) for line in lines)
    grid = []
    for r, line in enumerate(lines):
        row = []
        for c, ch in enumerate(line.ljust(width)):
            ch = " " if ch == "." else ch
            if ch not in MAZE_CHARS:
                raise PuzzleFormatError(f"maze: character {ch!r} at line {r + 1}, column {c + 1}; "
                                        f"allowed: '#' wall, ' ' or '.' open, 'S', 'G', 'o' path")
            row.append(ch)
        grid.append(row)
    h = len(grid)
    if h != width:
        raise PuzzleFormatError(f"maze: {h} lines of {width} characters; the maze must be square")
    if size is not None and h != size:
        raise PuzzleFormatError(f"maze: {h}x{h}, but the model reads {size}x{size} mazes")
    chars = np.asarray(grid)
    for mark in "SG":
        count = int((chars == mark).sum())
        if count != 1:
            raise PuzzleFormatError(f"maze: {count} '{mark}' cells, expected exactly one")
    tokens = np.vectorize(lambda ch: MAZE_CHARS.index(ch) + 1)(chars).reshape(-1)
    has_path = (tokens == MAZE_PATH).any()
    inputs = np.where(tokens == MAZE_PATH, MAZE_OPEN, tokens)
    labels = tokens if has_path else None
    return Picked(make_batch(inputs, labels), maze_spec(h), f"typed maze {h}x{h}" + (" with its path" if has_path else ""))


def _arc_grid(obj, where: str) -> np.ndarray:
    if not isinstance(obj, list) or not obj:
        raise PuzzleFormatError(f"ARC task: {where} must be a non-empty list of rows")
    width = None
    for r, row in enumerate(obj):
        if not isinstance(row, list) or not row:
            raise PuzzleFormatError(f"ARC task: {where} row {r} must be a non-empty list of colours")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise PuzzleFormatError(f"ARC task: {where} row {r} has {len(row)} cells, expected {width}")
        for c, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 9:
                raise PuzzleFormatError(f"ARC task: {where}[{r}][{c}] = {v!r}; colours are integers 0..9")
    if len(obj) > ARC_SIZE - 1 or width > ARC_SIZE - 1:
        # the reference's canvas is 30x30 with an EOS row/column; a 30-wide grid has no EOS (still valid)
        if len(obj) > ARC_SIZE or width > ARC_SIZE:
            raise PuzzleFormatError(f"ARC task: {where} is {len(obj)}x{width}; grids are at most 30x30")
    return np.asarray(obj, dtype=np.int64)


def parse_arc_task(task: Union[str, dict], test_index: int = 0) -> Picked:
    """An ARC task as JSON text or dict: {"train": [{"input", "output"}, ...], "test": [{"input"[, "output"]}]}.
    The test input (``test_index``) is the puzzle; its output, when given, is the label."""
    if isinstance(task, str):
        try:
            task = json.loads(task)
        except json.JSONDecodeError as e:
            raise PuzzleFormatError(f"ARC task: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(task, dict):
        raise PuzzleFormatError("ARC task: expected a JSON object with 'train' and 'test' lists")
    for key in ("train", "test"):
        if key not in task:
            raise PuzzleFormatError(f"ARC task: missing '{key}' (expected keys 'train' and 'test')")
        if not isinstance(task[key], list) or not task[key]:
            raise PuzzleFormatError(f"ARC task: '{key}' must be a non-empty list of pairs")
    demos = []
    for k, pair in enumerate(task["train"]):
        if not isinstance(pair, dict) or "input" not in pair or "output" not in pair:
            raise PuzzleFormatError(f"ARC task: train[{k}] needs 'input' and 'output'")
        demos.append({"input": _arc_grid(pair["input"], f"train[{k}].input"),
                      "output": _arc_grid(pair["output"], f"train[{k}].output")})
    if not 0 <= test_index < len(task["test"]):
        raise PuzzleFormatError(f"ARC task: test_index {test_index}, but the task has {len(task['test'])} test input(s)")
    test = task["test"][test_index]
    if not isinstance(test, dict) or "input" not in test:
        raise PuzzleFormatError(f"ARC task: test[{test_index}] needs 'input'")
    x = _arc_grid(test["input"], f"test[{test_index}].input")
    labels = None
    if "output" in test:
        y = _arc_grid(test["output"], f"test[{test_index}].output")
        labels = arc_encode(y)
    return Picked(make_batch(arc_encode(x), labels), arc_spec(),
                  f"ARC task, {len(demos)} demonstration(s), test input {x.shape[0]}x{x.shape[1]}", demos=demos)


def parse_puzzle(text: str, task: Optional[TaskSpec] = None) -> Picked:
    """Parse typed text as the model's task family (or guess: JSON -> ARC, '#' -> maze, else Sudoku),
    and check it fits the model's grid."""
    family = task.family if task is not None else None
    stripped = text.strip() if isinstance(text, str) else text
    if family is None:
        if isinstance(stripped, dict) or (isinstance(stripped, str) and stripped.startswith("{")):
            family = "arc"
        elif isinstance(stripped, str) and "#" in stripped:
            family = "maze"
        else:
            family = "sudoku"
    if family == "sudoku":
        picked = parse_sudoku(text, size=task.rows if task is not None else None)
    elif family == "maze":
        picked = parse_maze(text, size=task.rows if task is not None else None)
    elif family == "arc":
        picked = parse_arc_task(text)
    else:
        raise PuzzleFormatError(f"cannot parse a typed puzzle for task family {family!r}")
    if task is not None and picked.task.seq_len != task.seq_len:
        raise PuzzleFormatError(f"the puzzle has {picked.task.seq_len} cells, the model reads {task.seq_len} ({task.name})")
    return picked


# -----------------------------------------------------------------------------------------------------
# Datasets
# -----------------------------------------------------------------------------------------------------


def _split_arrays(root: str, split: str):
    d = os.path.join(root, split)
    path = os.path.join(d, "all__inputs.npy")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{d}: no all__inputs.npy (is {root} a built dataset?)")
    inputs = np.load(path, mmap_mode="r")
    labels = np.load(os.path.join(d, "all__labels.npy"), mmap_mode="r")
    pid_path = os.path.join(d, "all__puzzle_identifiers.npy")
    pids = np.load(pid_path, mmap_mode="r") if os.path.exists(pid_path) else None
    pidx_path = os.path.join(d, "all__puzzle_indices.npy")
    pidx = np.load(pidx_path, mmap_mode="r") if os.path.exists(pidx_path) else None
    return inputs, labels, pids, pidx


def _example_puzzle_ids(pids, pidx, indices) -> np.ndarray:
    """Puzzle identifier of each example (identifiers are per puzzle; examples map via puzzle_indices)."""
    if pids is None:
        return np.zeros(len(indices), np.int64)
    if pidx is None or len(pids) == 0:
        return np.zeros(len(indices), np.int64)
    puzzle_of = np.searchsorted(np.asarray(pidx), np.asarray(indices), side="right") - 1
    return np.asarray(pids)[np.clip(puzzle_of, 0, len(pids) - 1)].astype(np.int64)


def _arc_demos(root: str, puzzle_identifier: int) -> list:
    """Best effort: the demonstration pairs of an ARC dataset example (test_puzzles.json + identifiers)."""
    try:
        from trmlab.data.arc import apply_version, parse_version_name  # type: ignore

        with open(os.path.join(root, "identifiers.json")) as f:
            names = json.load(f)
        with open(os.path.join(root, "test_puzzles.json")) as f:
            puzzles = json.load(f)
        task_id, tid, perm = parse_version_name(names[int(puzzle_identifier)])
        task = puzzles.get(task_id)
        if task is None:
            return []
        return [{"input": apply_version(np.asarray(p["input"]), tid, perm),
                 "output": apply_version(np.asarray(p["output"]), tid, perm)} for p in task.get("train", [])]
    except Exception:
        return []


def from_dataset(root: str, index: Union[int, Sequence[int]] = 0, split: str = "test") -> Picked:
    """Example(s) ``index`` of a built dataset's split (as the loaders read them)."""
    inputs, labels, pids, pidx = _split_arrays(root, split)
    idx = [int(index)] if np.isscalar(index) else [int(i) for i in index]
    for i in idx:
        if not 0 <= i < len(inputs):
            raise IndexError(f"{root}/{split}: example {i} out of range (0..{len(inputs) - 1})")
    task = dataset_task(root)
    x = np.asarray(inputs[idx]).astype(np.int64)
    y = np.asarray(labels[idx]).astype(np.int64)
    y = np.where(y < 0, IGNORE_LABEL, y)
    pid = _example_puzzle_ids(pids, pidx, idx)
    demos = _arc_demos(root, pid[0]) if task.family == "arc" else []
    desc = describe_examples(root, split, idx, len(inputs), task, x, pid)
    return Picked(make_batch(x, y, pid), task, desc, demos=demos, indices=idx)


def puzzle_summary(task: TaskSpec, inputs) -> str:
    """What a puzzle gives and what it asks, in words (never its solution): e.g. '14 givens, 22 cells to
    fill' (Sudoku), '30 given cells (walls, S, G), 34 open cells' (maze), 'test input 5x7' (ARC)."""
    inputs = np.asarray(inputs).reshape(-1)
    given = int(task.givens(inputs).sum())
    if task.family == "sudoku":
        return f"{given} givens, {task.seq_len - given} cells to fill"
    if task.family == "maze":
        return f"{given} given cells (walls, S, G), {task.seq_len - given} open cells"
    if task.family == "arc":
        h, w = arc_extent(inputs)
        return f"test input {h}x{w}"
    return f"{task.seq_len} tokens"


def _puzzle_name(root: str, puzzle_identifier: int) -> str:
    path = os.path.join(root, "identifiers.json")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        names = json.load(f)
    pid = int(puzzle_identifier)
    if not 0 <= pid < len(names):
        return ""
    parts = str(names[pid]).split("|||")  # <task>|||t<k>|||<colour permutation> (trmlab.data.arc)
    if len(parts) == 3:
        return f"{parts[0]} (augmented: dihedral {parts[1]}, colours {parts[2]})"
    return parts[0]


def describe_examples(root: str, split: str, indices: Sequence[int], n_examples: int, task: TaskSpec, inputs,
                      puzzle_identifiers) -> str:
    """A readable line about dataset examples: dataset, task, split, index, what the puzzle gives (its
    givens; never the solution), and for ARC the task's name."""
    name = os.path.basename(os.path.normpath(root))
    where = (f"example {indices[0]} of {n_examples}" if len(indices) == 1
             else f"examples {', '.join(map(str, indices))} of {n_examples}")
    desc = f"{task.name} from {name}, {split} split, {where}: {puzzle_summary(task, inputs[0])}"
    if task.family == "arc":
        puzzle = _puzzle_name(root, puzzle_identifiers[0])
        if puzzle:
            desc += f", ARC task {puzzle}"
    return desc


def rank_puzzles(tr: Trace, by: str = "changed") -> np.ndarray:
    """Puzzle rows of a trace, the most interesting first.

    ``changed``: how many answer cells change between successive answer updates, summed (the recursion
    does the most work); ``hardest``: lowest final accuracy on the cells to fill (unlabelled: lowest
    final confidence), then latest halting; ``gain``: largest rise of that accuracy from the first to
    the last answer.
    """
    ans = tr.records(events=["answer"])
    if not len(ans):
        ans = np.arange(len(tr))
    preds = tr.y_pred[ans]
    if by == "changed":
        score = (preds[1:] != preds[:-1]).sum(axis=(0, 2)) if len(ans) > 1 else np.zeros(tr.n_puzzles)
        return np.argsort(-score, kind="stable")
    if by == "hardest":
        acc = tr.accuracy("y", "to_fill")
        final = acc[-1] if acc is not None else tr.y_conf[-1].astype(np.float32).mean(-1)
        return np.lexsort((-tr.halted_at(), final))
    if by == "gain":
        acc = tr.accuracy("y", "to_fill")
        if acc is None:
            raise ValueError("rank by 'gain' needs labels")
        return np.argsort(-(acc[ans[-1]] - acc[ans[0]]), kind="stable")
    raise ValueError(f"by must be 'changed', 'hardest' or 'gain', got {by!r}")


@torch.no_grad()
def pick_interesting(model, root: str, by: str = "changed", k: int = 1, candidates: int = 64, split: str = "test",
                     n_supervision: Optional[int] = None, seed: int = 0) -> Picked:
    """The ``k`` examples among ``candidates`` (a random sample of the split) where the recursion does
    the most work (``by``: see :func:`rank_puzzles`)."""
    inputs, _, _, _ = _split_arrays(root, split)
    n = len(inputs)
    rng = np.random.default_rng(seed)
    cand = np.sort(rng.choice(n, size=min(candidates, n), replace=False))
    pool = from_dataset(root, cand.tolist(), split)
    tr = trace(model, pool.batch, n_supervision=n_supervision, events=("answer", "supervision"), task=pool.task,
               pca="none")
    order = rank_puzzles(tr, by)[:k]
    chosen = [int(cand[o]) for o in order]
    picked = from_dataset(root, chosen, split)
    picked.description += f" (picked by '{by}' among {len(cand)})"
    return picked
