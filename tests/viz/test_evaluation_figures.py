"""The evaluation figures (trmlab/viz/evaluation.py) on synthetic per-puzzle records."""
import numpy as np
import pytest

from trmlab.data.arc import encode_arc_grid as arc_encode
from trmlab.trace.tasks import arc_spec, maze_spec, sudoku_spec
from trmlab.viz.evaluation import (accuracy_by_steps_figure, failure_gallery_figure, halting_figure,
                                   halting_steps_figure)
from trmlab.eval.metrics import wilson_interval
from trmlab.workbench.evaluation import Result, accuracy_curve


def synthetic_records(n=40, steps=6, seq_len=16, seed=0):
    """Records of a model whose answers become right at a random step and stay right."""
    rng = np.random.default_rng(seed)
    solved_at = rng.integers(1, steps + 3, n)  # > steps: never solved
    correct_by_step = np.arange(1, steps + 1)[None, :] >= solved_at[:, None]
    halt_step = np.minimum(rng.integers(1, steps + 1, n), steps)
    correct_at_halt = correct_by_step[np.arange(n), halt_step - 1]
    labels = rng.integers(2, 6, (n, seq_len))
    preds = labels.copy()
    preds[~correct_at_halt, 0] = np.where(labels[~correct_at_halt, 0] == 2, 3, 2)
    return {"halt_step": halt_step, "correct_at_halt": correct_at_halt, "correct_by_step": correct_by_step,
            "preds": preds, "inputs": np.where(rng.random((n, seq_len)) < 0.5, 1, labels), "labels": labels,
            "puzzle_identifiers": np.zeros(n, int), "q_halt": rng.normal(size=n)}


def fixed_steps_metrics(rec):
    """What a fixed-steps evaluation reports for these records (step<k>/..., all/...)."""
    cbs = rec["correct_by_step"]
    n, steps = cbs.shape
    m = {"n_supervision": steps, "halting": "max"}
    for k in range(1, steps + 1):
        right = int(cbs[:, k - 1].sum())
        lo, hi = wilson_interval(right, n)
        m.update({f"step{k}/exact_accuracy": right / n, f"step{k}/exact_accuracy_low": lo,
                  f"step{k}/exact_accuracy_high": hi, f"step{k}/count": n})
    m.update({"all/" + key.split("/", 1)[1]: v for key, v in m.items() if key.startswith(f"step{steps}/")})
    return m


def learned_metrics(rec):
    right, n = int(rec["correct_at_halt"].sum()), len(rec["halt_step"])
    lo, hi = wilson_interval(right, n)
    return {"halt/exact_accuracy": right / n, "halt/exact_accuracy_low": lo, "halt/exact_accuracy_high": hi,
            "halt/count": n, "halt/mean_steps": float(rec["halt_step"].mean()), "halting": "learned"}


def test_accuracy_curve_counts_and_wilson_band():
    rec = synthetic_records()
    curve = accuracy_curve(fixed_steps_metrics(rec))
    assert curve["steps"] == [1, 2, 3, 4, 5, 6] and curve["count"] == 40
    expect = rec["correct_by_step"].mean(0)
    np.testing.assert_allclose(curve["accuracy"], expect)
    assert all(lo <= a <= hi for a, lo, hi in zip(curve["accuracy"], curve["low"], curve["high"]))
    learned = Result("learned", 6, learned_metrics(rec), rec).summary()
    fig = accuracy_by_steps_figure([curve], train_steps=2, eval_steps=4, learned=[learned])
    line = [t for t in fig.data if t.mode == "lines+markers"][0]
    np.testing.assert_allclose(line.y, 100 * expect)
    band = [t for t in fig.data if t.fill == "toself"][0]
    np.testing.assert_allclose(band.y[:6], 100 * np.array(curve["high"]))
    point = [t for t in fig.data if t.mode == "markers"][0]
    assert point.x[0] == pytest.approx(rec["halt_step"].mean())
    assert point.y[0] == pytest.approx(100 * rec["correct_at_halt"].mean())
    texts = [a.text for a in fig.layout.annotations]
    assert any("trained N_sup=2" in t for t in texts) and any("evaluated at 4" in t for t in texts)
    assert any("beyond" in t for t in texts)  # steps 5..6 are past the evaluation steps
    with pytest.raises(ValueError, match="no step1/exact_accuracy"):
        accuracy_curve(learned_metrics(rec) | {"n_supervision": 6})


