"""What every notebook calls first: find the project, resolve paths, make figures survive HTML export.

Notebooks take paths relative to the project root (the folder holding ``notebooks/``), so the same
parameters work whether a notebook is opened from ``notebooks/`` in JupyterLab or executed by papermill
(``trmlab run``) from the repository root or anywhere else.

>>> root = setup()                       # in a notebook's first code cell
>>> resolve("runs/demo-sudoku4")        # -> <root>/runs/demo-sudoku4
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


def setup(plotly_inline: bool = True) -> Path:
    """Prepare a notebook: plotly figures carry plotly.js inline (so an HTML report of the executed
    notebook shows them with no network), and return the project root."""
    if plotly_inline:
        import plotly.io as pio

        pio.renderers.default = "plotly_mimetype+notebook"
    return project_root()


def display_path(path: str | os.PathLike, root: Optional[str | os.PathLike] = None) -> str:
    """``path`` relative to the project root when it lies inside it (how notebooks take paths), else as is."""
    try:
        return str(Path(path).resolve().relative_to(Path(root) if root is not None else project_root()))
    except ValueError:
        return str(path)


def resolve_run(run: str | os.PathLike, root: Optional[str | os.PathLike] = None) -> Path:
    """A run reference as a folder: a path (relative ones from the project root) when it exists, else
    the folder of the zoo model it names (``sudoku9`` or ``zoo:sudoku9``; :mod:`trmlab.train.zoo`),
    else the path as given (the caller reports it missing)."""
    from ..train import zoo

    s = os.fspath(run)
    if not s.startswith(zoo.PREFIX):
        p = resolve(s, root)
        if p.exists():
            return p
    found = zoo.lookup(s)
    return found if found is not None else resolve(s, root)


def outputs_dir(run_dir: str | os.PathLike, root: Optional[str | os.PathLike] = None) -> Path:
    """Where notebooks write what they make from a run (evaluations, recursion files): the run folder
    itself, or ``runs/zoo/<name>`` for a zoo model (the shipped zoo is never written to)."""
    from ..train import zoo

    p = Path(run_dir)
    if zoo.is_zoo_folder(p):
        return resolve(Path("runs") / "zoo" / p.name, root)
    return p


def zoo_run_for(task: str) -> Path:
    """The zoo model of ``task`` (``sudoku9``...): what a notebook opens when no run is given."""
    from ..train import zoo

    return zoo.folder(zoo.for_task(task))
