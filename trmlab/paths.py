"""The project's paths: relative paths are taken from the project root, wherever the code runs.

The project root is the clone of this repository (the folder holding ``notebooks/`` and ``trmlab/``).
Notebooks, commands and the workbench take paths such as ``runs/demo-sudoku4`` or ``data/sudoku4``
from there, so the same parameters work whether a notebook is opened from ``notebooks/`` in JupyterLab
or executed by papermill from the repository root or anywhere else.

>>> resolve("runs/demo-sudoku4")          # -> <root>/runs/demo-sudoku4
>>> display_path(resolve("data/sudoku4"))  # -> 'data/sudoku4'
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def project_root(start: Optional[str | os.PathLike] = None) -> Path:
    """The nearest folder at or above ``start`` (default: the current directory) that holds
    ``notebooks/`` and ``trmlab/`` (a clone of this repository); the current directory when none does."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "trmlab").is_dir():
            return folder
    return here


def resolve(path: str | os.PathLike, root: Optional[str | os.PathLike] = None) -> Path:
    """``path`` as an absolute path: absolute paths stay, relative ones are taken from the project root."""
    p = Path(os.path.expanduser(str(path)))
    if p.is_absolute():
        return p
    return (Path(root) if root is not None else project_root()) / p


def display_path(path: str | os.PathLike, root: Optional[str | os.PathLike] = None) -> str:
    """``path`` relative to the project root when it lies inside it (how notebooks take paths), else as is."""
    try:
        return str(Path(path).resolve().relative_to(Path(root) if root is not None else project_root()))
    except ValueError:
        return str(path)
