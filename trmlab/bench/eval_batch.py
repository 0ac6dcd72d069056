"""Puzzles/s solving through all supervision steps (``run_to_halt``, eager, fp32, untrained models)
against the evaluation batch, for three CPU presets: how large an evaluation batch should be on a CPU.

Usage: ``python -m trmlab.bench.eval_batch`` (about 3 minutes on 2 cores; run it on quiet cores).
Figures from one run are in docs/performance.md. What it showed is why ``train.eval_batch_size=0`` measures
the fastest batch on a CPU (trmlab/eval/batch_size.py).
"""
import time

import torch

from trmlab.model import build_model, run_to_halt
from trmlab.bench.speed import CASES, case_config, random_batch

BATCHES = (16, 64, 256, 1024)


def puzzles_per_s(case: str, batch: int, puzzles: int) -> float:
    cfg = case_config(CASES[case])
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    data = random_batch(cfg, batch)
    n = cfg.model.n_supervision
    run_to_halt(model, data, n, "max")  # warm-up
    reps = max(1, puzzles // batch)
    t = time.perf_counter()
    for _ in range(reps):
        run_to_halt(model, data, n, "max")
    return batch * reps / (time.perf_counter() - t)


if __name__ == "__main__":
    for case, puzzles in (("cpu_sudoku4", 2048), ("cpu_sudoku9", 512), ("cpu_mlp_sudoku4", 2048)):
        rates = [f"{b}: {puzzles_per_s(case, b, puzzles):.1f}" for b in BATCHES]
        print(f"{case:16s} puzzles/s by batch  " + "  ".join(rates), flush=True)
