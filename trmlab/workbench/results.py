"""Read run folders into summaries: what a run is, how it trained, how it scored.

Everything comes from the files a run leaves (never from notebook cell outputs):

* ``config.json``              the run's full configuration (written by the trainer);
* ``metrics.jsonl``            one record per line: ``info`` (parameter count, total steps), ``train``
                               (loss, accuracy, exact accuracy, mean halting steps per optimiser step)
                               and ``eval`` (exact accuracy by supervision step, intervals) records;
* ``eval_*.json``              evaluations written by ``trmlab eval`` / ``evaluate_run`` (and 03-evaluate);
                               the one that stands for the run is :attr:`RunSummary.headline_eval_file`;
* ``<notebook>.ipynb``         notebooks executed for this run by ``trmlab run`` (papermill metadata:
                               parameters, status, duration, the exception of a failed cell).

>>> s = read_run("runs/demo-sudoku4")
>>> s.task, s.preset, s.n_params, s.steps, s.wall_seconds
>>> s.final_eval["all/exact_accuracy"], s.row()            # one flat dict for tables
>>> table(read_runs(["runs/a", "runs/b"]))                  # rows for a CSV / DataFrame
>>> config_differences(read_runs([...]))                    # {"train.lr": [0.002, 0.001], ...}
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from ..data.format import read_build_info
from ..train.logging import read_metrics


class RunFolderError(ValueError):
    """A folder is not a run folder, or one of its files cannot be read; the message names the file."""


@dataclass
class NotebookRecord:
    """One notebook executed for a run (papermill's metadata of the executed copy)."""

    name: str  # the notebook's stem, e.g. "02-train"
    path: Path
    parameters: dict
    status: str  # "ok" | "failed" | "unfinished" (papermill never ended: killed) | "unknown" (not papermill's)
    duration: Optional[float]  # seconds
    end_time: str  # ISO time papermill finished ("" when unknown)
    error: str  # "ename: evalue" of the failing cell ("" when none)


@dataclass
class RunSummary:
    """What a run folder holds, read once. ``row()`` flattens it for tables."""

    path: Path
    name: str
    preset: str
    task: str  # e.g. "sudoku 4x4", "maze 30x30", "arc"
    data: str
    config: dict
    n_params: Optional[int]  # trainable parameters (from the trainer's info record)
    steps: int  # optimiser steps done (last train or eval record)
    total_steps: Optional[int]  # steps the schedule would run (before max_steps / max_minutes)
    started: Optional[float]  # unix time of the first record
    wall_seconds: Optional[float]  # from the first to the last record of metrics.jsonl
    train: list = field(default_factory=list)  # train records of metrics.jsonl
    evals: list = field(default_factory=list)  # eval records of metrics.jsonl
    eval_files: dict = field(default_factory=dict)  # eval JSON file name -> its scalar metrics
    notebooks: dict = field(default_factory=dict)  # notebook stem -> NotebookRecord

    @property
    def final_eval(self) -> dict:
        """The last evaluation made during training ({} when none)."""
        return self.evals[-1] if self.evals else {}

    @property
    def latest_eval_file(self) -> tuple[str, dict]:
        """(file name, metrics) of the most recently written eval JSON; ("", {}) when none."""
        if not self.eval_files:
            return "", {}
        name = max(self.eval_files, key=lambda n: (self.path / n).stat().st_mtime)
        return name, self.eval_files[name]

    @property
    def eval_steps(self) -> int:
        """The supervision steps the run is evaluated at: ``train.eval_supervision``, else the model's N_sup."""
        t, m = self.config.get("train", {}), self.config.get("model", {})
        return int(t.get("eval_supervision") or m.get("n_supervision") or 0)

    @property
    def headline_eval_file(self) -> tuple[str, dict]:
        """(file name, metrics) of the eval JSON that stands for the run: fixed steps (``halting`` max) at
        the run's evaluation steps, the ``last`` checkpoint's first, then the newest; when there is no
        such file, the newest eval JSON; ("", {}) when none. 03-evaluate also writes evaluations with
        learned halting and with more steps: those never hide the run's own number."""
        if not self.eval_files:
            return "", {}
        own = [n for n, m in self.eval_files.items()
               if m.get("n_supervision") == self.eval_steps and m.get("halting", "max") == "max"]
        if own:
            name = max(own, key=lambda n: (n.startswith("eval_last_"), (self.path / n).stat().st_mtime))
            return name, self.eval_files[name]
        return self.latest_eval_file

    @property
    def parameters(self) -> dict:
        """The parameters the training notebook was run with (02-train), else {}."""
        nb = self.notebooks.get("02-train")
        return dict(nb.parameters) if nb else {}

    @property
    def failed(self) -> list[str]:
        """Notebooks of this run whose execution failed."""
        return [k for k, nb in self.notebooks.items() if nb.status == "failed"]

    def row(self) -> dict:
        """One flat row: identity, size, progress, the training's last evaluation and the run's headline
        eval JSON (:attr:`headline_eval_file`)."""
        fin = self.final_eval
        ev_name, ev = self.headline_eval_file
        t = self.config.get("train", {})
        m = self.config.get("model", {})
        row: dict[str, Any] = {
            "run": str(self.path),
            "name": self.name,
            "preset": self.preset,
            "task": self.task,
            "data": self.data,
            "n_params": self.n_params,
            "steps": self.steps,
            "total_steps": self.total_steps,
            "wall_minutes": None if self.wall_seconds is None else round(self.wall_seconds / 60, 3),
            "started": _iso(self.started),
            "seed": t.get("seed"),
            "hidden_size": m.get("hidden_size"),
            "n_recursions": m.get("n_recursions"),
            "n_latent_steps": m.get("n_latent_steps"),
            "n_supervision": m.get("n_supervision"),
            "train_exact_accuracy": _last(self.train, "exact_accuracy"),
            "train_lm_loss": _last(self.train, "lm_loss"),
            "exact_accuracy": fin.get("all/exact_accuracy"),
            "exact_accuracy_low": fin.get("all/exact_accuracy_low"),
            "exact_accuracy_high": fin.get("all/exact_accuracy_high"),
            "eval_supervision": fin.get("n_supervision"),
            "halt_exact_accuracy": fin.get("halt/exact_accuracy"),
            "halt_mean_steps": fin.get("halt/mean_steps"),
            "arc_pass2": fin.get("ARC/pass@2"),
            "eval_file": ev_name,
            "eval_exact_accuracy": ev.get("all/exact_accuracy"),
            "eval_exact_accuracy_low": ev.get("all/exact_accuracy_low"),
            "eval_exact_accuracy_high": ev.get("all/exact_accuracy_high"),
            "eval_n_supervision": ev.get("n_supervision"),
            "eval_halting": ev.get("halting"),
            "eval_checkpoint": ev.get("checkpoint"),
            "eval_checkpoint_step": ev.get("checkpoint_step"),
            "eval_checkpoint_choice": ev.get("checkpoint_choice"),
            "notebooks": ",".join(sorted(self.notebooks)),
            "failed_notebooks": ",".join(self.failed),
        }
        return row


def is_run_folder(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / "config.json").is_file() or (p / "metrics.jsonl").is_file()


def read_run(path: str | os.PathLike) -> RunSummary:
    """Summarise one run folder. Raises :class:`RunFolderError` naming the file that is missing or bad."""
    p = Path(path)
    if not p.is_dir():
        raise RunFolderError(f"{p}: no such run folder")
    cfg_path = p / "config.json"
    config: dict = {}
    if cfg_path.is_file():
        config = read_json_object(cfg_path, "a JSON object with keys name, data, model, train")
    notebooks = read_notebooks(p)
    if not config and not (p / "metrics.jsonl").is_file() and not notebooks:
        raise RunFolderError(f"{p}: not a run folder (no config.json, metrics.jsonl or executed notebook)")
    try:
        records = read_metrics(p)
    except ValueError as e:
        raise RunFolderError(str(e)) from None
    info = next((r for r in records if r.get("split") == "info"), {})
    train = [r for r in records if r.get("split") == "train"]
    evals = [r for r in records if r.get("split") == "eval"]
    times = [r["time"] for r in records if isinstance(r.get("time"), (int, float))]
    steps = max([int(r.get("step", 0)) for r in train + evals] or [0])
    data = str(config.get("data", ""))
    return RunSummary(
        path=p, name=str(config.get("name") or p.name), preset=str(config.get("preset", "")),
        task=describe_task(data, config), data=data, config=config,
        n_params=info.get("num_params"), steps=steps, total_steps=info.get("total_steps"),
        started=min(times) if times else None,
        wall_seconds=(max(times) - min(times)) if len(times) > 1 else None,
        train=train, evals=evals, eval_files=read_eval_files(p), notebooks=notebooks)


def read_runs(paths: Iterable[str | os.PathLike]) -> list[RunSummary]:
    return [read_run(p) for p in paths]


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Run folders at or below ``root`` (folders holding config.json or metrics.jsonl), sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = {f.parent for pat in ("config.json", "metrics.jsonl") for f in root.rglob(pat)
             if "wandb" not in f.parts and ".ipynb_checkpoints" not in f.parts}
    return sorted(found)


def table(runs: Iterable[RunSummary]) -> list[dict]:
    """One flat row per run (see :meth:`RunSummary.row`)."""
    return [r.row() for r in runs]


def read_json_object(path: Path, expected: str, error: Optional[type] = None) -> dict:
    """The JSON object in ``path``; ``error`` (default RunFolderError) naming the file when it is not valid
    JSON or not ``expected``."""
    error = error or RunFolderError
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise error(f"{path}: expected {expected}")
    return d


def read_eval_files(run_dir: str | os.PathLike) -> dict[str, dict]:
    """``eval_*.json`` of a run folder: file name -> its scalar entries (lists of records are left out)."""
    out = {}
    for f in sorted(Path(run_dir).glob("eval_*.json")):
        d = read_json_object(f, "a JSON object of metrics")
        out[f.name] = {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool, type(None)))}
    return out


