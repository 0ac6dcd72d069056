"""Evaluating a run for 03-evaluate (trmlab/workbench/evaluation.py) and the notebook under papermill."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from trmlab.viz.evaluation import accuracy_by_steps_figure, failure_gallery_figure, halting_steps_figure
from trmlab.workbench.evaluation import evaluate_for_notebook

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tiny_run, tmp_path):
    """A copy of the few-step cpu_tiny run (evaluations write into the run folder)."""
    dst = tmp_path / "runs" / "tiny"
    shutil.copytree(tiny_run[0], dst)
    return dst


def test_both_halting_modes_at_n_and_beyond_are_saved_with_the_checkpoint_choice(run):
    ev = evaluate_for_notebook(run, extra_steps=2, progress=False)
    cfg = json.loads((run / "config.json").read_text())
    N = cfg["train"]["eval_supervision"]
    assert (ev.eval_steps, ev.train_steps) == (N, cfg["model"]["n_supervision"])
    assert [(r.halting, r.n_supervision) for r in ev._sorted()] == [("max", N), ("learned", N), ("max", N + 2),
                                                                    ("learned", N + 2)]
    assert ev.checkpoint["checkpoint_choice"] == "last checkpoint" and ev.checkpoint["checkpoint_step"] == 4
    for r in ev.results:
        saved = json.loads((run / f"eval_last_N{r.n_supervision}_{r.halting}.json").read_text())
        assert r.saved_to.name == f"eval_last_N{r.n_supervision}_{r.halting}.json"
        assert "records" not in saved and saved["checkpoint_choice"] == "last checkpoint"
        s = r.summary()
        key = "all" if r.halting == "max" else "halt"
        assert saved[f"{key}/exact_accuracy"] == s["accuracy"] and s["count"] == ev.count == 16
        # the records agree with the saved numbers
        assert ev.count == len(r.records["halt_step"])
        assert r.answered()["correct"].mean() == pytest.approx(s["accuracy"])
    # the curve runs to N + 2 and its first N steps are those of the evaluation at N (same model, same puzzles)
    curve = ev.curves()[0]
    assert curve["steps"] == list(range(1, N + 3))
    at_n = ev.result("max", N).metrics
    assert curve["accuracy"][:N] == [at_n[f"step{k}/exact_accuracy"] for k in range(1, N + 1)]
    learned = ev.result("learned", N)
    assert np.all(learned.answered()["step"] <= N)
    text = ev.describe()
    assert "chosen:     last checkpoint" in text and "step_4.pt" in text and "eval_last_N" in text
    # what the notebook draws
    accuracy_by_steps_figure(ev.curves(), ev.train_steps, ev.eval_steps, ev.learned_points())
    groups = ev.halting_groups()
    assert [g["max_steps"] for g in groups] == [N, N + 2]
    halting_steps_figure(groups)
    fails = ev.failures(3)
    wrong = int((~ev.result("max", N).answered()["correct"]).sum())
    assert fails["failed"] == wrong and len(fails["captions"]) == min(3, wrong)
    assert fails["captions"][0].startswith("test #")
    failure_gallery_figure(ev.task, fails["inputs"], fails["preds"], fails["labels"], fails["captions"])
    assert "evaluation" in ev.halting_table()._repr_html_()


def test_partial_or_foreign_evaluations_are_not_saved(run, tiny_sudoku4, tmp_path):
    ev = evaluate_for_notebook(run, halting="learned", max_puzzles=5, batch_size=4, progress=False)
    assert [r.halting for r in ev.results] == ["learned"] and ev.count == 8  # 2 whole batches of 4
    assert ev.not_saved == "only the first 5 puzzles" and not list(run.glob("eval_*.json"))
    assert "not saved in the run folder: only the first 5 puzzles" in ev.describe()
    assert ev.curves() == []  # no fixed-steps evaluation
    other = tmp_path / "other"
    shutil.copytree(tiny_sudoku4, other)
    ev = evaluate_for_notebook(run, halting="max", data=other, progress=False)
    assert ev.not_saved == "another dataset than the run's own" and not list(run.glob("eval_*.json"))
    assert ev.halting_groups()[0]["label"].startswith("where learned halting would stop")
    # a relative run path is taken from the project root
    ev = evaluate_for_notebook("runs/tiny", root=run.parent.parent, halting="max", progress=False)
    assert ev.run == run and (run / f"eval_last_N{ev.eval_steps}_max.json").exists()


def test_bad_parameters_say_what_was_expected(run, tmp_path):
    with pytest.raises(ValueError, match="halting must be one of both, max, learned"):
        evaluate_for_notebook(run, halting="sometimes")
    with pytest.raises(ValueError, match="not a trained run folder"):
        evaluate_for_notebook(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no test split"):
        evaluate_for_notebook(run, data=tmp_path / "empty")
    with pytest.raises(ValueError, match=">= 0"):
        evaluate_for_notebook(run, extra_steps=-1)


@pytest.mark.slow
def test_evaluate_notebook_runs_under_papermill(run, tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "03.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "03-evaluate.ipynb"), str(out),
                               parameters={"run": str(run), "extra_steps": 2, "gallery": 2}, kernel_name="trmlab",
                               cwd=str(REPO), progress_bar=False)
    nb = json.loads(out.read_text())
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert '"output_type": "error"' not in text
    assert "chosen:     last checkpoint" in text
    assert text.count("application/vnd.plotly.v1+json") >= 4  # accuracy, halting, halting steps, gallery
    assert len(list(run.glob("eval_last_N*_*.json"))) == 4
