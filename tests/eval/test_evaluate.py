"""The evaluation loop: learned halting that really halts, max halting as the reference, records."""
import numpy as np
import pytest
import torch

from trmlab.eval.evaluate import evaluate, headline
from trmlab.model import build_model, run_to_halt, supervision_steps

from tests.model.helpers import sudoku4_batch, tiny_config

N = 5


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    model = build_model(tiny_config(n_supervision=N, **kw))
    model.eval()
    return model


def _step_preds(model, batch):
    """[N, B, L] the answer after every step when every puzzle runs all N steps."""
    return torch.stack([s.out["logits"].argmax(-1) for s in supervision_steps(model, batch, N, "max")])


def _with_padding(batch, n_pad):
    """The batch followed by n_pad padding rows (as the test loader pads its last batch)."""
    B, L = batch["inputs"].shape
    out = {
        "inputs": torch.cat([batch["inputs"], torch.zeros(n_pad, L, dtype=batch["inputs"].dtype)]),
        "labels": torch.cat([batch["labels"], torch.full((n_pad, L), -100, dtype=batch["labels"].dtype)]),
        "puzzle_identifiers": torch.cat([batch["puzzle_identifiers"], torch.zeros(n_pad, dtype=torch.int32)]),
        "valid": torch.cat([torch.ones(B, dtype=torch.bool), torch.zeros(n_pad, dtype=torch.bool)]),
        "index": torch.cat([torch.arange(B), torch.full((n_pad,), -1)]),
    }
    return out


