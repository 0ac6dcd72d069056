"""The tracer on tiny models: record count and index, agreement with the model's own output, options."""
import numpy as np
import pytest
import torch

from trmlab.trace import Trace, expected_records, fit_pca, sudoku_spec, trace
from trmlab.trace.tiny import random_batch, tiny_model

TASK = sudoku_spec(4)


@pytest.fixture(scope="module")
def model():
    return tiny_model(TASK, hidden=32, n_recursions=3, n_latent_steps=2, n_supervision=3)


@pytest.fixture(scope="module")
def batch():
    return random_batch(TASK, batch_size=3, seed=1)


@pytest.fixture(scope="module")
def full(model, batch):
    return trace(model, batch)


def expected_index(N, T, n):
    rows = []
    for s in range(N):
        for t in range(T):
            rows += [((s, t, i), "latent") for i in range(n)]
            rows.append(((s, t, n), "answer"))
        rows.append(((s, T - 1, n), "supervision"))
    return rows


def test_record_count_and_index_match_T_n_Nsup(model, full):
    T, n, N = model.cfg.n_recursions, model.cfg.n_latent_steps, model.cfg.n_supervision
    assert (T, n, N) == (3, 2, 3)
    assert len(full) == expected_records(N, T, n) == N * (T * (n + 1) + 1) == 30
    want = expected_index(N, T, n)
    assert [tuple(r) for r in full.index.tolist()] == [w[0] for w in want]
    assert [full.event_name(k) for k in range(len(full))] == [w[1] for w in want]
    assert full.step_label(0) == "supervision step 1/3 · recursion 1/3 · latent update z 1/2"
    assert full.step_label(2) == "supervision step 1/3 · recursion 1/3 · answer update y"
    assert full.step_label(len(full) - 1) == "supervision step 3/3 · output (end of step)"
    B, L = 3, TASK.seq_len
    assert full.y_pred.shape == full.z_pred.shape == (30, B, L)
    assert full.y_cell_pc.shape == (30, B, L, 2) and full.y_pc.shape == (30, B, 2)
    assert full.halt_prob.shape == full.y_delta.shape == (30, B)


def test_more_supervision_steps_than_the_model(model, batch):
    tr = trace(model, batch, n_supervision=5, events=("answer", "supervision"))
    assert len(tr) == expected_records(5, 3, 2, ("answer", "supervision")) == 5 * 4
    assert tr.meta["n_supervision"] == 5 and sorted(set(tr.index[:, 0].tolist())) == [0, 1, 2, 3, 4]


def test_last_record_equals_the_models_normal_output(model, batch, full):
    with torch.no_grad():
        carry = model.initial_carry(batch)
        for _ in range(model.cfg.n_supervision):
            carry, out = model(carry, batch)  # observer None: the normal forward
    preds = out["logits"].argmax(-1).numpy()
    np.testing.assert_array_equal(full.final_answer(), preds)
    ans = full.records(events=["answer"])[-1]  # the last answer update decodes to the same answer
    np.testing.assert_array_equal(full.y_pred[ans], preds)
    np.testing.assert_allclose(full.halt_prob[-1], torch.sigmoid(out["q_halt_logits"]).numpy(), rtol=1e-5)
    from trmlab.model import run_to_halt

    np.testing.assert_array_equal(run_to_halt(model, batch)["preds"].numpy(), preds)


def test_deltas_and_norms(full):
    lat, ans = full.records(events=["latent"]), full.records(events=["answer"])
    assert np.all(full.y_delta[lat] == 0)  # y does not move during latent updates
    assert np.all(full.z_delta[ans] == 0)  # z does not move during the answer update
    assert np.all(full.z_delta[lat] > 0) and np.all(full.y_delta[ans] > 0)
    assert np.isfinite(full.y_delta).all() and (full.y_norm > 0).all()


