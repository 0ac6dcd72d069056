"""Train a preset (plus overrides) into a run folder, the data built if missing: what 02-train, the demo
and ``trmlab zoo train`` call. The trainer itself is :mod:`trmlab.train.trainer`.

>>> from trmlab.viz.curves import LiveCurves
>>> curves = LiveCurves("cpu_sudoku4"); curves.display()
>>> result = train_run("cpu_sudoku4", "runs/demo-sudoku4", steps=1600, on_log=curves)
>>> result.run_dir, result.metrics["all/exact_accuracy"]

The run folder gets what ``trmlab train`` writes (config.json, metrics.jsonl, checkpoints/), so every
other tool (``trmlab eval``, 03-evaluate, 04-recursion, reports) reads it the same way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional

import torch

from ..config import RunConfig, apply_overrides, get_preset, load_config
from ..data.catalog import ensure_dataset
from ..machine import auto_threads
from ..paths import resolve
from . import distributed as D
from .trainer import Trainer, TrainingError


@dataclass
class TrainResult:
    run_dir: Path
    config: RunConfig
    metrics: dict  # the last evaluation's metrics
    steps: int


def make_config(preset: str, overrides: Optional[Mapping] = None, data: str = "", steps: int = 0,
                minutes: float = 0.0, seed: Optional[int] = None, device: str = "", dtype: str = "",
                wandb_mode: str = "", name: str = "") -> RunConfig:
    """The run's configuration: the preset, then ``overrides`` (any config key, reference names too),
    then the explicit arguments (each applied only when given). ``data`` is not resolved here."""
    extra = dict(overrides or {})
    if data:
        extra["data"] = data
    if steps:
        extra["train.max_steps"] = int(steps)
    if minutes:
        extra["train.max_minutes"] = float(minutes)
    if seed is not None:
        extra["train.seed"] = int(seed)
    if device:
        extra["train.device"] = device
    if dtype:
        extra["train.dtype"] = dtype
    if wandb_mode:
        extra["train.wandb_mode"] = wandb_mode
    if name:
        extra["name"] = name
    return get_preset(preset, extra)


def train_run(preset: str, run: str | os.PathLike, overrides: Optional[Mapping] = None, data: str = "", task: str = "",
              steps: int = 0, minutes: float = 0.0, seed: Optional[int] = None, device: str = "", dtype: str = "",
              wandb_mode: str = "", eval_every: int = 0, if_exists: str = "error", threads: int = 0,
              on_log: Optional[Callable[[int, str, dict], None]] = None, progress: bool = True,
              echo: Callable = print) -> TrainResult:
    """Train ``preset`` (+ ``overrides``) into the run folder ``run``.

    * ``data``: dataset folder (default: ``data/<task>`` when ``task`` is given, else the preset's),
      relative paths from the project root; built by :func:`~trmlab.data.catalog.ensure_dataset`
      when missing;
    * ``steps`` / ``minutes``: stop after this many optimiser steps / this wall-clock budget (0 = the
      schedule's end); the trainer evaluates and checkpoints at the stop;
    * ``eval_every``: also evaluate (and checkpoint) every this many steps, so the test curve fills in
      during a short run (0 = only on the preset's epoch schedule and at the stop);
    * ``if_exists``: ``"error"`` (default) or ``"resume"`` when ``run`` already holds checkpoints;
    * ``threads``: CPU threads for torch; 0 = :func:`trmlab.machine.auto_threads` (one thread when other
      work keeps the cores busy, else torch's default of one per core);
    * ``on_log(step, split, metrics)``: called after every logged record (e.g. :class:`~trmlab.viz.curves.LiveCurves`).
    """
    if if_exists not in ("error", "resume"):
        raise ValueError(f"if_exists must be 'error' or 'resume', got {if_exists!r}")
    if eval_every < 0:
        raise ValueError(f"eval_every must be >= 0, got {eval_every}")
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    n = int(threads) or auto_threads()
    if n != torch.get_num_threads():
        echo(f"torch CPU threads: {n}" + ("" if threads else " (chosen from the machine's load; set threads to override)"))
        torch.set_num_threads(n)
    out = resolve(run)
    data = data or (f"data/{task}" if task else "")
    cfg = make_config(preset, overrides, data, steps, minutes, seed, device, dtype, wandb_mode, name=out.name)
    if overrides and "name" in overrides:
        cfg.name = str(overrides["name"])
    cfg.data = str(ensure_dataset(cfg.data, progress=progress, echo=echo))
    has_run = (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("*.pt"))
    if has_run and if_exists == "error":
        raise TrainingError(f"{out} already holds a run; choose another run folder, or if_exists='resume' to "
                            f"continue it")
    if has_run:  # continue with the run's own configuration; only the budget may change
        budget = {k: v for k, v in (("train.max_steps", steps), ("train.max_minutes", minutes)) if v}
        cfg = apply_overrides(load_config(str(out / "config.json")), budget)
    trainer = Trainer(cfg, out, resume=has_run, progress=progress, on_log=on_log)
    if eval_every:
        t = cfg.train
        last = trainer.total_steps if not t.max_steps else min(trainer.total_steps, t.max_steps)
        trainer.eval_steps |= set(range(eval_every, last, eval_every))
    try:
        metrics = trainer.run()
    finally:
        D.teardown()
    return TrainResult(run_dir=out, config=cfg, metrics=metrics, steps=trainer.step)
