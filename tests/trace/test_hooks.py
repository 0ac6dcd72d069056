"""run_with_cache and hooks on tiny untrained models: names, order, bit-identity, replacement."""
import numpy as np
import pytest
import torch

from trmlab.model import run_to_halt
from trmlab.trace import HookPoint, run_with_cache, sudoku_spec, trace
from trmlab.trace.tiny import random_batch, tiny_model

TASK = sudoku_spec(4)
T, n, N = 3, 2, 3  # the shape of conftest.py's `model`


def same_outputs(a, b):
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("logits", "q_halt_logits", "q_continue_logits"))


def test_hook_point_names_round_trip():
    for p in (HookPoint("input", 2), HookPoint("start", 0), HookPoint("latent", 3, 1, 4), HookPoint("answer", 3, 2)):
        assert HookPoint.parse(str(p)) == p
    assert str(HookPoint("latent", 3, 1, 4)) == "step3.rec1.latent4"
    assert str(HookPoint("answer", 3, 2, n)) == "step3.rec2.answer"
    with pytest.raises(ValueError, match="stepS.recT.latentI"):
        HookPoint.parse("step3.latent4")
    with pytest.raises(ValueError, match="name must be one of"):
        HookPoint("z", 0)
    with pytest.raises(ValueError, match="needs latent_step"):
        HookPoint("latent", 0, 1)


def test_outputs_are_the_models_own(model, batch, plain):
    outputs, cache = plain
    ref = run_to_halt(model, batch)
    assert torch.equal(outputs.logits, ref["logits"]) and torch.equal(outputs.preds, ref["preds"])
    assert torch.equal(outputs.steps, ref["steps"])
    assert [s.step for s in outputs.per_step] == list(range(N))
    assert torch.equal(outputs.per_step[-1].logits, ref["logits"])
    learned, _ = run_with_cache(model, batch, halting="learned", names=["answer"])
    ref = run_to_halt(model, batch, halting="learned")
    assert torch.equal(learned.preds, ref["preds"]) and torch.equal(learned.steps, ref["steps"])


def test_cache_names_shapes_and_order(model, batch, plain):
    _, cache = plain
    assert len(cache) == N * (1 + T * (n + 1))
    names = [str(p) for p in cache.keys()]
    assert names[:5] == ["step0.input", "step0.rec0.latent0", "step0.rec0.latent1", "step0.rec0.answer",
                         "step0.rec1.latent0"]
    L = TASK.seq_len + model.core.puzzle_positions
    assert cache["latent", 1, 2, 1].shape == (3, L, 32)
    assert torch.equal(cache["latent", 1, 2, 1], cache["step1.rec2.latent1"])
    assert torch.equal(cache["answer", 2, 0], cache[HookPoint("answer", 2, 0, n)])
    assert cache.stack("latent").shape == (N * T * n, 3, L, 32)
    assert cache.stack("answer").shape == (N * T, 3, L, 32)
    assert cache.stack("input").shape == (N, 3, L, 32)
    assert ("latent", 0, 0, 0) in cache and ("latent", 9, 0, 0) not in cache
    with pytest.raises(KeyError, match="step9.rec0.latent0 is not in this cache"):
        cache["latent", 9, 0, 0]
    x = model.core.embed_input(batch["inputs"], batch["puzzle_identifiers"])
    assert all(torch.equal(cache["input", s], x) for s in range(N))


def test_cache_holds_what_an_observer_sees_in_order(model, batch, plain):
    _, cache = plain
    seen = []

    def factory(step):
        def observer(event, t, i, answer, latent):
            seen.append((HookPoint(event, step, t, i), (latent if event == "latent" else answer).clone()))
        return observer

    run_to_halt(model, batch, observer_factory=factory)
    states = [p for p in cache.keys() if p.name != "input"]
    assert [str(p) for p, _ in seen] == [str(p) for p in states]
    assert all(torch.equal(cache[p], s) for p, s in seen)
    tr = trace(model, batch, events=("latent", "answer"), pca="none")
    assert [(tr.event_name(k), *tr.index[k]) for k in range(len(tr))] == [
        (p.name, p.step, p.recursion, p.latent_step) for p in states]


def test_names_filter_keeps_only_those(model, batch):
    _, cache = run_with_cache(model, batch, names=["answer", "step2.input"])
    assert {p.name for p in cache.keys()} == {"answer", "input"} and len(cache.points_of("input")) == 1
    _, cache = run_with_cache(model, batch, names=lambda p: p.step == 1 and p.name == "latent")
    assert len(cache) == T * n and all(p.step == 1 for p in cache.keys())
    with pytest.raises(ValueError, match="no 'answer' states"):
        cache.stack("answer")
    with pytest.raises(ValueError, match="neither a name"):
        run_with_cache(model, batch, names="latnet")


