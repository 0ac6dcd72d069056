"""The zoo's machinery on a tiny model made here: train by a recipe, export, find by name, load without
pickle, evaluate, retrain from the card. (The shipped models themselves: tests/test_zoo_models.py.)"""
import json
import shutil

import numpy as np
import pytest
import torch

from trmlab.zoo import store as zoo
from trmlab.zoo import export as zexport
from trmlab.zoo import recipes, training

NAME = "tiny4"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A project root with data/sudoku4, a zoo folder (TRMLAB_ZOO) and zoo model tiny4 trained 12 steps."""
    base = tmp_path_factory.mktemp("zoo")
    root, zoo_root = base / "proj", base / "zoo"
    root.mkdir()
    recipe = recipes.Recipe(NAME, "sudoku4", "cpu_tiny on 4x4 Sudoku (test)", data="sudoku4", preset="cpu_tiny",
                         overrides={"n_supervision": 2}, steps=12, eval_every=0, threads=1, eval_steps=2, by_step=3,
                         check_puzzles=16)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(zoo.ZOO_ENV, str(zoo_root))
        mp.setitem(recipes.RECIPES, NAME, recipe)
        result = training.train_zoo_model(NAME, root=root, progress=False, echo=lambda *a: None)
        folder = zexport.export(result.run_dir, NAME, root=root, progress=False, echo=lambda *a: None)
    return root, zoo_root, folder, result


@pytest.fixture
def in_zoo(made, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_ENV, str(made[1]))
    return made


def test_export_writes_a_valid_card_weights_and_curves(in_zoo):
    root, zoo_root, folder, result = in_zoo
    assert folder == zoo_root / NAME and zoo.names() == [NAME]
    card = zoo.read_card(folder)
    assert card["task"] == "sudoku4" and card["training"]["steps"] == 12 == card["weights"]["step"]
    assert card["recipe"]["steps"] == 12 and card["data"]["path"] == "data/sudoku4"
    assert card["data"]["command"].startswith("trmlab data sudoku --out data/sudoku4 ")
    assert json.loads((folder / "config.json").read_text()) == card["config"]
    assert card["config"]["data"] == "data/sudoku4"  # relative: the card is not tied to this machine
    assert [r["n_supervision"] for r in card["evaluation"]["by_step"]] == [1, 2, 3]
    lo, hi = card["evaluation"]["headline"]["interval"]
    assert 0 <= lo <= card["evaluation"]["headline"]["exact_accuracy"] <= hi <= 1
    from trmlab.runs import load_run

    model, _ = load_run(folder)
    assert card["parameters"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert (folder / "metrics.jsonl").read_text() == (result.run_dir / "metrics.jsonl").read_text()
    md = (folder / "card.md").read_text()
    assert "trmlab zoo train tiny4" in md and card["data"]["hash"] in md
    assert not list(zoo_root.glob(".*"))  # no temporary folder left behind


def test_zoo_weights_are_the_run_s_ema_weights(in_zoo):
    from trmlab.runs import load_run

    root, _, folder, result = in_zoo
    by_name, cfg = load_run(NAME)
    from_run, _ = load_run(result.run_dir)
    for (k, a), (k2, b) in zip(by_name.state_dict().items(), from_run.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    assert cfg.data == "data/sudoku4"


def test_check_set_accuracy_is_the_card_s(in_zoo):
    from trmlab.runs import load_run

    folder = in_zoo[2]
    card = zoo.read_card(folder)
    model, _ = load_run(f"zoo:{NAME}")
    got = zexport.check_accuracy(model, zoo.load_check_set(folder), card["check"]["n_supervision"])
    assert got["puzzles"] == 16 == card["check"]["puzzles"]
    assert got["exact_accuracy"] == pytest.approx(card["check"]["exact_accuracy"])


def test_names_resolve_but_paths_win(in_zoo, tmp_path, monkeypatch):
    from trmlab.runs import resolve_run

    root, zoo_root, folder, _ = in_zoo
    run = resolve_run(NAME, root)
    assert run.folder == folder and run.is_zoo and run.zoo_name == NAME
    assert resolve_run(f"zoo:{NAME}", root).folder == folder
    (root / NAME).mkdir()
    try:
        mine = resolve_run(NAME, root)  # an existing folder wins over the zoo name
        assert mine.folder == root / NAME and not mine.is_zoo and mine.outputs == root / NAME
        assert resolve_run(f"zoo:{NAME}", root).folder == folder
    finally:
        (root / NAME).rmdir()
    assert run.outputs == root / "runs" / "zoo" / NAME  # the shipped zoo is never written to
    assert resolve_run(folder, root).is_zoo  # a zoo model's folder given as a path is that zoo model
    assert resolve_run("", root, task="sudoku4").zoo_name == NAME
    assert run.dataset(build=False) == root / "data" / "sudoku4"
    missing = resolve_run("runs/nope", root)
    assert not missing.exists and missing.folder == root / "runs" / "nope"
    with pytest.raises(FileNotFoundError, match="'runs/nope': no run folder.*the zoo has: tiny4"):
        missing.require()
    with pytest.raises(zoo.ZooError, match=f"no zoo model 'nope'.*the zoo has: {NAME}"):
        zoo.folder("zoo:nope")
    with pytest.raises(zoo.ZooError, match=f"no zoo model 'nope'"):
        resolve_run("zoo:nope", root)
    assert zoo.for_task("sudoku4") == NAME
    with pytest.raises(zoo.ZooError, match="no zoo model for task 'maze30'.*sudoku4"):
        zoo.for_task("maze30")


def test_a_checkpoint_file_resolves_to_its_run(in_zoo):
    from trmlab.runs import resolve_run

    root, _, _, result = in_zoo
    file = sorted((result.run_dir / "checkpoints").glob("*.pt"))[0]
    run = resolve_run(file, root)
    assert run.checkpoint_file == file and run.folder == result.run_dir and not run.is_zoo
    assert run.outputs == result.run_dir and run.config().name == result.config.name


def test_checkpoint_other_than_last_is_refused_for_a_zoo_model(in_zoo):
    from trmlab.runs import open_run

    with pytest.raises(zoo.ZooError, match="ships one set of weights"):
        open_run(NAME, "best")


def test_evaluating_a_zoo_model_never_writes_into_the_zoo(in_zoo):
    from trmlab.runs import evaluate_run

    root, _, folder, _ = in_zoo
    before = sorted(p.name for p in folder.iterdir())
    m = evaluate_run(NAME, data=str(root / "data" / "sudoku4"), progress=False, device="cpu")
    assert m["checkpoint"].endswith(zoo.WEIGHTS) and "zoo model tiny4" in m["checkpoint_choice"]
    assert sorted(p.name for p in folder.iterdir()) == before


def test_card_errors_name_the_file_and_key(in_zoo, tmp_path):
    folder = in_zoo[2]
    bad = tmp_path / NAME
    shutil.copytree(folder, bad)
    card = json.loads((bad / "card.json").read_text())
    del card["check"]
    (bad / "card.json").write_text(json.dumps(card))
    with pytest.raises(zoo.ZooError, match=r"card.json: missing key 'check'"):
        zoo.read_card(bad)
    card["check"] = []
    (bad / "card.json").write_text(json.dumps(card))
    with pytest.raises(zoo.ZooError, match=r"'check' must be a dict"):
        zoo.read_card(bad)
    card = json.loads((folder / "card.json").read_text())
    card["config"]["model"]["hiden_size"] = 3
    (bad / "card.json").write_text(json.dumps(card))
    with pytest.raises(zoo.ZooError, match=r"'config'.*hiden_size"):
        zoo.read_card(bad)


def test_pickled_weights_are_refused_not_executed(in_zoo, tmp_path):
    folder = in_zoo[2]
    bad = tmp_path / NAME
    shutil.copytree(folder, bad)
    torch.save({"w": torch.zeros(2)}, bad / zoo.WEIGHTS)  # a pickle under the safetensors name
    with pytest.raises(zoo.ZooError, match="not a readable safetensors file"):
        zoo.load_weights(bad)


def test_retraining_checks_the_data_hash(in_zoo, tmp_path):
    root, _, folder, _ = in_zoo
    card = zoo.read_card(folder)
    recipe = recipes.recipe_of(NAME)
    assert recipe.steps == 12 and recipe.preset == "cpu_tiny"
    path, h = recipes.ensure_zoo_data(recipe, card, root=root, echo=lambda *a: None)
    assert h == card["data"]["hash"]
    wrong = dict(card, data=dict(card["data"], hash="0" * 64))
    with pytest.raises(zoo.ZooError, match="differs from the card's"):
        recipes.ensure_zoo_data(recipe, wrong, root=root, echo=lambda *a: None)


def test_retrain_from_the_card_resumes_and_rebuilds_the_same_data(in_zoo, tmp_path):
    """A fresh project (no data) retrains tiny4 for 2 steps: the data is rebuilt with the card's hash."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    lines = []
    res = training.train_zoo_model(NAME, steps=2, root=fresh, progress=False, echo=lines.append)
    assert res.steps == 2 and (fresh / "runs" / f"zoo-{NAME}" / "checkpoints").is_dir()
    assert any(zoo.read_card(in_zoo[2])["data"]["hash"] in str(x) for x in lines)
    res = training.train_zoo_model(NAME, steps=3, root=fresh, progress=False, echo=lines.append)
    assert res.steps == 3  # resumed, not restarted


