"""The exported animation plays in headless Chromium from a file, with no kernel and no network."""
import time

import pytest

from trmlab.trace import maze_spec, sudoku_spec, trace
from trmlab.trace.tiny import random_batch, tiny_model
from trmlab.viz import export_html

from browser_helpers import PageWatch

pytestmark = pytest.mark.browser

JS_STATE = """() => { const gd = document.querySelector('.js-plotly-plot');
  return {active: gd._fullLayout.sliders[0].active, title: gd._fullLayout.title.text,
          frames: gd._transitionData._frames.length}; }"""


@pytest.mark.parametrize("task", [sudoku_spec(4), maze_spec(30)], ids=["sudoku4x4", "maze30x30"])
def test_exported_animation_plays_offline(browser, tmp_path, artifacts, task):
    model = tiny_model(task, hidden=32)
    tr = trace(model, random_batch(task, 1, seed=0), task=task)
    path = tmp_path / f"anim-{task.name}.html"
    export_html(tr, str(path), full_html=True, frame_ms=150)
    page = browser.new_page(viewport={"width": 1120, "height": 980})
    watch = PageWatch(page, allowed_prefixes=["file://"])
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30000)
    before = page.evaluate(JS_STATE)
    assert before["active"] == 0 and before["frames"] == len(tr)
    page.get_by_text("▶ Play").click()
    deadline = time.time() + 20
    after = before
    while time.time() < deadline:
        time.sleep(0.5)
        after = page.evaluate(JS_STATE)
        if after["active"] >= 3:
            break
    page.screenshot(path=f"{artifacts}/static-{task.name}.png", full_page=True)
    assert after["active"] >= 3, f"frames did not advance: {before} -> {after}"
    assert after["title"] != before["title"] and "supervision step" in after["title"]
    page.get_by_text("❚❚ Pause").click()
    time.sleep(1.0)  # a rejected promise is reported asynchronously: give it time to arrive
    assert watch.errors == [], f"JavaScript errors: {watch.errors}"
    assert watch.console_errors == [], f"console errors: {watch.console_errors}"
    assert watch.external == [], f"the page tried the network: {watch.external}"
    page.close()
