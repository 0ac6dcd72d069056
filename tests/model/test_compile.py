"""torch.compile of the recursion: one graph with no breaks, and the same numbers as eager."""
import pytest
import torch

from trmlab.config import get_preset
from trmlab.model import build_model
from trmlab.bench.speed import random_batch


@pytest.mark.parametrize("preset", ["cpu_tiny", "cpu_mlp_sudoku4", "cpu_hrm_sudoku4"])
@pytest.mark.parametrize("grad", [True, False])
def test_recursion_is_one_graph_without_breaks(preset, grad):
    cfg = get_preset(preset)
    model = build_model(cfg.model)
    model.train(grad)
    batch = random_batch(cfg, 2)
    core = model.core
    with torch.set_grad_enabled(grad):
        x = core.embed_input(batch["inputs"], batch["puzzle_identifiers"])
        y, z = core.initial_state(2, "cpu")
        explained = torch._dynamo.explain(core.recursion_step)(x, y, z)
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons]
    assert explained.graph_count == 1


def test_compiled_training_step_matches_eager():
    cfg = get_preset("cpu_tiny")
    batch = random_batch(cfg, 2)
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build_model(cfg.model)
        model.train()
        if compiled:
            model.core.compile_recursion(fullgraph=True)
        carry, out = model(model.initial_carry(batch), batch)
        out["logits"].float().square().mean().backward()
        results.append((out["logits"].detach(), carry.answer, model.core.lm_head.weight.grad.clone()))
    for eager, comp in zip(*results):
        torch.testing.assert_close(comp, eager, rtol=1e-4, atol=1e-5)
    model.core.compile_recursion(False)
    assert model.core._compiled_step is None