def test_accuracy_figure_rejects_ragged_curves():
    with pytest.raises(ValueError, match="same length"):
        accuracy_by_steps_figure([{"label": "x", "steps": [1, 2], "accuracy": [0.1], "low": [0], "high": [1]}])
    with pytest.raises(ValueError, match="nothing to draw"):
        accuracy_by_steps_figure([])


def test_halting_figure_and_histogram_split_right_and_wrong():
    rec = synthetic_records()
    fixed, learned = Result("max", 6, fixed_steps_metrics(rec), rec), Result("learned", 6, learned_metrics(rec), rec)
    rows = [fixed.summary(), learned.summary()]
    assert rows[0]["mean_steps"] == 6 and rows[0]["compute_saved"] == 0
    assert rows[0]["accuracy"] == rec["correct_by_step"][:, -1].mean()
    assert rows[1]["compute_saved"] == pytest.approx(1 - rec["halt_step"].mean() / 6)
    np.testing.assert_array_equal(fixed.answered()["correct"], rec["correct_by_step"][:, -1])
    np.testing.assert_array_equal(learned.answered()["step"], rec["halt_step"])
    fig = halting_figure(rows)
    np.testing.assert_allclose(fig.data[0].y, [100 * r["accuracy"] for r in rows])
    hist = halting_steps_figure([{"label": "learned", "max_steps": 6, "halt_step": rec["halt_step"],
                                  "correct": rec["correct_at_halt"]}])
    right, wrong = hist.data
    assert list(right.x) == [1, 2, 3, 4, 5, 6]
    for s in range(1, 7):
        at = rec["halt_step"] == s
        assert right.y[s - 1] == (at & rec["correct_at_halt"]).sum()
        assert wrong.y[s - 1] == (at & ~rec["correct_at_halt"]).sum()
    with pytest.raises(ValueError, match="1-based"):
        halting_steps_figure([{"label": "x", "halt_step": [0, 1], "correct": [True, False]}])


@pytest.mark.parametrize("task", [sudoku_spec(4), maze_spec(6), arc_spec()], ids=lambda t: t.name)
def test_failure_gallery_draws_puzzle_answer_truth_rows(task):
    rng = np.random.default_rng(1)
    k = 2
    if task.family == "arc":
        inputs = np.stack([arc_encode(rng.integers(0, 10, (3, 4))) for _ in range(k)])
        labels = np.stack([arc_encode(rng.integers(0, 10, (3, 4))) for _ in range(k)])
    else:
        lo = 2 if task.family == "sudoku" else 1
        labels = rng.integers(lo, task.vocab_size, (k, task.seq_len))
        inputs = np.where(rng.random((k, task.seq_len)) < 0.5, 1 if task.family == "sudoku" else 2, labels)
    preds = labels.copy()
    preds[:, 5] = np.where(labels[:, 5] == 3, 4, 3)
    fig = failure_gallery_figure(task, inputs, preds, labels, captions=["#3", "#7"])
    images = [t for t in fig.data if t.type == "image"]
    assert len(images) == 3 * k
    assert fig.layout.annotations[0].text.startswith("#3")
    answer, truth = images[1].z, images[2].z
    if task.family == "sudoku":  # the wrong cell (row 1, col 1) is red in the answer, green in the truth
        assert tuple(answer[1, 1]) != tuple(truth[1, 1])
    if task.family == "arc":
        assert answer.shape[:2] == (4, 5)  # the 3x4 answer and its EOS row and column
    empty = failure_gallery_figure(task, inputs[:0], preds[:0], labels[:0])
    assert not empty.data and "No failures" in empty.layout.annotations[0].text
