"""What machine this is: CPU model, the instruction-set flags that decide speed, cores, torch build.

Model cards record it (where a zoo model was trained) and the benchmark (``trmlab bench``) files its
results under it. :func:`native_bf16` decides from the flags alone whether the CPU computes bf16
matmuls in hardware (AVX-512 BF16 or AMX); without them bf16 is emulated and ~10x slower than fp32.
"""
from __future__ import annotations

import os
import platform
import re
from typing import Iterable, Optional

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