def test_keep_steps_puzzles_events_select_the_same_values(model, batch, full):
    part = trace(model, batch, keep_steps=[1, 2], keep_puzzles=[2, 0], events=("answer", "supervision"))
    assert part.n_puzzles == 2 and part.meta["puzzle_rows"] == [2, 0]
    assert set(part.index[:, 0].tolist()) == {1, 2}
    sel = [k for k in range(len(full)) if full.index[k, 0] in (1, 2) and full.event_name(k) != "latent"]
    assert len(part) == len(sel) == 2 * (3 + 1)
    np.testing.assert_array_equal(part.y_pred, full.y_pred[sel][:, [2, 0]])
    np.testing.assert_array_equal(part.z_pred, full.z_pred[sel][:, [2, 0]])
    np.testing.assert_allclose(part.halt_prob, full.halt_prob[sel][:, [2, 0]], rtol=1e-5)
    np.testing.assert_allclose(part.z_delta, full.z_delta[sel][:, [2, 0]], rtol=1e-4)
    # memory is proportional to what is kept
    assert part.y_cell_pc.nbytes * 30 == full.y_cell_pc.nbytes * 8 * 2 / 3
    with pytest.raises(ValueError, match="unknown events"):
        trace(model, batch, events=("latnet",))


def test_tracing_changes_nothing_and_observer_off_is_the_plain_forward(model, batch):
    calls = []
    with torch.no_grad():
        c1 = model.initial_carry(batch)
        c2 = model.initial_carry(batch)
        c1, o1 = model(c1, batch)
        c2, o2 = model(c2, batch, observer=lambda *a: calls.append(a[:3]))
    torch.testing.assert_close(o1["logits"], o2["logits"])
    T, n = model.cfg.n_recursions, model.cfg.n_latent_steps
    assert len(calls) == T * (n + 1)


def test_pca_second_pass_matches_held_states(model, batch, full):
    two = trace(model, batch, state_budget_mb=0)
    assert full.meta["pca_states"] == "held" and two.meta["pca_states"] == "second pass"
    np.testing.assert_allclose(two.y_cell_pc, full.y_cell_pc, atol=5e-2 * np.abs(full.y_cell_pc).max())
    np.testing.assert_allclose(two.y_pc, full.y_pc, rtol=1e-5, atol=1e-5)
    sep = trace(model, batch, pca="separate")
    assert sep.meta["pca"] == "separate"


def test_save_load_roundtrip(tmp_path, full):
    npz, js = full.save(str(tmp_path / "t"))
    back = Trace.load(npz)
    assert len(back) == len(full) and back.task == full.task and back.meta["n_recursions"] == 3
    for k, v in full.arrays.items():
        np.testing.assert_array_equal(back.arrays[k], v)
    np.testing.assert_array_equal(back.labels, full.labels)
    assert back.step_label(5) == full.step_label(5)
    one = full.puzzle(1)
    assert one.n_puzzles == 1 and np.array_equal(one.y_pred[:, 0], full.y_pred[:, 1])


def test_accuracy_and_correctness(full):
    acc = full.accuracy("y")
    assert acc.shape == (len(full), full.n_puzzles) and ((acc >= 0) & (acc <= 1)).all()
    c = full.correct("y")
    np.testing.assert_allclose(acc, c.sum(-1) / 16)
    assert full.halted_at().shape == (3,)


def test_fit_pca_finds_the_main_axis():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 5)) * np.array([10, 3, 0.1, 0.1, 0.1])
    p = fit_pca(x)
    assert abs(abs(p.components[0, 0]) - 1) < 1e-3 and abs(abs(p.components[1, 1]) - 1) < 1e-2
    assert p.explained_variance_ratio[0] > 0.85 and p.transform(x).shape == (500, 2)


