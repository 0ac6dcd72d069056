"""Recovery after an intervention (trmlab.trace.recovery): which puzzles are measured, which cells are hit,
the bookkeeping, and the 9x9 zoo model coming back from a forced wrong cell."""
import numpy as np
import pytest
import torch

from trmlab.trace.recovery import Recovery, recovery
from trmlab.trace.tasks import SUDOKU_BLANK, sudoku_spec
from trmlab.trace.tiny import tiny_model


@pytest.fixture(scope="module")
def zoo9():
    """The 9x9 zoo model and 12 generated easy puzzles (40 givens, as it was trained on)."""
    from trmlab.data.sudoku import encode, generate_puzzles
    from trmlab.runs.inference import load_run

    model, _ = load_run("sudoku9")
    puzzles = generate_puzzles(12, n=9, seed=123, difficulty="easy", givens=40)
    x = np.stack([encode(q) for q, _, _ in puzzles]).astype(np.int64)
    y = np.stack([encode(a) for _, a, _ in puzzles]).astype(np.int64)
    return model, x, y


def test_zoo_model_recovers_from_a_forced_wrong_cell(zoo9):
    model, x, y = zoo9
    rec = recovery(model, x, y, kind="answer", after=(2, 6), n_supervision=8, seed=0)
    assert rec.offered == 12 and len(rec.puzzles) >= 8  # the zoo model solves most 40-given puzzles
    assert rec.plain[-1].all()  # only puzzles the plain run solves are measured
    for j in range(len(rec.after)):
        for q, b in enumerate(rec.puzzles):
            cell, token = rec.cells[j, q], rec.tokens[j, q]
            assert x[b, cell] == SUDOKU_BLANK and token != y[b, cell] and 2 <= token <= 10  # a wrong digit, not a given
    # the exact answers before the intervention are those of the plain run
    for j, a in enumerate(rec.after):
        assert np.array_equal(rec.exact[j, :a], rec.plain[:a])
    rows = rec.rows()
    assert [r["after"] for r in rows] == [2, 6]
    assert all(r["fraction"] >= 0.5 and r["low"] <= r["fraction"] <= r["high"] for r in rows), rows
    # steps to recover agree with the step-by-step answers
    steps = rec.steps_to_recover()
    for j, a in enumerate(rec.after):
        for q in range(len(rec.puzzles)):
            s = steps[j, q]
            if s > 0:
                assert rec.exact[j, a + s - 1, q] and not rec.exact[j, a:a + s - 1, q].any()
            else:
                assert not rec.exact[j, a:, q].any()
    back = Recovery.from_dict(rec.to_dict())
    assert back.rows() == rows and np.array_equal(back.exact, rec.exact)


def test_a_given_corrupted_for_one_step_hits_a_given(zoo9):
    model, x, y = zoo9
    rec = recovery(model, x[:6], y[:6], kind="given", after=(3,), n_supervision=6, seed=1)
    for q, b in enumerate(rec.puzzles):
        cell, token = rec.cells[0, q], rec.tokens[0, q]
        assert x[b, cell] > SUDOKU_BLANK and token != x[b, cell]
    assert np.array_equal(rec.exact[0, :3], rec.plain[:3])


def test_bad_arguments_are_named():
    task = sudoku_spec(4)
    model = tiny_model(task, n_supervision=3)
    x = np.full((2, task.seq_len), SUDOKU_BLANK)
    y = np.full((2, task.seq_len), 2)
    with pytest.raises(ValueError, match="kind must be one of answer, given"):
        recovery(model, x, y, kind="cell")
    with pytest.raises(ValueError, match=r"after: each intervention step must be 1..2"):
        recovery(model, x, y, after=(3,), n_supervision=3)
    with pytest.raises(ValueError, match=r"\[puzzles, 16\]"):
        recovery(model, x[:, :4], y[:, :4], after=(1,), n_supervision=3)
    rec = recovery(model, torch.as_tensor(x), torch.as_tensor(y), after=(1,), n_supervision=3)
    assert rec.offered == 2 and rec.exact.shape == (1, 3, len(rec.puzzles))


@pytest.mark.parametrize("kind", ["answer", "given"])
def test_the_example_replays_what_was_measured(zoo9, kind):
    """workbench.dynamics.recovery_example runs one measured puzzle again with the same interventions
    (a corrupted given is put back after one step, as in the measurement): its answers match the record."""
    from trmlab.workbench.dynamics import recovery_example

    model, x, y = zoo9
    pid = np.zeros(len(x), np.int64)
    rec = recovery(model, x[:6], y[:6], kind=kind, after=(2,), n_supervision=6, seed=2)
    ex = recovery_example(model, rec, x, y, pid, after=2)
    q = int(np.nonzero(rec.puzzles == ex["index"])[0][0])
    for name, answer in ex["answers"].items():
        s = int(name.split()[1])
        assert bool((answer == y[ex["index"]]).all()) == bool(rec.exact[0, s - 1, q]), name
    assert ex["description"].count("--intervene ") == (1 if kind == "answer" else 2)
