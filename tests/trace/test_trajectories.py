"""Trajectory analysis (trmlab/trace/trajectories.py): classes of hand-made trajectories, calibration on
synthetic data, entropy of decodings, and the functions on a tiny untrained model (trace, model run and
thinking run agree)."""
import doctest
import math

import numpy as np
import pytest
import torch

import trmlab.trace.trajectories as trajectories_module
from trmlab.eval.metrics import wilson_interval
from trmlab.eval.thinking import run_trajectories
from trmlab.trace import sudoku_spec, trace
from trmlab.trace.tiny import random_batch, tiny_model
from trmlab.trace.trajectories import (CLASSES, StepAnswers, calibration, classify, decode_entropy, dynamics, entropy,
                                       halting_calibration, model_steps)

TASK = sudoku_spec(4)
LABEL = [2, 3, 4]
R, A, B, C, D, E = LABEL, [5, 3, 4], [2, 5, 4], [2, 3, 5], [5, 5, 4], [5, 5, 5]
W = [3, 3, 3]

#: hand-made trajectories of 5 steps, one per class, with what dynamics() should say
HAND = {
    "solved_at_once": ([R, R, R, R, R], 1, 0),
    "solved_late": ([A, B, C, R, R], 4, 0),
    "stuck": ([A, B, W, W, W], 3, 0),
    "oscillating": ([A, B, A, B, A], -1, 3),
    "wandering": ([A, B, C, D, E], -1, 0),
}


def hand_made(puzzles=None):
    answers = np.array([v[0] for v in HAND.values()]).transpose(1, 0, 2)  # [S, B, L]
    labels = np.array([LABEL] * len(HAND))
    return StepAnswers.from_arrays(answers, labels, puzzles=puzzles)


def one(answers, label=LABEL, **kw):
    """StepAnswers of one puzzle from its answers per step."""
    return StepAnswers.from_arrays(np.array(answers)[:, None, :], np.array([label]), **kw)


# -- dynamics and classes ---------------------------------------------------------------------------


def test_hand_made_trajectories_are_classified():
    s = hand_made()
    assert s.answer_id.shape == (5, 5) and s.correct.shape == (5, 5)
    c = classify(s)
    assert c.label.tolist() == list(HAND)
    d = dynamics(s)
    assert d.settle_step.tolist() == [v[1] for v in HAND.values()]
    assert d.revisits.tolist() == [v[2] for v in HAND.values()]
    assert d.oscillates.tolist() == [False, False, False, True, False]
    assert d.wanders.tolist() == [False, False, False, False, True]
    assert d.changes.tolist() == [0, 3, 2, 4, 4] and d.distinct.tolist() == [1, 4, 3, 2, 5]
    assert d.final_run.tolist() == [5, 2, 3, 1, 1]


def test_counts_intervals_and_puzzle_lists():
    c = classify(hand_made(puzzles=[10, 11, 12, 13, 14]))
    rows = c.counts()
    assert [r["class"] for r in rows] == list(CLASSES)
    assert all(r["count"] == 1 and r["puzzles"] == 5 and r["fraction"] == 0.2 for r in rows)
    assert (rows[0]["low"], rows[0]["high"]) == wilson_interval(1, 5)
    assert c.puzzles_of("stuck") == [12] and c.by_class()["oscillating"] == [13]
    assert "stuck" in c.summary() and "95% CI" in c.summary()
    with pytest.raises(ValueError, match="unknown class 'lost'"):
        c.puzzles_of("lost")


def test_at_once_and_stuck_for_parameters():
    s = hand_made()
    assert classify(s, at_once=4).label[1] == "solved_at_once"
    assert classify(s, at_once=3).label[1] == "solved_late"
    # wrong: A B W W W is on a fixed point for 2 steps; with stuck_for=3 it is not stuck (no revisit: wandering)
    assert classify(s, stuck_for=2).label[2] == "stuck"
    assert classify(s, stuck_for=3).label[2] == "wandering"
    # oscillated, then stopped on a wrong answer: stuck (the end decides)
    assert classify(one([A, B, A, A, A])).label[0] == "stuck"
    # a late flip to the right answer at the last step: settled nowhere, still solved (late)
    c = classify(one([R, R, A, B, R]))
    assert c.label[0] == "solved_late" and c.dynamics.settle_step[0] == -1
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="at_once must be an integer >= 1"):
            classify(s, at_once=bad)
    with pytest.raises(ValueError, match="stuck_for must be an integer >= 1"):
        classify(s, stuck_for=0)


def test_one_step_and_short_trajectories():
    right, wrong = one([R]), one([A])
    assert dynamics(right).settle_step.tolist() == [1]
    assert classify(right).label[0] == "solved_at_once"
    assert classify(wrong).label[0] == "stuck"          # never changed: a fixed point as far as can be seen
    assert classify(one([A, A])).label[0] == "stuck"    # fewer steps than stuck_for + 1: every answer equal
    assert classify(one([B, A])).label[0] == "wandering"
    assert classify(one([A, R])).label[0] == "solved_late"  # right, but changed at the last step


