"""The data layer's one parser per puzzle format (Sudoku, maze, ARC task) and the one ARC crop.

Every bad input gets an error that says what is wrong and where (rows and columns from 1); the same
functions serve `trmlab solve`, the widgets and the builders (tests/trace/test_pickers.py checks the
callers agree).
"""
import json

import numpy as np
import pytest

from trmlab.data import arc, maze, sudoku
from trmlab.data.format import PuzzleFormatError

# ------------------------------------------------------------------------------------------------ Sudoku


def test_sudoku_one_line_and_one_line_per_row():
    one = sudoku.parse_board("1.3...1.3.....2.")
    rows = sudoku.parse_board("1 . | 3 .\n. . | 1 .\n----+----\n3 . | . .\n. . | 2 .\n")
    assert np.array_equal(one, rows)
    assert one.dtype == np.uint8 and one.tolist()[0] == [1, 0, 3, 0]
    assert np.array_equal(sudoku.parse_board("1_3_" "__1_" "3___" "__2_"), one)   # '_' is a blank too
    assert np.array_equal(sudoku.parse_board("1030001030000020", 4), one)         # a CSV row
    nine = sudoku.parse_board("0" * 80 + "5")
    assert nine.shape == (9, 9) and nine[8, 8] == 5
    six = sudoku.parse_board("\n".join(["123456", "." * 6, "." * 6, "." * 6, "." * 6, "." * 6]))
    assert six.shape == (6, 6)


@pytest.mark.parametrize("text,size,msg", [
    ("", None, "empty Sudoku"),
    ("   \n  ", None, "empty Sudoku"),
    ("12a4" + "." * 12, None, r"character 'a' at line 1, column 3"),
    ("1...\n..x.\n....\n....", None, r"character 'x' at line 2, column 3"),
    ("." * 20, None, "20 cells; a 4x4, 6x6, 9x9 board has 16, 36, 81"),
    ("1" + "." * 15, 9, "16 cells, but a 9x9 board has 81"),
    ("1.3.\n..1.", None, "2 rows; a 4x4, 6x6, 9x9 board has 4, 6, 9"),
    ("1...\n....\n....\n....", 9, "4 rows, but a 9x9 board has 9"),
    ("1...\n...\n....\n....", None, r"Sudoku 4x4: row 2 has 3 cells, expected 4"),
    ("1...\n....\n....\n.....", None, r"Sudoku 4x4: row 4 has 5 cells, expected 4"),
    ("5..." + "." * 12, None, "digit 5 at row 1, column 1 is above 4"),
    (".1.1" + "." * 12, None, r"digit 1 appears twice in row 1 \(at row 1, column 2 and row 1, column 4\)"),
    ("...." "...." "..2." "..2.", None,
     r"digit 2 appears twice in column 3 \(at row 3, column 3 and row 4, column 3\)"),
    ("...." "...." "...3" "..3.", None, r"digit 3 appears twice in box 4 \(at row 3, column 4 and row 4, column 3\)"),
    ("." * 16, None, "no givens"),
])
def test_sudoku_errors(text, size, msg):
    with pytest.raises(PuzzleFormatError, match=msg):
        sudoku.parse_board(text, size)


def test_sudoku_6x6_boxes_are_two_rows_by_three_columns():
    board = ["." * 6] * 6
    board[0] = "1....."
    board[1] = "..1..."    # same 2x3 box as (1, 1)
    with pytest.raises(PuzzleFormatError, match=r"twice in box 1 \(at row 1, column 1 and row 2, column 3\)"):
        sudoku.parse_board("\n".join(board))
    board[1] = "...1.."    # box 2: fine
    assert sudoku.parse_board("\n".join(board))[1, 3] == 1


