"""Look at a built dataset: one example as puzzle-level grids, or as text. (Drawing is the views' job:
``trmlab.viz.grids.draw_example`` draws what :func:`describe_example` returns.)"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from . import arc as arc_mod
from . import maze as maze_mod
from . import sudoku as sudoku_mod
from .format import DatasetError, grid_shape, infer_family, open_split, read_identifiers


def describe_example(root, split: str = "test", index: int = 0) -> dict:
    """Example ``index`` of ``split`` in puzzle terms.

    Keys: family, grid_shape, split, index, puzzle_index, puzzle_identifier, puzzle_name, question, answer
    (2-D arrays: Sudoku digits with 0 blank; maze characters; ARC colours, cropped), and for ARC
    ``demonstrations``: [(input, output)] of the same version's train-split puzzle when present.
    """
    root = Path(root)
    family = infer_family(root)
    sp = open_split(root, split, check_tokens=False)
    s = sp.first
    if not 0 <= index < s.num_examples:
        raise DatasetError(f"{root}/{split}: index {index} is outside 0..{s.num_examples - 1}")
    p = int(s.example_puzzle(index))
    pid = int(s.puzzle_identifiers[p])
    try:
        names = read_identifiers(root)
        name = names[pid] if pid < len(names) else str(pid)
    except DatasetError:
        name = str(pid)
    x, y = np.asarray(s.inputs[index]), np.asarray(s.labels[index])
    out = {"family": family, "split": split, "index": index, "puzzle_index": p, "puzzle_identifier": pid,
           "puzzle_name": name}
    if family == "sudoku":
        n = grid_shape(root)[0]
        out.update(question=sudoku_mod.decode(x, n), answer=sudoku_mod.decode(y, n), grid_shape=(n, n))
    elif family == "maze":
        n = grid_shape(root)[0]
        out.update(question=maze_mod.decode(x, n), answer=maze_mod.decode(y, n), grid_shape=(n, n))
    else:
        dec = arc_mod.decode_translated_grid
        q, a = dec(x), dec(y)
        out.update(question=q, answer=a, grid_shape=tuple(a.shape))
        demos = []
        if split != "train" and (root / "train" / "dataset.json").is_file():
            t = open_split(root, "train", check_tokens=False).first
            hits = np.flatnonzero(t.puzzle_identifiers == pid)
            if hits.size:
                tp = int(hits[0])
                for e in range(int(t.puzzle_indices[tp]), int(t.puzzle_indices[tp + 1])):
                    demos.append((dec(t.inputs[e]), dec(t.labels[e])))
        out["demonstrations"] = demos
        out["task_id"], out["dihedral_id"], out["colour_perm"] = arc_mod.parse_version_name(name)
    return out


def _grid_text(g: np.ndarray, family: str) -> str:
    if family == "sudoku":
        return "\n".join(" ".join("." if v == 0 else str(int(v)) for v in row) for row in g)
    if family == "maze":
        return "\n".join("".join(row) for row in g)
    return "\n".join("".join(str(int(v)) for v in row) for row in g)


def format_text(root=None, split: str = "test", index: int = 0, example: Optional[dict] = None) -> str:
    """The example as text: question and answer side by side (ARC: demonstrations first)."""
    ex = example or describe_example(root, split, index)
    fam = ex["family"]
    head = (f"{fam} {ex['split']}[{ex['index']}] puzzle {ex['puzzle_index']} id {ex['puzzle_identifier']} "
            f"({ex['puzzle_name']}) grid {ex['grid_shape'][0]}x{ex['grid_shape'][1]}")
    parts = [head]

    def side(a, b, la, lb):
        ta, tb = _grid_text(a, fam).splitlines(), _grid_text(b, fam).splitlines()
        wa = max([len(la)] + [len(t) for t in ta])
        rows = [f"{la:<{wa}}   {lb}"]
        for i in range(max(len(ta), len(tb))):
            rows.append(f"{(ta[i] if i < len(ta) else ''):<{wa}}   {tb[i] if i < len(tb) else ''}")
        return "\n".join(rows)

    for k, (a, b) in enumerate(ex.get("demonstrations") or []):
        parts.append(side(a, b, f"demo {k} input", "output"))
    parts.append(side(ex["question"], ex["answer"], "question", "answer"))
    return "\n\n".join(parts)
