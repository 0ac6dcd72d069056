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

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

SUDOKU_BLANK = 1
MAZE_CHARS = "# SGo"  # token = index + 1
MAZE_WALL, MAZE_OPEN, MAZE_START, MAZE_GOAL, MAZE_PATH = 1, 2, 3, 4, 5
ARC_PAD, ARC_EOS, ARC_SIZE = 0, 1, 30
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
    box = {4: (2, 2), 6: (2, 3), 9: (3, 3)}.get(size)
    if box is None:
        raise ValueError(f"Sudoku size must be 4, 6 or 9, got {size}")
    return TaskSpec("sudoku", size, size, size + 2, size * size, box, name=f"sudoku{size}x{size}")


def maze_spec(size: int) -> TaskSpec:
    return TaskSpec("maze", size, size, 6, size * size, name=f"maze{size}x{size}")


def arc_spec() -> TaskSpec:
    return TaskSpec("arc", ARC_SIZE, ARC_SIZE, 12, ARC_SIZE * ARC_SIZE, name="arc")


def infer_task(vocab_size: int, seq_len: int, build_info: Optional[dict] = None) -> TaskSpec:
    """The task spec from a dataset's ``build.json`` (when given) or else from vocab and sequence length."""
    if build_info:
        family = str(build_info.get("task", build_info.get("family", ""))).lower()
        shape = build_info.get("grid_shape") or build_info.get("grid") or build_info.get("shape")
        size = None
        if isinstance(shape, (list, tuple)) and shape:
            size = int(shape[0])
        elif build_info.get("size"):
            size = int(build_info["size"])
        if size is None and seq_len:
            size = int(round(math.sqrt(seq_len)))
        if family == "sudoku" and size:
            return sudoku_spec(size)
        if family == "maze" and size:
            return maze_spec(size)
        if family == "arc":
            return arc_spec()
    side = int(round(math.sqrt(seq_len))) if seq_len > 0 else 0
    if side * side == seq_len:
        if side in (4, 6, 9) and vocab_size == side + 2:
            return sudoku_spec(side)
        if side == ARC_SIZE and vocab_size == 12:
            return arc_spec()
        if vocab_size == 6:
            return maze_spec(side)
        return TaskSpec("generic", side, side, vocab_size, seq_len, name="grid")
    return TaskSpec("generic", 1, seq_len, vocab_size, seq_len, name="sequence")


def read_build_info(root: str) -> dict:
    """``build.json`` of a dataset folder, or {} (uses trmlab.data.format when it exists)."""
    try:  # the data engineer's reader, when it is there
        from trmlab.data.format import read_build_info as _read  # type: ignore

        return dict(_read(root) or {})
    except Exception:
        pass
    path = os.path.join(root, "build.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def dataset_task(root: str) -> TaskSpec:
    """The task spec of a built dataset folder."""
    info = read_build_info(root)
    vocab, seq_len = 0, 0
    for split in ("test", "train"):
        meta = os.path.join(root, split, "dataset.json")
        if os.path.exists(meta):
            with open(meta) as f:
                m = json.load(f)
            vocab, seq_len = int(m.get("vocab_size", 0)), int(m.get("seq_len", 0))
            break
    return infer_task(vocab, seq_len, info)


# -- ARC grids ---------------------------------------------------------------------------------------


def arc_encode(grid) -> np.ndarray:
    """A grid of colours 0..9 (h, w <= 30) as 900 tokens: colour + 2, EOS after the last row and column."""
    g = np.asarray(grid, dtype=np.int64)
    h, w = g.shape
    out = np.full((ARC_SIZE, ARC_SIZE), ARC_PAD, np.int64)
    out[:h, :w] = g + 2
    if h < ARC_SIZE:
        out[h, :w] = ARC_EOS
    if w < ARC_SIZE:
        out[:h, w] = ARC_EOS
    return out.reshape(-1)


def arc_extent(tokens) -> tuple[int, int]:
    """(rows, cols) of the grid inside a 30x30 canvas: up to the first EOS/PAD along row 0 and column 0."""
    t = np.asarray(tokens).reshape(ARC_SIZE, ARC_SIZE)
    col0, row0 = t[:, 0], t[0, :]
    h = int(np.argmax(col0 < 2)) if (col0 < 2).any() else ARC_SIZE
    w = int(np.argmax(row0 < 2)) if (row0 < 2).any() else ARC_SIZE
    return h, w


def arc_decode(tokens) -> np.ndarray:
    """Colours 0..9 of the grid inside a 30x30 canvas (cropped at EOS)."""
    try:
        from trmlab.data.arc import decode_arc_grid  # type: ignore

        return np.asarray(decode_arc_grid(np.asarray(tokens)))
    except Exception:
        pass
    h, w = arc_extent(tokens)
    t = np.asarray(tokens).reshape(ARC_SIZE, ARC_SIZE)[:h, :w]
    return np.clip(t - 2, 0, 9)
