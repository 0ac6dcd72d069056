"""What machine this is: CPU model, the instruction-set flags that decide speed, cores, torch build.

Model cards record it (where a zoo model was trained) and the benchmark (``trmlab bench``) files its
results under it. :func:`native_bf16` decides from the flags alone whether the CPU computes bf16
matmuls in hardware (AVX-512 BF16 or AMX); without them bf16 is emulated and ~10x slower than fp32.
"""
from __future__ import annotations

import os
import platform
import re
from typing import Callable, Iterable, Optional

#: flags that matter for trmlab's speed, in the order they are reported
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_tile", "amx_bf16",
               "amx_int8")
#: any one of these means bf16 matmuls run natively
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bf16(flags: Iterable[str] | str) -> bool:
    """Whether a CPU with these flags (a list, or ``/proc/cpuinfo``'s space-separated string) has
    native bf16 matmul: AVX-512 BF16 or AMX-BF16."""
    have = set(flags.split()) if isinstance(flags, str) else set(flags)
    return any(f in have for f in NATIVE_BF16_FLAGS)


def _cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str, list[str]]:
    model, flags = "", []
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = value.split()
                if model and flags:
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def cpu_info(path: str = "/proc/cpuinfo") -> dict:
    """``model``, ``cores`` (usable by this process), ``flags`` (those of :data:`SPEED_FLAGS` present),
    ``native_bf16``, ``torch`` (version) and ``threads`` (torch's intra-op threads)."""
    import torch

    model, flags = _cpuinfo(path)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"model": model, "cores": cores, "flags": [f for f in SPEED_FLAGS if f in flags],
            "native_bf16": native_bf16(flags), "torch": torch.__version__, "threads": torch.get_num_threads()}


def machine_kind(info: Optional[dict] = None) -> str:
    """A file-name-safe name for this kind of machine: cores, CPU model, bf16 capability
    (``2cpu-intel-xeon-processor-avx512bf16``)."""
    info = info or cpu_info()
    model = re.sub(r"\(r\)|\(tm\)|cpu|@.*$", "", info["model"].lower())
    model = re.sub(r"[^a-z0-9]+", "-", model).strip("-") or "cpu"
    isa = "avx512bf16" if info["native_bf16"] else ("avx512" if "avx512f" in info["flags"] else
                                                    "avx2" if "avx2" in info["flags"] else "basic")
    return f"{info['cores']}cpu-{model}-{isa}"


#: bf16 must be at least this much faster than fp32 in the measurement for ``dtype=auto`` to pick it
BF16_MIN_SPEEDUP = 1.15


def choose_cpu_dtype(flags: Iterable[str] | str, measure: Optional[Callable[[str], float]] = None,
                     min_speedup: float = BF16_MIN_SPEEDUP, rounds: int = 2) -> tuple[str, str]:
    """``dtype=auto`` on a CPU: ``("float32" | "bfloat16", why)``.

    Capability first: without native bf16 (:func:`native_bf16`) the answer is fp32 and nothing is
    measured (bf16 would be emulated, ~10x slower). With it, ``measure(dtype_name)`` -- seconds of a
    short piece of the model's own work in that dtype, supplied by the caller -- decides: bf16 only if
    it is at least ``min_speedup`` times faster (at small widths the casts around bf16 matmuls cost more
    than the matmuls save, so even a native-bf16 CPU is often faster in fp32). Without ``measure`` a
    native-bf16 CPU gets bf16.
    """
    if not native_bf16(flags):
        return "float32", "fp32: the CPU has no native bf16 (AVX-512 BF16 or AMX), so bf16 would be emulated"
    if measure is None:
        return "bfloat16", "bf16: the CPU has native bf16 (not measured)"
    # alternate the two, best of each: a busy moment then hits both dtypes, not one
    times = {"float32": [], "bfloat16": []}
    for _ in range(rounds):
        for dtype in times:
            times[dtype].append(float(measure(dtype)))
    t32, t16 = min(times["float32"]), min(times["bfloat16"])
    speedup = t32 / t16 if t16 > 0 else float("inf")
    if speedup >= min_speedup:
        return "bfloat16", (f"bf16: native bf16, and the model's block ran {speedup:.2f}x faster in bf16 "
                            f"({t16 * 1e3:.1f} ms vs {t32 * 1e3:.1f} ms fp32)")
    return "float32", (f"fp32: native bf16, but the model's block ran only {speedup:.2f}x as fast in bf16 "
                       f"({t16 * 1e3:.1f} ms vs {t32 * 1e3:.1f} ms fp32; bf16 needs >= {min_speedup:.2f}x)")


def matmul_seconds(batch: int, m: int, k: int, n: int, dtype: str = "float32", seconds: float = 0.2,
                   device: str = "cpu") -> float:
    """Best time of ``batch`` x [m, k] @ [k, n] in ``dtype`` on ``device``, written into a preallocated
    result, repeated for about ``seconds`` (a warm-up call first). FLOP/s = 2 batch m k n / this."""
    import time

    import torch

    dt = getattr(torch, dtype)
    shape_a = (batch, m, k) if batch > 1 else (m, k)
    shape_b = (batch, k, n) if batch > 1 else (k, n)
    a = torch.randn(shape_a, device=device).to(dt)
    b = torch.randn(shape_b, device=device).to(dt)
    # into one preallocated result: the product's own speed, not the allocator's (glibc maps a fresh
    # result above 32 MiB and faults it in page by page each call: ~20% of the time at [3104, 512] @ [512, 3072])
    c = torch.matmul(a, b)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    torch.matmul(a, b, out=c)
    sync()
    best, spent, runs = float("inf"), 0.0, 0
    while runs < 3 or spent < seconds:
        t0 = time.perf_counter()
        torch.matmul(a, b, out=c)
        sync()
        dt_s = time.perf_counter() - t0
        best, spent, runs = min(best, dt_s), spent + dt_s, runs + 1
    return best


def auto_threads() -> int:
    """torch's default thread count (one per core), or 1 when the 1-minute load average says other work
    already keeps at least half of the cores busy. OpenMP threads spin while they wait, so on busy cores
    they fight the other jobs: measured on 2 shared cores with ``cpu_sudoku4`` under papermill, 6.7 s a
    step with 2 threads against 0.31 s with 1 (0.1 s with 2 threads when the machine was idle)."""
    import torch

    default = torch.get_num_threads()
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return default
    cores = os.cpu_count() or default
    return 1 if default > 1 and load >= max(1.0, cores / 2) else default
