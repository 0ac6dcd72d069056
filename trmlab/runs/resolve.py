"""What a user names as a run, resolved once: a run folder, a checkpoint file, or a zoo model.

Every command and notebook that takes a trained model (``trmlab eval``, ``trmlab solve``, ``load_run``,
03-evaluate, 04-recursion, 05-compare) passes what it was given through :func:`resolve_run` and reads
the answer from the :class:`Run` it returns: where the files are, whether it is a zoo model, where
outputs go, its config and its dataset.

>>> run = resolve_run("sudoku9")             # the zoo model (no folder of that name here)
>>> run.is_zoo, run.folder, run.outputs       # True, <root>/zoo/sudoku9, <root>/runs/zoo/sudoku9
>>> run.dataset()                             # <root>/data/sudoku9-easy40, built from the card if missing
>>> resolve_run("runs/demo-sudoku4/checkpoints/step_800.pt").checkpoint_file

How a reference is read, in this order:

1. empty, with a ``task``: the zoo model of that task (what 03/04 open by default);
2. ``zoo:NAME``: the zoo model NAME, even where a folder of that name exists;
3. an existing path: relative paths from the project root (:func:`trmlab.paths.resolve`), else from the
   current folder. A checkpoint file's run is the folder above its ``checkpoints/``; a zoo model's
   folder given as a path is that zoo model;
4. a zoo model's name (``trmlab zoo list``);
5. anything else: a run folder that does not exist (``Run.exists`` is False; the caller says so).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..config import RunConfig, load_config
from ..paths import project_root, resolve
from ..train.checkpoint import load
from ..zoo import store
from ..zoo.recipes import data_folder, ensure_zoo_data, recipe_of

#: where outputs made from a zoo model go (the shipped zoo is never written to): ``runs/zoo/<name>``
ZOO_OUTPUTS = Path("runs") / "zoo"


class RunNotFound(FileNotFoundError):
    """A run reference names no run folder, checkpoint file or zoo model; the message says what was tried."""


@dataclass(frozen=True)
class Run:
    """A trained model as :func:`resolve_run` found it.

    ``ref``: what was given; ``folder``: the run folder, or the zoo model's folder; ``checkpoint_file``:
    the file when a checkpoint file was named (else None: the folder's checkpoints are chosen by name,
    ``last`` | ``best`` | ``step_N``); ``zoo_name``: the zoo model's name (None for a run folder);
    ``root``: the project root relative paths are taken from.
    """

    ref: str
    folder: Path
    checkpoint_file: Optional[Path]
    zoo_name: Optional[str]
    root: Path

    @property
    def is_zoo(self) -> bool:
        return self.zoo_name is not None

    @property
    def exists(self) -> bool:
        return self.is_zoo or (self.checkpoint_file or self.folder).exists()

    @property
    def name(self) -> str:
        return self.zoo_name or self.folder.name

    @property
    def outputs(self) -> Path:
        """Where what is made from this run goes (evaluations, recursion files): the run folder itself,
        or ``runs/zoo/<name>`` under the project root for a zoo model."""
        return self.root / ZOO_OUTPUTS / self.zoo_name if self.is_zoo else self.folder

    def require(self) -> "Run":
        """The run itself when it exists, else :class:`RunNotFound` saying what was tried."""
        if not self.exists:
            raise RunNotFound(
                f"{self.ref!r}: no run folder or checkpoint file at {self.folder}, and no zoo model of that "
                f"name (the zoo has: {', '.join(store.names()) or 'nothing'}); train one with `trmlab train`, "
                f"notebooks/02-train.ipynb or `trmlab demo`")
        return self

    def card(self) -> dict:
        """The zoo model's card (:func:`trmlab.zoo.store.read_card`); a ValueError for a run folder."""
        if not self.is_zoo:
            raise ValueError(f"{self.folder}: a run folder, not a zoo model: it has no card")
        return store.read_card(self.folder)

    def config(self) -> RunConfig:
        """The run's configuration: the zoo card's, the folder's ``config.json``, or the checkpoint's."""
        if self.is_zoo:
            return RunConfig.from_dict(self.card()["config"])
        file = self.folder / "config.json"
        if self.checkpoint_file is None and file.is_file():
            return load_config(str(file))
        state = load(self.checkpoint_file) if self.checkpoint_file else None
        if not isinstance(state, dict) or "config" not in state:
            raise RunNotFound(f"{self.checkpoint_file or file}: no run configuration here")
        return RunConfig.from_dict(state["config"])

    def dataset(self, build: bool = True, progress: bool = True, echo: Callable = print,
                cfg: Optional[RunConfig] = None) -> Path:
        """The run's own dataset folder. A zoo model's is its recipe's (``data/<name>`` under the project
        root), built when missing (``build``) and checked against the card's hash. A run folder's is
        ``data`` in its config (``cfg``, the config the model was loaded with; default :meth:`config`):
        absolute as written, else from the project root (where ``trmlab train`` runs), else from the
        current folder; FileNotFoundError when it is not there."""
        if self.is_zoo:
            recipe = recipe_of(self.zoo_name)
            if not build:
                return resolve(data_folder(recipe), self.root)
            return ensure_zoo_data(recipe, self.card(), progress=progress, echo=echo, root=self.root)[0]
        cfg = cfg or self.config()
        where = self.checkpoint_file or self.folder
        if not cfg.data:
            raise ValueError(f"{where}: 'data' is empty; give a dataset folder (--data, or the notebook's `data`)")
        written = Path(os.path.expanduser(cfg.data))
        candidates = [written] if written.is_absolute() else [resolve(written, self.root), Path.cwd() / written]
        for c in candidates:
            if (c / "test").is_dir() or (c / "train").is_dir():
                return c
        tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
        raise FileNotFoundError(
            f"{where}: the run's dataset (data={cfg.data!r} in its config.json) is not there (looked in {tried}). "
            f"Build it again "
            f"(trmlab data ...) or give the dataset folder (--data, or the notebook's `data`)")

    def describe(self) -> str:
        if self.is_zoo:
            return f"zoo model {self.zoo_name} ({self.folder})"
        return f"run {self.folder}" + (f", checkpoint {self.checkpoint_file.name}" if self.checkpoint_file else "")


