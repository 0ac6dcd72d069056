"""Reading run folders: summaries come from config.json, metrics.jsonl, eval JSON and executed notebooks."""
import json

import pytest

from trmlab.workbench.results import (RunFolderError, config_differences, describe_task, find_runs, read_run,
                                      table)


def test_trainer_calls_on_log_for_every_record(tiny_run):
    run, seen = tiny_run
    assert [s for s, split, _ in seen if split == "train"] == [1, 2, 3, 4]
    assert [(s, split) for s, split, _ in seen if split == "eval"] == [(4, "eval")]
    assert "lm_loss" in seen[0][2] and "all/exact_accuracy" in seen[-1][2]


def test_read_run_summarises_the_files(tiny_run, tmp_path):
    run, _ = tiny_run
    s = read_run(run)
    assert s.preset == "cpu_tiny" and s.task == "sudoku 4x4"
    assert s.steps == 4 and len(s.train) == 4 and len(s.evals) == 1
    assert s.n_params and s.n_params > 1000 and s.total_steps >= 4
    assert s.wall_seconds is not None and s.wall_seconds >= 0
    row = s.row()
    assert row["exact_accuracy"] == s.final_eval["all/exact_accuracy"]
    assert row["steps"] == 4 and row["preset"] == "cpu_tiny" and row["eval_file"] == ""
    # an eval JSON is picked up with its checkpoint fields
    (run / "eval_last_N4_max.json").write_text(json.dumps(
        {"all/exact_accuracy": 0.5, "n_supervision": 4, "checkpoint": "last", "checkpoint_step": 4,
         "checkpoint_choice": "last", "records": [1, 2]}))
    try:
        row = read_run(run).row()
        assert row["eval_file"] == "eval_last_N4_max.json" and row["eval_exact_accuracy"] == 0.5
        assert row["eval_checkpoint_choice"] == "last"
        assert "records" not in read_run(run).eval_files["eval_last_N4_max.json"]
    finally:
        (run / "eval_last_N4_max.json").unlink()
    assert find_runs(run.parent) == [run]
    assert len(table([s, s])) == 2


def test_bad_files_are_named(tmp_path):
    with pytest.raises(RunFolderError, match="no such run folder"):
        read_run(tmp_path / "nope")
    with pytest.raises(RunFolderError, match="not a run folder"):
        read_run(tmp_path)
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(RunFolderError, match="config.json: not valid JSON"):
        read_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"name": "x", "data": "", "model": {}, "train": {}}))
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "split": "train", "time": 1}\nnot json\n')
    with pytest.raises(RunFolderError, match="metrics.jsonl: line 2"):
        read_run(tmp_path)


def test_config_differences_and_task_names(tiny_run):
    run, _ = tiny_run
    a = read_run(run)
    b = read_run(run)
    b.config = json.loads(json.dumps(a.config))
    b.config["train"]["lr"] = 0.5
    assert config_differences([a, b]) == {"train.lr": [a.config["train"]["lr"], 0.5]}
    assert describe_task("", {"model": {"seq_len": 36}}) == ""
    assert describe_task("data/sudoku6-missing", {"model": {"seq_len": 36}}) == "sudoku 6x6"
