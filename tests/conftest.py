import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]
ARC_DIR = REPO.parent / "shared" / "data" / "arc"


@pytest.fixture(autouse=True)
def _one_thread():
    """Small models run faster on one thread than on two fighting over a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def arc_dir():
    if not (ARC_DIR / "arc-agi_training_challenges.json").exists():
        pytest.skip(f"real ARC data not found at {ARC_DIR}")
    return ARC_DIR


@pytest.fixture(scope="session")
def trained_sudoku4(tmp_path_factory):
    """A cpu_sudoku4 run trained for TRMLAB_TEST_TRAIN_STEPS optimiser steps (default 700, ~3 min on
    2 idle cores) on generated 4x4 Sudoku; shared by the learning and tracing tests. Returns
    (data_dir, run_dir, final eval metrics)."""
    from trmlab.config import get_preset
    from trmlab.data.sudoku import build_sudoku
    from trmlab.train.trainer import train

    root = tmp_path_factory.mktemp("trained")
    data = root / "sudoku4"
    build_sudoku(data, generate=500, size=4, num_aug=100, test_generate=300, seed=0, progress=False,
                 echo=lambda *a, **k: None)
    steps = int(os.environ.get("TRMLAB_TEST_TRAIN_STEPS", "700"))
    cfg = get_preset("cpu_sudoku4", {"data": str(data), "train.max_steps": steps, "train.wandb_mode": "disabled"})
    metrics = train(cfg, root / "run", progress=False)
    return data, root / "run", metrics