def resolve_run(ref: "str | os.PathLike | Run", root: Optional[str | os.PathLike] = None, task: str = "") -> Run:
    """The :class:`Run` that ``ref`` names (see the module docstring for the order); a :class:`Run` is
    returned as it is. ``root``: the project root (default: found from the current folder); ``task``:
    with an empty ``ref``, the zoo model of this task. Raises :class:`~trmlab.zoo.store.ZooError` for
    ``zoo:NAME`` with an unknown NAME or a task with no zoo model; a reference to nothing gives a Run
    whose ``exists`` is False (:meth:`Run.require` raises)."""
    if isinstance(ref, Run):
        return ref
    base = Path(root) if root is not None else project_root()
    s = os.fspath(ref) if ref is not None else ""
    if not s:
        if not task:
            raise ValueError("give a run (a run folder, checkpoint file or zoo name) or a task whose zoo model to use")
        name = store.for_task(task)
        return Run(s, store.folder(name), None, name, base)
    if s.startswith(store.PREFIX):
        folder = store.folder(s)
        return Run(s, folder, None, folder.name, base)
    path = resolve(s, base)
    if not path.exists() and not Path(os.path.expanduser(s)).is_absolute() and (Path.cwd() / s).exists():
        path = Path.cwd() / s
    if path.exists():
        if path.is_file():
            run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
            return Run(s, run_dir, path, None, base)
        return Run(s, path, None, path.name if store.is_zoo_folder(path) else None, base)
    if s in store.names():
        return Run(s, store.folder(s), None, s, base)
    return Run(s, path, None, None, base)
