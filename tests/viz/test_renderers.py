"""One panel model, two renderers: the matplotlib one (``draw_panel``: PNG strips, ``trmlab data show
--png``) draws what the plotly one (``panel_traces`` + ``grid_axes``) draws."""
import json

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from trmlab.cli import main as cli_main  # noqa: E402
from trmlab.data import arc, maze, sudoku  # noqa: E402
from trmlab.trace import sudoku_spec  # noqa: E402
from trmlab.viz.grids import cell_panel, draw_example, draw_panel, grid_axes, panel_traces  # noqa: E402


def test_matplotlib_draws_the_plotly_panel():
    task = sudoku_spec(4)
    inputs = np.array([2, 1, 1, 1] * 4)
    labels = np.array([2, 3, 4, 5] * 4)
    pred = np.array([2, 3, 5, 5] * 4)
    rgb, text, marks = cell_panel(task, pred, np.ones(16), pred == labels, task.givens(inputs), labels)
    image, scatter = panel_traces(rgb, text, marks)
    fig, ax = plt.subplots()
    draw_panel(ax, rgb, text, marks, task=task, title="y")
    assert np.array_equal(ax.images[0].get_array(), image["z"])
    drawn = sorted((int(t.get_position()[0]), int(t.get_position()[1]), t.get_text()) for t in ax.texts)
    assert drawn == sorted((x, y, t) for x, y, t in zip(scatter["x"], scatter["y"], scatter["text"]) if t)
    assert len(ax.lines) == len(grid_axes(task, rgb.shape[:2])[2]) == 6   # the same box lines
    assert ax.get_title() == "y"
    plt.close(fig)


def test_arc_marks_are_drawn():
    from trmlab.trace import arc_spec

    task = arc_spec()
    lab = arc.encode_arc_grid(np.array([[1, 2], [3, 4]])).reshape(-1).astype(np.int64)
    pred = lab.copy()
    pred[0] = 9
    conf = np.ones(900)
    conf[1] = 0.2
    rgb, text, marks = cell_panel(task, pred, conf, pred == lab, labels=lab, crop=(3, 3))
    assert sorted(k for _, _, k in marks) == ["unsure", "wrong"]
    fig, ax = plt.subplots()
    draw_panel(ax, rgb, text, marks)
    assert len(ax.lines) == 2 and not ax.texts
    plt.close(fig)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    quiet = dict(progress=False, echo=lambda *_: None)
    sudoku.build_sudoku(root / "s4", generate=4, size=4, num_aug=0, test_generate=4, **quiet)
    maze.build_maze(root / "m8", generate=3, size=8, test_generate=3, **quiet)
    d = root / "arcdir"
    d.mkdir()
    task = {"train": [{"input": [[1, 2]], "output": [[2, 1]]}, {"input": [[3]], "output": [[3]]}],
            "test": [{"input": [[6, 7]]}]}
    for s in ("training", "evaluation", "concept"):
        (d / f"arc-agi_{s}_challenges.json").write_text(json.dumps({f"{s}1": task}))
        (d / f"arc-agi_{s}_solutions.json").write_text(json.dumps({f"{s}1": [[[7, 6]]]}))
    arc.build_arc(root / "arc", family="arc1", arc_dir=d, num_aug=1, **quiet)
    return root


@pytest.mark.parametrize("name,panels", [("s4", 2), ("m8", 2), ("arc", 6)])
def test_draw_example(datasets, name, panels):
    fig = draw_example(datasets / name, "test", 0)
    assert len([a for a in fig.axes if a.images]) == panels   # ARC: 2 demonstration pairs, then the test pair
    plt.close(fig)


def test_maze_answer_shows_the_path(datasets):
    fig = draw_example(datasets / "m8", "test", 0)
    question, answer = (a.images[0].get_array() for a in fig.axes)
    assert not np.array_equal(question, answer)   # the path is coloured in the answer only
    plt.close(fig)


def test_data_show_png(datasets, tmp_path, capsys):
    png = tmp_path / "x.png"
    assert cli_main(["data", "show", str(datasets / "s4"), "--index", "1", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "question" in out and f"wrote {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert cli_main(["data", "show", str(tmp_path / "none")]) == 2
    assert "dataset.json: file missing" in capsys.readouterr().err
