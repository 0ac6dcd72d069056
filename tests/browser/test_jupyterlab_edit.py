"""Edit and continue in a real JupyterLab: a small notebook traces the 9x9 zoo model (zoo/sudoku9) on a typed
Sudoku through the recursion notebook's backend and shows the editable player; in headless Chromium we move
to a frame, set an answer cell, press "continue from here", and check in the page that the recursion went on
from the edited state while an earlier frame stayed as it was, then go back to the original."""
import json
import os
import time

import pytest

from browser_helpers import PageWatch, open_and_run_all, running_jupyterlab

pytestmark = pytest.mark.browser

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENIGN_CONSOLE = ("Failed to load resource: the server responded with a status of 404",)
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
EDIT_AT, EARLIER = 12, 5  # frames (0-based): step 2's answer update of recursion 1, a latent update of step 1

CODE = f"""from trmlab.workbench.recursion import prepare
rec = prepare(task="sudoku9", puzzle_text="{PUZZLE}", n_supervision=4, root={REPO!r})
print(rec.describe())
player = rec.player(interval_ms=300)
player"""

#: what the player's figure shows: the title, the answer panel's picture and digits
FIGURE = """() => { const gd = document.querySelector('.js-plotly-plot');
  return JSON.stringify([gd.layout.title.text, gd.data[2].z, gd.data[3].text]); }"""


@pytest.fixture
def jupyterlab(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": CODE}],
          "metadata": {"kernelspec": {"display_name": "trmlab", "language": "python", "name": "trmlab"}},
          "nbformat": 4, "nbformat_minor": 5}
    (root / "edit.ipynb").write_text(json.dumps(nb))
    with running_jupyterlab(root, tmp_path, extra_args=("--ServerApp.disable_check_xsrf=False",)) as lab:
        yield lab


def _label(page) -> str:
    return page.locator(".widget-html-content b").first.inner_text()


def _goto(page, pos: int) -> None:
    """Type ``pos`` into the slider's readout and wait for the label to name that record."""
    readout = page.locator(".widget-hslider .widget-readout").first
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(pos))
    page.keyboard.press("Enter")
    deadline = time.time() + 30
    while time.time() < deadline and not _label(page).startswith(f"record {pos + 1}/"):
        time.sleep(0.2)
    assert _label(page).startswith(f"record {pos + 1}/"), f"the slider did not move to {pos}: {_label(page)}"
    time.sleep(0.5)  # the figure's update follows the label


def _status(page) -> str:
    return page.locator(".widget-html-content", has_text="applied").first.inner_text()


def test_edit_and_continue_in_jupyterlab(browser, jupyterlab, artifacts):
    url, token = jupyterlab
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    watch = PageWatch(page, allowed_prefixes=["http://127.0.0.1", "http://localhost"])
    open_and_run_all(page, url, token, "edit.ipynb")
    page.wait_for_selector(".widget-play", timeout=180000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1", timeout=120000)
    assert "in a saved notebook or an exported report" in page.locator(".jp-OutputArea").first.inner_text()

    _goto(page, EARLIER)
    earlier = page.evaluate(FIGURE)
    _goto(page, EDIT_AT)
    before = page.evaluate(FIGURE)
    label_before = _label(page)
    assert "edited" not in label_before
    page.locator("input[placeholder='row,col (from 1) or index']").fill("1,3")  # a blank cell of the puzzle
    page.locator("input[placeholder='digit, or . for blank']").fill("1")  # its solution is 4
    page.get_by_role("button", name="continue from here").click()
    page.wait_for_function("() => Array.from(document.querySelectorAll('.widget-html-content'))"
                           ".some(e => e.innerText.startsWith('applied:'))", timeout=120000)
    time.sleep(1.0)
    status = _status(page)
    page.screenshot(path=f"{artifacts}/jupyterlab-edit-continue.png", full_page=False)
    assert "answer y at cell (1,3) set to 1" in status and "not applied" not in status
    after = page.evaluate(FIGURE)
    assert after != before, "the figure did not change after the edit"
    assert "edited run" in json.loads(after)[0] and "edited run" in page.locator(".widget-html-content").first.inner_text()
    assert "1" in json.loads(after)[2]

    _goto(page, EARLIER)  # a frame before the edit: exactly as it was
    assert page.evaluate(FIGURE) == earlier
    assert "edited" not in _label(page)

    _goto(page, EDIT_AT)
    page.get_by_role("button", name="back to the original").click()
    page.wait_for_function("() => Array.from(document.querySelectorAll('.widget-html-content'))"
                           ".some(e => e.innerText.startsWith('back to the original'))", timeout=60000)
    time.sleep(1.0)
    assert page.evaluate(FIGURE) == before and _label(page) == label_before

    console = [m for m in watch.console_errors if not m.startswith(BENIGN_CONSOLE)]
    assert watch.errors == [], f"JavaScript errors: {watch.errors}"
    assert console == [], f"console errors: {console}"
    assert watch.external == [], f"the page tried the network: {watch.external}"
    page.close()
