"""Where a sweep's cells run: one ``submitit`` job per cell on a Slurm cluster (``--launcher slurm``).

>>> launcher = SlurmLauncher(SlurmOptions(partition="gpu", gpus_per_node=4, torchrun=True, time_minutes=600),
...                          folder="runs/study-sudoku/.submitit")
>>> sweep("02-train", {}, [], "runs/study-sudoku", study=st, launcher=launcher)

Each job runs its cell exactly as the local sweep does (the notebook with papermill into the cell's run
folder, :func:`trmlab.workbench.sweep.run_cell`), on the node it lands on, from the project root the
sweep was started in (a shared file system). With ``torchrun`` and more than one GPU per node the job
first trains the cell with ``torchrun --nproc_per_node=<GPUs> -m trmlab.cli train`` (the cell's preset,
data, overrides, steps, seed and evaluation cadence; ``--resume`` when the run has a checkpoint), then runs
the notebook, which finds the training done and evaluates. The launcher waits for every job and returns;
the sweep then writes the results table. Running the sweep again skips finished cells and resumes
interrupted ones (a job killed at its time limit resumes from its last checkpoint), like the local sweep.

``cluster="local"`` uses submitit's local executor (each job a subprocess of this machine): what the tests
run, and a dry run of a cluster sweep on one machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..data.catalog import ensure_dataset
from ..io import write_json_atomic
from ..paths import display_path, project_root, resolve
from .sweep import Cell, CellLocks, cell_status, run_cell_in_worker


class LauncherError(ValueError):
    """A bad launcher option; the message names it."""


@dataclass
class SlurmOptions:
    """The Slurm request of each cell's job (submitit's parameters)."""

    partition: str = ""
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: int = 0  # 0: the partition's default
    time_minutes: int = 240
    account: str = ""
    qos: str = ""
    constraint: str = ""
    setup: list = field(default_factory=list)  # shell lines run before the job (module load, conda activate)
    torchrun: bool = False  # train with torchrun over the node's gpus_per_node GPUs
    cluster: str = "slurm"  # slurm | local (submitit's local executor) | debug (in this process)

    def __post_init__(self):
        if self.cluster not in ("slurm", "local", "debug"):
            raise LauncherError(f"cluster must be slurm, local or debug, got {self.cluster!r}")
        for name in ("gpus_per_node", "mem_gb"):
            if getattr(self, name) < 0:
                raise LauncherError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("cpus_per_task", "time_minutes"):
            if getattr(self, name) < 1:
                raise LauncherError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.torchrun and self.gpus_per_node < 2:
            raise LauncherError("--torchrun needs --gpus-per-node 2 or more (one process per GPU)")

    def submitit_parameters(self, name: str) -> dict:
        p: dict = {"name": name, "timeout_min": self.time_minutes, "nodes": 1, "tasks_per_node": 1,
                   "cpus_per_task": self.cpus_per_task}
        if self.cluster == "slurm":
            p["gpus_per_node"] = self.gpus_per_node
            if self.mem_gb:
                p["mem_gb"] = self.mem_gb
            for key in ("partition", "account", "qos", "constraint"):
                if getattr(self, key):
                    p[f"slurm_{key}"] = getattr(self, key)
            if self.setup:
                p["slurm_setup"] = list(self.setup)
        return p


def torchrun_command(cell: Cell, gpus: int, python: str = sys.executable) -> list[str]:
    """The ``torchrun`` training command of a 02-train cell (resume when the run has a checkpoint)."""
    p = cell.params
    run = str(cell.run_dir)
    base = [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", "-m", "trmlab.cli",
            "train"]
    eval_every = int(p.get("eval_every") or 0)
    extra = [f"--eval-every={eval_every}"] if eval_every else []
    if (cell.run_dir / "checkpoints").is_dir() and any((cell.run_dir / "checkpoints").glob("*.pt")):
        return base + ["--resume", run, *extra]
    preset = str(p.get("preset") or "")
    if not preset:
        raise LauncherError(f"{cell.name}: torchrun needs the cell's preset")
    data = str(p.get("data") or (f"data/{p['task']}" if p.get("task") else ""))
    overrides = [f"{k}={v}" for k, v in (p.get("overrides") or {}).items()]
    for key, value in (("train.max_steps", p.get("steps")), ("train.max_minutes", p.get("minutes")),
                       ("train.seed", p.get("seed")), ("train.wandb_mode", p.get("wandb_mode")),
                       ("train.dtype", p.get("dtype")), ("name", cell.run_dir.name)):
        if value not in (None, "", 0):
            overrides.append(f"{key}={value}")
    cmd = base + ["--preset", preset, "--out", run, *extra]
    if data:
        cmd += ["--data", data]
    return cmd + overrides


def cell_job(notebook: str, name: str, params: dict, run_dir: str, root: str, torchrun_gpus: int = 0) -> str:
    """What one job runs (on the node): the cell, from the project root; ``finished``, ``failed``, or
    ``left to <holder>`` when another job or sweep holds the cell's lock (a second job submitted for a cell
    whose first job still runs does nothing). The job holds the cell's lock while it runs."""
    os.chdir(root)
    cell = Cell(name=name, params=dict(params), grid={}, run_dir=Path(run_dir))
    locks = CellLocks(cell.run_dir.parent)
    if not locks.acquire(cell):
        return f"left to {locks.holder(cell)}"
    try:
        if cell_status(cell, Path(notebook).stem) == "finished":
            return "finished"
        if torchrun_gpus > 1:
            p = cell.params
            ensure_dataset(str(p.get("data") or f"data/{p.get('task', '')}"), progress=False)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
            r = subprocess.run(torchrun_command(cell, torchrun_gpus), env=env)
            if r.returncode != 0:
                print(f"{name}: torchrun training exited with status {r.returncode}", file=sys.stderr)
                return "failed"
        return "finished" if run_cell_in_worker(notebook, name, params, run_dir, root) else "failed"
    finally:
        locks.release()


