"""The pickers (trmlab.trace.pickers: what the recursion notebook and the widgets trace): typed puzzles
through the data layer's parsers (the same ones `trmlab solve` uses, with the same errors), examples of
built datasets (ARC with their demonstrations), and the ranking of a trace's puzzles."""
import json

import numpy as np
from pathlib import Path

import pytest

from trmlab.config import get_preset
from trmlab.data import arc, maze, sudoku
from trmlab.data.format import DatasetError, open_split
from trmlab.trace import arc_spec, maze_spec, sudoku_spec
from trmlab.trace.tiny import random_batch, tiny_model
from trmlab.trace import trace
from trmlab.trace.pickers import (PuzzleFormatError, from_dataset, parse_arc_task, parse_maze, parse_puzzle,
                                  parse_sudoku, pick_interesting, rank_puzzles)


def test_sudoku_strings():
    p = parse_sudoku("1. | 3.\n.. | 1.\n---+---\n3. | ..\n.. | .2")
    assert p.task.name == "sudoku4x4"
    np.testing.assert_array_equal(p.batch["inputs"][0, :8].numpy(), [2, 1, 4, 1, 1, 1, 2, 1])
    assert "labels" not in p.batch
    full = parse_sudoku("1234341221434321")
    assert full.batch["labels"].shape == (1, 16)
    assert parse_sudoku("0" * 80 + "5").task.rows == 9


def test_sudoku_wrong_size_for_the_model():
    with pytest.raises(PuzzleFormatError, match="36 cells, but a 4x4 board has 16"):
        parse_puzzle("1" + "." * 35, sudoku_spec(4))


MAZE = "#####\n#S  #\n# # #\n#  G#\n#####"


def test_maze_text():
    p = parse_maze(MAZE)
    assert p.task.name == "maze5x5" and "labels" not in p.batch
    solved = parse_maze("#####\n#Soo#\n# #o#\n#  G#\n#####")
    lab, x = solved.batch["labels"][0].numpy(), solved.batch["inputs"][0].numpy()
    assert (lab == 5).sum() == 3 and (x == 5).sum() == 0
    assert parse_maze("#####\n#S..#\n#.#.#\n#..G#\n#####").task.rows == 5   # '.' for open cells
    assert parse_puzzle(MAZE).task.family == "maze"


def test_maze_wrong_size_for_the_model():
    with pytest.raises(PuzzleFormatError, match="30x30"):
        parse_puzzle(MAZE, maze_spec(30))


def test_arc_task_json():
    task = {"train": [{"input": [[1, 2]], "output": [[3]]}], "test": [{"input": [[0, 1], [1, 0]]}]}
    p = parse_arc_task(json.dumps(task))
    assert p.task.family == "arc" and len(p.demos) == 1 and p.batch["inputs"].shape == (1, 900)
    x = p.batch["inputs"][0].numpy().reshape(30, 30)
    assert x[0, 0] == 2 and x[0, 2] == 1 and x[2, 0] == 1 and x[5, 5] == 0
    assert "labels" not in p.batch
    with pytest.raises(PuzzleFormatError, match="test_index 1, but the task has 1 test input"):
        parse_arc_task(task, test_index=1)


# -- one parser: `trmlab solve` and the widgets accept the same inputs and give the same errors ----------


@pytest.fixture
def tiny_run(monkeypatch):
    """``solve_text`` with a tiny untrained 4x4-Sudoku / 5x5-maze / ARC model instead of a run folder."""
    import trmlab.runs.inference as inference

    from trmlab.train.checkpoint import CheckpointChoice

    def fake_open_run(path, *a, **k):
        task = {"s4": sudoku_spec(4), "m5": maze_spec(5), "arc": arc_spec()}[str(path)]
        cfg = get_preset("cpu_tiny")
        cfg.model.vocab_size, cfg.model.seq_len = task.vocab_size, task.seq_len
        return tiny_model(task, n_supervision=1), cfg, CheckpointChoice(Path(str(path)), 0, "untrained test model")

    monkeypatch.setattr(inference, "open_run", fake_open_run)
    return inference.solve_text


@pytest.mark.parametrize("text", [
    "1...\n...\n....\n....",      # ragged row
    ".1.1" + "." * 12,            # twice in a row
    "...." "...." "...3" "..3.",  # twice in a box
    "12a4" + "." * 12,            # bad character
    "5" + "." * 15,               # digit above 4
    "1" + "." * 35,               # the wrong size for the model
])
def test_solve_and_widget_agree_on_sudoku_errors(tiny_run, text):
    with pytest.raises(PuzzleFormatError) as widget:
        parse_puzzle(text, sudoku_spec(4))
    with pytest.raises(PuzzleFormatError) as cli:
        tiny_run("s4", "sudoku", text)
    assert str(widget.value) in str(cli.value)
    assert str(widget.value) == str(pytest.raises(PuzzleFormatError, sudoku.parse_board, text, 4).value)


@pytest.mark.parametrize("text", [MAZE.replace("#S  #", "#S"), MAZE.replace("# # #", "# x #"),
                                  MAZE.replace("G", " ")])