def test_identity_hooks_change_nothing(model, batch, plain):
    ref, cache = plain
    for fn in (lambda p, y, z: None, lambda p, y, z: (y, z), lambda p, y, z: (y.clone(), z.clone())):
        out, c = run_with_cache(model, batch, hooks=[("latent", fn), ("answer", fn), ("start", fn)])
        assert same_outputs(out, ref)
        assert all(torch.equal(c[p], cache[p]) for p in cache.keys())


def test_a_hook_replaces_and_the_recursion_continues_from_it(model, batch, plain):
    ref, cache = plain
    seen = []

    def zero_z(point, answer, latent):
        seen.append(str(point))
        return answer, torch.zeros_like(latent)

    out, c = run_with_cache(model, batch, hooks=[("step1.rec0.latent1", zero_z)])
    assert seen == ["step1.rec0.latent1"]
    assert torch.equal(c["latent", 1, 0, 1], torch.zeros_like(c["latent", 1, 0, 1]))
    keys = [str(p) for p in cache.keys()]
    at = keys.index("step1.rec0.latent1")
    assert all(torch.equal(c[k], cache[k]) for k in keys[:at])  # before: bit-identical
    y, x = cache["answer", 0, T - 1], cache["input", 1]
    with torch.no_grad():  # the answer update right after sees z = 0
        want = model.core.call(model.core.answer_net, y, torch.zeros_like(y))
    torch.testing.assert_close(c["answer", 1, 0], want)
    assert not torch.equal(c["answer", 1, 0], cache["answer", 1, 0])
    assert not torch.equal(out.logits, ref.logits)


def test_start_hook_sets_the_states_a_step_starts_from(model, batch, plain):
    ref, _ = plain
    y0, z0 = model.core.initial_state(3, "cpu")

    def restart(point, answer, latent):
        return y0.clone(), z0.clone()

    out, _ = run_with_cache(model, batch, hooks=[("step0.start", restart)])
    assert same_outputs(out, ref)  # step 0 starts from the initial states anyway
    out, _ = run_with_cache(model, batch, n_supervision=N + 1, hooks=[("step1.start", restart)])
    once, _ = run_with_cache(model, batch, n_supervision=N)
    assert torch.equal(out.per_step[-1].logits, once.per_step[-1].logits)  # step 1 started over


def test_bad_hooks_are_errors_that_say_where(model, batch):
    with pytest.raises(ValueError, match=r"hook at step0.rec0.latent0 returned a Tensor"):
        run_with_cache(model, batch, hooks=[("latent", lambda p, y, z: z)])
    with pytest.raises(ValueError, match=r"returned latent of shape \(3, 17, 16\).*expected shape \(3, 17, 32\)"):
        run_with_cache(model, batch, hooks=[("latent", lambda p, y, z: (y, z[..., :16]))])
    with pytest.raises(ValueError, match=r"hooks\[0\]: expected a pair"):
        run_with_cache(model, batch, hooks=[lambda p, y, z: None])


def test_model_observer_may_replace_directly(model, batch):
    """The model-level contract: an observer returning (answer, latent) replaces them (docs/contracts.md)."""
    with torch.no_grad():
        carry, out = model(model.initial_carry(batch), batch)
        carry2, out2 = model(model.initial_carry(batch), batch, observer=lambda e, t, i, y, z: (y, z))
        assert torch.equal(out["logits"], out2["logits"])
        _, out3 = model(model.initial_carry(batch), batch,
                        observer=lambda e, t, i, y, z: (y, z * 0) if e == "answer" and t == T - 1 else None)
        assert torch.equal(out3["logits"], out["logits"])  # the last z is replaced after y was made
        _, out4 = model(model.initial_carry(batch), batch,
                        observer=lambda e, t, i, y, z: (y, z * 0) if e == "answer" and t == 0 else None)
        assert not torch.equal(out4["logits"], out["logits"])


def test_single_z_has_one_state():
    model = tiny_model(TASK, hidden=32, n_recursions=2, n_latent_steps=2, n_supervision=2, latent_mode="single_z")
    batch = random_batch(TASK, batch_size=2, seed=3)
    shown = []

    def look(point, answer, latent):
        shown.append(answer is latent)

    run_with_cache(model, batch, hooks=[(["latent", "answer"], look)])
    assert shown and all(shown)  # one state, shown as both

    def zero_answer(point, answer, latent):  # changing the answer changes the one state
        return torch.zeros_like(answer), latent

    _, c = run_with_cache(model, batch, hooks=[("step0.rec0.answer", zero_answer)])
    assert torch.equal(c["answer", 0, 0], torch.zeros_like(c["answer", 0, 0]))
    _, c2 = run_with_cache(model, batch, hooks=[("step0.rec0.answer", lambda p, y, z: (y, torch.zeros_like(z)))])
    assert all(torch.equal(c[k], c2[k]) for k in c.keys())  # the same, changed either way
    with pytest.raises(ValueError, match="one state"):
        run_with_cache(model, batch, hooks=[("latent", lambda p, y, z: (y + 1, z + 2))])
