"""Metrics: Wilson interval, exact/token accuracy, the reference's metric sums, stepwise scoring."""
import math

import pytest
import torch

from trmlab.eval.metrics import (
    ExactAccuracy,
    StepwiseAccuracy,
    normalise_metric_sums,
    reference_metric_sums,
    wilson_interval,
)


# Hand-computed with z = 1.96, z^2 = 3.8416:
#   0/10:  low 0, high = z^2 / (n + z^2) = 3.8416 / 13.8416 = 0.277540
#   10/10: low = n / (n + z^2) = 10 / 13.8416 = 0.722460, high 1
#   5/10:  centre 0.5, half = (1.96 / 1.38416) * sqrt(0.025 + 0.009604) = 0.263410
#   1/10:  centre (0.1 + 0.19208) / 1.38416 = 0.211016, half = 1.416021 * sqrt(0.009 + 0.009604) = 0.193140 (published: 0.0179, 0.4042)
@pytest.mark.parametrize(
    "k,n,low,high",
    [
        (0, 10, 0.0, 0.277540),
        (10, 10, 0.722460, 1.0),
        (5, 10, 0.236590, 0.763410),
        (1, 10, 0.017876, 0.404156),
    ],
)
def test_wilson_hand_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-5)
    assert hi == pytest.approx(high, abs=1e-5)


def test_wilson_edge_cases():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    # wider with a larger z, symmetric around 0.5 for k = n/2
    lo99, hi99 = wilson_interval(50, 100, z=2.576)
    lo95, hi95 = wilson_interval(50, 100)
    assert lo99 < lo95 and hi99 > hi95
    assert lo95 + hi95 == pytest.approx(1.0)


def _batch():
    # 4 sequences of length 5; -100 = ignored
    labels = torch.tensor(
        [
            [1, 2, 3, 4, 5],  # all right -> exact
            [1, 2, 3, -100, -100],  # 2/3 right
            [-100, -100, -100, -100, -100],  # no scored label: never counted
            [5, 5, 5, 5, 5],  # 0/5 right
        ]
    )
    preds = torch.tensor(
        [
            [1, 2, 3, 4, 5],
            [1, 9, 3, 7, 7],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ]
    )
    return preds, labels


def test_exact_accuracy_handmade():
    preds, labels = _batch()
    acc = ExactAccuracy()
    acc.update(preds, labels)
    r = acc.compute()
    assert r["count"] == 3
    assert r["exact"] == 1
    assert r["exact_accuracy"] == pytest.approx(1 / 3)
    assert r["token_accuracy"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert r["token_accuracy_micro"] == pytest.approx((5 + 2 + 0) / 13)
    lo, hi = wilson_interval(1, 3)
    assert (r["exact_accuracy_low"], r["exact_accuracy_high"]) == (lo, hi)


def test_exact_accuracy_logits_valid_mask_and_merge():
    preds, labels = _batch()
    logits = torch.nn.functional.one_hot(preds, 10).float() * 3.0
    a = ExactAccuracy()
    a.update(logits, labels.numpy(), valid=torch.tensor([False, True, True, True]))  # drop row 0
    r = a.compute()
    assert r["count"] == 2 and r["exact"] == 0
    assert r["token_accuracy"] == pytest.approx((2 / 3) / 2)
    b = ExactAccuracy()
    b.update(preds[:1].numpy(), labels[:1])
    a.merge([b.state()])
    r = a.compute()
    assert r["count"] == 3 and r["exact"] == 1
    empty = ExactAccuracy().compute()
    assert empty["count"] == 0 and math.isnan(empty["exact_accuracy"])


def test_reference_metric_sums_handmade():
    preds, labels = _batch()
    q = torch.tensor([2.0, 0.0, 5.0, -1.0])  # (q >= 0): T, T, T, F
    steps = torch.tensor([3, 16, 16, 7])
    halted = torch.tensor([True, True, True, False])  # row 3 not halted: not counted
    s = reference_metric_sums(preds, labels, q, steps, halted, lm_loss=torch.tensor(1.25))
    assert s["count"] == 2  # rows 0, 1 (row 2 has no label, row 3 not halted)
    assert s["accuracy"] == pytest.approx(1 + 2 / 3)
    assert s["exact_accuracy"] == 1
    # row 0: q>=0 and exact -> 1; row 1: q>=0 but not exact -> 0
    assert s["q_halt_accuracy"] == 1
    assert s["steps"] == 3 + 16
    assert s["lm_loss"] == 1.25
    # halt loss over all slots; the label-less row counts as exact (target 1), as in the reference
    target = torch.tensor([1.0, 0.0, 1.0, 0.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(q, target, reduction="sum")
    assert s["q_halt_loss"] == pytest.approx(float(bce), rel=1e-6)
    assert "q_continue_loss" not in s

    ev = normalise_metric_sums(s)
    assert ev["count"] == 2 and ev["exact_accuracy"] == 0.5 and ev["steps"] == 9.5
    tr = normalise_metric_sums(s, mode="train", global_batch_size=4)
    assert tr["count"] == 1 and tr["lm_loss"] == pytest.approx(1.25 / 4)


def test_stepwise_accuracy_fixed_steps_and_learned_halting():
    labels = torch.tensor([[1, 1], [2, 2], [3, 3]])
    wrong = torch.zeros_like(labels)
    # step answers: row 0 right from step 1, row 1 right only at step 3, row 2 never right
    answers = [
        torch.stack([labels[0], wrong[1], wrong[2]]),
        torch.stack([labels[0], wrong[1], wrong[2]]),
        torch.stack([labels[0], labels[1], wrong[2]]),
    ]
    # q halt: row 0 halts after step 1 (q > 0), row 1 halts after step 2 (wrong answer then),
    # row 2 never halts (capped at the last step, 3)
    qs = [torch.tensor([1.0, -1.0, -1.0]), torch.tensor([1.0, 0.5, 0.0]), torch.tensor([1.0, 1.0, -3.0])]
    acc = StepwiseAccuracy(report_steps=(2, 3, 5))
    acc.start_batch(labels)
    for a, q in zip(answers, qs):
        acc.step(a, q)
    acc.end_batch()
    r = acc.compute()
    assert r["step2/exact_accuracy"] == pytest.approx(1 / 3)
    assert r["step3/exact_accuracy"] == pytest.approx(2 / 3)
    assert r["step5/count"] == 0  # never observed
    assert r["halt/exact_accuracy"] == pytest.approx(1 / 3)  # only row 0
    assert r["halt/mean_steps"] == pytest.approx((1 + 2 + 3) / 3)
    assert r["halt/halted_early"] == pytest.approx(2 / 3)
