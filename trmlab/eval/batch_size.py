"""How many puzzles one evaluation batch holds: ``train.eval_batch_size``, or a measured choice on a CPU.

``train.eval_batch_size = 0`` (the default) means "auto":

* on a GPU, the global batch size (the reference's evaluation batch);
* on a CPU, the fastest of :data:`CANDIDATES` (puzzles per second through one supervision step of this
  model, in its dtype, measured on random puzzles), because on a CPU a bigger batch is often slower:
  once a batch's activations outgrow the caches every elementwise pass goes to memory. Measured with
  ``python -m trmlab.bench.eval_batch`` (2 cores, fp32, puzzles/s at batch 16 / 64 / 256 / 1024): ``cpu_sudoku4``
  387 / 610 / 702 / 548, ``cpu_sudoku9`` 46 / 32 / 27 / 23, ``cpu_mlp_sudoku4`` 469 / 552 / 213 / 174 --
  no single size is right for all three, and the global batch is often far from the best.

Every puzzle is solved the same way whatever the batch (results can differ only in the last bits of
floating point), so this changes speed, not the metrics. A run records its choice in its checkpoints and
keeps it on resume, so a resumed run evaluates exactly as it would have.

:func:`choose_eval_batch` takes the measurement as a function (``measure(batch) -> seconds``) so that
its decision is tested without timing anything; :func:`step_seconds` is the real one.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import os

import torch

from ..config import RunConfig
from ..data.loader import TestLoader
from ..model import DeepSupervision, run_to_halt

#: evaluation batches tried on a CPU, smallest first
CANDIDATES = (16, 32, 64, 128, 256, 512)
#: stop trying larger batches once one is this much slower than the best so far (past the peak)
PAST_PEAK = 0.8
#: ... or once one supervision step at a batch takes longer than this (seconds): larger ones only cost
#: measuring time, and a batch of this many puzzles already keeps the matrix units busy
MAX_STEP_SECONDS = 0.5


def choose_eval_batch(configured: int, global_batch: int, device: torch.device | str,
                      measure: Optional[Callable[[int], float]] = None, world_size: int = 1,
                      candidates: tuple[int, ...] = CANDIDATES) -> tuple[int, str]:
    """``(batch, why)``: the evaluation batch (global, over all processes) for ``train.eval_batch_size =
    configured``. ``measure(local_batch)`` gives the seconds of one supervision step of ``local_batch``
    puzzles on this process; it is called on CPUs only, smallest candidate first, twice each (the best
    counts), until :data:`PAST_PEAK` or :data:`MAX_STEP_SECONDS` says to stop."""
    if configured < 0:
        raise ValueError(f"train.eval_batch_size must be >= 0 (0 = auto), got {configured}")
    if configured:
        return configured, f"{configured} (train.eval_batch_size)"
    if torch.device(device).type != "cpu" or measure is None:
        return global_batch, f"{global_batch}: the global batch size (auto, {torch.device(device).type})"
    rates: dict[int, float] = {}
    for b in candidates:
        seconds = min(measure(b), measure(b))
        rates[b] = b / max(seconds, 1e-9)
        if rates[b] < PAST_PEAK * max(rates.values()) or seconds > MAX_STEP_SECONDS:
            break
    best = max(rates, key=rates.get)
    tried = ", ".join(f"{b}: {r:.0f}" for b, r in rates.items())
    return best * world_size, (f"{best * world_size}: the fastest on this CPU (auto; puzzles/s per process "
                               f"by batch, one supervision step: {tried})")


def step_seconds(model: DeepSupervision, batch: int, seq_len: int, vocab_size: int) -> float:
    """Seconds of one evaluation supervision step of ``batch`` random puzzles (after one warm-up), in
    the model's mode and dtype as :func:`~trmlab.model.act.run_to_halt` runs it. The global RNG is
    left untouched (random puzzles come from a private generator), so measuring keeps runs exact."""
    g = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    data = {"inputs": torch.randint(1, max(vocab_size, 2), (batch, seq_len), generator=g, dtype=torch.int32),
            "labels": torch.full((batch, seq_len), -100, dtype=torch.int64),
            "puzzle_identifiers": torch.zeros(batch, dtype=torch.int32)}
    data = {k: v.to(device) for k, v in data.items()}
    with torch.random.fork_rng(devices=[]):
        run_to_halt(model, data, 1, "max")
        t0 = time.perf_counter()
        run_to_halt(model, data, 1, "max")
        return time.perf_counter() - t0


def auto_eval_batch(model: DeepSupervision, configured: int, global_batch: int, world_size: int = 1) -> tuple[int, str]:
    """:func:`choose_eval_batch` measured with this model (:func:`step_seconds`)."""
    cfg = model.cfg
    device = next(model.parameters()).device
    return choose_eval_batch(configured, global_batch, device,
                             lambda b: step_seconds(model, b, cfg.seq_len, cfg.vocab_size), world_size)


def test_loader(cfg: RunConfig, data: str | os.PathLike, batch_size: Optional[int] = None,
                model: Optional[DeepSupervision] = None) -> TestLoader:
    """The test-split loader of ``data`` for evaluating a run with config ``cfg``: batches of
    ``batch_size``, else the run's ``eval_batch_size``, else (auto) with ``model`` on a CPU the fastest
    batch measured (:func:`auto_eval_batch`), else the global batch size capped at 256."""
    size = batch_size or cfg.train.eval_batch_size
    if not size:
        fallback = min(cfg.train.global_batch_size, 256)
        size = auto_eval_batch(model, 0, fallback)[0] if model is not None else fallback
    return TestLoader(data, size)
