"""Test-time scaling of a run: `--think best` reads what `trmlab think search` stored, `trmlab eval|solve
--think`, and the 06-thinking study and notebook (on a tiny run, a few puzzles)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trmlab.eval.thinking import Thinking
from trmlab.runs.thinking import FILE, best_thinking, read_thinking_file, search_best

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), WANDB_MODE="disabled",
           OMP_NUM_THREADS="1")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "trmlab.cli", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def thought(tiny_run, tmp_path_factory):
    """A copy of the tiny run with a measured best way to think."""
    import shutil

    run = tmp_path_factory.mktemp("think") / "run"
    shutil.copytree(tiny_run[0], run)
    with pytest.raises(FileNotFoundError, match="trmlab think search"):
        best_thinking(run)
    dest = search_best(run, max_puzzles=6, sigmas=(0.3,), steps=3, k=2, augment=2, progress=False)
    return run, dest


def test_think_best_reads_the_stored_setting(thought):
    run, dest = thought
    assert dest == run / FILE
    th, record = best_thinking(run)
    assert th == Thinking.from_dict(json.loads(dest.read_text())["thinking"])
    assert record["measured_on"]["split"] == "val" and record["calls_ratio"] <= record["max_ratio"]
    assert th.select in ("halt", "first", "vote")  # never the rule check, never the labels
    assert read_thinking_file(dest)[0] == th
    bad = dest.parent / "bad.json"
    bad.write_text(json.dumps({"format": "trmlab-thinking-1", "thinking": {"K": 3}}))
    with pytest.raises(ValueError, match="missing key"):
        read_thinking_file(bad)


def test_search_refuses_the_test_split(thought):
    with pytest.raises(ValueError, match="the test split chooses nothing"):
        search_best(thought[0], split="test")


def test_solve_and_eval_think(thought):
    run, _ = thought
    th, _ = best_thinking(run)
    r = cli("solve", run, "--sudoku", "1..4..1..4..3..2", "--think")
    assert r.returncode == 0, r.stderr
    assert f"thinking: {th.describe()}" in r.stdout and "halting probability" in r.stdout
    assert "the rules of sudoku" in r.stdout.lower()  # obeys, or BREAKS THE RULES with where
    r = cli("eval", run, "--think", "steps=3,augment=2,select=vote", "--max-puzzles", "8")
    assert r.returncode == 0, r.stderr
    assert "thinking: 3 steps, 2 transforms, select by vote" in r.stdout and "[95% CI" in r.stdout
    assert "network calls per puzzle" in r.stdout and "oracle" in r.stdout
    r = cli("think", "show", run)
    assert r.returncode == 0 and "best:" in r.stdout and "no rule check" in r.stdout
    r = cli("eval", run, "--think", "K=2")
    assert r.returncode == 2 and "unknown key 'K'" in r.stderr


def test_solve_says_where_a_wrong_sudoku_breaks_the_rules(tiny_run):
    r = cli("solve", tiny_run[0], "--sudoku", "1..4..1..4..3..2")
    assert r.returncode == 0, r.stderr
    assert "halting probability" in r.stdout
    if "BREAKS THE RULES" in r.stdout:  # an untrained model: where, in words
        assert any(w in r.stdout for w in ("row ", "column ", "box ", "blank"))
    else:
        assert "obeys the rules of sudoku" in r.stdout


def test_the_study_and_its_notebook(tiny_run, tmp_path):
    from trmlab.workbench.thinking import study

    run = tiny_run[0]
    st = study(run=str(run), split="test", max_puzzles=8, max_steps=4, steps=2, k_values=(1, 2), augment_values=(1, 2),
               sigmas=(0.3,), sigma_puzzles=4, progress=False, echo=lambda *a: None)
    assert {r["steps"] for r in st.tables["steps"]} == {1, 2, 3, 4}
    assert {r["k"] for r in st.tables["k"]} == {1, 2} and {r["augment"] for r in st.tables["augment"]} == {1, 2}
    assert any(r["uses_rule_check"] for r in st.tables["k"]) and any(r["uses_labels"] for r in st.tables["k"])
    head = st.headline()
    assert head[0]["method"].startswith("plain") and all(r["calls_ratio"] <= 64 for r in head)
    summary = json.loads(st.save_summary().read_text())
    assert summary["puzzles"] == 8 and summary["sigma"] == 0.3
    again = study(run=str(run), split="test", max_puzzles=8, max_steps=4, steps=2, k_values=(1, 2),
                  augment_values=(1, 2), sigmas=(0.3,), sigma_puzzles=4, progress=False,
                  echo=lambda *a: (_ for _ in ()).throw(AssertionError(a)) if "wrote" in a[0] else None)
    assert again.tables["k"] == st.tables["k"]  # read back, not run again
    from trmlab.workbench.dynamics import dynamics, save_summary

    dy = dynamics(st, entropy_puzzles=4, recovery_puzzles=8, after=(1,), echo=lambda *a: None)
    assert sum(r["count"] for r in dy.classes.counts()) == 8 and dy.calibration.n == 8 * 4
    assert dy.entropy.y_entropy.shape == (4, 4) and set(dy.recovery) == {"answer", "given"}
    assert all(rec.offered == 8 and rec.after == (1,) for rec in dy.recovery.values())
    assert "-p pick index -p index N" in dy.open_command
    d = json.loads(save_summary(st, dy).read_text())
    assert d["dynamics"]["calibration"]["where"] == "every_step" and len(d["dynamics"]["classes"]) == 5
    again = dynamics(st, entropy_puzzles=4, recovery_puzzles=8, after=(1,),
                     echo=lambda *a: (_ for _ in ()).throw(AssertionError(a)) if "wrote" in a[0] else None)
    import shutil

    from trmlab.workbench.dynamics import studied_classes

    zoo_dir = tmp_path / "proj" / "runs" / "zoo" / "m" / "thinking"
    zoo_dir.mkdir(parents=True)
    shutil.copy(st.files["depth"], zoo_dir / "set-test-depth.npz")
    every = studied_classes(tmp_path / "proj")
    assert list(every) == ["m · set"] and every["m · set"].counts() == dy.classes.counts()
    for kind, rec in dy.recovery.items():  # read back
        assert np.array_equal(again.recovery[kind].exact, rec.exact) and again.recovery[kind].offered == 8
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "06.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "06-thinking.ipynb"), str(out), kernel_name="trmlab",
                               parameters={"run": str(run), "data": "", "max_puzzles": 8, "max_steps": 4, "steps": 2,
                                           "k_values": [1, 2], "augment_values": [1, 2], "sigmas": [0.3],
                                           "sigma_puzzles": 4, "entropy_puzzles": 4, "recovery_puzzles": 8,
                                           "recovery_after": [1]},
                               cwd=str(REPO / "notebooks"), progress_bar=False)
    nb = json.loads(out.read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "noise scale chosen on the validation split" in text and "summary.json" in text
    plots = [o for c in nb["cells"] for o in c.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(plots) >= 8  # test-time scaling, then classes, z changes, calibration, decodings, recovery
    assert "open one in the player: trmlab run 04-recursion" in json.dumps(nb)