def test_sudoku_csv_rows_with_a_repeated_digit_are_skipped(tmp_path):
    from trmlab.data.format import SkipLog

    good_q, good_a = "1..43..22..34..1", "1234341221434321"
    (tmp_path / "t.csv").write_text("source,question,answer,rating\n"
                                    f"x,{good_q},{good_a},0\n"
                                    f"x,11{'.' * 14},{good_a},0\n")
    skips = SkipLog(False, lambda *_: None)
    qs, _, _, n = sudoku.load_csv(tmp_path / "t.csv", None, skips)
    assert n == 4 and len(qs) == 1 and len(skips) == 1
    assert "digit 1 appears twice in row 1" in skips.items[0]["reason"]


# -------------------------------------------------------------------------------------------------- maze

MAZE = "#####\n#S  #\n# # #\n#  G#\n#####"


def test_maze_question_and_answer():
    q, a = maze.parse_maze(MAZE)
    assert q.shape == (5, 5) and a is None and q[1, 1] == "S" and q[3, 3] == "G"
    q2, a2 = maze.parse_maze("\n\n#####\n#Soo#\n#.#o#\n#..G#\n#####\n\n")
    assert (a2 == "o").sum() == 3 and (q2 == "o").sum() == 0 and q2[2, 1] == " "
    assert np.array_equal(maze.parse_maze(MAZE.replace("\n", "\r\n"))[0], q)


@pytest.mark.parametrize("text,size,msg", [
    ("", None, "empty maze"),
    ("   ", None, "empty maze"),
    ("#####\n#S  #\n# x #\n#  G#\n#####", None, r"character 'x' at row 3, column 3"),
    ("#####\n#S\n# # #\n#  G#\n#####", None, r"row 2 has 2 characters, expected 5 \(as row 1\); write '\.'"),
    ("#####\n#S  #\n# # #\n#  G##\n#####", None, r"row 4 has 6 characters, expected 5"),
    ("#####\n#S  #\n#  G#\n#####", None, "4 rows of 5 characters; the maze must be square"),
    (MAZE, 30, "5x5, but the model reads 30x30 mazes"),
    ("#####\n#S  #\n# S #\n#  G#\n#####", None, r"2 'S' cells \(at row 2, column 2 and row 3, column 3\)"),
    ("#####\n#S  #\n#   #\n#   #\n#####", None, "0 'G' cells, expected exactly one"),
])
def test_maze_errors(text, size, msg):
    with pytest.raises(PuzzleFormatError, match=msg):
        maze.parse_maze(text, size)


# --------------------------------------------------------------------------------------------------- ARC


def test_arc_task_parsed_from_text_or_dict():
    task = {"train": [{"input": [[1, 2]], "output": [[3]]}], "test": [{"input": [[0, 1], [1, 0]]}]}
    for given in (task, json.dumps(task)):
        parsed = arc.parse_task(given, test_outputs=False)
        (x, y), = parsed["train"]
        assert x.tolist() == [[1, 2]] and y.tolist() == [[3]] and x.dtype == np.uint8
        assert parsed["test"][0][1] is None
    with pytest.raises(PuzzleFormatError, match=r"ARC task test pair 1: no 'output' \(solution missing\)"):
        arc.parse_task(task)


def _task(grid, where="train"):
    ok = {"input": [[1]], "output": [[1]]}
    t = {"train": [ok], "test": [{"input": [[1]]}]}
    t[where] = [ok, {"input": grid, "output": [[1]]}]
    return t


