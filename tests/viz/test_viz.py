"""Renderers, the figure, the static export, the PNG strip and the player on real-shaped traces."""
import json
import re

import numpy as np
import pytest

from trmlab.trace import arc_spec, maze_spec, sudoku_spec, trace
from trmlab.trace.tiny import random_batch, tiny_model
from trmlab.viz import TraceView, export_html, grid_figure, png_strip
from trmlab.viz.animation import animation_figure
from trmlab.viz.figure import DYNAMIC
from trmlab.viz.grids import cell_panel, region
from trmlab.trace.pickers import parse_arc_task, parse_maze

ARC_TASK = {"train": [{"input": [[1, 0], [0, 0]], "output": [[2, 2], [2, 2]]},
                      {"input": [[0, 3, 0]], "output": [[4, 4, 4]]}],
            "test": [{"input": [[5, 0, 0], [0, 0, 0]], "output": [[6, 6, 6], [6, 6, 6]]}]}


@pytest.fixture(scope="module")
def traces():
    out = {}
    for task, kw in ((sudoku_spec(4), {}), (sudoku_spec(9), {}), (maze_spec(30), dict(n_supervision=2)),
                     (arc_spec(), {})):
        model = tiny_model(task, hidden=32, **kw)
        out[task.name] = trace(model, random_batch(task, 2, seed=3), task=task)
    model = tiny_model(arc_spec(), hidden=32)
    out["arc_task"] = parse_arc_task(ARC_TASK).trace(model)
    return out


@pytest.mark.parametrize("name", ["sudoku4x4", "sudoku9x9", "maze30x30", "arc", "arc_task"])
def test_view_figure_and_frames(traces, name):
    tr = traces[name]
    view = TraceView(tr, puzzle=0)
    fig = view.figure(0)
    assert len(fig.data) == 15
    updates = view.frame_updates(len(view) - 1)
    assert len(updates) == len(DYNAMIC)
    for idx, upd in zip(DYNAMIC, updates):
        assert fig.data[idx].type == upd["type"]
    rgb = updates[0]["z"]
    if tr.task.family == "arc":
        assert rgb.shape[0] <= 30 and rgb.dtype == np.uint8
    else:
        assert rgb.shape == (tr.task.rows, tr.task.cols, 3)
    assert "supervision step" in fig.layout.title.text


def test_arc_task_shows_demonstrations_and_crops_to_the_answer(traces):
    tr = traces["arc_task"]
    assert len(tr.task.extra["demos"]) == 2
    view = TraceView(tr)
    assert view.crop == (3, 4)  # 2x3 answer + EOS row and column
    puzzle_img = view.figure(0).data[0].z
    assert puzzle_img.shape[0] > 2 and puzzle_img.shape[1] >= 4  # demos stacked above the test input


def test_sudoku_colours_givens_right_wrong():
    task = sudoku_spec(4)
    inputs = np.array([2, 1, 1, 1] * 4)  # first column given (digit 1)
    labels = np.array([2, 3, 4, 5] * 4)
    pred = np.array([2, 3, 5, 5] * 4)
    conf = np.ones(16)
    rgb, text, _ = cell_panel(task, pred, conf, pred == labels, task.givens(inputs), labels)
    assert tuple(rgb[0, 0]) == (217, 217, 217)  # given: grey
    assert rgb[0, 1, 1] > rgb[0, 1, 0]  # right: green
    assert rgb[0, 2, 0] > rgb[0, 2, 1]  # wrong: red
    assert text[0, 1] == "2" and text[0, 2] == "4"
    fig = grid_figure(task, pred, conf, pred == labels, task.givens(inputs), labels, title="x")
    assert len(fig.layout.shapes) == 6  # box lines


def test_maze_panel_marks_path():
    picked = parse_maze("#####\n#S o#\n# #o#\n#  G#\n#####".replace("S o", "Soo"))
    task = picked.task
    lab = picked.batch["labels"][0].numpy()
    rgb, text, _ = cell_panel(task, lab, np.ones(25), np.ones(25, bool), task.givens(lab), lab)
    assert text[1, 1] == "S" and text[3, 3] == "G"
    assert region(task, lab) == (5, 5)