def test_one_pca_fit_for_cells_and_pooled_paths(model, batch, full):
    """The pooled point is the mean of the cells projected with the same plane (one fit, not two)."""
    assert full.meta["pca"] == "joint" and "pca_pooled_explained" not in full.meta
    for which in ("y", "z"):
        cells = full.arrays[f"{which}_cell_pc"].astype(np.float64)
        scale = np.abs(cells).max()
        np.testing.assert_allclose(full.arrays[f"{which}_pc"], cells.mean(2), atol=2e-3 * scale)
    sep = trace(model, batch, pca="separate")
    for which in ("y", "z"):
        cells = sep.arrays[f"{which}_cell_pc"].astype(np.float64)
        np.testing.assert_allclose(sep.arrays[f"{which}_pc"], cells.mean(2), atol=2e-3 * np.abs(cells).max())


def test_accuracy_on_the_cells_to_fill_leaves_the_givens_out(full):
    givens = TASK.givens(full.inputs)  # [B, L]
    assert givens.any() and (~givens).any()
    to_fill = full.correct("y", "to_fill")
    assert not to_fill[:, givens].any()
    np.testing.assert_array_equal(to_fill[:, ~givens], full.correct("y")[:, ~givens])
    n = (~givens).sum(-1)
    np.testing.assert_allclose(full.accuracy("y", "to_fill"), to_fill.sum(-1) / n[None])
    with pytest.raises(ValueError, match="'all' or 'to_fill'"):
        full.accuracy("y", "givens")


def _with_halting(tr, halt, cont, act_continue):
    arrays = dict(tr.arrays, halt_logit=np.asarray(halt, np.float32), continue_logit=np.asarray(cont, np.float32),
                  halt_prob=(1 / (1 + np.exp(-np.asarray(halt)))).astype(np.float32))
    meta = dict(tr.meta, model=dict(tr.meta["model"], act_continue=act_continue))
    return Trace(tr.task, tr.index, tr.event, tr.inputs, tr.labels, arrays, meta)


def test_halted_at_follows_the_models_halting_rule(full):
    """Halt logit > 0 for the reference's TRM; halt > continue for a model trained with the continue loss."""
    R, B = full.halt_prob.shape
    sup = full.records(events=["supervision"])  # one per supervision step (3)
    halt = np.full((R, B), -3.0)
    cont = np.full((R, B), -5.0)  # continue below halt everywhere: act_continue halts at once
    halt[sup[1], 0] = 2.0  # puzzle 0: halt logit > 0 at step 1
    cont[sup[0], 1] = -1.0  # puzzle 1: continue wins step 0, halt wins from step 1
    halt[sup[1], 1], cont[sup[1], 1] = -4.0, -4.5
    cont[:, 2] = 0.0  # puzzle 2: continue always wins
    plain = _with_halting(full, halt, cont, act_continue=False)
    np.testing.assert_array_equal(plain.halted_at(), [1, 2, 2])  # only puzzle 0's logit is ever > 0
    q = _with_halting(full, halt, cont, act_continue=True)
    np.testing.assert_array_equal(q.halted_at(), [0, 1, 2])


