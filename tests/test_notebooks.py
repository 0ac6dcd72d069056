"""Every notebook follows the same conventions (docs/workbench.md): a `parameters` cell that papermill reads
whole, `setup()` first (the project root), paths taken from the project root, and logic in the package."""
import json
from pathlib import Path

import pytest

from trmlab.workbench.execute import notebook_parameters

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _code(path):
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_there_are_the_six_notebooks():
    assert [p.stem for p in NOTEBOOKS] == ["01-data", "02-train", "03-evaluate", "04-recursion", "05-compare",
                                           "06-thinking"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(path):
    papermill = pytest.importorskip("papermill")
    ours = notebook_parameters(path)
    theirs = papermill.inspect_notebook(str(path))
    assert ours and set(theirs) == set(ours), f"papermill misses {set(ours) - set(theirs)} (an '=' in a comment?)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_first_and_paths_from_the_project_root(path):
    code = _code(path)
    first = code[1]  # the cell after the parameters
    assert "setup()" in first and "from trmlab.workbench.notebook import setup" in first
    text = "\n".join(code)
    assert "../" not in text, "paths are relative to the project root, not to notebooks/"
    assert max(len(c.splitlines()) for c in code) <= 20, "logic lives in the package: keep cells short"