def read_notebooks(run_dir: str | os.PathLike) -> dict[str, NotebookRecord]:
    """Executed notebooks kept in a run folder (``*.ipynb`` at its top level)."""
    out = {}
    for f in sorted(Path(run_dir).glob("*.ipynb")):
        try:
            nb = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunFolderError(f"{f}: not a notebook ({e})") from None
        pm = (nb.get("metadata") or {}).get("papermill") or {}
        exc = pm.get("exception")
        status = "unknown" if not pm else ("failed" if exc or _has_error(nb) else
                                           "unfinished" if not pm.get("end_time") else "ok")
        out[f.stem] = NotebookRecord(name=f.stem, path=f, parameters=dict(pm.get("parameters") or {}),
                                     status=status, duration=pm.get("duration"),
                                     end_time=str(pm.get("end_time") or ""), error=_first_error(nb))
    return out


def describe_task(data: str, config: Optional[dict] = None) -> str:
    """A short task name: the dataset's family and grid ("sudoku 4x4"), from its build.json when the
    folder is there, else from the model's sequence length."""
    info = {}
    if data and Path(data).is_dir():
        try:
            info = read_build_info(data)
        except ValueError:
            info = {}
    family = info.get("family", "")
    shape = info.get("grid_shape")
    if family and shape:
        return f"{family} {shape[0]}x{shape[1]}"
    if family:
        return family
    seq = ((config or {}).get("model") or {}).get("seq_len")
    name = Path(data).name.lower() if data else ""
    for fam in ("sudoku", "maze", "arc"):
        if fam in name:
            family = fam
    if family in ("sudoku", "maze") and seq:
        n = int(round(int(seq) ** 0.5))
        return f"{family} {n}x{n}"
    return family or name


