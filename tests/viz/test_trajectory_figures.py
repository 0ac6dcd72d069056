"""The trajectory figures (trmlab/viz/trajectories.py) build from the analysis' results: hand-made
classes, synthetic calibration, and a tiny untrained model's steps."""
import doctest

import numpy as np
import pytest

import trmlab.viz.trajectories as figures_module
from trmlab.trace import sudoku_spec
from trmlab.trace.tiny import random_batch, tiny_model
from trmlab.trace.trajectories import CLASSES, StepAnswers, calibration, classify, model_steps
from trmlab.viz.trajectories import (CLASS_STYLE, class_counts_figure, decode_entropy_figure, reliability_figure,
                                     z_change_figure)

TASK = sudoku_spec(4)


def synthetic_steps(n=60, steps=6, seed=0):
    """Puzzles with answers ids that settle at a random step (some right), z sizes that shrink, and halting
    probabilities."""
    rng = np.random.default_rng(seed)
    settle = rng.integers(1, steps + 2, n)
    ids = np.where(np.arange(1, steps + 1)[:, None] >= settle[None], 0, np.arange(1, steps + 1)[:, None])
    right = (ids == 0) & (rng.random(n) < 0.6)[None]
    dz = np.exp(-np.arange(steps))[:, None] * rng.random((steps, n))
    return StepAnswers(np.arange(1, steps + 1), ids, right, dz, rng.random((steps, n)))


@pytest.fixture(scope="module")
def tiny():
    return model_steps(tiny_model(TASK, hidden=32, n_supervision=3), random_batch(TASK, batch_size=6, seed=4))


def test_class_counts_one_and_several():
    s = synthetic_steps()
    c = classify(s)
    fig = class_counts_figure(c)
    assert len(fig.data) == 1 and list(fig.data[0].x) == [CLASS_STYLE[k][0] for k in CLASSES]
    rows = c.counts()
    np.testing.assert_allclose(fig.data[0].y, [100 * r["fraction"] for r in rows])
    np.testing.assert_allclose(fig.data[0].error_y.array, [100 * (r["high"] - r["fraction"]) for r in rows])
    assert [int(t) for t in fig.data[0].text] == [r["count"] for r in rows]
    several = class_counts_figure({"sudoku 4x4": c, "other model": classify(synthetic_steps(seed=1))})
    assert [t.name for t in several.data] == ["sudoku 4x4", "other model"] and several.layout.barmode == "group"
    with pytest.raises(ValueError, match="nothing to draw"):
        class_counts_figure({})


def test_reliability_figure_has_the_diagonal_and_the_counts():
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    cal = calibration(p, rng.random(p.size) < p, n_bins=10, name="calibrated")
    fig = reliability_figure(cal)
    assert list(fig.data[0].x) == [0, 1] and list(fig.data[0].y) == [0, 1]
    points, bars = fig.data[1], fig.data[2]
    assert "ECE" in points.name and len(points.x) == 10
    assert list(bars.y) == cal.count.tolist()
    two = reliability_figure({"a": cal, "b": calibration(np.full(10, 0.9), np.zeros(10, bool), n_bins=10)})
    assert len(two.data) == 5 and len(two.data[3].x) == 1  # one non-empty bin drawn


def test_entropy_and_z_change_figures_from_a_tiny_model(tiny):
    steps, ent = tiny
    fig = decode_entropy_figure(ent)
    names = [t.name for t in fig.data]
    assert "y (the answer)" in names and "z (the latent), decoded" in names
    assert len(fig.data) == 6  # entropy, cell accuracy, exact, for y and for z
    np.testing.assert_allclose(fig.data[0].y, ent.mean()["y_entropy"])
    classes = classify(steps)
    zf = z_change_figure(steps, classes)
    drawn = [t for t in zf.data if t.mode == "lines+markers"]
    assert sum(int(t.name.rsplit("(", 1)[1].rstrip(")")) for t in drawn) == steps.n_puzzles
    assert zf.layout.yaxis.type == "log" and "RMS over the grid cells" in zf.layout.title.text


def test_entropy_figure_without_labels_and_z_change_errors():
    _, ent = model_steps(tiny_model(TASK, hidden=32, n_supervision=2),
                         {k: v for k, v in random_batch(TASK, 2).items() if k != "labels"})
    assert ent.y_accuracy is None
    assert len(decode_entropy_figure(ent).data) == 2
    s = synthetic_steps()
    s.z_change = None
    with pytest.raises(ValueError, match="no z change sizes"):
        z_change_figure(s, classify(synthetic_steps()))
    with pytest.raises(ValueError, match="classified puzzles"):
        z_change_figure(synthetic_steps(n=10), classify(synthetic_steps(n=12)))


def test_docstring_example_runs():
    result = doctest.testmod(figures_module)
    assert result.attempted > 0 and result.failed == 0


def test_recovery_figures_build_from_a_measured_recovery():
    from trmlab.trace.recovery import recovery
    from trmlab.viz.trajectories import recovery_example_figure, recovery_figure
    from trmlab.workbench.dynamics import recovery_example

    model = tiny_model(TASK, n_supervision=4)
    batch = random_batch(TASK, 6)
    x, y = batch["inputs"].numpy(), batch["labels"].numpy()
    y[:] = np.where(x > 1, x, y)  # givens agree with the labels
    # the untrained model solves nothing: score against its own plain answers so that every puzzle is measured
    from trmlab.trace.hooks import run_with_cache

    out, _ = run_with_cache(model, {"inputs": x}, n_supervision=4, names=lambda p: False)
    y = out.per_step[-1].preds.numpy()
    recs = {kind: recovery(model, x, y, kind=kind, after=(1, 2), n_supervision=4) for kind in ("answer", "given")}
    assert all(1 <= len(r.puzzles) <= 6 for r in recs.values())  # those with a blank (answer) or a given cell
    fig = recovery_figure(recs)
    assert len(fig.data) == 2 * (1 + 2) + 1  # per kind: the share recovered, one line per step; the plain run
    ex = recovery_example(model, recs["answer"], x, y, np.zeros(6, np.int64))
    assert ex["cell"] == recs["answer"].cells[1, 0] or ex["index"] in recs["answer"].puzzles
    assert any("(before)" in name for name in ex["answers"])
    fig = recovery_example_figure(ex, TASK)
    assert len(fig.layout.annotations) == 2 + len(ex["answers"])  # puzzle, answers, solution
    assert recovery_example_figure({}, TASK) is None
    with pytest.raises(ValueError, match="no recovery"):
        recovery_figure({})