def test_solve_and_widget_agree_on_maze_errors(tiny_run, tmp_path, text):
    path = tmp_path / "maze.txt"
    path.write_text(text)
    with pytest.raises(PuzzleFormatError) as widget:
        parse_puzzle(text, maze_spec(5))
    with pytest.raises(PuzzleFormatError) as cli:
        tiny_run("m5", "maze", str(path))
    assert str(widget.value) in str(cli.value) and str(cli.value).startswith(str(path))


def test_solve_and_widget_agree_on_arc_errors(tiny_run, tmp_path):
    task = {"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[1]]}]}
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))
    with pytest.raises(PuzzleFormatError, match=r"train pair 1 input: ragged grid: row 2") as widget:
        parse_arc_task(task)
    with pytest.raises(PuzzleFormatError, match=r"task.json train pair 1 input: ragged grid: row 2") as cli:
        tiny_run("arc", "arc", str(path))
    assert str(widget.value).split(": ", 1)[1] == str(cli.value).split(": ", 1)[1]


def test_solve_accepts_what_the_widget_accepts(tiny_run, tmp_path):
    board = "1 . | . 4\n3 . | . 2\n----+----\n2 . | . 3\n4 . | . 1"
    out = tiny_run("s4", "sudoku", board)
    assert out["answer"].shape == (4, 4) and out["text"].count("\n") == 3
    (tmp_path / "m.txt").write_text("#####\n#S..#\n#.#.#\n#..G#\n#####\n")
    assert tiny_run("m5", "maze", str(tmp_path / "m.txt"))["answer"].shape == (5, 5)


# -- datasets -----------------------------------------------------------------------------------------------


def test_from_dataset_and_pick_interesting(tmp_path):
    root = tmp_path / "s4"
    sudoku.build_sudoku(root, generate=6, size=4, num_aug=0, test_generate=6, progress=False, echo=lambda *_: None)
    x = np.asarray(open_split(root, "test").inputs)
    p = from_dataset(str(root), 3)
    given = int((x[3] > 1).sum())
    assert p.task.name == "sudoku4x4" and p.indices == [3]
    assert p.description == f"sudoku4x4 from s4, test split, example 3 of 6: {given} givens, {16 - given} cells to fill"
    np.testing.assert_array_equal(p.batch["inputs"][0].numpy(), x[3])
    with pytest.raises(IndexError, match="out of range"):
        from_dataset(str(root), 99)
    model = tiny_model(sudoku_spec(4))
    best = pick_interesting(model, str(root), by="changed", k=2, candidates=6)
    assert best.batch["inputs"].shape == (2, 16) and "picked by 'changed'" in best.description
    tr = best.trace(model)
    assert tr.meta["puzzle_index"] == best.indices


def _arc_dataset(tmp_path):
    task = {"train": [{"input": [[1, 2], [3, 4]], "output": [[4, 3], [2, 1]]},
                      {"input": [[5, 0, 0]], "output": [[0, 0, 5]]}],
            "test": [{"input": [[6, 7]], "output": [[7, 6]]}]}
    d = tmp_path / "arcdir"
    d.mkdir()
    for s, name in (("training", "tr1"), ("evaluation", "ev1"), ("concept", "co1")):
        (d / f"arc-agi_{s}_challenges.json").write_text(json.dumps({name: {"train": task["train"],
                                                                          "test": [{"input": [[6, 7]]}]}}))
        (d / f"arc-agi_{s}_solutions.json").write_text(json.dumps({name: [[[7, 6]]]}))
    root = tmp_path / "arc"
    arc.build_arc(root, family="arc1", arc_dir=d, num_aug=3, progress=False, echo=lambda *_: None)
    return root, task


def test_arc_example_carries_its_versions_demonstrations(tmp_path):
    root, task = _arc_dataset(tmp_path)
    names = json.loads((root / "identifiers.json").read_text())
    te = open_split(root, "test")
    assert te.num_examples == 4   # the original and 3 versions of the one test pair
    for i in range(te.num_examples):
        p = from_dataset(str(root), i)
        pid = int(p.batch["puzzle_identifiers"][0])
        _, tid, perm = arc.parse_version_name(names[pid])
        assert len(p.demos) == 2
        for demo, raw in zip(p.demos, task["train"]):
            assert np.array_equal(demo["input"], arc.apply_version(np.array(raw["input"]), tid, perm))
            assert np.array_equal(demo["output"], arc.apply_version(np.array(raw["output"]), tid, perm))


def test_arc_demonstrations_errors_are_not_hidden(tmp_path):
    root, _ = _arc_dataset(tmp_path)
    (root / "test_puzzles.json").write_text("{broken")
    with pytest.raises(DatasetError, match="test_puzzles.json: not valid JSON"):
        from_dataset(str(root), 0)
    (root / "build.json").write_text("{broken")
    with pytest.raises(DatasetError, match="build.json: not valid JSON"):
        from_dataset(str(root), 0)


def test_rank_puzzles():
    task = sudoku_spec(4)
    tr = trace(tiny_model(task, hidden=32), random_batch(task, 2, seed=3), task=task, pca="none")
    for by in ("changed", "solved", "hardest", "gain"):
        order = rank_puzzles(tr, by)
        assert sorted(order.tolist()) == [0, 1]
    with pytest.raises(ValueError):
        rank_puzzles(tr, "nonsense")
