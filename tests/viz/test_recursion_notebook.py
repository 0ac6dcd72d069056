"""notebooks/04-recursion.ipynb runs headless under papermill with its default parameters."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.slow


def test_recursion_notebook_runs_under_papermill(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out"
    papermill.execute_notebook(os.path.join(REPO, "notebooks", "04-recursion.ipynb"), str(tmp_path / "nb.ipynb"),
                               parameters={"out_dir": str(out)}, kernel_name="python3", cwd=REPO,
                               progress_bar=False)
    for name in ("recursion-animation.html", "recursion-strip.png", "recursion-trace.npz", "recursion-trace.json"):
        assert (out / name).exists(), name
