"""What a token sequence means: the task family, its grid shape and its token map.

The tracer stores this with every trace so the views (trmlab/viz) can draw the grids without the
dataset at hand. Token maps (the reference's builders, and trmlab/data):

* Sudoku (4x4, 6x6, 9x9): 0 pad, 1 blank, digit d -> d + 1; ``seq_len = size * size`` row-major;
  vocab 6 / 8 / 11.
* Maze (size x size): 0 pad, ``#`` 1, `` `` 2, ``S`` 3, ``G`` 4, ``o`` (path) 5; vocab 6.
* ARC: a 30x30 canvas (seq 900): 0 PAD, 1 EOS (the row below and the column right of the grid),
  colour c -> c + 2; vocab 12.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from trmlab.data.arc import MAX_GRID as ARC_SIZE
from trmlab.data.format import family_of, grid_shape, infer_family
from trmlab.data.maze import CHARSET as MAZE_CHARS
from trmlab.data.sudoku import BOXES

SUDOKU_BLANK = 1
MAZE_WALL, MAZE_OPEN, MAZE_START, MAZE_GOAL, MAZE_PATH = (MAZE_CHARS.index(ch) + 1 for ch in "# SGo")
ARC_PAD, ARC_EOS = 0, 1
IGNORE_LABEL = -100


@dataclass
class TaskSpec:
    """The task family (``sudoku``, ``maze``, ``arc`` or ``generic``) and the grid the sequence lays out."""

    family: str
    rows: int
    cols: int
    vocab_size: int
    seq_len: int
    box: tuple = ()  # Sudoku box shape (rows, cols): (2, 2), (2, 3), (3, 3)
    name: str = ""
    extra: dict = field(default_factory=dict)  # e.g. ARC demonstration pairs

    def to_dict(self) -> dict:
        d = asdict(self)
        d["box"] = list(self.box)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TaskSpec":
        d = dict(d)
        d["box"] = tuple(d.get("box") or ())
        return cls(**d)

    # -- tokens <-> grids ---------------------------------------------------------------------------

    def grid(self, tokens) -> np.ndarray:
        """A token sequence as a [rows, cols] array (tokens, not decoded values)."""
        return np.asarray(tokens).reshape(self.rows, self.cols)

    def givens(self, inputs) -> np.ndarray:
        """Bool [seq_len]: the cells the puzzle gives (not predicted)."""
        inputs = np.asarray(inputs)
        if self.family == "sudoku":
            return inputs > SUDOKU_BLANK
        if self.family == "maze":
            return inputs != MAZE_OPEN
        return np.zeros(inputs.shape, bool)

    def symbol(self, token: int) -> str:
        """A short text for one token (what a cell shows)."""
        token = int(token)
        if self.family == "sudoku":
            return "" if token <= SUDOKU_BLANK else str(token - 1)
        if self.family == "maze":
            return MAZE_CHARS[token - 1] if 1 <= token <= 5 else "?"
        if self.family == "arc":
            return {ARC_PAD: "", ARC_EOS: "|"}.get(token, str(token - 2))
        return str(token)


def sudoku_spec(size: int) -> TaskSpec:
    box = BOXES.get(size)
    if box is None:
        raise ValueError(f"Sudoku size must be 4, 6 or 9, got {size}")
    return TaskSpec("sudoku", size, size, size + 2, size * size, box, name=f"sudoku{size}x{size}")


def maze_spec(size: int) -> TaskSpec:
    return TaskSpec("maze", size, size, 6, size * size, name=f"maze{size}x{size}")


def arc_spec() -> TaskSpec:
    return TaskSpec("arc", ARC_SIZE, ARC_SIZE, 12, ARC_SIZE * ARC_SIZE, name="arc")


def infer_task(vocab_size: int, seq_len: int) -> TaskSpec:
    """The task spec a model's vocabulary and sequence length imply (no dataset at hand); a
    ``generic`` grid or sequence when they match no family."""
    family = family_of(vocab_size, seq_len)
    side = int(round(math.sqrt(seq_len))) if seq_len > 0 else 0
    if family is not None:
        return spec_for(family, side)
    if side * side == seq_len:
        return TaskSpec("generic", side, side, vocab_size, seq_len, name="grid")
    return TaskSpec("generic", 1, seq_len, vocab_size, seq_len, name="sequence")


def spec_for(family: str, size: int) -> TaskSpec:
    """The spec of a ``sudoku``, ``maze`` or ``arc`` grid of side ``size``."""
    if family == "sudoku":
        return sudoku_spec(size)
    if family == "maze":
        return maze_spec(size)
    if family == "arc":
        return arc_spec()
    raise ValueError(f"unknown task family {family!r} (sudoku, maze or arc)")


def dataset_task(root) -> TaskSpec:
    """The task spec of a built dataset folder (its build.json, else its dataset.json; see
    :func:`trmlab.data.format.infer_family`)."""
    return spec_for(infer_family(root), grid_shape(root)[0])