def _set_q_head(model, weight_std, halt_bias, continue_bias=-5.0, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = model.core.q_head.weight
        w.copy_(torch.randn(w.shape, generator=g) * weight_std)
        model.core.q_head.bias.copy_(torch.tensor([halt_bias, continue_bias]))


def _labels_from(preds_by_step, which_step):
    """Labels equal to the answer after step which_step[b] (1-based) for row b."""
    return torch.stack([preds_by_step[k - 1, b] for b, k in enumerate(which_step)]).long()


def test_halt_head_firing_at_step_1_gives_step_1_accuracy():
    model = _model()
    batch = sudoku4_batch(12, seed=3)
    preds = _step_preds(model, batch)
    # rows 0..5 are right after step 1, rows 6..11 only after step N
    batch["labels"] = _labels_from(preds, [1] * 6 + [N] * 6)
    assert not torch.equal(preds[0, 6:], preds[N - 1, 6:])  # steps 1 and N answer differently
    with torch.no_grad():
        model.core.q_head.bias.fill_(10.0)  # the halt head fires at once, for every puzzle
    b = _with_padding(batch, 4)
    mx = evaluate(model, [b], halting="max")
    le = evaluate(model, [b], halting="learned", records=True)
    step1, stepN = mx["step1/exact_accuracy"], mx[f"step{N}/exact_accuracy"]
    assert step1 != stepN
    assert le["halt/exact_accuracy"] == pytest.approx(step1)
    assert le["halt/mean_steps"] == 1.0 and le["halt/count"] == 12
    assert le["halt/steps_hist/1"] == 12 and all(le[f"halt/steps_hist/{k}"] == 0 for k in range(2, N + 1))
    assert le["halt/compute_saved"] == pytest.approx(1 - 1 / N)
    assert le["steps_run"] == 12 and mx["steps_run"] == 12 * N  # padding rows are not counted
    assert headline(le) == ("halt/exact_accuracy", le["halt/exact_accuracy"])
    assert "all/exact_accuracy" not in le and not any(k.startswith("step") for k in le if "/" in k)
    # max halting keeps the reference's keys; its halt/ metrics say what learned halting would answer
    assert mx["all/exact_accuracy"] == stepN and mx["halt/exact_accuracy"] == pytest.approx(step1)
    r = le["records"]
    assert r["halt_step"].tolist() == [1] * 12
    np.testing.assert_array_equal(r["preds"], preds[0].numpy())
    right_at_1 = (preds[0] == batch["labels"]).all(-1)
    assert right_at_1[:6].all() and not right_at_1.all()
    assert r["correct_at_halt"].tolist() == right_at_1.tolist()
    assert r["correct_by_step"].shape == (12, N) and not r["correct_by_step"][:, 1:].any()  # not run
    np.testing.assert_array_equal(r["inputs"], batch["inputs"].numpy())
    np.testing.assert_array_equal(r["labels"], batch["labels"].numpy())
    assert r["index"].tolist() == list(range(12)) and r["q_halt"].shape == (12,)


def _staggered(n: int, seed: int):
    """A model whose halting head stops puzzles at different steps, and ``n`` puzzles labelled so that
    puzzle b is first right after step 1 + b % N. Returns (model, batch, per-step predictions)."""
    model = _model()
    batch = sudoku4_batch(n, seed=seed)
    preds = _step_preds(model, batch)
    batch["labels"] = _labels_from(preds, [1 + (b % N) for b in range(n)])
    _set_q_head(model, weight_std=1.0, halt_bias=8.0)
    return model, batch, preds


def test_learned_halting_stops_each_puzzle_at_its_own_step_and_saves_compute():
    model, batch, preds = _staggered(24, seed=3)
    b = _with_padding(batch, 3)
    mx = evaluate(model, [b], halting="max", records=True)
    le = evaluate(model, [b], halting="learned", records=True)
    rm, rl = mx["records"], le["records"]
    hist = [le[f"halt/steps_hist/{k}"] for k in range(1, N + 1)]
    assert sum(hist) == 24 and sum(h > 0 for h in hist) >= 3  # puzzles stop at different steps
    assert 1 < le["halt/mean_steps"] < N
    # learned halting answers exactly what max halting says it would have answered
    np.testing.assert_array_equal(rl["halt_step"], rm["halt_step"])
    np.testing.assert_array_equal(rl["correct_at_halt"], rm["correct_at_halt"])
    for k in ("exact_accuracy", "exact_accuracy_low", "exact_accuracy_high", "token_accuracy", "mean_steps",
              "compute_saved"):
        assert le[f"halt/{k}"] == pytest.approx(mx[f"halt/{k}"]), k
    assert 0 < le["halt/exact_accuracy"] < 1
    # each answer is the one after its own halting step
    expected = np.stack([preds[k - 1, i].numpy() for i, k in enumerate(rl["halt_step"])])
    np.testing.assert_array_equal(rl["preds"], expected)
    np.testing.assert_array_equal(rm["preds"], preds[N - 1].numpy())
    # steps after the halting step were not run under learned halting
    ran = np.arange(1, N + 1)[None, :] <= rl["halt_step"][:, None]
    np.testing.assert_array_equal(rl["correct_by_step"], rm["correct_by_step"] & ran)
    # the compute is really saved: only the running puzzles are computed
    assert le["steps_run"] == int(rl["halt_step"].sum()) < mx["steps_run"] == 24 * N
    assert le["halt/compute_saved"] == pytest.approx(1 - le["halt/mean_steps"] / N)


def test_learned_halting_drops_halted_puzzles_from_the_batch():
    model = _model()
    batch = sudoku4_batch(16, seed=4)
    _set_q_head(model, weight_std=1.0, halt_bias=8.0)
    sizes = [s.rows.numel() for s in supervision_steps(model, batch, N, "learned")]
    assert sizes[0] == 16 and sizes == sorted(sizes, reverse=True) and sizes[-1] < 16
    res = run_to_halt(model, batch, halting="learned")
    assert sum(sizes) == int(res["steps"].sum())


def test_act_continue_models_halt_on_halt_above_continue():
    model = _model(act_continue=True)
    batch = sudoku4_batch(8, seed=5)
    N_ = N
    # halt logit > 0 but below continue: the continue rule says go on, every puzzle runs N steps
    _set_q_head(model, weight_std=0.0, halt_bias=1.0, continue_bias=2.0)
    m = evaluate(model, [batch], halting="learned")
    assert m["halt/mean_steps"] == N_ and m["steps_run"] == 8 * N_
    assert run_to_halt(model, batch, halting="learned")["steps"].tolist() == [N_] * 8
    assert evaluate(model, [batch], halting="max")["halt/mean_steps"] == N_
    # every answer is wrong (random model, labels from the data): "don't halt" is right every time
    assert m["q_halt_accuracy"] == 1.0
    # halt logit < 0 but above continue: halt at once
    _set_q_head(model, weight_std=0.0, halt_bias=-1.0, continue_bias=-2.0)
    m = evaluate(model, [batch], halting="learned")
    assert m["halt/mean_steps"] == 1 and m["steps_run"] == 8
    assert run_to_halt(model, batch, halting="learned")["steps"].tolist() == [1] * 8
    assert evaluate(model, [batch], halting="max")["halt/mean_steps"] == 1
    assert m["q_halt_accuracy"] == 0.0
    # the same heads on a model without the continue loss follow halt > 0
    plain = _model()
    plain.load_state_dict(model.state_dict())
    assert run_to_halt(plain, batch, halting="learned")["steps"].tolist() == [N_] * 8


class _RecordingArc:
    """Duck-typed ARC evaluator that keeps what evaluate() hands it."""

    def __init__(self):
        self.updates = []

    def begin(self):
        self.updates = []

    def update(self, inputs, ids, preds, q):
        self.updates.append((inputs.clone(), preds.clone(), q.clone()))

    def state(self):
        return {}

    def merge(self, states):
        pass

    def result(self):
        return {"ARC/pass@2": 0.5}


def test_arc_voting_gets_each_answer_at_its_halting_step():
    model = _model()
    batch = sudoku4_batch(10, seed=6)
    preds = _step_preds(model, batch)
    _set_q_head(model, weight_std=1.0, halt_bias=8.0)
    b = _with_padding(batch, 2)
    arc = _RecordingArc()
    le = evaluate(model, [b], arc_evaluator=arc, halting="learned", records=True)
    (inputs, given, q), = arc.updates
    assert inputs.shape[0] == 10  # padding rows are not voted
    steps = le["records"]["halt_step"]
    assert len(set(steps.tolist())) > 1
    expected = torch.stack([preds[k - 1, i] for i, k in enumerate(steps)])
    assert torch.equal(given, expected)
    np.testing.assert_allclose(q.numpy(), le["records"]["q_halt"])
    assert le["ARC/pass@2"] == 0.5 and headline(le) == ("ARC/pass@2", 0.5)
    evaluate(model, [b], arc_evaluator=arc, halting="max")
    assert torch.equal(arc.updates[0][1], preds[N - 1])  # the reference: the answer after N steps


def test_two_ranks_merged_equal_one_process():
    model, batch, preds = _staggered(16, seed=7)
    full = _with_padding(batch, 0)
    halves = [{k: v[i::2] for k, v in full.items()} for i in range(2)]
    for halting in ("max", "learned"):
        one = evaluate(model, [full], halting=halting, records=True)
        other = {}
        evaluate(model, [halves[1]], halting=halting, records=True, merge=lambda s: other.setdefault("s", s) and [s])
        two = evaluate(model, [halves[0]], halting=halting, records=True, merge=lambda s: [s, other["s"]])
        for k, v in one.items():
            if k == "records":
                for rk in v:  # sorted back into example order (logits differ by float noise of batch size)
                    np.testing.assert_allclose(two["records"][rk], v[rk], atol=1e-4, err_msg=rk)
            else:
                assert two[k] == pytest.approx(v), k


def test_bad_halting_is_refused():
    with pytest.raises(ValueError, match="halting"):
        evaluate(_model(), [sudoku4_batch(2)], halting="sometimes")


@pytest.mark.slow
def test_trained_4x4_run_learned_halting_uses_fewer_steps(trained_sudoku4, tmp_path, capsys):
    """On the shared short-trained cpu_sudoku4 run (700 steps: its halting head has not learned to fire
    yet, every logit is < 0) with the halt bias shifted by hand so that the puzzles the head is most
    sure of halt: learned halting stops early, its accuracy is that of the halted answers (what max
    halting reports learned halting would answer), and `trmlab eval --halting learned` prints it."""
    from trmlab.cli import main
    from trmlab.train import checkpoint as ckpt
    from trmlab.runs import evaluate_run, load_run

    _, run, _ = trained_sudoku4
    model, cfg = load_run(run, checkpoint="last")
    first = next(supervision_steps(model, sudoku4_like_test_batch(cfg), 4, "max"))
    shift = -float(first.out["q_halt_logits"].median())  # about half the puzzles halt at step 1
    state = ckpt.load(run / "checkpoints" / "last.pt")
    state["model"]["core.q_head.bias"][0] += shift
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    state["ema"]["shadow"][names.index("core.q_head.bias")][0] += shift
    shifted = tmp_path / "shifted.pt"
    ckpt.save_atomic(state, shifted)

    mx = evaluate_run(shifted, halting="max", progress=False)
    le = evaluate_run(shifted, halting="learned", progress=False)
    N_ = mx["n_supervision"]
    assert le["halt/mean_steps"] < N_ - 1 and le["steps_run"] < mx["steps_run"] == N_ * mx["all/count"]
    assert le["halt/steps_hist/1"] > 0 and le["halt/compute_saved"] > 0.25
    # the accuracy of the halted answers, as max halting computes it from its per-step answers
    assert le["halt/exact_accuracy"] == pytest.approx(mx["halt/exact_accuracy"], abs=2 / mx["all/count"])
    assert le["halt/mean_steps"] == pytest.approx(mx["halt/mean_steps"], abs=2 / mx["all/count"])
    assert main(["eval", str(shifted), "--halting", "learned"]) == 0
    out = capsys.readouterr().out
    assert "learned halting: exact_accuracy" in out and f"of max {N_}" in out and "compute saved" in out
    assert "puzzles halted at step: 1:" in out


def sudoku4_like_test_batch(cfg):
    """The first 64 test puzzles of the run's dataset."""
    from trmlab.data.loader import TestLoader

    return next(iter(TestLoader(cfg.data, 64)))
