"""What the machine is, and what ``dtype=auto`` picks from its capability and a measurement (injected
here, so nothing is timed)."""
import pytest
import torch

from trmlab import machine
from trmlab.config import get_preset
from trmlab.train import distributed as D

# /proc/cpuinfo flag strings: the 2-core AVX2 machine, an AVX-512 BF16 Xeon, a Sapphire Rapids (AMX)
AVX2_ONLY = "fpu vme de pse tsc msr pae mce cx8 apic sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2"
AVX512_BF16 = AVX2_ONLY + " avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni avx512_bf16"
AMX = AVX512_BF16 + " amx_bf16 amx_tile amx_int8"


def _never(dtype):
    raise AssertionError("a CPU without native bf16 must not be measured")


def test_avx2_only_picks_fp32_without_measuring():
    choice, why = machine.choose_cpu_dtype(AVX2_ONLY, _never)
    assert choice == "float32" and "no native bf16" in why


@pytest.mark.parametrize("flags", [AVX512_BF16, AMX])
def test_native_bf16_picks_bf16_when_the_measurement_says_it_is_faster(flags):
    seconds = {"float32": 1.0, "bfloat16": 0.55}
    choice, why = machine.choose_cpu_dtype(flags, seconds.__getitem__)
    assert choice == "bfloat16" and "1.82x faster" in why


@pytest.mark.parametrize("flags", [AVX512_BF16, AMX])
def test_native_bf16_keeps_fp32_when_bf16_is_slower_or_barely_faster(flags):
    for bf16 in (1.7, 0.95):  # this machine at hidden 128 (bf16 1.7x slower); a 5% gain is not enough
        choice, why = machine.choose_cpu_dtype(flags, {"float32": 1.0, "bfloat16": bf16}.__getitem__)
        assert choice == "float32" and "native bf16, but" in why


def test_native_bf16_without_a_measurement_is_bf16():
    assert machine.choose_cpu_dtype(AMX)[0] == "bfloat16"
    assert machine.native_bf16(AMX.split()) and not machine.native_bf16(AVX2_ONLY.split())


def test_resolve_dtype_explicit_choices_and_bad_name():
    cpu = torch.device("cpu")
    assert D.resolve_dtype("float32", cpu) == torch.float32
    assert D.resolve_dtype("bfloat16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="auto, float32 or bfloat16"):
        D.resolve_dtype("fp16", cpu)


def test_resolve_dtype_auto_on_this_cpu_follows_the_decision(monkeypatch, capsys):
    """auto on the CPU is choose_cpu_dtype over this CPU's flags and the model's block, and is printed."""
    cfg = get_preset("cpu_tiny").model
    monkeypatch.setattr(D, "_AUTO_CACHE", {})
    monkeypatch.setattr(D, "block_seconds", lambda c, d, b: {"float32": 1.0, "bfloat16": 0.5}[d])
    monkeypatch.setattr(machine, "cpu_info", lambda: {"flags": AMX.split()})
    assert D.resolve_dtype("auto", torch.device("cpu"), cfg) == torch.bfloat16
    assert "dtype=auto -> bf16" in capsys.readouterr().err
    monkeypatch.setattr(D, "_AUTO_CACHE", {})
    monkeypatch.setattr(machine, "cpu_info", lambda: {"flags": AVX2_ONLY.split()})
    assert D.resolve_dtype("auto", torch.device("cpu"), cfg) == torch.float32


def test_block_measurement_runs_in_both_dtypes():
    cfg = get_preset("cpu_tiny").model
    for dtype in ("float32", "bfloat16"):
        assert D.block_seconds(cfg, dtype, batch=2, seconds=0.0) > 0


def test_matmul_seconds_is_positive_for_plain_and_batched_products():
    assert machine.matmul_seconds(1, 8, 8, 8, seconds=0.0) > 0
    assert machine.matmul_seconds(3, 8, 4, 8, dtype="bfloat16", seconds=0.0) > 0


def test_machine_kind_names_the_bf16_capability():
    info = {"model": "Intel(R) Xeon(R) Processor @ 2.1GHz", "cores": 2, "flags": ["avx2", "fma"], "native_bf16": False}
    assert machine.machine_kind(info) == "2cpu-intel-xeon-processor-avx2"
    info.update(flags=["avx2", "avx512f", "avx512_bf16"], native_bf16=True)
    assert machine.machine_kind(info) == "2cpu-intel-xeon-processor-avx512bf16"


def test_measurements_alternate_and_the_best_of_each_counts():
    calls = []
    noisy = {"float32": iter([5.0, 1.0]), "bfloat16": iter([0.7, 3.0])}  # a busy moment hits each once

    def measure(dtype):
        calls.append(dtype)
        return next(noisy[dtype])

    choice, why = machine.choose_cpu_dtype(AMX, measure)
    assert calls == ["float32", "bfloat16", "float32", "bfloat16"]
    assert choice == "bfloat16" and "1.43x faster" in why
