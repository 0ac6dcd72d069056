"""04-recursion with its default parameters, run by papermill as from a fresh clone: it traces the 9x9
zoo model on a held-out puzzle that the model solves, and the report of the executed notebook plays its
animation in headless Chromium with no network."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from browser_helpers import PageWatch, play_changes_frame

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def executed(tmp_path_factory, zoo_data):
    """A fresh project (notebooks only, no runs; its data/ holds the 9x9 zoo model's dataset, built once per
    session through the card: tests/conftest.py ZooData) where `trmlab run 04-recursion` runs with the
    notebook's defaults, then `trmlab report`."""
    root = tmp_path_factory.mktemp("fresh")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    zoo_data.link_into(root, "sudoku9")
    (root / "trmlab").mkdir()  # marks the project root (the package itself is imported from the clone)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    env.pop("TRMLAB_ZOO", None)
    for args in (["run", "04-recursion", "--out", "runs/view"], ["report", "runs/view", "--out", "reports"]):
        r = subprocess.run([sys.executable, "-m", "trmlab.cli", *args], cwd=root, env=env, capture_output=True,
                           text=True, timeout=900)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return root


def test_default_recursion_traces_the_9x9_zoo_model_on_a_puzzle_it_solves(executed):
    nb = json.loads((executed / "runs" / "view" / "04-recursion.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "the zoo model sudoku9" in text and "9x9" in text
    folder = executed / "runs" / "zoo" / "sudoku9" / "recursion"
    assert (executed / "data" / "sudoku9-easy40" / "test").is_dir()  # the card's dataset (hash checked on use)
    from trmlab.trace.recorder import Trace

    tr = Trace.load(str(folder / "trace"))
    assert tr.meta["split"] == "test"
    final = tr.records(events=["answer"])[-1]
    assert bool(np.all(tr.exact("y", "to_fill")[final])), "the traced puzzle is not solved"


def test_its_report_plays_offline(browser, executed, artifacts):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    watch = PageWatch(page, allowed_prefixes=["file://"])
    (html,) = sorted((executed / "reports").glob("*04-recursion.html"))
    page.goto(html.as_uri())
    before, after = play_changes_frame(page)
    page.screenshot(path=f"{artifacts}/zoo-sudoku9-recursion-report.png", full_page=True)
    assert after["active"] != before["active"], f"the animation did not change frame: {before} -> {after}"
    assert watch.errors == [] and watch.console_errors == [] and watch.external == []
    page.close()
