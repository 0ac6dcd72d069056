"""The main job (``trmlab demo``, ``bash scripts/demo.sh``): data, training, evaluation, recursion, reports.

1. build generated 4x4 Sudoku in ``data/sudoku4`` when it is missing (500 puzzles x 101 versions, 300 held out);
2. run the notebooks of :data:`DEMO_NOTEBOOKS` with papermill into the run folder ``runs/demo-sudoku4``:
   ``02-train`` (cpu_sudoku4, 1600 optimiser steps: ~99% exact accuracy on the held-out puzzles, ~8 min on
   2 idle cores), ``03-evaluate`` (accuracy against supervision steps with intervals, halting, failures),
   ``04-recursion`` (the recursion traced on test puzzles, played back), ``06-thinking`` (thinking longer
   and in parallel, on 100 test puzzles);
3. write one HTML report per notebook and ``reports/index.html``, and print where the index is.

03 and 04 are given the demo's run (by default they open the 9x9 zoo model). A notebook missing from this checkout is
skipped with a message; a notebook that fails still gets its report (showing the failure) and the
demo ends with an error.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable

from ..data.catalog import ensure_dataset
from ..machine import auto_threads
from ..paths import display_path, resolve
from .execute import NotebookError, NotebookFailed, find_notebook, run_notebook
from .reports import report_runs
from .results import is_run_folder, read_run

DEMO_RUN = "runs/demo-sudoku4"
DEMO_DATA = "data/sudoku4"
DEMO_PRESET = "cpu_sudoku4"
DEMO_STEPS = 1600
#: the demo's notebooks, in order, with their parameters beyond ``run`` (the one place that lists them)
DEMO_NOTEBOOKS: list[tuple[str, dict]] = [
    ("02-train", {"preset": DEMO_PRESET, "task": "sudoku4"}),
    ("03-evaluate", {}),
    ("04-recursion", {}),
    # test-time scaling of the demo's model on its own test split, small enough for the demo (seconds)
    ("06-thinking", {"data": "", "max_puzzles": 100, "max_steps": 16, "steps": 4, "k_values": [1, 2, 4, 8],
                     "augment_values": [1, 2, 4, 8], "sigmas": [0.3, 1.0], "sigma_puzzles": 25,
                     "entropy_puzzles": 20, "recovery_puzzles": 50, "recovery_after": [1, 2]}),
]


class DemoFailed(RuntimeError):
    pass


def demo(steps: int = DEMO_STEPS, run: str = DEMO_RUN, data: str = DEMO_DATA, reports: str = "reports",
         wandb_mode: str = "disabled", eval_every: int = 200, threads: int = 0, echo: Callable = print,
         log_output: bool = True, progress: bool = True) -> Path:
    """Run the main job (see the module docstring); returns the path of ``reports/index.html``.
    An existing demo run folder is replaced (the demo always trains afresh)."""
    t0 = time.time()
    data_dir = ensure_dataset(data, echo=echo, progress=progress)
    run_dir = resolve(run)
    if run_dir.exists():
        if not (is_run_folder(run_dir) or any(run_dir.glob("*.ipynb"))):
            raise DemoFailed(f"{run_dir} exists and is not a run folder; move it away or pass another --run")
        echo(f"replacing the previous demo run {display_path(run_dir)}")
        shutil.rmtree(run_dir)
    n_threads = threads or auto_threads()
    echo(f"torch CPU threads in the notebooks: {n_threads}"
         + ("" if threads else " (from the machine's load; --threads overrides)"))
    os.environ["OMP_NUM_THREADS"] = str(n_threads)  # the kernels papermill starts inherit it
    failed = []
    for name, params in DEMO_NOTEBOOKS:
        try:
            find_notebook(name)
        except NotebookError:
            echo(f"{name}: not in this checkout, skipped")
            continue
        p = dict(params)
        if name == "02-train":
            p.update(steps=steps, data=display_path(data_dir), wandb_mode=wandb_mode, eval_every=eval_every,
                     threads=n_threads)
        else:  # evaluate and trace the run just trained (the notebooks' own default is a zoo model)
            p.update(run=display_path(run_dir))
        try:
            run_notebook(name, p, out=run_dir, log_output=log_output, progress=progress, echo=echo)
        except NotebookFailed as e:
            echo(f"{name}: FAILED: {e}")
            failed.append(name)
            if name == "02-train":
                break  # nothing to evaluate or trace without a trained run
    infos = report_runs([run_dir], out=reports, echo=echo)
    index = resolve(reports) / "index.html"
    summary = read_run(run_dir) if is_run_folder(run_dir) else None
    if summary is not None:
        row = summary.row()
        acc, lo, hi = row["eval_exact_accuracy"], row["eval_exact_accuracy_low"], row["eval_exact_accuracy_high"]
        n = row["eval_n_supervision"]
        if acc is None:
            acc, lo, hi, n = (row["exact_accuracy"], row["exact_accuracy_low"], row["exact_accuracy_high"],
                              row["eval_supervision"])
        if acc is not None:
            ci = f" [95% CI {lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
            echo(f"held-out exact accuracy: {acc:.3f}{ci} with {n} supervision steps, after {summary.steps} "
                 f"optimiser steps")
    echo(f"{len(infos)} reports in {time.time() - t0:.0f} s; open {index}")
    if failed:
        raise DemoFailed(f"notebook(s) failed: {', '.join(failed)}; their reports show the failing cell ({index})")
    return index
