"""02-train in a real JupyterLab (headless Chromium): Run All, and the training curve redraws while it trains."""
import json
import time
from pathlib import Path

import nbformat
import pytest

from browser_helpers import PageWatch, open_and_run_all, running_jupyterlab

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
BENIGN_CONSOLE = ("Failed to load resource: the server responded with a status of 404",)
# points in the loss trace of the training figure (the figure with the most subplots on the page)
POINTS = """() => { let n = -1;
  for (const g of document.querySelectorAll('.js-plotly-plot')) {
    if (g.data && g.data.length && g.data[0].name === 'lm_loss') n = Math.max(n, (g.data[0].x || []).length); }
  return n; }"""


@pytest.fixture
def lab_with_train_notebook(tmp_path):
    """JupyterLab serving a copy of 02-train whose parameters train cpu_tiny for 120 steps on a small dataset."""
    from trmlab.data.sudoku import build_sudoku

    data = tmp_path / "sudoku4"
    build_sudoku(data, generate=64, size=4, num_aug=0, test_generate=16, seed=0, progress=False,
                 echo=lambda *a, **k: None)
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.read(str(REPO / "notebooks" / "02-train.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    values = {"preset": "cpu_tiny", "data": str(data), "steps": 120, "eval_every": 60, "wandb_mode": "disabled",
              "run": str(tmp_path / "run")}
    lines = []
    for line in cell.source.splitlines():
        name = line.split("=", 1)[0].strip()
        lines.append(f"{name} = {json.dumps(values[name])}" if name in values else line)
    cell.source = "\n".join(lines)
    nbformat.write(nb, str(root / "02-train.ipynb"))
    with running_jupyterlab(root, tmp_path, extra_env={"WANDB_MODE": "disabled"}) as (url, token):
        yield url, token, tmp_path / "run"


def test_train_notebook_curves_move_while_it_trains(browser, lab_with_train_notebook, artifacts):
    url, token, run = lab_with_train_notebook
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    watch = PageWatch(page, allowed_prefixes=["http://127.0.0.1", "http://localhost"])
    open_and_run_all(page, url, token, "02-train.ipynb", wait=False)  # start Run All, do not wait for it
    seen = []
    deadline = time.time() + 240
    while time.time() < deadline:
        n = page.evaluate(POINTS)
        if n >= 0 and (not seen or n != seen[-1]):
            seen.append(n)
            if len(seen) == 3:
                page.screenshot(path=f"{artifacts}/jupyterlab-train-live.png")
        if n >= 120 and page.locator(".trmlab-eval").count() > 0:
            break
        time.sleep(0.3)
    page.screenshot(path=f"{artifacts}/jupyterlab-train-done.png")
    assert seen and seen[-1] == 120, f"the curve never showed the whole run: {seen}"
    partial = [n for n in seen if 0 < n < 120]
    assert len(partial) >= 2, f"the curve did not redraw while training (points seen: {seen})"
    assert partial == sorted(partial)
    assert (run / "config.json").is_file() and (run / "checkpoints" / "last.pt").is_file()
    console = [m for m in watch.console_errors if not m.startswith(BENIGN_CONSOLE)]
    assert watch.errors == [], f"JavaScript errors: {watch.errors}"
    assert console == [], f"console errors: {console}"
    assert watch.external == [], f"the page tried the network: {watch.external}"
    page.close()
