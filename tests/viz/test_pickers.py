"""Typed-puzzle parsers: valid inputs and clear errors; dataset pickers on a tiny on-disk dataset."""
import json
import os

import numpy as np
import pytest

from trmlab.viz.pickers import (PuzzleFormatError, from_dataset, parse_arc_task, parse_maze, parse_puzzle,
                                parse_sudoku, pick_interesting)
from trmlab.trace import sudoku_spec, maze_spec


def test_sudoku_strings():
    p = parse_sudoku("1.3. | ..1. \n 3... ...2")
    assert p.task.name == "sudoku4x4"
    np.testing.assert_array_equal(p.batch["inputs"][0, :4].numpy(), [2, 1, 4, 1])
    assert "labels" not in p.batch
    full = parse_sudoku("1234341221434321")
    assert full.batch["labels"].shape == (1, 16)
    assert parse_sudoku("0" * 80 + "5").task.rows == 9


@pytest.mark.parametrize("text,msg", [
    ("", "empty"),
    ("12a4" + "." * 12, "character 'a' at position 2"),
    ("." * 20, "20 cells"),
    ("11.." + "." * 12, "digit 1 appears twice in row 1"),
    ("1..." "1..." + "." * 8, "digit 1 appears twice in column 1"),
    ("1..." ".1.." + "." * 8, "digit 1 appears twice in box 1"),
    ("5..." + "." * 12, "digit 5 at row 1, column 1 is above 4"),
    ("." * 16, "no givens"),
])
def test_sudoku_errors(text, msg):
    with pytest.raises(PuzzleFormatError, match=msg):
        parse_sudoku(text)


def test_sudoku_wrong_size_for_the_model():
    with pytest.raises(PuzzleFormatError, match="4x4"):
        parse_puzzle("1" + "." * 35, sudoku_spec(4))


MAZE = "#####\n#S  #\n# # #\n#  G#\n#####"


def test_maze_text():
    p = parse_maze(MAZE)
    assert p.task.name == "maze5x5" and "labels" not in p.batch
    solved = parse_maze("#####\n#Soo#\n# #o#\n#  G#\n#####")
    lab, x = solved.batch["labels"][0].numpy(), solved.batch["inputs"][0].numpy()
    assert (lab == 5).sum() == 3 and (x == 5).sum() == 0
    trimmed = "#####\n#S\n# # #\n#  G#\n#####"  # trailing spaces trimmed by an editor
    assert parse_maze(trimmed).task.rows == 5
    assert parse_puzzle(MAZE).task.family == "maze"


@pytest.mark.parametrize("text,msg", [
    ("#####\n#S  #\n# x #\n#  G#\n#####", "character 'x' at line 3, column 3"),
    ("#####\n#S  #\n#  G#\n#####", "4 lines of 5 characters"),
    ("#####\n#S  #\n# S #\n#  G#\n#####", "2 'S' cells"),
    ("#####\n#S  #\n#   #\n#   #\n#####", "0 'G' cells"),
    ("   ", "empty maze"),
])
def test_maze_errors(text, msg):
    with pytest.raises(PuzzleFormatError, match=msg):
        parse_maze(text)


def test_maze_wrong_size_for_the_model():
    with pytest.raises(PuzzleFormatError, match="30x30"):
        parse_puzzle(MAZE, maze_spec(30))


def test_arc_task_json():
    task = {"train": [{"input": [[1, 2]], "output": [[3]]}], "test": [{"input": [[0, 1], [1, 0]]}]}
    p = parse_arc_task(json.dumps(task))
    assert p.task.family == "arc" and len(p.demos) == 1 and p.batch["inputs"].shape == (1, 900)
    x = p.batch["inputs"][0].numpy().reshape(30, 30)
    assert x[0, 0] == 2 and x[0, 2] == 1 and x[2, 0] == 1 and x[5, 5] == 0


@pytest.mark.parametrize("task,msg", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ({"train": []}, "'train' must be a non-empty list"),
    ({"train": [{"input": [[1]]}], "test": [{"input": [[1]]}]}, r"train\[0\] needs 'input' and 'output'"),
    ({"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[1]]}]},
     r"train\[0\].input row 1 has 1 cells, expected 2"),
    ({"train": [{"input": [[1]], "output": [[12]]}], "test": [{"input": [[1]]}]}, r"train\[0\].output\[0\]\[0\] = 12"),
    ({"train": [{"input": [[1]], "output": [[1]]}], "test": [{"input": [[0] * 31]}]}, "at most 30x30"),
    ({"train": [{"input": [[1]], "output": [[1]]}], "test": [{"output": [[1]]}]}, r"test\[0\] needs 'input'"),
])
def test_arc_errors(task, msg):
    with pytest.raises(PuzzleFormatError, match=msg):
        parse_arc_task(task if isinstance(task, str) else dict(task))


def _tiny_dataset(root, n=6):
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(root, "test"))
    x = rng.integers(1, 6, (n, 16)).astype(np.uint8)
    y = rng.integers(2, 6, (n, 16)).astype(np.uint8)
    np.save(os.path.join(root, "test", "all__inputs.npy"), x)
    np.save(os.path.join(root, "test", "all__labels.npy"), y)
    np.save(os.path.join(root, "test", "all__puzzle_identifiers.npy"), np.zeros(n, np.int32))
    np.save(os.path.join(root, "test", "all__puzzle_indices.npy"), np.arange(n + 1, dtype=np.int32))
    with open(os.path.join(root, "test", "dataset.json"), "w") as f:
        json.dump({"vocab_size": 6, "seq_len": 16}, f)
    return x, y


def test_from_dataset_and_pick_interesting(tmp_path):
    from trmlab.trace.tiny import tiny_model

    root = str(tmp_path / "ds")
    x, y = _tiny_dataset(root)
    p = from_dataset(root, 3)
    assert p.task.name == "sudoku4x4" and p.indices == [3]
    np.testing.assert_array_equal(p.batch["inputs"][0].numpy(), x[3])
    with pytest.raises(IndexError, match="out of range"):
        from_dataset(root, 99)
    model = tiny_model(sudoku_spec(4))
    best = pick_interesting(model, root, by="changed", k=2, candidates=6)
    assert best.batch["inputs"].shape == (2, 16) and "picked by 'changed'" in best.description
    tr = best.trace(model)
    assert tr.meta["puzzle_index"] == best.indices