def test_export_html_is_self_contained(tmp_path, traces):
    tr = traces["maze30x30"]
    path = tmp_path / "anim.html"
    html = export_html(tr, str(path), max_frames=20)
    assert path.exists() and len(html) > 3_000_000  # plotly.js inline
    assert not re.search(r"<script[^>]+src=[\"']https?:", html), "must not load scripts from the network"
    assert "cdn.plot.ly" not in html.split("Plotly.newPlot")[-1]
    fig = animation_figure(tr, max_frames=20)
    assert len(fig.frames) == min(20, len(tr)) and list(fig.layout.sliders[0].steps[-1].args[0]) == [fig.frames[-1].name]
    small = export_html(tr, events=("supervision",), include_plotlyjs=False)
    assert len(small) < len(html) / 4 and "<div" in small


def test_png_strip(tmp_path, traces):
    for name in ("sudoku4x4", "maze30x30", "arc_task"):
        out = png_strip(traces[name], str(tmp_path / f"{name}.png"), n=3)
        with open(out, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_player_steps_and_label(traces):
    pytest.importorskip("ipywidgets")
    from trmlab.viz.player import Player

    tr = traces["sudoku4x4"]
    p = Player(tr)
    assert p.slider.max == len(tr) - 1 and p.play.max == len(tr) - 1
    p.slider.value = 5
    assert "recursion" in p.label.value
    if p.fig is not None:
        np.testing.assert_array_equal(p.fig.data[DYNAMIC[0]].z, TraceView(tr).frame_updates(5)[0]["z"])
        assert p.fig.layout.title.text == TraceView(tr).label(5)
    p.puzzle.value = 1
    assert p.view.b == 1


def test_trace_json_is_readable(tmp_path, traces):
    npz, js = traces["arc_task"].save(str(tmp_path / "arc"))
    doc = json.loads(open(js).read())
    assert doc["task"]["family"] == "arc" and doc["index_columns"][0] == "supervision_step"


def _wrong_in_picture(rgb: np.ndarray) -> np.ndarray:
    """Cells a reader sees as wrong: red (a wrong prediction) or pale yellow (a path cell missed)."""
    rgb = rgb.astype(int)
    missed = (rgb == [253, 233, 169]).all(-1)
    goal = (rgb == [255, 127, 14]).all(-1)  # the maze's G (orange), not a mark
    red = (rgb[..., 0] - rgb[..., 1] > 30) & ~missed & ~goal
    return red | missed


def test_sudoku_accuracy_curve_agrees_with_the_picture(traces):
    """The curve scores the cells to fill, the ones the answer panel colours (givens are drawn grey)."""
    tr = traces["sudoku4x4"]
    view = TraceView(tr, puzzle=0)
    givens = tr.task.givens(tr.inputs[0])
    assert not tr.correct("y")[:, 0][:, givens].all(), "the model gets some given cell wrong (else nothing is tested)"
    for pos in range(len(view)):
        rgb = view.frame_updates(pos)[0]["z"].reshape(-1, 3)
        assert (rgb[givens] == [217, 217, 217]).all()  # givens grey, whatever the head predicts there
        wrong = _wrong_in_picture(rgb)
        assert 1 - wrong[~givens].mean() == pytest.approx(view.acc["y"][pos])
    fig = view.figure(0)
    np.testing.assert_allclose(fig.data[7].y, tr.accuracy("y", "to_fill")[view.records, 0])


def test_maze_accuracy_curve_agrees_with_the_picture():
    maze = "#######\n#Sooo##\n###o###\n###ooG#\n#######\n#######\n#######"
    picked = parse_maze(maze)
    model = tiny_model(picked.task, hidden=32, n_supervision=3, seed=1)
    tr = picked.trace(model)
    view = TraceView(tr)
    givens = tr.task.givens(tr.inputs[0])
    for pos in range(len(view)):
        rgb = view.frame_updates(pos)[0]["z"].reshape(-1, 3)
        inputs = tr.inputs[0]
        assert ((rgb[inputs == 1]) == [43, 43, 43]).all()  # walls drawn from the puzzle
        wrong = _wrong_in_picture(rgb)
        assert not wrong[givens].any()
        assert 1 - wrong[~givens].mean() == pytest.approx(view.acc["y"][pos])


def test_pca_panel_axes_say_one_fit(traces):
    fig = TraceView(traces["sudoku4x4"]).figure(0)
    assert "one fit" in fig.layout.annotations[-1].text
    titles = [fig.layout[f"xaxis{k}"].title.text or "" for k in range(2, 6)]
    assert any("of the cells' variance" in t for t in titles), titles
