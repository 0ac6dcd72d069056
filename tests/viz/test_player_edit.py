"""Edit and continue in the player, driven from Python: set the slider and the panel, press the buttons'
handlers, and read the figure, the label and the status line (a tiny 4x4 Sudoku model, two puzzles)."""
import html
import json

import numpy as np
import plotly.io as pio
import pytest

pytest.importorskip("ipywidgets")

from trmlab.trace import Reset, SetAnswerCell, SetInputCell, sudoku_spec, trace  # noqa: E402
from trmlab.trace.tiny import random_batch, tiny_model  # noqa: E402
from trmlab.viz import edit as E  # noqa: E402
from trmlab.viz.figure import DYNAMIC, PUZZLE, Y_IMG, Y_TXT, TraceView  # noqa: E402
from trmlab.viz.player import KERNEL_NOTE, Player  # noqa: E402

TASK = sudoku_spec(4)


@pytest.fixture(scope="module")
def setup():
    model = tiny_model(TASK, hidden=32, n_supervision=4, seed=1)
    batch = random_batch(TASK, 2, seed=3)
    original = trace(model, batch, task=TASK)
    calls = []

    def continue_with(interventions):
        calls.append(list(interventions))
        return trace(model, batch, task=TASK, interventions=list(interventions), planes=original.planes)

    return model, batch, original, continue_with, calls


def _data(p):
    return p.fig.data if p.fig is not None else p._static.data


def _title(p):
    return (p.fig if p.fig is not None else p._static).layout.title.text


def _json(p) -> dict:
    """The whole figure as plotly JSON (trace uids left out: a FigureWidget gives each trace its own)."""
    fig = p.fig if p.fig is not None else p._static
    doc = json.loads(pio.to_json({"data": [t.to_plotly_json() for t in fig.data], "layout": fig.layout.to_plotly_json()}))
    for t in doc["data"]:
        t.pop("uid", None)
    return doc


def _edit_answer(p, original, pos):
    """Set, at ``pos``, a cell to fill of puzzle 0 to a digit y does not decode there; returns the cell."""
    k = int(p.view.records[pos])
    cell = int(np.nonzero(original.inputs[0] == 1)[0][0])  # blank in the puzzle
    now = int(original.y_pred[k, 0, cell])
    token = next(t for t in range(2, 6) if t != now)
    r, c = divmod(cell, TASK.cols)
    p.kind.value = "answer"
    p.cell.value, p.token.value = f"{r + 1},{c + 1}", TASK.symbol(token)
    return cell, token


def test_without_continue_with_the_player_is_as_before(setup):
    original = setup[2]
    p = Player(original)
    assert p.panel is None and len(_data(p)) == 15


def test_frames_before_the_edit_are_the_originals_after_it_they_differ(setup):
    model, batch, original, continue_with, calls = setup
    p = Player(original, continue_with=continue_with)
    assert KERNEL_NOTE in html.unescape(p.panel.children[-1].value)
    view0 = TraceView(original)
    answers = original.records(events=["answer"])
    pos = int(np.nonzero(view0.records == answers[3])[0][0])  # step 2, recursion 2: the answer update
    p.slider.value = pos
    assert "acts at supervision step 2, recursion 2, after the answer update y" in p.where.value
    cell, token = _edit_answer(p, original, pos)
    p.continue_button.click()
    assert "applied: answer y at cell" in p.status.value and "not applied" not in p.status.value
    assert isinstance(calls[-1][0], SetAnswerCell) and calls[-1][0].step == 1 and calls[-1][0].recursion == 1
    first = p.first_edit
    assert first == answers[3]
    # the trajectory shown: the original's records before the edit, bit for bit (PCA coordinates included)
    for name, arr in original.arrays.items():
        np.testing.assert_array_equal(p.trace.arrays[name][:first], arr[:first])
    for q in range(first):
        p.slider.value = q
        for idx, upd in zip(DYNAMIC, view0.frame_updates(q)):
            for key in ("z", "x", "y", "text"):
                if key in upd:
                    np.testing.assert_array_equal(np.asarray(_data(p)[idx][key]), np.asarray(upd[key]), err_msg=f"{q} {key}")
        assert _title(p) == view0.label(q) and "edited" not in p.label.value
        assert len(_data(p)[-2].x) == 0  # nothing outlined before the edit
    # at the edit: y decodes the new token at the cell, the frame differs and the cell is outlined
    p.slider.value = pos
    assert int(p.trace.y_pred[first, 0, cell]) == token
    assert not np.array_equal(np.asarray(_data(p)[Y_IMG].z), view0.frame_updates(pos)[0]["z"])
    r, c = divmod(cell, TASK.cols)
    marks = _data(p)[-2]
    assert (c, r) in set(zip(marks.x, marks.y)) and marks.xaxis == _data(p)[Y_IMG].xaxis
    changed = E.changed_cells(p.trace, original, first, 0)
    assert len(marks.x) == int(changed.sum())
    assert "edited run" in _title(p) and "edited run: " in p.label.value
    assert str(TASK.symbol(token)) in set(_data(p)[Y_TXT].text)
    # back to the original: exactly the figure of a fresh player at that frame
    p.back_button.click()
    fresh = Player(original, continue_with=continue_with)
    fresh.slider.value = pos
    assert _json(p) == _json(fresh)
    assert p.trace is original and p.edits == [] and p.back_button.disabled
    assert "back to the original" in p.status.value


