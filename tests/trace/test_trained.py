"""On a trained 4x4 Sudoku model, the traced answer gets better along the supervision steps."""
import importlib.util
import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _have(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.skipif(not _have("trmlab.train.trainer"), reason="trainer not available yet (trmlab.train.trainer)")
@pytest.mark.skipif(not _have("trmlab.data.sudoku"), reason="4x4 Sudoku generator not available (trmlab.data.sudoku)")
def test_accuracy_rises_along_the_steps(tmp_path):
    from trmlab.config import get_preset
    from trmlab.data.sudoku import build_sudoku
    from trmlab.train.trainer import train
    from trmlab.trace import trace
    from trmlab.viz.pickers import from_dataset

    data = tmp_path / "sudoku4"
    build_sudoku(str(data), generate=500, size=4, num_aug=0, seed=0, test_generate=64, progress=False,
                 echo=lambda *a, **k: None)
    budget = float(os.environ.get("TRMLAB_TEST_TRAIN_MINUTES", "3"))
    cfg = get_preset("cpu_sudoku4", {"data": str(data), "train.max_minutes": budget, "train.eval_interval": 1000,
                                     "train.epochs": 1000})
    run = tmp_path / "run"
    result = train(cfg, str(run), progress=False)
    from trmlab.train.inference import load_run

    model, _ = load_run(str(run))
    picked = from_dataset(str(data), list(range(64)), "test")
    tr = trace(model, picked.batch, n_supervision=6, events=("supervision",), pca="none")
    acc = tr.accuracy("y").mean(axis=1)  # mean cell accuracy per supervision step
    exact = tr.exact("y").mean(axis=1)
    assert acc[-1] > acc[0] + 0.02, f"cell accuracy by step: {np.round(acc, 3)}"
    assert exact[-1] >= exact[0], f"exact accuracy by step: {np.round(exact, 3)}"
    assert acc[-1] > 0.6, f"the model did not learn: {np.round(acc, 3)} ({result})"
