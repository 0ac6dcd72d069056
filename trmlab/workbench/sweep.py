"""A grid of notebook runs (papermill), one run folder per cell, and one table of their results.

>>> sweep("02-train", {"train.lr": [1e-3, 2e-3], "n_latent_steps": [2, 3]}, seeds=[0, 1], out="runs/lr-n")
>>> sweep_commands("02-train", {...}, seeds=[0, 1], out="runs/lr-n")   # one `trmlab run ...` per cell

* Each cell is one combination of the grid values and one seed; its run folder is
  ``<out>/<key>=<value>_..._seed=<s>`` and its executed notebook is kept there.
* A cell is finished when its executed notebook completed without error; running the sweep again
  skips finished cells (a failed cell's folder is moved aside to ``<cell>.failed-<time>`` and rerun).
* ``<out>/results.csv`` and ``<out>/results.json``: one row per cell (the grid values, the seed, the
  status, and :meth:`~trmlab.workbench.results.RunSummary.row` of its run folder).
* Grid keys are notebook parameters (``steps``, ``preset``...) or training configuration keys, which
  go into the notebook's ``overrides`` (``train.lr``, ``model.hidden_size``, ``arch.L_cycles``...). An
  ablation study is a sweep over model switches, e.g. ``--grid preset=cpu_sudoku4,cpu_mlp_sudoku4,cpu_hrm_sudoku4``.
* ``sweep_commands`` prints the same cells as shell commands for a scheduler or a GPU machine (each
  may be wrapped in ``torchrun``); running ``trmlab sweep`` again afterwards only collects the table.
* A cell killed while it ran (papermill never recorded its end) whose run has a checkpoint is
  ``interrupted``: the next sweep resumes it in place (02-train's ``if_exists="resume"``, which every
  cell gets) instead of starting over; the trainer drops the metrics rows logged after that checkpoint.
* Every run of a sweep gets the sweep folder's name as its W&B group (``train.wandb_group``) and its
  cell (without the seed) as ``arm``; the seed is ``train.seed``: W&B shows them as config.
* ``study=``: the (arm, seed) cells of a study (:mod:`trmlab.workbench.study`, ``--study ablation``)
  instead of a grid; ``<out>/study.json`` records it for ``trmlab report``.
* ``launcher=``: where the cells run: :class:`LocalLauncher` (here, in turn, or ``jobs`` cells at a time
  in worker processes: ``--jobs N``) or :class:`trmlab.workbench.launchers.SlurmLauncher` (one submitit job
  per cell; ``--launcher slurm``).
* A sweep holds a lock on each cell it runs (``<out>/.locks/<cell>.lock``) until it ends: a second sweep of
  the same folder leaves those cells alone (it neither resumes nor moves aside a cell being run) and
  reports them as ``running``.
"""
from __future__ import annotations

import csv
import fcntl
import io
import itertools
import json
import os
import re
import shlex
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from ..io import atomic_write, write_json_atomic
from ..paths import display_path as _rel, project_root, resolve
from .results import RunFolderError, read_notebooks, read_run
from .study import finalise_eval_steps, study_cells, write_study
from .execute import (NotebookFailed, find_notebook, notebook_parameters, parse_value, run_notebook,
                      split_parameters)


class SweepError(ValueError):
    """A bad grid specification; the message names the part."""


@dataclass
class Cell:
    name: str
    params: dict  # grid values + seed (+ the fixed parameters)
    grid: dict  # only the values that vary
    run_dir: Path


