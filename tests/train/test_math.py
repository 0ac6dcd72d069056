import math

import pytest
import torch

from trmlab.model.embedding import PuzzleEmbedding
from trmlab.train.losses import act_loss, softmax_cross_entropy, stablemax, stablemax_cross_entropy
from trmlab.train.optim import EMA, AdamATan2, SparseSignSGD, lr_factor, make_schedule


def test_stablemax_matches_formula_on_hand_values():
    x = torch.tensor([[2.0, 0.0, -1.0, -3.0]])
    s = [3.0, 1.0, 0.5, 0.25]  # x+1 for x>=0, 1/(1-x) for x<0
    assert torch.allclose(stablemax(x), torch.tensor([s]))
    total = sum(s)
    for label in range(4):
        loss = stablemax_cross_entropy(x, torch.tensor([label]))
        assert loss.dtype == torch.float64
        assert loss.item() == pytest.approx(-math.log(s[label] / total), rel=1e-12)
    assert stablemax_cross_entropy(x, torch.tensor([-100])).item() == 0.0


def test_softmax_cross_entropy_ignores_and_matches():
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    loss = softmax_cross_entropy(x, torch.tensor([2, -100]))
    assert loss[0].item() == pytest.approx(-math.log(math.exp(3) / (math.e + math.e ** 2 + math.e ** 3)), rel=1e-6)
    assert loss[1].item() == 0.0


def test_act_loss_per_sequence_mean_summed_and_metrics():
    # two sequences, vocab 3; seq 0: 2 valid cells both right; seq 1: 1 valid cell, wrong
    logits = torch.tensor([[[5.0, 0, 0], [0, 5.0, 0], [0, 0, 0]], [[0, 0, 5.0], [0, 0, 0], [0, 0, 0]]])
    labels = torch.tensor([[0, 1, -100], [1, -100, -100]])
    out = {"logits": logits, "q_halt_logits": torch.tensor([1.0, 1.0]), "q_continue_logits": torch.zeros(2)}
    steps = torch.tensor([3, 2], dtype=torch.int32)
    halted = torch.tensor([True, False])
    total, m = act_loss(out, labels, steps, halted, "stablemax", 0.5)
    ce = stablemax_cross_entropy(logits, labels)
    lm = ce[0, :2].sum() / 2 + ce[1, :1].sum() / 1
    bce = -math.log(torch.sigmoid(torch.tensor(1.0)).item()) + -math.log(1 - torch.sigmoid(torch.tensor(1.0)).item())
    assert m["lm_loss"].item() == pytest.approx(lm.item(), rel=1e-6)
    assert m["q_halt_loss"].item() == pytest.approx(bce, rel=1e-5)
    assert total.item() == pytest.approx(lm.item() + 0.5 * bce, rel=1e-5)
    # only the halted slot 0 is counted: right answer, q says halt -> q_halt_accuracy 1
    assert m["count"].item() == 1 and m["exact_accuracy"].item() == 1 and m["accuracy"].item() == 1.0
    assert m["q_halt_accuracy"].item() == 1 and m["steps"].item() == 3


def test_adam_atan2_five_steps_with_decay_match_the_reference_formula():
    """The adam-atan2 package's rule, computed by hand in Python floats, 5 steps with weight decay."""
    p0 = [1.0, -2.0, 0.5, 0.0, 3.0]
    grads = [  # a different gradient each step, including zeros and sign changes
        [0.1, 0.0, -3.0, 1e-4, 2.0],
        [-0.2, 0.5, -1.0, 1e-4, 0.0],
        [0.3, 0.0, 2.0, -2e-4, -1.0],
        [0.05, -0.5, 0.0, 1e-4, 4.0],
        [-0.1, 0.25, -0.5, 0.0, 0.5],
    ]
    lr, wd, b1, b2 = 0.01, 0.5, 0.9, 0.95
    p = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    opt = AdamATan2([p], lr=lr, betas=(b1, b2), weight_decay=wd)
    ref, m, v = list(p0), [0.0] * 5, [0.0] * 5
    for t, g in enumerate(grads, start=1):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        for i in range(5):
            ref[i] = ref[i] * (1 - lr * wd)
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            ref[i] = ref[i] - lr * math.atan2(m[i] / (1 - b1 ** t), math.sqrt(v[i]) / math.sqrt(1 - b2 ** t))
        assert p.dtype == torch.float64
        for i in range(5):
            assert abs(p[i].item() - ref[i]) < 1e-7, (t, i, p[i].item(), ref[i])
    # The old rule (lr / (1 - b1^t) outside the atan2) differs measurably on these numbers.
    old = list(p0)
    m, v = [0.0] * 5, [0.0] * 5
    for t, g in enumerate(grads, start=1):
        for i in range(5):
            old[i] *= 1 - lr * wd
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            old[i] -= lr / (1 - b1 ** t) * math.atan2(m[i], math.sqrt(v[i]) / math.sqrt(1 - b2 ** t))
    assert max(abs(a - b) for a, b in zip(old, ref)) > 1e-3


def test_sparse_sign_sgd_touches_only_the_batch_rows():
    emb = PuzzleEmbedding(6, 3)
    with torch.no_grad():
        emb.weights.copy_(torch.arange(18, dtype=torch.float32).view(6, 3))
    before = emb.weights.clone()
    emb.train()
    ids = torch.tensor([1, 4, 1])
    out = emb(ids)
    (out * torch.tensor([[1.0, -2.0, 0.0], [3.0, 3.0, -1.0], [-2.0, 1.0, 0.0]])).sum().backward()
    opt = SparseSignSGD(emb, lr=0.5, weight_decay=0.1)
    opt.step()
    w = emb.weights
    for r in (0, 2, 3, 5):
        assert torch.equal(w[r], before[r])
    # row 1: summed grad [-1, -1, 0]; row 4: [3, 3, -1]
    assert torch.allclose(w[1], before[1] * (1 - 0.05) - 0.5 * torch.tensor([-1.0, -1.0, 0.0]))
    assert torch.allclose(w[4], before[4] * (1 - 0.05) - 0.5 * torch.tensor([1.0, 1.0, -1.0]))


def test_ema_tracks_as_specified():
    lin = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema = EMA(lin, decay=0.9)
    with torch.no_grad():
        lin.weight.fill_(2.0)
    ema.update()
    assert torch.allclose(ema.shadow[0], torch.full((1, 2), 0.9 * 1 + 0.1 * 2))
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema.update()
    assert torch.allclose(ema.shadow[0], torch.full((1, 2), 0.9 * 1.1))
    with ema.applied():
        assert torch.allclose(lin.weight, torch.full((1, 2), 0.99))
    assert torch.equal(lin.weight, torch.zeros(1, 2))


def test_schedule_warmup_then_constant_or_cosine():
    assert lr_factor(1, 100, 1000, 1.0) == pytest.approx(0.01)
    assert lr_factor(100, 100, 1000, 1.0) == 1.0
    assert lr_factor(900, 100, 1000, 1.0) == 1.0
    assert lr_factor(1000, 100, 1000, 0.1) == pytest.approx(0.1)
    assert lr_factor(550, 100, 1000, 0.0) == pytest.approx(0.5)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = make_schedule(opt, 10, 100, 1.0)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:3] == pytest.approx([0.1, 0.2, 0.3]) and lrs[10:] == [1.0, 1.0]
