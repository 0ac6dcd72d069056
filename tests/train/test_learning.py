"""A CPU preset learns: the shorter, looser version of the documented >= 95% run (docs/training.md)."""
import pytest

pytestmark = pytest.mark.slow


def test_cpu_sudoku4_learns_and_more_supervision_steps_help(trained_sudoku4):
    _, run, m = trained_sudoku4
    msg = {k: round(v, 3) for k, v in m.items() if k.endswith("exact_accuracy")}
    assert m["all/count"] == 300
    assert m["all/exact_accuracy"] >= 0.25, msg  # ~0.45 after 700 steps; an untrained model scores 0
    assert m["all/token_accuracy"] >= 0.8, msg
    # the recursion pays: the answer after 4 supervision steps beats the one after 1
    assert m["step4/exact_accuracy"] > m["step1/exact_accuracy"] + 0.1, msg
