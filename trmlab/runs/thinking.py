"""Test-time scaling of a trained run: evaluate it thinking longer or in parallel, find the best way to
think on a validation set, and keep that choice with the run (``--think best``).

>>> evaluate_thinking("sudoku9", Thinking(augment=32), data="data/sudoku9-givens28")
>>> search_best("sudoku9", data="data/sudoku9-givens28", split="val")   # writes runs/zoo/sudoku9/thinking.json
>>> best_thinking("sudoku9")                                            # -> (Thinking, its record)

The choice is a file ``thinking.json`` (:data:`FORMAT`): the :class:`~trmlab.eval.thinking.Thinking`,
where and on how many puzzles it was measured, its accuracy with the 95% interval and its cost, and
every setting compared. It is written to where the run's outputs go (the run folder; ``runs/zoo/<name>``
for a zoo model); a zoo model may also ship one in its own folder (``zoo/<name>/thinking.json``, put
there by a maintainer with ``trmlab think search NAME ... --into-zoo``), read when the outputs hold none.
Only settings that use no rule check and no labels are ever chosen.
"""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..data.format import PuzzleFormatError, family_of
from ..data.loader import split_arrays
from ..eval.thinking import Thinking, best_setting, rule_check_rate, run_trajectories, select
from ..io import write_json_atomic
from ..paths import display_path, resolve
from .inference import cfg_dtype, open_run
from .resolve import Run, resolve_run

FORMAT = "trmlab-thinking-1"
FILE = "thinking.json"


def thinking_files(run: Run) -> list[Path]:
    """Where ``thinking.json`` of a run is looked for, in order: its outputs, then (zoo) the zoo folder."""
    files = [run.outputs / FILE]
    if run.is_zoo:
        files.append(run.folder / FILE)
    return files


