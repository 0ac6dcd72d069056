"""02-train in a real JupyterLab (headless Chromium): Run All, and the training curve redraws while it trains."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from browser_helpers import PageWatch

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
BENIGN_CONSOLE = ("Failed to load resource: the server responded with a status of 404",)
# points in the loss trace of the training figure (the figure with the most subplots on the page)
POINTS = """() => { let n = -1;
  for (const g of document.querySelectorAll('.js-plotly-plot')) {
    if (g.data && g.data.length && g.data[0].name === 'lm_loss') n = Math.max(n, (g.data[0].x || []).length); }
  return n; }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    cfg = tmp_path / "jupyter-config"
    (cfg / "labconfig").mkdir(parents=True)
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(cfg), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), WANDB_MODE="disabled",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    port, token = _free_port(), "trmlab-test-token"
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", "--allow-root", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(root))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, token, tmp_path / "run"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_train_notebook_curves_move_while_it_trains(browser, lab_with_train_notebook, artifacts):
    url, token, run = lab_with_train_notebook
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    watch = PageWatch(page, allowed_prefixes=["http://127.0.0.1", "http://localhost"])
    page.goto(f"{url}/lab/tree/02-train.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=60000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel", timeout=60000)
    # start Run All without waiting for it (the command's promise resolves when every cell has run)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
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
