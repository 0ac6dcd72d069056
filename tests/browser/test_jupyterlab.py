"""The recursion notebook in a real JupyterLab: run it in headless Chromium, press Play, watch it move."""
import os
import shutil
import time

import pytest

from browser_helpers import PageWatch, open_and_run_all, running_jupyterlab

pytestmark = pytest.mark.browser

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = os.path.join(REPO, "notebooks", "04-recursion.ipynb")

# Console messages JupyterLab itself prints on a fresh, offline profile; anything else fails the test.
BENIGN_CONSOLE = ("Failed to load resource: the server responded with a status of 404",)


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on 127.0.0.1 with a fresh config (news pop-up off) serving a copy of the notebook."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / "04-recursion.ipynb")
    with running_jupyterlab(root, tmp_path, extra_args=("--ServerApp.disable_check_xsrf=False",)) as lab:
        yield lab


def _readout(page) -> int:
    text = page.locator(".widget-hslider .widget-readout").first.inner_text()
    return int(text.strip())


def test_notebook_player_plays_in_jupyterlab(browser, jupyterlab, artifacts):
    url, token = jupyterlab
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    watch = PageWatch(page, allowed_prefixes=["http://127.0.0.1", "http://localhost"])
    open_and_run_all(page, url, token, "04-recursion.ipynb")
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
