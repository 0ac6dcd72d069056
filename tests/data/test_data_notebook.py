"""notebooks/01-data.ipynb builds a dataset and draws a puzzle under papermill."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_data_notebook_runs_under_papermill(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "nb-sudoku"
    nb = papermill.execute_notebook(str(REPO / "notebooks" / "01-data.ipynb"), str(tmp_path / "nb.ipynb"),
                                    parameters={"out": str(out), "count": 50, "num_aug": 2},
                                    kernel_name="python3", cwd=str(REPO / "notebooks"), progress_bar=False)
    assert (out / "train" / "dataset.json").exists() and (out / "build.json").exists()
    assert (out / "val" / "dataset.json").exists()          # 10% of the 50 puzzles held out for selection
    src = "".join(nb.cells[1].source)
    assert "shared" not in src and "arc_dir = None" in src  # no path outside the repository
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the puzzle was not drawn"
