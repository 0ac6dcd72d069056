"""Helpers of the browser tests (a module name unique in the test suite)."""
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_jupyterlab(root, tmp_path, extra_env=None, extra_args=()):
    """JupyterLab on 127.0.0.1 serving ``root``, with a fresh config (news pop-up off) and this checkout
    first on the kernels' path; yields ``(url, token)`` and stops the server afterwards. Raises
    RuntimeError with the end of the server log when it does not come up within 60 s."""
    cfg = tmp_path / "jupyter-config"
    (cfg / "labconfig").mkdir(parents=True)
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(cfg), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1",
               **(extra_env or {}))
    port, token = free_port(), "trmlab-test-token"
    log_path = tmp_path / "jupyterlab.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", "--allow-root", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", *extra_args],
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
                raise RuntimeError("JupyterLab did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.5)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def open_and_run_all(page, url: str, token: str, notebook: str, wait: bool = True) -> None:
    """Open ``notebook`` in the JupyterLab at ``url``, wait for its kernel, and run every cell: until they
    have all run (``wait``; the command's promise resolves then), or only start them."""
    page.goto(f"{url}/lab/tree/{notebook}?token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=60000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel", timeout=60000)
    if wait:
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    else:
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


class PageWatch:
    """Collects uncaught page errors, console errors and requests that would leave the machine."""

    def __init__(self, page, allowed_prefixes):
        self.errors, self.console_errors, self.external = [], [], []
        self.allowed = tuple(allowed_prefixes)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.allowed) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()


#: the frame state of the page's first plotly figure that has animation frames (null when none has)
FRAMES = """() => { const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
    .find(g => g._transitionData && g._transitionData._frames && g._transitionData._frames.length > 1);
  return gd ? {active: gd._fullLayout.sliders[0].active, frames: gd._transitionData._frames.length} : null; }"""


def play_changes_frame(page, timeout_s: float = 20.0) -> tuple[dict, dict]:
    """Wait for an animated plotly figure, press its "▶ Play" and return the frame state (before,
    after): after differs from before when the animation moved within ``timeout_s``."""
    import time

    page.wait_for_function(f"() => ({FRAMES})() !== null", timeout=60000)
    before = page.evaluate(FRAMES)
    play = page.get_by_text("▶ Play").last
    play.scroll_into_view_if_needed()
    play.click()
    after, deadline = before, time.time() + timeout_s
    while time.time() < deadline:
        time.sleep(0.5)
        after = page.evaluate(FRAMES)
        if after["active"] != before["active"]:
            break
    return before, after
