"""`trmlab run`, `trmlab sweep` and `trmlab report` from the command line (papermill + nbconvert)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]


def trmlab(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "trmlab.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def make_notebook(path: Path, params: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "trmlab", "display_name": "trmlab", "language": "python"}}
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# a test notebook"), p] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))
    return path


def test_a_parameter_changes_the_run(tiny_sudoku4, tmp_path):
    run = tmp_path / "run"
    r = trmlab("run", "02-train", "--out", run, "--quiet", "-p", "preset", "cpu_tiny", "-p", "data", tiny_sudoku4,
               "-p", "steps", "2", "-p", "eval_every", "0", "-p", "wandb_mode", "disabled",
               "-p", "train.lr", "0.00123", "-p", "model.hidden_size", "32")
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["lr"] == 0.00123 and cfg["model"]["hidden_size"] == 32
    assert cfg["train"]["max_steps"] == 2 and cfg["preset"] == "cpu_tiny"
    executed = nbformat.read(str(run / "02-train.ipynb"), as_version=4)
    assert executed.metadata.papermill.parameters["overrides"] == {"train.lr": 0.00123, "model.hidden_size": 32}
    from trmlab.workbench.results import read_run

    s = read_run(run)
    assert s.steps == 2 and s.notebooks["02-train"].status == "ok" and len(s.evals) == 1
    # the saved output holds the final training figure (not the empty one it started from)
    figs = [o["data"]["application/vnd.plotly.v1+json"] for c in executed.cells for o in c.get("outputs", [])
            if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figs) == 1 and len(figs[0]["data"][0]["x"]) == 2


def test_unknown_parameter_is_a_clear_error(tmp_path):
    r = trmlab("run", "02-train", "--out", tmp_path / "x", "-p", "stepz", "3")
    assert r.returncode == 2 and "unknown parameter 'stepz'" in r.stderr and "steps" in r.stderr
    r = trmlab("run", "no-such-notebook")
    assert r.returncode == 2 and "not found" in r.stderr and "02-train" in r.stderr


def test_a_failing_cell_exits_nonzero_and_its_report_shows_it(tmp_path):
    nb = make_notebook(tmp_path / "boom.ipynb", 'run = ""  # run folder', "x = 1", "raise ValueError('boom 42')",
                       "print('never')")
    run = tmp_path / "run"
    r = trmlab("run", nb, "--out", run, "--quiet")
    assert r.returncode == 1
    assert "ValueError: boom 42" in r.stderr and "boom.ipynb" in r.stderr
    kept = nbformat.read(str(run / "boom.ipynb"), as_version=4)
    errors = [o for c in kept.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "ValueError" and errors[0]["evalue"] == "boom 42"
    reports = tmp_path / "reports"
    r = trmlab("report", run, "--out", reports)
    assert r.returncode == 0, r.stderr
    html = (reports / "run-boom.html").read_text()
    assert "This notebook failed" in html and "ValueError: boom 42" in html and "Traceback" in html
    assert "never" not in html.split("raise ValueError")[-1].split("print")[0]
    index = (reports / "index.html").read_text()
    assert "run-boom.html" in index and "failed" in index
    info = json.loads((reports / "run-boom.json").read_text())
    assert info["status"] == "failed" and "boom 42" in info["error"]
    assert info["in_run"] is True and info["standalone"] is False
    r = trmlab("report", run, "--out", tmp_path / "alone", "--standalone")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "alone" / "run-boom.json").read_text())["standalone"] is True
    assert 'src="assets/' not in (tmp_path / "alone" / "run-boom.html").read_text()


def test_a_two_cell_sweep_writes_two_rows_and_reruns_nothing(tmp_path):
    nb = make_notebook(tmp_path / "cellnb.ipynb", 'run = ""  # run folder\nx = 1  # a value\nseed = 0  # seed',
                       "import json, os\nos.makedirs(run, exist_ok=True)\n"
                       "open(os.path.join(run, 'ran.txt'), 'a').write('ran\\n')")
    out = tmp_path / "sweep"
    r = trmlab("sweep", nb, "--grid", "x=1,2", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((out / "results.json").read_text())
    assert [row["grid.x"] for row in rows] == [1, 2] and {row["status"] for row in rows} == {"finished"}
    assert len((out / "results.csv").read_text().strip().splitlines()) == 3
    assert "2 ran" in r.stdout
    r = trmlab("sweep", nb, "--grid", "x=1,2", "--out", out, "--quiet")
    assert r.returncode == 0 and "0 ran" in r.stdout and r.stdout.count("skipped") == 2
    for cell in ("x=1", "x=2"):
        assert (out / cell / "ran.txt").read_text() == "ran\n"  # each cell ran exactly once
    assert len(json.loads((out / "results.json").read_text())) == 2


def test_a_sweep_with_two_jobs_runs_its_cells_at_once(tmp_path):
    """--jobs 2: two worker processes; each cell records when it ran, and the two spans overlap."""
    nb = make_notebook(tmp_path / "cellnb.ipynb", 'run = ""  # run folder\nx = 1  # a value\nthreads = 0  # threads',
                       "import json, os, time\nos.makedirs(run, exist_ok=True)\nt0 = time.time()\n"
                       "time.sleep(3)\n"
                       "open(os.path.join(run, 'ran.json'), 'a').write(json.dumps([t0, time.time(), threads]) + '\\n')")
    out = tmp_path / "sweep"
    r = trmlab("sweep", nb, "--grid", "x=1,2", "--out", out, "--quiet", "--jobs", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 at a time" in r.stdout and r.stdout.count(": finished in ") == 2
    spans = [json.loads((out / f"x={x}" / "ran.json").read_text()) for x in (1, 2)]
    assert max(s[0] for s in spans) < min(s[1] for s in spans)  # both were running at one moment
    assert {s[2] for s in spans} == {max(1, (os.cpu_count() or 1) // 2)}  # the cores shared out
    rows = json.loads((out / "results.json").read_text())
    assert [row["status"] for row in rows] == ["finished", "finished"]
    r = trmlab("sweep", nb, "--grid", "x=1,2", "--out", out, "--quiet", "--jobs", "0")
    assert r.returncode == 2 and "--jobs must be >= 1" in r.stderr


def test_a_cell_another_sweep_holds_is_left_to_it(tmp_path, monkeypatch):
    from trmlab.workbench import sweep as sw

    nb = make_notebook(tmp_path / "cellnb.ipynb", 'run = ""  # run folder\nx = 1  # a value', "pass")
    ran = []

    def fake_run(path, params, out, **kw):
        ran.append(Path(out).name)
        Path(out).mkdir(parents=True, exist_ok=True)
        done = {"cells": [], "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"papermill": {"end_time": "2026-01-01T00:00:00", "exception": None, "parameters": {}}}}
        (Path(out) / "cellnb.ipynb").write_text(json.dumps(done))

    monkeypatch.setattr(sw, "run_notebook", fake_run)
    out = tmp_path / "sweep"
    cells = sw.plan(str(nb), {"x": [1, 2]}, None, str(out))
    other = sw.CellLocks(out)  # another sweep, running x=1: its folder has no notebook yet
    assert other.acquire(cells[0])
    (out / "x=1").mkdir(parents=True)
    (out / "x=1" / "partial.txt").write_text("being written")
    said = []
    rows = sw.sweep(str(nb), {"x": [1, 2]}, None, str(out), echo=said.append)
    assert ran == ["x=2"]
    assert (out / "x=1" / "partial.txt").exists()  # neither moved aside nor rerun
    assert any("x=1: being run by another sweep" in line and f"pid {os.getpid()}" in line for line in said)
    assert [r["status"] for r in rows][0] == "running" and "1 left to another sweep" in said[-1]
    other.release()
    ran.clear()
    sw.sweep(str(nb), {"x": [1, 2]}, None, str(out), echo=said.append)
    assert ran == ["x=1"]  # the other sweep's lock is gone: the failed try is moved aside and rerun


def test_sweep_prints_one_command_per_cell(tmp_path):
    r = trmlab("sweep", "02-train", "--grid", "train.lr=1e-3,2e-3", "--grid", "preset=cpu_tiny", "--seeds", "0,1",
               "--out", tmp_path / "s", "-p", "steps", "50", "--print-commands")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4 and all(l.startswith("trmlab run notebooks/02-train.ipynb --out ") for l in lines)
    assert "-p train.lr 0.001" in lines[0] and "-p seed 1" in lines[1] and "-p steps 50" in lines[0]
    assert not (tmp_path / "s").exists()
    r = trmlab("sweep", "02-train", "--grid", "lrr=1,2", "--out", tmp_path / "s", "--print-commands")
    assert r.returncode == 2 and "unknown parameter 'lrr'" in r.stderr


def test_workbench_commands_have_help():
    for cmd in ("run", "sweep", "report", "demo"):
        r = trmlab(cmd, "--help")
        assert r.returncode == 0 and "usage: trmlab " + cmd in r.stdout
