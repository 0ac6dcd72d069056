"""Several runs side by side for notebooks/05-compare.ipynb: which runs, their curves, their final numbers.

Everything is read from the run folders through :mod:`trmlab.workbench.results` (config.json,
metrics.jsonl, eval JSON). :func:`compare_runs` takes run folders, globs (``"runs/*"``) or folders
holding runs, and returns a :class:`Comparison` whose methods give what :mod:`trmlab.viz.compare`
draws: training curves on shared axes, the final metric with its 95% interval, the runs' size, steps and
wall time, and the configuration keys that differ.

The final metric of a run comes from its headline eval JSON (:attr:`RunSummary.headline_eval_file`:
fixed steps at the run's evaluation steps, ``eval_<checkpoint>_N<N>_max.json`` written by 03-evaluate
or ``trmlab eval``, the ``last`` checkpoint's first) when it has the metric, else from the last
evaluation made during training; the table says which.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from ..paths import resolve
from ..runs import resolve_run
from .results import RunSummary, config_differences, find_runs, is_run_folder, read_run

DEFAULT_METRIC = "all/exact_accuracy"


def resolve_runs(runs: str | os.PathLike | Iterable[str | os.PathLike], root: Optional[str | os.PathLike] = None) -> list[Path]:
    """Run folders from a list of paths, globs (relative to the project root ``root``) and zoo names
    (``sudoku9``: the shipped model's folder, with its training curves). A folder that is not itself a
    run stands for the runs below it. Raises ``ValueError`` naming what matched nothing."""
    items = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
    if not items:
        raise ValueError("runs: give at least one run folder or glob (e.g. \"runs/*\")")
    out: list[Path] = []
    for item in items:
        p = resolve(item, root) if glob.has_magic(str(item)) else resolve_run(item, root).folder
        if glob.has_magic(str(item)):
            matches = [Path(m) for m in sorted(glob.glob(str(p)))]
            found = [m for m in matches if m.is_dir() and is_run_folder(m)]
            if not found:
                raise ValueError(f"runs: no run folder matches {str(item)!r} (looked for {p})")
        elif p.is_dir() and not is_run_folder(p):
            found = find_runs(p)
            if not found:
                raise ValueError(f"runs: {p} holds no run folder (no config.json or metrics.jsonl below it)")
        elif p.is_dir():
            found = [p]
        else:
            raise ValueError(f"runs: {p}: no such run folder")
        out += [f for f in found if f not in out]
    return out


def short_labels(paths: list[Path]) -> list[str]:
    """The shortest path tails that tell the runs apart (``a``, ``b``; ``x/run``, ``y/run``)."""
    parts = [p.resolve().parts for p in paths]
    for k in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-k:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def running_mean(values, window: int) -> np.ndarray:
    """At each point, the mean of the values among the last ``window`` points (None/NaN skipped; NaN when
    the window holds none)."""
    v = np.array([np.nan if x is None else float(x) for x in values], float)
    ok = np.isfinite(v)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(ok)])
    w = max(int(window), 1)
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(idx - w, 0)
    n = ccount[idx] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (csum[idx] - csum[lo]) / np.maximum(n, 1), np.nan)


def _metric_rows(values: dict, metric: str) -> tuple:
    v = values.get(metric)
    return (v, values.get(f"{metric}_low"), values.get(f"{metric}_high"))


@dataclass
class Comparison:
    """Runs read from their folders, with a label each, compared on ``metric`` (an eval key)."""

    runs: list  # of RunSummary
    labels: list
    metric: str = DEFAULT_METRIC

    def curves(self, smooth: int = 0) -> list[dict]:
        """Per run: training loss and training exact accuracy (running mean over ``smooth`` steps; 0 =
        about 1/50 of the run) by optimiser step and minutes, and ``metric`` at each evaluation with
        its interval."""
        out = []
        for run, label in zip(self.runs, self.labels):
            t0 = run.started or 0.0
            tr = run.train
            window = smooth or max(1, len(tr) // 50)
            ev = [e for e in run.evals if e.get(self.metric) is not None]
            out.append({
                "label": label,
                "train": {"step": [r["step"] for r in tr], "minutes": [(r["time"] - t0) / 60 for r in tr],
                          "lm_loss": running_mean([r.get("lm_loss") for r in tr], window).tolist(),
                          "exact_accuracy": running_mean([r.get("exact_accuracy") for r in tr], window).tolist(),
                          "window": window},
                "eval": {"step": [e["step"] for e in ev], "minutes": [(e["time"] - t0) / 60 for e in ev],
                         "value": [e[self.metric] for e in ev],
                         "low": [e.get(f"{self.metric}_low") for e in ev],
                         "high": [e.get(f"{self.metric}_high") for e in ev]},
            })
        return out

    def final(self, run: RunSummary) -> dict:
        """``metric`` of one run with its interval and where it was read from: the run's headline eval
        JSON (:attr:`RunSummary.headline_eval_file`) when it has the metric, else the training's last
        evaluation that has it."""
        name, m = run.headline_eval_file
        if m.get(self.metric) is not None:
            value, low, high = _metric_rows(m, self.metric)
            checkpoint = (f"step {m.get('checkpoint_step')}: {m['checkpoint_choice']}" if m.get("checkpoint_choice")
                          else "")
            return {"value": value, "low": low, "high": high, "file": name, "checkpoint": checkpoint,
                    "source": name + (f" ({checkpoint})" if checkpoint else ""),
                    "n_supervision": m.get("n_supervision"), "halting": m.get("halting", "max")}
        ev = [e for e in run.evals if e.get(self.metric) is not None]
        if not ev:
            return {"value": None, "low": None, "high": None, "file": "", "checkpoint": "", "source": "no evaluation",
                    "n_supervision": run.eval_steps, "halting": None}
        value, low, high = _metric_rows(ev[-1], self.metric)
        return {"value": value, "low": low, "high": high, "file": "", "checkpoint": f"step {ev[-1]['step']}",
                "source": f"training's last evaluation (step {ev[-1]['step']})",
                "n_supervision": ev[-1].get("n_supervision", run.eval_steps), "halting": "max"}

    def finals(self) -> list[dict]:
        return [{"label": label, **self.final(run)} for run, label in zip(self.runs, self.labels)]

    def overview(self) -> list[dict]:
        """One row per run: what it is, its size, how long it trained, its final ``metric`` with its
        95% interval, and where that number comes from."""
        rows = []
        for run, label, fin in zip(self.runs, self.labels, self.finals()):
            value = "" if fin["value"] is None else f"{fin['value']:.3f}"
            if value and fin["low"] is not None and fin["high"] is not None:
                value += f" [{fin['low']:.3f}, {fin['high']:.3f}]"
            rows.append({"run": label, "preset": run.preset, "task": run.task, "parameters": run.n_params,
                         "steps": run.steps,
                         "wall minutes": "" if run.wall_seconds is None else f"{run.wall_seconds / 60:.2f}",
                         "N": fin["n_supervision"], f"{self.metric} [95% CI]": value,
                         "from": fin["file"] or ("training's evaluation" if fin["value"] is not None else "none"),
                         "checkpoint": fin["checkpoint"]})
        return rows

    def differences(self) -> list[dict]:
        """The configuration keys whose values differ: one row per key, one column per run."""
        diff = config_differences(self.runs)
        return [{"key": k, **{label: v for label, v in zip(self.labels, vals)}} for k, vals in diff.items()]


def compare_runs(runs, metric: str = DEFAULT_METRIC, root: Optional[str | os.PathLike] = None) -> Comparison:
    """Read the runs (folders, globs or folders of runs; see :func:`resolve_runs`) for comparison."""
    paths = resolve_runs(runs, root)
    summaries = [read_run(p) for p in paths]
    if not any(metric in e for s in summaries for e in s.evals) and not any(
            metric in m for s in summaries for m in s.eval_files.values()):
        keys = sorted({k for s in summaries for e in s.evals for k in e if not k.endswith(("_low", "_high"))}
                      - {"step", "split", "time", "epoch"})
        raise ValueError(f"metric {metric!r}: no run has it in its evaluations; available: "
                         f"{', '.join(keys) if keys else 'none (no run has been evaluated yet)'}")
    return Comparison(summaries, short_labels(paths), metric)