def test_trace_keeps_both_halting_logits_of_the_model(model, batch, full):
    with torch.no_grad():
        carry = model.initial_carry(batch)
        for _ in range(model.cfg.n_supervision):
            carry, out = model(carry, batch)
    np.testing.assert_allclose(full.halt_logit[-1], out["q_halt_logits"].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(full.continue_logit[-1], out["q_continue_logits"].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(full.halt_prob, 1 / (1 + np.exp(-full.halt_logit)), rtol=1e-5)


def _halting_model(**overrides):
    """A tiny model whose halting head (random weights) stops different puzzles at different steps."""
    model = tiny_model(TASK, hidden=32, n_recursions=3, n_latent_steps=2, n_supervision=4, **overrides)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        model.core.q_head.weight.copy_(torch.randn(model.core.q_head.weight.shape, generator=g) * 0.5)
        model.core.q_head.bias.zero_()
    return model


@pytest.mark.parametrize("act_continue", [False, True])
def test_supervision_records_are_what_the_models_loop_yields(act_continue):
    """trace() runs the evaluator's loop (supervision_steps): its supervision records are that loop's
    outputs, and run_to_halt's answers are the trace's at the step its halting rule names."""
    from trmlab.model import run_to_halt, supervision_steps

    model = _halting_model(act_continue=act_continue)
    batch = random_batch(TASK, batch_size=6, seed=2)
    B, N = 6, model.cfg.n_supervision
    tr = trace(model, batch)
    sup = tr.records(events=["supervision"])
    with torch.no_grad():
        steps = list(supervision_steps(model, batch, N, "max", with_carry=True))
        z_logits = [model.decode(s.carry.latent) for s in steps]
    assert len(sup) == len(steps) == N
    for k, s, zl in zip(sup, steps, z_logits):
        assert tr.index[k, 0] + 1 == s.step and s.rows.tolist() == list(range(B))
        probs = torch.softmax(s.out["logits"].float(), -1)
        np.testing.assert_array_equal(tr.y_pred[k], probs.argmax(-1).numpy())
        np.testing.assert_array_equal(tr.y_conf[k], probs.max(-1).values.half().numpy())
        np.testing.assert_array_equal(tr.z_pred[k], zl.argmax(-1).numpy())
        np.testing.assert_array_equal(tr.halt_logit[k], s.out["q_halt_logits"].numpy())
        np.testing.assert_array_equal(tr.continue_logit[k], s.out["q_continue_logits"].numpy())
        np.testing.assert_array_equal(tr.halted[k], s.carry.halted.numpy())
        np.testing.assert_array_equal(tr.wants_to_halt()[k], s.wants.numpy())
    halted_at = tr.halted_at()
    assert len(set(halted_at.tolist())) > 1  # the puzzles stop at different steps
    rows = np.arange(B)
    for halting, at in (("max", np.full(B, N - 1)), ("learned", halted_at)):
        res = run_to_halt(model, batch, halting=halting)
        np.testing.assert_array_equal(res["steps"].numpy(), at + 1)
        np.testing.assert_array_equal(res["preds"].numpy(), tr.y_pred[sup[at], rows])
        np.testing.assert_allclose(res["q_halt_logits"].numpy(), tr.halt_logit[sup[at], rows], rtol=1e-5, atol=1e-6)


def test_continue_after_halt_false_restarts_what_the_wrapper_halts():
    """With eval_halting="learned" the wrapper halts a puzzle when its head says so; continue_after_halt=False
    lets it reset that slot, so the puzzle starts again: the step after a halt repeats step 0."""
    from trmlab.model import supervision_steps

    model = _halting_model(eval_halting="learned")
    batch = random_batch(TASK, batch_size=6, seed=2)
    events = ("answer", "supervision")
    keep = trace(model, batch, events=events)
    restart = trace(model, batch, events=events, continue_after_halt=False)
    again = trace(model, batch, events=events, continue_after_halt=False, state_budget_mb=0)  # PCA second pass
    np.testing.assert_allclose(again.y_cell_pc, restart.y_cell_pc, atol=5e-2 * np.abs(restart.y_cell_pc).max())
    sup = keep.records(events=["supervision"])
    by_step = [keep.records(steps=[s]) for s in range(4)]
    first = keep.halted_at()
    assert (first < 3).any() and (first == 3).any()
    for b in range(6):
        s0 = int(first[b])
        np.testing.assert_array_equal(restart.halt_logit[sup[:s0 + 1], b], keep.halt_logit[sup[:s0 + 1], b])
        if s0 < 3:  # halted before the last step: reset, the next step is step 0 again
            np.testing.assert_array_equal(restart.halt_logit[by_step[s0 + 1], b], keep.halt_logit[by_step[0], b])
            np.testing.assert_array_equal(restart.y_pred[by_step[s0 + 1], b], keep.y_pred[by_step[0], b])
            assert not np.array_equal(keep.halt_logit[by_step[s0 + 1], b], keep.halt_logit[by_step[0], b])
    with pytest.raises(ValueError, match="restart_halted"):
        next(supervision_steps(model, batch, 4, "learned", restart_halted=True))
