"""Comparing runs (trmlab/workbench/compare.py, trmlab/viz/compare.py) and notebooks/05-compare.ipynb."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from trmlab.viz.compare import curves_figure, final_metrics_figure
from trmlab.viz.tables import Table
from trmlab.workbench.compare import compare_runs, resolve_runs, running_mean, short_labels

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_runs(tiny_run, tiny_sudoku4, tmp_path_factory):
    """Two cpu_tiny runs in one folder: the shared 4-step run ("slow") and one that differs in learning rate
    and steps ("fast")."""
    from trmlab.config import get_preset
    from trmlab.train.trainer import train

    root = tmp_path_factory.mktemp("compare") / "runs"
    shutil.copytree(tiny_run[0], root / "slow")
    lr = json.loads((root / "slow" / "config.json").read_text())["train"]["lr"] * 2
    cfg = get_preset("cpu_tiny", {"data": str(tiny_sudoku4), "train.max_steps": 5, "train.lr": lr,
                                  "train.wandb_mode": "disabled"})
    train(cfg, root / "fast", progress=False)
    return root


def test_resolve_runs_globs_folders_and_errors(two_runs, tmp_path):
    both = [two_runs / "fast", two_runs / "slow"]
    assert resolve_runs(str(two_runs / "*")) == both
    assert resolve_runs(two_runs) == both  # a folder of runs
    assert resolve_runs([str(two_runs / "slow"), str(two_runs / "s*")]) == [two_runs / "slow"]  # no repeats
    assert resolve_runs("slow", root=two_runs) == [two_runs / "slow"]  # relative to the root
    with pytest.raises(ValueError, match="no run folder matches"):
        resolve_runs(str(tmp_path / "nothing*"))
    with pytest.raises(ValueError, match="no such run folder"):
        resolve_runs(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="holds no run folder"):
        resolve_runs(str(tmp_path))
    with pytest.raises(ValueError, match="at least one"):
        resolve_runs([])


def test_short_labels_and_running_mean():
    assert short_labels([Path("/x/a"), Path("/x/b")]) == ["a", "b"]
    assert short_labels([Path("/x/p/run"), Path("/x/q/run")]) == ["p/run", "q/run"]
    np.testing.assert_allclose(running_mean([1, 3, None, 5, 7], 2), [1, 2, 3, 5, 6])
    assert np.isnan(running_mean([None, 1.0], 1)[0])


def test_comparison_reads_curves_finals_and_differences(two_runs):
    cmp = compare_runs(str(two_runs / "*"))
    assert cmp.labels == ["fast", "slow"]
    diff = {r["key"]: r for r in cmp.differences()}
    assert set(diff) == {"train.lr", "train.max_steps"}
    assert diff["train.lr"]["fast"] == 2 * diff["train.lr"]["slow"]
    overview = {r["run"]: r for r in cmp.overview()}
    assert overview["fast"]["steps"] == 5 and overview["slow"]["steps"] == 4
    assert overview["fast"]["parameters"] > 1000 and float(overview["fast"]["wall minutes"]) >= 0
    last = cmp.runs[0].evals[-1]
    assert overview["fast"]["all/exact_accuracy [95% CI]"] == (
        f"{last['all/exact_accuracy']:.3f} [{last['all/exact_accuracy_low']:.3f}, {last['all/exact_accuracy_high']:.3f}]")
    assert (overview["fast"]["from"], overview["fast"]["checkpoint"]) == ("training's evaluation", "step 5")
    final = cmp.final(cmp.runs[0])
    last = cmp.runs[0].evals[-1]
    assert final["value"] == last["all/exact_accuracy"] and final["high"] == last["all/exact_accuracy_high"]
    assert final["source"] == "training's last evaluation (step 5)"
    curves = cmp.curves(smooth=2)
    assert curves[0]["train"]["step"] == [1, 2, 3, 4, 5] and curves[0]["train"]["window"] == 2
    np.testing.assert_allclose(curves[0]["train"]["lm_loss"],
                               running_mean([r["lm_loss"] for r in cmp.runs[0].train], 2))
    assert curves[0]["eval"]["step"] == [5]
    fig = curves_figure(curves, x="minutes")
    assert len([t for t in fig.data if t.name == "fast"]) == 3  # loss, accuracy, test metric
    assert fig.layout.xaxis2.matches == "x"
    bars = final_metrics_figure(cmp.finals())
    assert list(bars.data[0].x) == ["fast", "slow"]
    with pytest.raises(ValueError, match="x must be"):
        curves_figure(curves, x="epoch")


def test_final_metric_prefers_the_eval_file_at_the_runs_steps(two_runs, tmp_path):
    run = tmp_path / "runs" / "fast"
    shutil.copytree(two_runs / "fast", run)
    n = json.loads((run / "config.json").read_text())["train"]["eval_supervision"]
    (run / f"eval_last_N{n}_max.json").write_text(json.dumps({
        "all/exact_accuracy": 0.75, "all/exact_accuracy_low": 0.5, "all/exact_accuracy_high": 0.9, "n_supervision": n,
        "halting": "max", "checkpoint": "last.pt", "checkpoint_step": 5, "checkpoint_choice": "last checkpoint"}))
    (run / f"eval_last_N{n + 4}_max.json").write_text(json.dumps({  # more steps: not the run's number
        "all/exact_accuracy": 0.9, "n_supervision": n + 4, "halting": "max"}))
    (run / f"eval_last_N{n}_learned.json").write_text(json.dumps({  # learned halting: not the run's number
        "halt/exact_accuracy": 0.8, "n_supervision": n, "halting": "learned"}))
    cmp = compare_runs([str(run)])
    fin = cmp.finals()[0]
    assert (fin["value"], fin["low"], fin["high"]) == (0.75, 0.5, 0.9)
    assert fin["source"] == f"eval_last_N{n}_max.json (step 5: last checkpoint)"
    assert cmp.overview()[0]["from"] == f"eval_last_N{n}_max.json"
    assert cmp.runs[0].row()["eval_file"] == f"eval_last_N{n}_max.json"  # the index shows the same number


def test_unknown_metric_lists_the_available_ones(two_runs):
    with pytest.raises(ValueError, match="no run has it.*all/exact_accuracy"):
        compare_runs(str(two_runs / "*"), metric="all/exact_acc")


def test_table_html_text_and_empty():
    t = Table([{"a": 0.123456, "b": "<x>"}, {"a": None, "b": (1, 2)}], title="T")
    html = t._repr_html_()
    assert "&lt;x&gt;" in html and "0.1235" in html and "1, 2" in html
    assert str(t).splitlines()[0] == "T"
    assert "none" in Table([], title="D", empty="none")._repr_html_()
    with pytest.raises(ValueError, match="headers"):
        Table([{"a": 1}], columns=["a"], headers=["x", "y"])


@pytest.mark.slow
def test_compare_notebook_runs_under_papermill(two_runs, tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "05.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "05-compare.ipynb"), str(out),
                               parameters={"runs": [str(two_runs / "*")], "x": "minutes"}, kernel_name="trmlab",
                               cwd=str(REPO / "notebooks"), progress_bar=False)
    nb = json.loads(out.read_text())
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert '"output_type": "error"' not in text
    assert "train.lr" in text and "fast" in text and "slow" in text
    assert text.count("application/vnd.plotly.v1+json") >= 2