def flatten_config(config: dict, prefix: str = "") -> dict:
    """``{"model": {"hidden_size": 128}}`` -> ``{"model.hidden_size": 128}`` (lists become tuples)."""
    out = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def config_differences(runs: Iterable[RunSummary], ignore: tuple = ("name",)) -> dict[str, list]:
    """The configuration keys whose values differ between runs: key -> one value per run."""
    runs = list(runs)
    flat = [flatten_config(r.config) for r in runs]
    keys = sorted(set().union(*flat)) if flat else []
    out = {}
    for k in keys:
        if k in ignore:
            continue
        vals = [f.get(k) for f in flat]
        if any(v != vals[0] for v in vals[1:]):
            out[k] = vals
    return out


def _has_error(nb: dict) -> bool:
    return bool(_first_error(nb))


def _first_error(nb: dict) -> str:
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []) or []:
            if o.get("output_type") == "error":
                return f"{o.get('ename', '')}: {o.get('evalue', '')}"
    return ""


def _last(rows: list, key: str):
    for r in reversed(rows):
        if r.get(key) is not None:
            return r[key]
    return None


def _iso(t: Optional[float]) -> str:
    if t is None:
        return ""
    return _dt.datetime.fromtimestamp(t).isoformat(timespec="seconds")


__all__ = ["RunSummary", "NotebookRecord", "RunFolderError", "read_run", "read_runs", "find_runs", "table",
           "read_eval_files", "read_notebooks", "describe_task", "flatten_config", "config_differences",
           "is_run_folder"]
