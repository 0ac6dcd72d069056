"""The recursion notebook in a real JupyterLab: run it in headless Chromium, press Play, watch it move."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from browser_helpers import PageWatch

pytestmark = pytest.mark.browser

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = os.path.join(REPO, "notebooks", "04-recursion.ipynb")

# Console messages JupyterLab itself prints on a fresh, offline profile; anything else fails the test.
BENIGN_CONSOLE = ("Failed to load resource: the server responded with a status of 404",)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on 127.0.0.1 with a fresh config (news pop-up off) serving a copy of the notebook."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / "04-recursion.ipynb")
    cfg = tmp_path / "jupyter-config"
    (cfg / "labconfig").mkdir(parents=True)
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(cfg), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    port, token = _free_port(), "trmlab-test-token"
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", "--allow-root", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=False"],
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
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _readout(page) -> int:
    text = page.locator(".widget-hslider .widget-readout").first.inner_text()
    return int(text.strip())


def test_notebook_player_plays_in_jupyterlab(browser, jupyterlab, artifacts):
    url, token = jupyterlab
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    watch = PageWatch(page, allowed_prefixes=["http://127.0.0.1", "http://localhost"])
    page.goto(f"{url}/lab/tree/04-recursion.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=60000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel", timeout=60000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_selector(".widget-play", timeout=180000)  # the player is displayed
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2",
                           timeout=120000)  # the FigureWidget and the static animation
    page.locator(".widget-play").first.scroll_into_view_if_needed()
    title = page.locator(".js-plotly-plot .gtitle").first
    label = page.locator(".widget-html-content b").first
    v0, t0, l0 = _readout(page), title.text_content(), label.inner_text()
    page.locator(".widget-play button").first.click()  # Play
    deadline = time.time() + 30
    v1 = v0
    while time.time() < deadline:
        time.sleep(0.5)
        v1 = _readout(page)
        if v1 >= v0 + 3 and title.text_content() != t0:
            break
    page.screenshot(path=f"{artifacts}/jupyterlab-player.png", full_page=False)
    assert v1 >= v0 + 3, f"the Play button did not advance the slider ({v0} -> {v1})"
    assert title.text_content() != t0, "the figure did not redraw"
    assert label.inner_text() != l0 and "supervision step" in label.inner_text()
    page.locator(".widget-play button").nth(1).click()  # Pause
    console = [m for m in watch.console_errors if not m.startswith(BENIGN_CONSOLE)]
    assert watch.errors == [], f"JavaScript errors: {watch.errors}"
    assert console == [], f"console errors: {console}"
    assert watch.external == [], f"the page tried the network: {watch.external}"
    page.close()