def parse_grid(specs: Sequence[str]) -> dict[str, list]:
    """``["train.lr=1e-3,2e-3", "steps=100"]`` -> ``{"train.lr": [0.001, 0.002], "steps": [100]}``."""
    grid: dict[str, list] = {}
    for spec in specs:
        if "=" not in spec:
            raise SweepError(f"--grid {spec!r}: expected KEY=V1,V2,...")
        key, _, values = spec.partition("=")
        key = key.strip()
        if not key or not values.strip():
            raise SweepError(f"--grid {spec!r}: expected KEY=V1,V2,...")
        if key in grid:
            raise SweepError(f"--grid: key {key!r} given twice")
        grid[key] = [parse_value(v.strip()) for v in _split_values(values)]
    return grid


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets/braces/quotes (so a dict or list value stays whole)."""
    out, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            cur += ch
            quote = "" if ch == quote else quote
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v for v in out if v.strip()]


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SweepError(f"--seeds {text!r}: expected integers separated by commas, e.g. 0,1,2") from None
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {text!r}: a seed is repeated")
    return seeds


def _slug(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-") or "x"


def plan(notebook: str, grid: Mapping[str, list], seeds: Optional[Sequence[int]], out: str,
         params: Optional[Mapping[str, Any]] = None) -> list[Cell]:
    """The cells of the sweep, in order (the grid's product, then the seeds)."""
    path = find_notebook(notebook)
    fixed = dict(params or {})
    for k in grid:
        if k in fixed:
            raise SweepError(f"{k!r} is both a grid key and a fixed parameter")
    if seeds and ("seed" in grid or "seed" in fixed):
        raise SweepError("give the seeds with --seeds or as a grid key 'seed', not both")
    keys = list(grid)
    for k in keys:
        if not grid[k]:
            raise SweepError(f"--grid {k}: no values")
    seeds = list(seeds) if seeds else []
    cells = []
    out_dir = resolve(out)
    for combo in itertools.product(*(grid[k] for k in keys)):
        for seed in (seeds or [None]):
            g = dict(zip(keys, combo))
            if seed is not None:
                g["seed"] = seed
            name = "_".join(f"{_slug(k)}={_slug(v)}" for k, v in g.items()) or "run"
            p = {**fixed, **g}
            split_parameters(path, p)  # every key must be a notebook parameter or a config key
            cells.append(Cell(name=name, params=p, grid=g, run_dir=out_dir / name))
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise SweepError("two cells of the grid get the same folder name; make the values differ")
    return cells


def cell_status(cell: Cell, notebook_stem: str) -> str:
    """``finished`` | ``failed`` | ``interrupted`` | ``pending``: from the executed notebook kept in the
    cell's folder. ``interrupted``: killed while it ran (papermill never recorded its end) or before its
    notebook was written, with a training checkpoint to resume from."""
    nb = read_notebooks(cell.run_dir).get(notebook_stem) if cell.run_dir.is_dir() else None
    has_checkpoint = (cell.run_dir / "checkpoints").is_dir() and any((cell.run_dir / "checkpoints").glob("*.pt"))
    if nb is None:
        if not cell.run_dir.exists() or not any(cell.run_dir.iterdir()):
            return "pending"
        return "interrupted" if has_checkpoint else "failed"
    if nb.status == "unfinished":
        return "interrupted" if has_checkpoint else "failed"
    return {"ok": "finished", "failed": "failed"}.get(nb.status, "failed")


def sweep_commands(notebook: str, grid: Mapping[str, list], seeds: Optional[Sequence[int]], out: str,
                   params: Optional[Mapping[str, Any]] = None, program: str = "trmlab", study=None) -> list[str]:
    """One ``trmlab run NOTEBOOK --out CELL -p KEY VALUE ...`` command per cell (of the grid, or of
    ``study``)."""
    path = find_notebook(notebook)
    cmds = []
    if study is not None:
        cells = study_plan(notebook, finalise_eval_steps(study), out, params)
    else:
        cells = plan(notebook, grid, seeds, out, params)
    group_params(path, cells, resolve(out))
    for c in cells:
        args = [program, "run", _rel(path), "--out", _rel(c.run_dir)]
        for k, v in c.params.items():
            args += ["-p", k, v if isinstance(v, str) else json.dumps(v)]
        cmds.append(" ".join(shlex.quote(str(a)) for a in args))
    return cmds


def group_params(path: Path, cells: Sequence[Cell], out_dir: Path) -> None:
    """Give every cell's run the sweep's W&B group (the sweep folder's name) and its arm (the cell name
    without the seed) as config, and ``if_exists="resume"`` (a killed cell resumes), where the notebook
    takes them (an ``overrides`` and an ``if_exists`` parameter, as 02-train)."""
    known = notebook_parameters(path)
    for c in cells:
        if "overrides" in known and "arm" not in (c.params.get("overrides") or {}):
            arm = "_".join(f"{_slug(k)}={_slug(v)}" for k, v in c.grid.items() if k != "seed") or c.name
            extra = {"train.wandb_group": out_dir.name, "arm": arm}
            c.params = {**c.params, **{k: v for k, v in extra.items() if k not in c.params}}
        if "if_exists" in known and "if_exists" not in c.params:
            c.params = {**c.params, "if_exists": "resume"}


def study_plan(notebook: str, study, out: str, params: Optional[Mapping[str, Any]] = None) -> list[Cell]:
    """The cells of a study (:mod:`trmlab.workbench.study`): one per (arm, seed)."""
    path = find_notebook(notebook)
    cells = []
    for c in study_cells(study, out, params):
        split_parameters(path, c["params"])  # every key must be a notebook parameter or a config key
        cells.append(Cell(name=c["name"], params=c["params"], grid={"arm": c["arm"], "seed": c["seed"]},
                          run_dir=c["run_dir"]))
    return cells


def sweep(notebook: str, grid: Mapping[str, list], seeds: Optional[Sequence[int]], out: str,
          params: Optional[Mapping[str, Any]] = None, echo: Callable = print, log_output: bool = False,
          progress: bool = True, launcher=None, study=None) -> list[dict]:
    """Run every unfinished cell, then write the results table. Returns its rows.

    ``launcher``: where the cells run (:mod:`trmlab.workbench.launchers`; default: here, one after the
    other). ``study``: a :class:`~trmlab.workbench.study.Study` whose (arm, seed) cells replace the grid
    (``grid`` and ``seeds`` must be empty); its definition is written to ``<out>/study.json``."""
    path = find_notebook(notebook)
    out_dir = resolve(out)
    if study is not None:
        if grid or seeds:
            raise SweepError("a study gives its own cells: no --grid or --seeds with --study")
        study = finalise_eval_steps(study)
        cells = study_plan(notebook, study, out, params)
    else:
        cells = plan(notebook, grid, seeds, out, params)
    group_params(path, cells, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if study is not None:
        write_study(study, out_dir)
    launcher = launcher or LocalLauncher(log_output=log_output, progress=progress)
    locks = CellLocks(out_dir)
    todo, skipped, busy = [], 0, 0
    try:
        for i, c in enumerate(cells, 1):
            status = cell_status(c, path.stem)
            if status != "finished":
                if not locks.acquire(c):
                    busy += 1
                    echo(f"[{i}/{len(cells)}] {c.name}: being run by another sweep ({locks.holder(c)}), left to it")
                    continue
                status = cell_status(c, path.stem)  # again, now that no other sweep can change it
            if status == "finished":
                skipped += 1
                echo(f"[{i}/{len(cells)}] {c.name}: finished, skipped")
                continue
            if status == "failed":
                aside = c.run_dir.with_name(f"{c.name}.failed-{time.strftime('%Y%m%d-%H%M%S')}")
                c.run_dir.rename(aside)
                echo(f"[{i}/{len(cells)}] {c.name}: an earlier try failed, moved to {aside.name}")
            if status == "interrupted":
                echo(f"[{i}/{len(cells)}] {c.name}: interrupted earlier, resuming from its last checkpoint")
            todo.append((i, c))
        if not getattr(launcher, "holds_cell_locks", True):
            locks.release()  # the launcher's jobs lock their own cells (they may outlive this sweep)
        failed = launcher.run(path, todo, len(cells), echo)
        rows = collect(cells, path.stem, locks)
        csv_path, json_path = write_table(rows, out_dir)
    finally:
        locks.release()
    left = f", {busy} left to another sweep" if busy else ""
    echo(f"{len(cells)} cells: {len(todo)} ran ({failed} failed), {skipped} already finished{left}; "
         f"wrote {_rel(csv_path)} and {_rel(json_path)}")
    return rows


class CellLocks:
    """The cells this sweep runs: an exclusive ``flock`` on ``<out>/.locks/<cell>.lock`` per cell, held
    until :meth:`release` (the end of the sweep; the system drops it when the process dies, so a killed
    sweep leaves no stale lock). The lock file holds the holder's host and pid, for the message."""

    def __init__(self, out_dir: Path):
        self.dir = out_dir / ".locks"
        self.held: dict[str, Any] = {}

    def _path(self, cell: Cell) -> Path:
        return self.dir / f"{cell.name}.lock"

    def acquire(self, cell: Cell) -> bool:
        """Take the cell's lock; False when another sweep (or another open of it) holds it."""
        if cell.name in self.held:
            return True
        self.dir.mkdir(parents=True, exist_ok=True)
        f = open(self._path(cell), "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{os.uname().nodename} pid {os.getpid()}\n")
        f.flush()
        self.held[cell.name] = f
        return True

    def busy(self, cell: Cell) -> bool:
        """Whether another sweep holds the cell now (this one's own locks are not busy)."""
        if cell.name in self.held or not self._path(cell).exists():
            return False
        if self.acquire(cell):
            f = self.held.pop(cell.name)
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()
            return False
        return True

    def holder(self, cell: Cell) -> str:
        try:
            return self._path(cell).read_text(encoding="utf-8").strip() or "unknown holder"
        except OSError:
            return "unknown holder"

    def release(self) -> None:
        for f in self.held.values():
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()
        self.held.clear()


class LocalLauncher:
    """Runs the cells here (``trmlab sweep``'s default): one after the other, or ``jobs`` at a time, each in
    a worker process of its own (``--jobs N``: N notebooks at once, e.g. one per core with ``-p threads 1``,
    which on small models trains faster in all than one run using every core)."""

    def __init__(self, log_output: bool = False, progress: bool = True, jobs: int = 1):
        if int(jobs) < 1:
            raise SweepError(f"--jobs must be >= 1, got {jobs}")
        self.log_output, self.progress, self.jobs = log_output, progress, int(jobs)

    def run(self, path: Path, todo: Sequence[tuple[int, Cell]], total: int, echo: Callable = print) -> int:
        """Run the cells ``todo`` ([(position, cell)]) of a sweep of ``total``; returns how many failed."""
        if self.jobs == 1 or len(todo) <= 1:
            failed = 0
            for i, c in todo:
                echo(f"[{i}/{total}] {c.name}: running")
                if not run_cell(path, c, self.log_output, self.progress, echo):
                    failed += 1
            return failed
        return self._run_parallel(path, todo, total, echo)

    def _run_parallel(self, path: Path, todo: Sequence[tuple[int, Cell]], total: int, echo: Callable) -> int:
        import multiprocessing  # lazy: only a parallel sweep starts worker processes

        root = str(project_root())
        failed = 0
        # the cores shared out: a notebook with a `threads` parameter not given gets cores / jobs
        threads = max(1, (os.cpu_count() or 1) // self.jobs) if "threads" in notebook_parameters(path) else None
        # spawn, not fork: the workers start clean (no copied threads or locks of this process)
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            running = {}
            for i, c in todo:
                params = dict(c.params)
                if threads is not None and "threads" not in params:
                    params["threads"] = threads
                fut = pool.submit(_timed_cell, str(path), c.name, params, str(c.run_dir), root, self.log_output)
                running[fut] = (i, c)
            echo(f"{len(todo)} cells, {self.jobs} at a time (worker processes, no progress bars: a training "
                 f"cell's progress is its folder's metrics.jsonl)")
            for fut in as_completed(running):
                i, c = running[fut]
                try:
                    ok, seconds = fut.result()
                    took = f" in {seconds / 60:.1f} min"
                except Exception as e:  # the worker process died, or the cell raised outside its notebook
                    ok, took = False, f": {type(e).__name__}: {e}"
                failed += not ok
                echo(f"[{i}/{total}] {c.name}: {'finished' if ok else 'FAILED'}{took}")
        return failed


def _timed_cell(*args) -> tuple[bool, float]:
    """:func:`run_cell_in_worker` and the seconds it took (a parallel sweep's report of each cell)."""
    t0 = time.time()
    return run_cell_in_worker(*args), time.time() - t0


def run_cell_in_worker(notebook: str, name: str, params: dict, run_dir: str, root: str,
                       log_output: bool = False) -> bool:
    """One cell in a worker process or a cluster job: from the project root ``root``, without progress bars."""
    os.chdir(root)
    return run_cell(Path(notebook), Cell(name=name, params=dict(params), grid={}, run_dir=Path(run_dir)),
                    log_output=log_output, progress=False)


def run_cell(path: Path, cell: Cell, log_output: bool = False, progress: bool = True,
             echo: Callable = print) -> bool:
    """Run one cell's notebook into its folder; False when a cell of the notebook raised."""
    try:
        run_notebook(path, cell.params, out=cell.run_dir, log_output=log_output, progress=progress, echo=echo)
    except NotebookFailed as e:
        echo(f"{cell.name}: FAILED: {e}")
        return False
    return True


def collect(cells: Sequence[Cell], notebook_stem: str, locks: Optional[CellLocks] = None) -> list[dict]:
    """One row per cell: its grid values, status (``running``: another sweep holds it, per ``locks``), and
    its run folder's summary row."""
    rows = []
    for c in cells:
        status = "running" if locks is not None and locks.busy(c) else cell_status(c, notebook_stem)
        row: dict[str, Any] = {"cell": c.name, **{f"grid.{k}": v for k, v in c.grid.items()}, "status": status}
        try:
            summary = read_run(c.run_dir)
            row.update(summary.row())
        except RunFolderError as e:
            row["error"] = str(e)
        rows.append(row)
    return rows


def write_table(rows: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """``results.csv`` (columns: the union of the rows' keys, in first-seen order) and ``results.json``."""
    columns: list[str] = []
    for r in rows:
        for k in r:
            if k not in columns:
                columns.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns)
    w.writeheader()
    for r in rows:
        w.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()})
    csv_path = atomic_write(out_dir / "results.csv", lambda f: f.write(buf.getvalue().encode("utf-8")))
    json_path = write_json_atomic(out_dir / "results.json", rows, indent=2, default=str)
    return csv_path, json_path