def test_ignored_cells_are_neither_scored_nor_compared():
    label = [2, 3, -100]
    s = one([[2, 3, 1], [2, 3, 4], [2, 3, 5]], label=label)
    assert s.correct[:, 0].tolist() == [True, True, True]
    assert s.answer_id[:, 0].tolist() == [0, 0, 0]
    assert classify(s).label[0] == "solved_at_once"
    assert dynamics(s).changes[0] == 0


def test_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="needs the labels"):
        classify(StepAnswers.from_arrays(np.zeros((3, 2, 4), int)))
    with pytest.raises(ValueError, match=r"labels: expected shape \(2, 4\)"):
        StepAnswers.from_arrays(np.zeros((3, 2, 4), int), np.zeros((2, 5), int))
    with pytest.raises(ValueError, match=r"answers: expected \[steps, puzzles, cells\]"):
        StepAnswers.from_arrays(np.zeros((3, 4), int))
    with pytest.raises(ValueError, match=r"StepAnswers.halt_prob: expected shape \(3, 2\)"):
        StepAnswers.from_arrays(np.zeros((3, 2, 4), int), halt_prob=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="StepAnswers.halt_prob: probabilities must lie in"):
        StepAnswers.from_arrays(np.zeros((3, 2, 4), int), halt_prob=np.full((3, 2), 2.0))
    with pytest.raises(ValueError, match="StepAnswers.steps: expected 3 step numbers"):
        StepAnswers(np.arange(2), np.zeros((3, 2), int))


# -- calibration ------------------------------------------------------------------------------------


def test_perfectly_calibrated_data_has_ece_zero():
    # each bin's outcomes right exactly as often as its probability says
    prob = np.repeat([0.05, 0.25, 0.5, 0.75, 0.95], 20)
    right = np.concatenate([np.arange(20) < k for k in (1, 5, 10, 15, 19)])
    c = calibration(prob, right, n_bins=10)
    assert c.ece == pytest.approx(0.0, abs=1e-12)
    assert c.count.tolist() == [20, 0, 20, 0, 0, 20, 0, 20, 0, 20] and c.n == 100
    full = c.count > 0
    np.testing.assert_allclose(c.accuracy[full], c.mean_prob[full])
    assert np.isnan(c.accuracy[~full]).all() and np.isnan(c.mean_prob[~full]).all()
    assert (c.low[2], c.high[2]) == wilson_interval(5, 20)
    assert [r["count"] for r in c.rows()] == [20] * 5


def test_sampled_calibrated_data_has_small_ece_and_a_confident_wrong_head_a_large_one():
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    assert calibration(p, rng.random(p.size) < p).ece < 0.01
    bad = calibration(np.full(50, 0.9), np.zeros(50, bool))
    assert bad.ece == pytest.approx(0.9)


def test_bins_edges_and_errors():
    c = calibration(np.array([0.0, 0.05, 0.1, 0.95, 1.0]), np.array([0, 0, 1, 1, 1], bool), n_bins=10)
    assert c.count.tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]  # 0.1 is the second bin's left edge; 1.0 the last bin
    np.testing.assert_allclose(c.edges, np.linspace(0, 1, 11))
    with pytest.raises(ValueError, match="n_bins must be an integer >= 1"):
        calibration([0.5], [True], n_bins=0)
    with pytest.raises(ValueError, match="same number of values"):
        calibration([0.5, 0.2], [True])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        calibration([1.5], [True])


def test_halting_calibration_every_step_and_final_step():
    s = hand_made()
    s.halt_prob = np.tile(np.linspace(0.1, 0.9, 5)[:, None], (1, 5))
    every = halting_calibration(s)
    assert every.n == 25 and every.count.sum() == 25 and "every (puzzle, supervision step)" in every.where
    final = halting_calibration(s, where="final_step", n_bins=5)
    assert final.n == 5 and final.count.tolist() == [0, 0, 0, 0, 5] and final.accuracy[-1] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="where must be one of every_step, final_step"):
        halting_calibration(s, where="halt_step")
    s.halt_prob = None
    with pytest.raises(ValueError, match="halt_prob is None"):
        halting_calibration(s)


# -- entropy ----------------------------------------------------------------------------------------


def test_entropy_of_a_uniform_distribution_is_log_v():
    for V in (2, 6, 11):
        assert entropy(np.full((3, V), 1 / V)) == pytest.approx(np.full(3, math.log(V)))
        assert entropy(np.full(V, 1 / V), bits=True) == pytest.approx(math.log2(V))
    assert entropy(np.array([1.0, 0.0, 0.0])) == 0.0


def test_a_uniform_decoding_has_entropy_log_v_from_the_model_and_the_trace():
    model = tiny_model(TASK, hidden=32, n_supervision=2)
    with torch.no_grad():
        model.core.lm_head.weight.zero_()
        if getattr(model.core.lm_head, "bias", None) is not None:
            model.core.lm_head.bias.zero_()
    batch = random_batch(TASK, batch_size=2, seed=3)
    V = TASK.vocab_size
    for ent in (decode_entropy(model, batch), decode_entropy(trace(model, batch, full_probs=True))):
        np.testing.assert_allclose(ent.y_entropy, math.log(V), rtol=1e-3)
        np.testing.assert_allclose(ent.z_entropy, math.log(V), rtol=1e-3)
        assert ent.max_entropy == pytest.approx(math.log(V)) and ent.unit == "nats"
    bits = decode_entropy(model, batch, bits=True)
    np.testing.assert_allclose(bits.z_entropy, math.log2(V), rtol=1e-5)
    assert bits.max_entropy == pytest.approx(math.log2(V))