@pytest.mark.parametrize("cell,token,says", [
    ("5,1", "2", "row and column count from 1"),
    ("16", "2", "cell index counts from 0"),
    ("a1", "2", "give row,col"),
    ("1,1", "7", "give a digit (or . for blank)"),
    ("1,1", "", "token ''"),
])
def test_a_bad_cell_or_token_is_said_in_the_status_line(setup, cell, token, says):
    original, continue_with = setup[2], setup[3]
    p = Player(original, continue_with=continue_with)
    p.slider.value = 3
    p.kind.value = "answer"
    p.cell.value, p.token.value = cell, token
    p.continue_button.click()  # no exception reaches the kernel
    assert "not applied" in p.status.value and says in html.unescape(p.status.value)
    assert p.trace is original and p.first_edit is None


def test_the_last_output_cannot_be_edited(setup):
    original, continue_with = setup[2], setup[3]
    p = Player(original, continue_with=continue_with)
    p.slider.value = p.slider.max
    p.kind.value = "reset_z"
    p.continue_button.click()
    assert "not applied" in p.status.value and "nothing runs after it" in p.status.value


def test_a_puzzle_cell_edit_acts_at_the_next_step_and_is_marked_on_the_puzzle(setup):
    original, continue_with, calls = setup[2], setup[3], setup[4]
    p = Player(original, continue_with=continue_with)
    p.slider.value = 2  # step 1 (0-based 0), a latent update
    p.kind.value = "input"
    assert "at the start of supervision step 2/4" in p.where.value and "x is read once per step" in p.where.value
    cell = int(np.nonzero(original.inputs[0] == 1)[0][0])
    p.cell.value, p.token.value = str(cell), "3"
    p.continue_button.click()
    iv = calls[-1][-1]
    assert isinstance(iv, SetInputCell) and iv.step == 1 and iv.recursion is None and iv.rows == (0,)
    assert p.first_edit == int(original.records(steps=[1])[0])
    assert "from the start of the next supervision step" in p.status.value
    p.slider.value = p.slider.max
    puzzle_mark = _data(p)[-3]
    assert puzzle_mark.xaxis == _data(p)[PUZZLE].xaxis and len(puzzle_mark.x) == 1
    p.slider.value = 0
    assert len(_data(p)[-3].x) == 0


def test_reset_and_swap_and_stacked_edits(setup):
    original, continue_with, calls = setup[2], setup[3], setup[4]
    p = Player(original, continue_with=continue_with)
    assert "swap_z" in [v for _, v in p.kind.options]
    p.slider.value = 4
    p.kind.value = "reset_z"
    p.continue_button.click()
    assert isinstance(calls[-1][0], Reset) and calls[-1][0].state == "latent"
    assert "z reset to its initial state" in p.status.value
    p.slider.value = 12
    p.kind.value, p.other.value = "swap_z", 1
    p.continue_button.click()
    assert len(calls[-1]) == 2 and calls[-1][1].rows == (0, 1)  # both edits, in order
    assert "then z swapped between puzzles 0 and 1" in p.status.value
    p.puzzle.value = 1  # the other puzzle's trajectory changed too
    assert p.view.b == 1 and "Puzzle 1:" in p.status.value
    p.back_button.click()
    assert p.trace is original


def test_a_continued_run_that_is_not_the_same_recursion_is_refused(setup):
    model, batch, original = setup[:3]
    other = random_batch(TASK, 2, seed=9)
    p = Player(original, continue_with=lambda ivs: trace(model, other, task=TASK, interventions=list(ivs)))
    p.slider.value = 5
    p.kind.value = "reset_y"
    p.continue_button.click()
    assert "differs from the original before the edit" in p.status.value and p.trace is original


def test_splice_without_the_original_plane_hides_the_pca_points_after_the_edit(setup):
    model, batch, original = setup[:3]
    iv = Reset(step=2, state="latent")
    first = E.first_affected(original, iv)
    assert first == int(original.records(steps=[2])[0])
    spliced, same = E.splice(original, trace(model, batch, task=TASK, interventions=[iv]), first)
    assert not same and np.isnan(spliced.y_pc[first:]).all()
    np.testing.assert_array_equal(spliced.y_pc[:first], original.y_pc[:first])
    spliced, same = E.splice(original, trace(model, batch, task=TASK, interventions=[iv], planes=original.planes), first)
    assert same and not np.isnan(spliced.y_pc).any()


def test_recovery_says_when_the_answer_is_right_again():
    task = sudoku_spec(4)
    model = tiny_model(task, hidden=32, n_supervision=3, seed=0)
    tr = trace(model, random_batch(task, 1, seed=0), task=task)
    solved = trace(model, {"inputs": tr.inputs, "labels": tr.y_pred[-1],
                           "puzzle_identifiers": np.zeros(1, np.int32)}, task=task)  # labels: its own last answer
    assert "right again from supervision step" in E.recovery(solved, solved, 0, 0) or \
        "right at the edit" in E.recovery(solved, solved, 0, 0)
    assert "not right again" in E.recovery(tr, tr, 0, 0) or tr.exact("y", "to_fill")[-1, 0]


def test_parse_cell_and_token():
    assert E.parse_cell(TASK, "2,3") == 6 and E.parse_cell(TASK, "#6") == 6 and E.parse_cell(TASK, " 6 ") == 6
    assert E.parse_token(TASK, "4") == 5 and E.parse_token(TASK, ".") == 1
    from trmlab.trace import maze_spec

    maze = maze_spec(5)
    assert E.parse_token(maze, "o") == 5 and E.parse_token(maze, " ") == 2
    with pytest.raises(E.EditError, match="a maze character"):
        E.parse_token(maze, "x")
