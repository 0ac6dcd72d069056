"""Shared fixtures of the workbench tests: a tiny generated 4x4 Sudoku dataset and a few-step run."""
import pytest


@pytest.fixture(scope="session")
def tiny_sudoku4(tmp_path_factory):
    from trmlab.data.sudoku import build_sudoku

    data = tmp_path_factory.mktemp("wbdata") / "sudoku4"
    build_sudoku(data, generate=64, size=4, num_aug=0, test_generate=16, seed=0, progress=False,
                 echo=lambda *a, **k: None)
    return data


@pytest.fixture(scope="session")
def tiny_run(tiny_sudoku4, tmp_path_factory):
    """cpu_tiny trained for 4 optimiser steps (one evaluation at the end)."""
    from trmlab.config import get_preset
    from trmlab.train.trainer import train

    run = tmp_path_factory.mktemp("wbrun") / "run"
    cfg = get_preset("cpu_tiny", {"data": str(tiny_sudoku4), "train.max_steps": 4, "train.wandb_mode": "disabled"})
    seen = []
    train(cfg, run, progress=False, on_log=lambda step, split, m: seen.append((step, split, dict(m))))
    return run, seen
