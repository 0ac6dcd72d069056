"""The evaluation batch: configured, the global batch on a GPU, or the fastest measured on a CPU. The
decision is tested with injected measurements, so nothing here is timed."""
import pytest
import torch

from trmlab.config import ConfigError, get_preset
from trmlab.eval.batch_size import CANDIDATES, MAX_STEP_SECONDS, choose_eval_batch, step_seconds
from trmlab.model import build_model


def fake(seconds_per_batch: dict):
    calls = []

    def measure(b):
        calls.append(b)
        return seconds_per_batch[b]
    return measure, calls


def test_a_configured_batch_is_kept_and_nothing_measured():
    measure, calls = fake({})
    assert choose_eval_batch(250, 64, "cpu", measure)[0] == 250
    assert calls == []


def test_on_a_gpu_auto_is_the_global_batch():
    measure, calls = fake({})
    batch, why = choose_eval_batch(0, 768, "cuda", measure)
    assert batch == 768 and "global batch" in why and calls == []


def test_on_a_cpu_the_fastest_measured_batch_wins_and_larger_ones_stop_past_the_peak():
    # puzzles/s: 16 -> 400, 32 -> 600, 64 -> 700, 128 -> 500 (< 0.8 x 700: stop), 256 never tried
    rates = {16: 400, 32: 600, 64: 700, 128: 500, 256: 900}
    measure, calls = fake({b: b / r for b, r in rates.items()})
    batch, why = choose_eval_batch(0, 64, "cpu", measure)
    assert batch == 64
    assert calls == [16, 16, 32, 32, 64, 64, 128, 128]  # each twice, the best counts
    assert "64: 700" in why and "256" not in why


def test_the_choice_may_exceed_the_global_batch_and_scales_with_processes():
    rates = {b: 100 + b for b in CANDIDATES}  # bigger is always faster, and quick
    measure, _ = fake({b: min(b / r, MAX_STEP_SECONDS / 2) for b, r in rates.items()})
    assert choose_eval_batch(0, 32, "cpu", measure)[0] == CANDIDATES[-1]
    assert choose_eval_batch(0, 32, "cpu", measure, world_size=2)[0] == 2 * CANDIDATES[-1]


def test_a_slow_step_stops_the_search():
    # 16 -> 40 puzzles/s, 32 -> 43 puzzles/s but one step takes longer than MAX_STEP_SECONDS: stop there
    measure, calls = fake({16: 0.4, 32: MAX_STEP_SECONDS * 1.5, 64: 0.01})
    batch, _ = choose_eval_batch(0, 64, "cpu", measure)
    assert 64 not in calls and batch == 32


def test_negative_is_an_error_in_the_config_and_here():
    with pytest.raises(ConfigError, match="eval_batch_size"):
        get_preset("cpu_tiny", ["train.eval_batch_size=-1"])
    with pytest.raises(ValueError, match="eval_batch_size"):
        choose_eval_batch(-1, 64, "cpu")


def test_measuring_leaves_the_global_rng_and_the_model_mode_alone():
    cfg = get_preset("cpu_tiny").model
    model = build_model(cfg)
    model.train()
    state = torch.get_rng_state()
    assert step_seconds(model, 4, cfg.seq_len, cfg.vocab_size) > 0
    assert torch.equal(torch.get_rng_state(), state) and model.training
