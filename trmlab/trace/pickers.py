"""Choose a puzzle to watch: from a built dataset, the ones where the recursion works hardest, or one
the user types or pastes (a Sudoku string, a maze in text, an ARC task JSON).

Every picker returns a :class:`Picked`: a one-row (or few-row) batch for ``trmlab.trace.trace``, the
task spec, a description, and for ARC the demonstration pairs to draw beside the test input. Parsers
raise :class:`PuzzleFormatError` with a message that says what is wrong and where.

This reads datasets and runs the model (``pick_interesting`` traces candidates to rank them), so it sits
in the trace layer, below the views (``trmlab.viz`` only draws).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import torch

from trmlab.data import arc, maze, sudoku
from trmlab.data.format import PuzzleFormatError, open_split, read_identifiers, read_test_puzzles
from .recorder import Trace, trace
from .tasks import IGNORE_LABEL, TaskSpec, arc_spec, dataset_task, maze_spec, sudoku_spec

__all__ = ["Picked", "PuzzleFormatError", "make_batch", "parse_sudoku", "parse_maze", "parse_arc_task",
           "parse_puzzle", "from_dataset", "rank_puzzles", "pick_interesting"]


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
# Typed puzzles: the data layer's parsers (trmlab.data.sudoku/maze/arc), as one-row batches
# -----------------------------------------------------------------------------------------------------


def parse_sudoku(text: str, size: Optional[int] = None) -> Picked:
    """A typed Sudoku (:func:`trmlab.data.sudoku.parse_board`: digits, '.', '0' or '_' for blanks, all
    cells on one line or one line per row). A complete board is its own label."""
    board = sudoku.parse_board(text, size)
    n = board.shape[0]
    inputs = sudoku.encode(board)
    labels = inputs.copy() if board.all() else None
    return Picked(make_batch(inputs, labels), sudoku_spec(n), f"typed Sudoku {n}x{n} ({int((board > 0).sum())} givens)")


def parse_maze(text: str, size: Optional[int] = None) -> Picked:
    """A maze in text (:func:`trmlab.data.maze.parse_maze`: '#' wall, ' ' or '.' open, 'S', 'G', 'o' path).
    A path, when drawn, becomes the label and the question is the maze without it."""
    question, answer = maze.parse_maze(text, size)
    n = question.shape[0]
    labels = None if answer is None else maze.encode(answer)
    return Picked(make_batch(maze.encode(question), labels), maze_spec(n),
                  f"typed maze {n}x{n}" + (" with its path" if answer is not None else ""))


def parse_arc_task(task: Union[str, dict], test_index: int = 0) -> Picked:
    """An ARC task as JSON text or dict (:func:`trmlab.data.arc.parse_task`): {"train": [{"input",
    "output"}, ...], "test": [{"input"[, "output"]}]}. The test input ``test_index`` is the puzzle; its
    output, when given, is the label."""
    parsed = arc.parse_task(task, test_outputs=False)
    if not 0 <= test_index < len(parsed["test"]):
        raise PuzzleFormatError(f"ARC task: test_index {test_index}, but the task has {len(parsed['test'])} "
                                "test input(s)")
    x, y = parsed["test"][test_index]
    labels = None if y is None else arc.encode_arc_grid(y).reshape(-1)
    demos = [{"input": a, "output": b} for a, b in parsed["train"]]
    return Picked(make_batch(arc.encode_arc_grid(x).reshape(-1), labels), arc_spec(),
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


def _arc_demos(root: str, puzzle_identifier: int) -> list:
    """The demonstration pairs of an ARC dataset example, in the example's version (colours and
    dihedral): the raw task of ``test_puzzles.json`` under the version ``identifiers.json`` names."""
    names = read_identifiers(root)
    task_id, tid, perm = arc.parse_version_name(names[int(puzzle_identifier)])
    task = read_test_puzzles(root).get(task_id)
    if task is None:
        return []
    return [{"input": arc.apply_version(a, tid, perm), "output": arc.apply_version(b, tid, perm)}
            for a, b in arc.parse_task(task, f"{root}/test_puzzles.json task {task_id}")["train"]]


def from_dataset(root: str, index: Union[int, Sequence[int]] = 0, split: str = "test") -> Picked:
    """Example(s) ``index`` of a built dataset's split (as the loaders read them)."""
    s = open_split(root, split, check_tokens=False).first
    idx = [int(index)] if np.isscalar(index) else [int(i) for i in index]
    for i in idx:
        if not 0 <= i < s.num_examples:
            raise IndexError(f"{root}/{split}: example {i} out of range (0..{s.num_examples - 1})")
    task = dataset_task(root)
    x = np.asarray(s.inputs[idx]).astype(np.int64)
    y = np.asarray(s.labels[idx]).astype(np.int64)
    y = np.where(y < 0, IGNORE_LABEL, y)
    pid = s.puzzle_identifiers[s.example_puzzle(np.asarray(idx))].astype(np.int64)
    demos = _arc_demos(root, pid[0]) if task.family == "arc" else []
    desc = describe_examples(root, split, idx, s.num_examples, task, x, pid)
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
        h, w = (int(v) for v in arc.crop_sizes(inputs)[0])
        return f"test input {h}x{w}"
    return f"{task.seq_len} tokens"


