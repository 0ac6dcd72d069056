"""Process groups, devices and dtypes: one code path for CPU and CUDA, one process or many (torchrun).

Under ``torchrun`` (``LOCAL_RANK``/``WORLD_SIZE`` set) :func:`setup` initialises ``torch.distributed`` with
NCCL on GPUs and gloo on CPU; multi-node runs use torchrun's usual rendezvous flags. Gradients of the
dense parameters are summed with one coalesced all-reduce per step (the reference sums each grad; the
loss is divided by the global batch size, so the sum is the global-batch mean). Parameters and buffers
are broadcast from rank 0 at start, so every rank begins identical.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("train.device=cuda but no CUDA device is available (use device=cpu or auto)")
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on CUDA devices that support it, fp32 on CPU.

    On CPUs with native bf16 (AVX512-BF16/AMX) bf16 pays off only for large matmuls (hidden 512: ~1.8x,
    see docs/performance.md); for the small CPU presets fp32 is faster, so ``auto`` keeps fp32 there and
    ``dtype=bfloat16`` asks for bf16 explicitly.
    """
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.float32


def setup(device_name: str = "auto") -> DistInfo:
    """Initialise the process group when launched by torchrun; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module, info: DistInfo) -> None:
    """Make every rank's parameters and buffers equal to rank 0's."""
    if not info.distributed:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def all_reduce_grads(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """Sum the gradients across ranks in one flat buffer."""
    if not info.distributed:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def reduce_sums(values: dict, info: DistInfo) -> dict:
    """Sum a dict of scalars over ranks (every rank gets the result). Keys are taken in sorted order."""
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=info.device)
    if info.distributed:
        dist.all_reduce(t)
    return dict(zip(keys, t.tolist()))


def all_gather_objects(obj, info: DistInfo) -> list:
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()