#: Slurm job states of a job that is queued or running (``sacct``): its cell is not submitted again
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING",
                           "COMPLETING", "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING"})


class SlurmLauncher:
    """One submitit job per cell (see the module docstring). The job ids are recorded in
    ``<folder>/jobs.json`` (cell -> job id): a later sweep does not submit a cell again while its job is
    queued or running on Slurm (it waits for that job instead), so the sweep may be stopped and started
    again at will. ``wait=False`` (``--no-wait``): submit and return; run the same sweep again later to
    wait for what is still running and write the table."""

    holds_cell_locks = False  # the jobs lock their own cells (they run elsewhere, maybe after this sweep ends)

    def __init__(self, options: SlurmOptions, folder: str | os.PathLike, wait: bool = True):
        if not wait and options.cluster != "slurm":
            raise LauncherError("--no-wait needs a Slurm cluster: submitit's local and debug jobs end with the "
                                "sweep that started them")
        self.options = options
        self.folder = resolve(folder)
        self.wait = wait

    @property
    def jobs_file(self) -> Path:
        return self.folder / "jobs.json"

    def recorded(self) -> dict[str, str]:
        """cell name -> the id of the job last submitted for it."""
        if not self.jobs_file.exists():
            return {}
        try:
            d = json.loads(self.jobs_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise LauncherError(f"{display_path(self.jobs_file)}: not readable as JSON ({e}); it maps each cell "
                                f"to its Slurm job id: fix or delete it") from e
        if not isinstance(d, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in d.items()):
            raise LauncherError(f"{display_path(self.jobs_file)}: expected an object of cell name -> job id "
                                f"(strings)")
        return d

    def attach(self, job_id: str):
        """The job ``job_id`` of an earlier sweep, or None where jobs cannot outlive their sweep (local, debug)."""
        if self.options.cluster != "slurm":
            return None
        import submitit

        return submitit.SlurmJob(folder=str(self.folder / "%j"), job_id=job_id)

    def executor(self):
        import submitit

        return submitit.AutoExecutor(folder=str(self.folder / "%j"), cluster=self.options.cluster)

    @staticmethod
    def state(job) -> str:
        """The job's Slurm state, read now (``sacct``); UNKNOWN when it cannot be read."""
        try:
            return str(job.get_info(mode="force").get("State") or "UNKNOWN").split()[0].upper()
        except Exception:  # sacct missing or failing: the state is unknown, and the cell is submitted again
            return "UNKNOWN"

    def run(self, path: Path, todo: Sequence[tuple[int, Cell]], total: int, echo: Callable = print) -> int:
        if not todo:
            return 0
        o = self.options
        recorded = self.recorded()
        jobs, submit = [], []
        for i, c in todo:
            old = self.attach(recorded[c.name]) if c.name in recorded else None
            state = self.state(old) if old is not None else ""
            if state in ACTIVE_STATES:
                echo(f"[{i}/{total}] {c.name}: job {old.job_id} is {state.lower()}; not submitted again")
                jobs.append((i, c, old))
            else:
                submit.append((i, c))
        if submit:
            executor = self.executor()
            root = str(project_root())
            gpus = o.gpus_per_node if o.torchrun else 0
            for i, c in submit:
                executor.update_parameters(**o.submitit_parameters(f"trmlab-{c.run_dir.parent.name}-{c.name}"))
                job = executor.submit(cell_job, str(path), c.name, dict(c.params), str(c.run_dir), root, gpus)
                recorded[c.name] = str(job.job_id)
                self.folder.mkdir(parents=True, exist_ok=True)
                write_json_atomic(self.jobs_file, recorded, indent=1)
                echo(f"[{i}/{total}] {c.name}: submitted job {job.job_id} (logs: {display_path(self.folder)}/"
                     f"{job.job_id})")
                jobs.append((i, c, job))
        if not self.wait:
            echo(f"{len(jobs)} jobs queued or running; not waiting (--no-wait). Run the same command again to "
                 f"wait for them and write the table; it submits nothing that is still queued or running.")
            return 0
        failed = 0
        for i, c, job in jobs:
            try:
                status = job.result()
            except Exception as e:  # submitit raises the job's own error, or its own when the job died
                status = f"failed ({type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''})"
            echo(f"[{i}/{total}] {c.name}: job {job.job_id} {status}")
            failed += status.startswith("failed")
        return failed


__all__ = ["SlurmOptions", "SlurmLauncher", "LauncherError", "ACTIVE_STATES", "cell_job", "torchrun_command"]