def _arc_task_name(root: str, puzzle_identifier: int) -> str:
    """The ARC task an example comes from, and its augmentation when it is not the original."""
    task_id, tid, perm = arc.parse_version_name(read_identifiers(root)[int(puzzle_identifier)])
    if tid == 0 and np.array_equal(perm, np.arange(10)):
        return task_id
    return f"{task_id} (augmented: dihedral t{tid}, colours {''.join(map(str, perm.tolist()))})"


def describe_examples(root: str, split: str, indices: Sequence[int], n_examples: int, task: TaskSpec, inputs,
                      puzzle_identifiers) -> str:
    """A readable line about dataset examples: dataset, task, split, index, what the puzzle gives (its
    givens; never the solution), and for ARC the task's name."""
    name = os.path.basename(os.path.normpath(root))
    where = (f"example {indices[0]} of {n_examples}" if len(indices) == 1
             else f"examples {', '.join(map(str, indices))} of {n_examples}")
    desc = f"{task.name} from {name}, {split} split, {where}: {puzzle_summary(task, inputs[0])}"
    if task.family == "arc":
        desc += f", ARC task {_arc_task_name(root, puzzle_identifiers[0])}"
    return desc


def rank_puzzles(tr: Trace, by: str = "changed") -> np.ndarray:
    """Puzzle rows of a trace, the most interesting first.

    ``changed``: how many answer cells change between successive answer updates, summed (the recursion
    does the most work); ``solved``: the puzzles whose last answer is right on every cell to fill, then
    the unsolved, each by ``changed``; ``hardest``: lowest final accuracy on the cells to fill (unlabelled: lowest
    final confidence), then latest halting; ``gain``: largest rise of that accuracy from the first to
    the last answer.
    """
    ans = tr.records(events=["answer"])
    if not len(ans):
        ans = np.arange(len(tr))
    preds = tr.y_pred[ans]
    changes = (preds[1:] != preds[:-1]).sum(axis=(0, 2)) if len(ans) > 1 else np.zeros(tr.n_puzzles)
    if by == "changed":
        return np.argsort(-changes, kind="stable")
    if by == "solved":
        exact = tr.exact("y", "to_fill")
        if exact is None:
            raise ValueError("rank by 'solved' needs labels")
        return np.lexsort((-changes, ~exact[ans[-1]]))
    if by == "hardest":
        acc = tr.accuracy("y", "to_fill")
        final = acc[-1] if acc is not None else tr.y_conf[-1].astype(np.float32).mean(-1)
        return np.lexsort((-tr.halted_at(), final))
    if by == "gain":
        acc = tr.accuracy("y", "to_fill")
        if acc is None:
            raise ValueError("rank by 'gain' needs labels")
        return np.argsort(-(acc[ans[-1]] - acc[ans[0]]), kind="stable")
    raise ValueError(f"by must be 'changed', 'solved', 'hardest' or 'gain', got {by!r}")


@torch.no_grad()
def pick_interesting(model, root: str, by: str = "changed", k: int = 1, candidates: int = 64, split: str = "test",
                     n_supervision: Optional[int] = None, seed: int = 0) -> Picked:
    """The ``k`` examples among ``candidates`` (a random sample of the split) where the recursion does
    the most work (``by``: see :func:`rank_puzzles`)."""
    n = open_split(root, split, check_tokens=False).first.num_examples
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