# -- on a tiny untrained model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return tiny_model(TASK, hidden=32, n_recursions=2, n_latent_steps=2, n_supervision=3)


@pytest.fixture(scope="module")
def batch():
    return random_batch(TASK, batch_size=4, seed=2)


@pytest.fixture(scope="module")
def traced(model, batch):
    return trace(model, batch, full_probs=True)


def test_model_steps_shapes(model, batch):
    steps, ent = model_steps(model, batch)
    S, B = 3, 4
    assert steps.answer_id.shape == steps.correct.shape == steps.z_change.shape == steps.halt_prob.shape == (S, B)
    assert steps.steps.tolist() == [1, 2, 3] and steps.z_change_kind == "displacement"
    assert (steps.z_change > 0).all() and ((steps.halt_prob > 0) & (steps.halt_prob < 1)).all()
    for k in ("y_entropy", "z_entropy", "y_accuracy", "z_accuracy", "y_exact", "z_exact"):
        assert getattr(ent, k).shape == (S, B), k
    m = ent.mean()
    assert m["z_entropy"].shape == (S,) and len(ent.rows()) == S
    assert ((m["y_entropy"] >= 0) & (m["y_entropy"] <= ent.max_entropy + 1e-6)).all()
    c = classify(steps)
    assert sum(r["count"] for r in c.counts()) == B and set(c.label) <= set(CLASSES)
    assert halting_calibration(steps, n_bins=4).count.sum() == S * B
    assert model.training is False


def test_trace_and_model_run_agree(model, batch, traced):
    from_model, ent_model = model_steps(model, batch)
    from_trace = StepAnswers.from_trace(traced)
    np.testing.assert_array_equal(from_trace.answer_id, from_model.answer_id)
    np.testing.assert_array_equal(from_trace.correct, from_model.correct)
    np.testing.assert_allclose(from_trace.halt_prob, from_model.halt_prob, rtol=1e-5)
    assert from_trace.z_change_kind == "path" and from_trace.z_change.shape == (3, 4)
    assert (from_trace.z_change >= from_model.z_change - 1e-4).all()  # the distance travelled >= the displacement
    ent_trace = decode_entropy(traced)
    np.testing.assert_allclose(ent_trace.y_entropy, ent_model.y_entropy, atol=5e-3)  # float16 probabilities
    np.testing.assert_allclose(ent_trace.z_entropy, ent_model.z_entropy, atol=5e-3)
    np.testing.assert_array_equal(ent_trace.z_accuracy, ent_model.z_accuracy)
    z_answers = StepAnswers.from_trace(traced, which="z", cells="to_fill")
    assert z_answers.answer_id.shape == (3, 4) and z_answers.source == "trace (z)"


def test_trace_options(model, batch, traced):
    kept = trace(model, batch, keep_steps=[1, 2], events=("answer", "supervision"))
    s = StepAnswers.from_trace(kept)
    assert s.steps.tolist() == [2, 3] and s.z_change is None
    with pytest.raises(ValueError, match="full_probs=True"):
        decode_entropy(kept)
    with pytest.raises(ValueError, match="no 'supervision' records"):
        StepAnswers.from_trace(trace(model, batch, events=("answer",)))
    with pytest.raises(ValueError, match="pass no batch"):
        decode_entropy(traced, batch)
    with pytest.raises(ValueError, match="pass the batch"):
        decode_entropy(model)
    with pytest.raises(ValueError, match="which must be 'y' or 'z'"):
        StepAnswers.from_trace(traced, which="x")


def test_thinking_run_gives_the_same_answers(model, batch):
    from_model, _ = model_steps(model, batch)
    inputs, labels = batch["inputs"].numpy(), batch["labels"].numpy()
    with_answers = run_trajectories(model, inputs, labels, steps=3, keep_answers=True, family="sudoku")
    s = StepAnswers.from_trajectories(with_answers)
    np.testing.assert_array_equal(s.answer_id, from_model.answer_id)
    np.testing.assert_array_equal(s.correct, from_model.correct)
    np.testing.assert_allclose(s.halt_prob, from_model.halt_prob, rtol=1e-5)
    ids_only = StepAnswers.from_trajectories(run_trajectories(model, inputs, labels, steps=3, family="sudoku"))
    assert ids_only.z_change is None
    assert classify(ids_only).label.tolist() == classify(from_model).label.tolist()
    np.testing.assert_array_equal(dynamics(ids_only).settle_step, dynamics(from_model).settle_step)
    with pytest.raises(ValueError, match="candidate must be in 0..0"):
        StepAnswers.from_trajectories(with_answers, candidate=1)


def test_docstring_examples_run():
    result = doctest.testmod(trajectories_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