def read_thinking_file(path: str | os.PathLike) -> tuple[Thinking, dict]:
    """A ``thinking.json``, checked: (the Thinking, the whole record)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path}: expected a JSON object with format {FORMAT!r}")
    for key in ("thinking", "measured_on", "exact_accuracy", "interval", "calls_ratio"):
        if key not in record:
            raise ValueError(f"{path}: missing key {key!r}")
    return Thinking.from_dict(record["thinking"], f"{path}: 'thinking'"), record


def best_thinking(run: "str | os.PathLike | Run") -> tuple[Thinking, dict]:
    """The way to think stored with the run (see the module docstring); FileNotFoundError saying how to
    measure one when there is none."""
    run = resolve_run(run).require()
    for f in thinking_files(run):
        if f.is_file():
            return read_thinking_file(f)
    tried = ", ".join(str(f) for f in thinking_files(run))
    raise FileNotFoundError(f"{run.describe()}: no measured best way to think (looked for {tried}); measure it "
                            f"with `trmlab think search {run.ref} --data DIR` (a dataset with a val split)")


def thinking_from_arg(run: "str | os.PathLike | Run", arg: str) -> Thinking:
    """``--think``: ``best`` (the run's stored choice) or a setting such as ``augment=32,steps=16``."""
    return best_thinking(run)[0] if arg in ("", "best") else Thinking.parse(arg)


def evaluate_thinking(run: "str | os.PathLike | Run", thinking: Thinking, data: Optional[str | os.PathLike] = None,
                      split: str = "test", max_puzzles: int = 0, batch_size: int = 256, device: str = "auto",
                      progress: bool = True) -> dict:
    """Exact accuracy (95% interval), cost and rule-check rate of ``thinking`` on a split of the run's own
    dataset (a zoo model's is built from its card) or of ``data``; nothing is written."""
    run = resolve_run(run).require()
    model, cfg, choice = open_run(run, device=device, dtype=cfg_dtype(device))
    folder = resolve(data) if data else run.dataset(progress=progress, cfg=cfg)
    x, y, pid = split_arrays(folder, split, max_puzzles)
    if x.shape[1] != cfg.model.seq_len:
        raise PuzzleFormatError(f"{folder}: puzzles of {x.shape[1]} cells; the run's model reads {cfg.model.seq_len}")
    tr = run_trajectories(model, x, y, pid, thinking.steps, thinking.k, thinking.sigma, thinking.augment,
                          thinking.init_noise, thinking.seed, batch_size, progress=progress)
    r = select(tr, thinking.select, halting=thinking.halting, fixed_point=thinking.fixed_point)
    ceiling = select(tr, "oracle", halting=thinking.halting, fixed_point=thinking.fixed_point)
    plain = select(tr, "halt", steps=min(16, tr.steps), k=1, augment=1)
    out = {k: v for k, v in r.items() if not isinstance(v, np.ndarray)}
    out.update({"thinking": thinking.to_dict(), "describe": thinking.describe(), "data": str(folder), "split": split,
                "oracle_exact_accuracy": ceiling["exact_accuracy"],
                "rule_check_rate": rule_check_rate(tr, thinking.select, halting=thinking.halting,
                                                   fixed_point=thinking.fixed_point),
                "plain_exact_accuracy": plain["exact_accuracy"], "plain_steps": plain["steps"],
                "family": tr.family, **choice.as_dict()})
    return out


def format_thinking(m: dict) -> str:
    """What ``trmlab eval --think`` prints."""
    lines = [f"thinking: {m['describe']}",
             f"exact_accuracy {m['exact_accuracy']:.4f} [95% CI {m['low']:.4f}, {m['high']:.4f}] over {m['puzzles']} "
             f"puzzles of {m['data']} ({m['split']})" + ("  -- uses the rule check" if m["uses_rule_check"] else ""),
             f"cost: {m['calls_per_puzzle']:.0f} network calls per puzzle ({m['calls_ratio']:.1f}x the plain 16 "
             f"steps), {m['seconds_per_puzzle'] * 1e3:.1f} ms per puzzle",
             f"plain evaluation ({m['plain_steps']} steps, one trajectory): {m['plain_exact_accuracy']:.4f}; "
             f"oracle (any candidate right, the ceiling): {m['oracle_exact_accuracy']:.4f}"]
    if m.get("rule_check_rate") is not None:
        lines.append(f"answers that obey the puzzle's rules: {m['rule_check_rate']:.1%}")
    lines.append(f"checkpoint {m['checkpoint']} (step {m['checkpoint_step']}), chosen as: {m['checkpoint_choice']}")
    return "\n".join(lines)


def search_best(run: "str | os.PathLike | Run", data: Optional[str | os.PathLike] = None, split: str = "val",
                max_puzzles: int = 100, sigmas: Sequence[float] = (0.1, 0.3, 1.0), steps: int = 16, k: int = 16,
                augment: int = 32, max_ratio: float = 64.0, init_noise: bool = False, seed: int = 0,
                batch_size: int = 512, into_zoo: bool = False, device: str = "auto", progress: bool = True) -> Path:
    """Measure the best way to think on a validation split (default the run's own dataset's ``val``; never
    the test split) and write it as ``thinking.json`` (see the module docstring). One run of ``augment``
    transforms, and one of ``k`` trajectories per noise scale, each trajectory stopping when its halting
    head says halt, at most ``steps`` steps; every setting they contain (fewer steps, trajectories or
    transforms; halting head, first to halt or vote) at no more than ``max_ratio`` times the plain cost is
    compared, rule check and labels unused. Returns the file."""
    if split == "test":
        raise ValueError("search_best: the test split chooses nothing; measure on a validation split (val)")
    run = resolve_run(run).require()
    model, cfg, choice = open_run(run, device=device, dtype=cfg_dtype(device))
    folder = resolve(data) if data else run.dataset(progress=progress, cfg=cfg)
    x, y, pid = split_arrays(folder, split, max_puzzles)
    family = family_of(cfg.model.vocab_size, cfg.model.seq_len)
    augment = min(augment, 8) if family == "maze" else augment if family == "sudoku" else 1
    runs = {}
    if augment > 1:
        runs[0.0] = run_trajectories(model, x, y, pid, steps, 1, 0.0, augment, False, seed, batch_size,
                                     progress=progress, stop_when_halted=True)
    for sigma in sigmas:
        runs[float(sigma)] = run_trajectories(model, x, y, pid, steps, k, float(sigma), 1, init_noise, seed, batch_size,
                                              progress=progress, stop_when_halted=True)
    th, best, rows = best_setting(runs, max_ratio, seed)
    record = {"format": FORMAT, "thinking": th.to_dict(), "describe": th.describe(),
              "measured_on": {"data": display_path(folder, run.root), "split": split, "puzzles": int(len(x))},
              "exact_accuracy": best["exact_accuracy"], "interval": [best["low"], best["high"]],
              "calls_ratio": best["calls_ratio"], "calls_per_puzzle": best["calls_per_puzzle"],
              "max_ratio": max_ratio, "searched": {"sigmas": list(map(float, sigmas)), "steps": steps, "k": k,
                                                   "augment": augment, "init_noise": init_noise,
                                                   "halting": "each trajectory stops when its head says halt"},
              "checkpoint": {**choice.as_dict(), "checkpoint": display_path(choice.file, run.root)},
              "date": datetime.date.today().isoformat(), "compared": rows}
    dest = (run.folder if (run.is_zoo and into_zoo) else run.outputs) / FILE
    write_json_atomic(dest, record, indent=1, default=float)
    return dest