def test_recursion_and_evaluation_default_to_the_task_s_zoo_model(in_zoo):
    from trmlab.workbench.evaluation import evaluate_for_notebook
    from trmlab.workbench.recursion import prepare

    root, _, folder, _ = in_zoo
    rec = prepare(task="sudoku4", pick="solved", root=root, candidates=16)
    assert rec.run.folder == folder and rec.run.is_zoo and "zoo model tiny4" in rec.source
    written = rec.save()
    assert written["strip"].parent == root / "runs" / "zoo" / NAME / "recursion"
    ev = evaluate_for_notebook(task="sudoku4", root=root, halting="max", progress=False, device="cpu")
    assert ev.run == folder and ev.results[0].saved_to.parent == root / "runs" / "zoo" / NAME


def test_solved_pick_prefers_solved_puzzles():
    from trmlab.trace.pickers import rank_puzzles

    class FakeTrace:
        n_puzzles = 3
        y_pred = np.array([[[1, 1], [1, 1], [1, 1]], [[2, 2], [1, 2], [2, 1]]])  # [records, puzzles, cells]

        def records(self, events):
            return np.arange(2)

        def exact(self, which, cells):
            return np.array([[False, False, False], [False, True, False]])

    order = rank_puzzles(FakeTrace(), "solved")
    assert order[0] == 1  # the one solved puzzle first, though puzzle 0 changed more cells


def test_cli_zoo_list_and_path(in_zoo, capsys):
    from trmlab.cli import main

    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert NAME in out and "sudoku4" in out
    assert main(["zoo", "path", NAME]) == 0
    assert capsys.readouterr().out.strip() == str(in_zoo[2])
    assert main(["zoo", "path", "nope"]) == 2


def test_compare_takes_zoo_names(in_zoo):
    from trmlab.workbench.compare import resolve_runs

    root, _, folder, result = in_zoo
    assert resolve_runs([NAME, str(result.run_dir)], root) == [folder, result.run_dir]