@pytest.mark.parametrize("task,msg", [
    ("{not json", r"ARC task: not valid JSON \(.* at line 1, column 2\)"),
    ("[1, 2]", "JSON object"),
    ({"train": []}, "'train' must be a non-empty list"),
    ({"train": [{"input": [[1]]}], "test": [{"input": [[1]]}]}, r"train pair 1: no 'output'"),
    ({"train": [{"input": [[1]], "output": [[1]]}], "test": [{"output": [[1]]}]}, r"test pair 1: no 'input'"),
    (_task([[1, 2], [3]]), r"train pair 2 input: ragged grid: row 2 has 1 cells, expected 2 \(as row 1\)"),
    (_task([[1, 2], [3, 4], [5, 6, 7]], "test"), r"test pair 2 input: ragged grid: row 3 has 3 cells"),
    (_task([[1, 2], []]), r"train pair 2 input: row 2 is not a non-empty list of colours"),
    (_task([[0, 12]]), r"train pair 2 input: colour 12 at row 1, column 2 is not an integer 0..9"),
    (_task([[0, True]]), r"colour True at row 1, column 2"),
    (_task([[0] * 31]), r"grid is 1x31; ARC grids are at most 30x30"),
    (_task([]), r"train pair 2 input: not a non-empty list of rows"),
])
def test_arc_errors(task, msg):
    with pytest.raises(PuzzleFormatError, match=msg):
        arc.parse_task(task, test_outputs=False)


# ------------------------------------------------------------------------------------- ARC crop (reference)


def _reference_crop(grid):
    """The reference evaluator's ``_crop`` (evaluators/arc.py), statement for statement (without numba)."""
    grid = grid.reshape(30, 30)
    max_area = 0
    max_size = (0, 0)
    nr, nc = grid.shape
    num_c = nc
    for num_r in range(1, nr + 1):
        for c in range(1, num_c + 1):
            x = grid[num_r - 1, c - 1]
            if (x < 2) | (x > 11):
                num_c = c - 1
                break
        area = num_r * num_c
        if area > max_area:
            max_area = area
            max_size = (num_r, num_c)
    return (grid[:max_size[0], :max_size[1]] - 2).astype(np.uint8)


def test_crop_is_the_reference_crop():
    rng = np.random.default_rng(3)
    soups = rng.integers(0, 12, (300, 900))
    # mostly colours with a few EOS/PAD: ragged predictions
    soups[:200] = np.where(rng.random((200, 900)) < 0.97, rng.integers(2, 12, (200, 900)), soups[:200])
    grids = [arc.encode_arc_grid(rng.integers(0, 10, tuple(rng.integers(1, 31, 2)))).reshape(-1) for _ in range(60)]
    corners = [np.zeros(900, np.int64), np.full(900, 5), arc.encode_arc_grid(np.zeros((30, 30), np.uint8)).reshape(-1)]
    tokens = np.concatenate([soups, np.stack(grids), np.stack(corners)])
    sizes = arc.crop_sizes(tokens)
    for t, (r, c) in zip(tokens, sizes):
        want = _reference_crop(t)
        assert want.shape == (r, c)
        assert np.array_equal(arc.decode_arc_grid(t), want)
    # ragged prediction: widths 5, 3, 3 then EOS -> areas 5, 6, 9: the 3x3 rectangle wins
    rag = np.zeros((30, 30), np.int64)
    rag[0, :5], rag[1:3, :3], rag[1:3, 3] = 3, 4, 1
    assert arc.decode_arc_grid(rag).shape == (3, 3)


def test_version_names_and_inverse():
    rng = np.random.default_rng(4)
    g = rng.integers(0, 10, (3, 5)).astype(np.uint8)
    for tid in range(8):
        perm = np.concatenate([[0], rng.permutation(np.arange(1, 10))]).astype(np.uint8)
        name = arc.version_name("abc", tid, perm)
        task, tid2, perm2 = arc.parse_version_name(name)
        assert (task, tid2) == ("abc", tid) and np.array_equal(perm2, perm)
        assert np.array_equal(arc.invert_version(arc.apply_version(g, tid, perm), tid, perm), g)
    assert arc.parse_version_name("abc")[1] == 0
    for bad in ("abc|||t9|||0123456789", "abc|||t1|||0123", "abc|||x1|||0123456789", "abc|||t1|||0123456788",
                "abc|||t|||0123456789"):
        with pytest.raises(ValueError, match="abc"):
            arc.parse_version_name(bad)
