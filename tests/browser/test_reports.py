"""A shortened demo's reports in headless Chromium: the index has the run's row linking every report,
plotly charts render, widgets render from their saved state, the recursion animation plays, no JavaScript
error, no request leaves the machine, both with the scripts shared in reports/assets and in a
``--standalone`` report copied alone to an empty folder. Screenshots go to the artifacts folder."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser_helpers import PageWatch, play_changes_frame

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]

@pytest.fixture(scope="module")
def short_demo(tmp_path_factory):
    """`trmlab demo --steps 30` on a small generated 4x4 Sudoku, into a temporary folder."""
    from trmlab.data.sudoku import build_sudoku

    root = tmp_path_factory.mktemp("demo")
    data = root / "sudoku4"
    build_sudoku(data, generate=64, size=4, num_aug=2, test_generate=32, seed=0, progress=False,
                 echo=lambda *a, **k: None)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "trmlab.cli", "demo", "--steps", "30", "--eval-every", "15",
                        "--run", str(root / "run"), "--data", str(data), "--reports", str(root / "reports"),
                        "--wandb-mode", "disabled", "--quiet"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "open " in r.stdout and "index.html" in r.stdout
    return root


def _demo_notebooks():
    from trmlab.workbench.demo import DEMO_NOTEBOOKS

    return [name for name, _ in DEMO_NOTEBOOKS if (REPO / "notebooks" / f"{name}.ipynb").is_file()]


def _check_report(page, path, name, artifacts, tag=""):
    """Open one report: its charts, its widgets and (04-recursion) the animation."""
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60000)
    n_plots = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
    assert n_plots >= 1, f"{name}: no plotly chart rendered"
    banner = page.locator(".trmlab-banner").first.inner_text()
    assert name in banner and "failed" not in banner
    if name == "02-train":
        # the training figure shows the whole run: 30 points in the loss trace
        n = page.evaluate("() => Math.max(...Array.from(document.querySelectorAll('.js-plotly-plot'))"
                          ".map(g => (g.data && g.data[0] && g.data[0].x) ? g.data[0].x.length : 0))")
        assert n == 30
        # the tqdm progress bar is an ipywidget drawn from the saved widget state
        page.wait_for_selector(".widget-hprogress, .jupyter-widgets .progress", timeout=30000)
    if name == "06-thinking":
        # accuracy against steps, K, transforms and cost (and the example puzzles when there are any)
        assert n_plots >= 4, f"06-thinking: {n_plots} charts"
    if name == "04-recursion":
        # the player: its slider and its figure (a FigureWidget, drawn from the saved state)
        page.wait_for_selector(".widget-hslider, .widget-slider", timeout=30000)
        page.wait_for_selector(".jupyter-widgets .js-plotly-plot .main-svg", timeout=30000)
        before, after = play_changes_frame(page)
        assert after["active"] != before["active"], f"the animation did not change frame: {before} -> {after}"
    page.screenshot(path=f"{artifacts}/report{tag}-{name}.png", full_page=True)


def test_index_and_every_report_render_offline(browser, short_demo, artifacts):
    reports = short_demo / "reports"
    names = _demo_notebooks()
    assert "02-train" in names and "04-recursion" in names
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    watch = PageWatch(page, allowed_prefixes=["file://"])
    page.goto((reports / "index.html").as_uri())
    links = page.eval_on_selector_all("#reports a", "els => els.map(e => e.getAttribute('href'))")
    assert sorted(links) == sorted(f"run-{n}.html" for n in names)
    # one row for the run, whatever the number of its reports, and the task filter its script shows
    assert page.locator("#reports tbody tr").count() == 1
    assert page.locator("#reports").inner_text().count("sudoku 4x4") == 1
    assert page.locator("#task-filter").is_visible()
    page.select_option("#task-filter", "sudoku 4x4")
    assert page.locator("#reports tbody tr").first.is_visible()
    page.screenshot(path=f"{artifacts}/reports-index.png", full_page=True)
    # the reports load one shared copy of their scripts, by relative path
    assets = sorted(p.name for p in (reports / "assets").iterdir())
    assert [a.split("-")[0] for a in assets] == ["anywidget", "embed", "plotly", "require"], assets
    for name in names:
        html = (reports / f"run-{name}.html").read_text()
        assert 'src="assets/plotly-' in html and len(html) < 3_000_000, (name, len(html))
        _check_report(page, reports / f"run-{name}.html", name, artifacts)
    assert watch.errors == [], f"JavaScript errors: {watch.errors}"
    assert watch.console_errors == [], f"console errors: {watch.console_errors}"
    assert watch.external == [], f"the pages tried the network: {watch.external}"
    page.close()


def test_a_standalone_report_opens_alone(browser, short_demo, artifacts, tmp_path):
    """`trmlab report --standalone`: a report copied alone to an empty folder has everything it needs."""
    from trmlab.workbench.reports import report_runs, widget_js_dir

    assert widget_js_dir() is not None, "the widget scripts are not installed (bash scripts/setup.sh)"
    out = tmp_path / "standalone"
    infos = report_runs([short_demo / "run"], out=out, standalone=True, echo=lambda *a: None)
    assert all(i.standalone for i in infos) and not (out / "assets").exists()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    watch = PageWatch(page, allowed_prefixes=["file://"])
    for name in [n for n in ("02-train", "04-recursion") if n in _demo_notebooks()]:
        alone = tmp_path / f"alone-{name}"
        alone.mkdir()
        shutil.copy(out / f"run-{name}.html", alone)
        html = (alone / f"run-{name}.html").read_text()
        assert 'src="assets/' not in html and not re.search(r"<script[^>]*\bsrc=", html)
        _check_report(page, alone / f"run-{name}.html", name, artifacts, tag="-standalone")
    assert watch.errors == [], f"JavaScript errors: {watch.errors}"
    assert watch.console_errors == [], f"console errors: {watch.console_errors}"
    assert watch.external == [], f"the page tried the network: {watch.external}"
    page.close()
