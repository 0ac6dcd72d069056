"""Building blocks of the TRM network, as the reference defines them (docs/reference.md section 2).

* weights are stored in fp32 and cast to the activation dtype at every forward (``CastedLinear``);
* RMSNorm has no learnable scale and is computed in fp32;
* RoPE uses the rotate-half convention over every position, puzzle positions included;
* attention is non-causal ``scaled_dot_product_attention`` with no mask;
* blocks are post-norm: ``x <- norm(x + mixer(x))`` then ``x <- norm(x + swiglu(x))``;
* the TRM-MLP mixer is a SwiGLU across the sequence axis whose norm runs over the sequence axis.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Standard deviation of a standard normal truncated to [-2, 2]; dividing by it makes the actual
# std of a truncated sample equal the requested one (JAX's truncated_normal initialiser).
_TRUNC2_STD = math.sqrt(
    1.0 - 2.0 * 2.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / math.erf(2.0 / math.sqrt(2.0))
)


def trunc_normal_(tensor: torch.Tensor, std: float = 1.0) -> torch.Tensor:
    """Fill ``tensor`` with a normal truncated at +-2 sigma whose *actual* std equals ``std``."""
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        nn.init.trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0)
        return tensor.mul_(std / _TRUNC2_STD)


def round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


class CastedLinear(nn.Module):
    """Linear layer with fp32 weights cast to the input's dtype; LeCun truncated-normal init."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_(torch.empty(out_features, in_features), 1.0 / math.sqrt(in_features)))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.weight.to(x.dtype), bias)


class CastedEmbedding(nn.Module):
    """Lookup table with fp32 weights, truncated-normal init of std ``init_std``, cast at forward."""

    def __init__(self, num_embeddings: int, dim: int, init_std: float):
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_(torch.empty(num_embeddings, dim), init_std))

    def forward(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.embedding(ids.long(), self.weight.to(dtype))


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last axis, without a learnable scale, computed in fp32."""
    dtype = x.dtype
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.square().mean(-1, keepdim=True) + eps)).to(dtype)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for rotate-half RoPE over ``positions`` positions (non-persistent buffers)."""

    def __init__(self, head_dim: int, positions: int, theta: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        angles = torch.outer(torch.arange(positions, dtype=torch.float32), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)  # the head_dim/2 frequencies duplicated
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)


def swap_halves(x: torch.Tensor) -> torch.Tensor:
    """``cat(x2, x1)``: the two halves of the last axis exchanged, written as a flip of a [2, hd/2] view so
    that a compiled kernel reads it with plain index arithmetic instead of a concatenation's branches."""
    return x.unflatten(-1, (2, x.shape[-1] // 2)).flip(-2).flatten(-2)


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Rotate q, k [B, L, H, hd] in fp32 and cast back: ``x cos + rotate_half(x) sin`` with
    the reference's ``rotate_half(x) = cat(-x2, x1)``.

    Computed as ``x cos + swap_halves(x) (sin with its first half negated)``, which is the same
    arithmetic (negation is exact, so results are bit-identical) but compiles to one kernel without
    branches: 2-4x faster under ``torch.compile`` (docs/performance.md)."""
    dtype = q.dtype
    half = sin.shape[-1] // 2
    cos = cos[:, None, :]  # [L, 1, hd]
    sin = torch.cat((-sin[:, :half], sin[:, half:]), dim=-1)[:, None, :]
    q32, k32 = q.float(), k.float()
    q = q32 * cos + swap_halves(q32) * sin
    k = k32 * cos + swap_halves(k32) * sin
    return q.to(dtype), k.to(dtype)


class Attention(nn.Module):
    """Non-causal multi-head self-attention, one fused QKV projection, no bias, no dropout."""

    def __init__(self, hidden: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden // num_heads
        self.qkv_proj = CastedLinear(hidden, 3 * num_heads * self.head_dim)
        self.o_proj = CastedLinear(num_heads * self.head_dim, hidden)

    def forward(self, x: torch.Tensor, rope: RotaryEmbedding | None) -> torch.Tensor:
        B, L, _ = x.shape
        qkv = self.qkv_proj(x).view(B, L, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.unbind(dim=2)
        if rope is not None:
            q, k = apply_rope(q, k, rope.cos[:L], rope.sin[:L])
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.o_proj(out.transpose(1, 2).reshape(B, L, self.num_heads * self.head_dim))


def swiglu_width(hidden: int, expansion: float) -> int:
    """The reference's width rule: round(expansion * hidden * 2/3) rounded up to a multiple of 256."""
    return round_up(round(expansion * hidden * 2 / 3), 256)


class SwiGLU(nn.Module):
    """down(silu(gate) * up) with a fused gate/up projection, no bias."""

    def __init__(self, hidden: int, expansion: float):
        super().__init__()
        inter = swiglu_width(hidden, expansion)
        self.gate_up_proj = CastedLinear(hidden, 2 * inter)
        self.down_proj = CastedLinear(inter, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    """A post-norm block: a mixing sublayer (attention, or TRM-MLP's SwiGLU over the sequence) then a
    channel SwiGLU, each followed by a parameter-free RMSNorm."""

    def __init__(self, hidden: int, num_heads: int, expansion: float, eps: float, mlp_t: bool, total_len: int):
        super().__init__()
        self.eps = eps
        self.mlp_t = mlp_t
        if mlp_t:
            self.token_mlp = SwiGLU(total_len, expansion)
        else:
            self.self_attn = Attention(hidden, num_heads)
        self.mlp = SwiGLU(hidden, expansion)

    def forward(self, x: torch.Tensor, rope: RotaryEmbedding | None) -> torch.Tensor:
        if self.mlp_t:
            # Mix along the sequence: transpose to [B, D, L]; as in the reference, the norm then runs
            # over the sequence axis for each channel.
            xt = x.transpose(1, 2)
            x = rms_norm(xt + self.token_mlp(xt), self.eps).transpose(1, 2)
        else:
            x = rms_norm(x + self.self_attn(x, rope), self.eps)
        return rms_norm(x + self.mlp(x), self.eps)


class ReasoningNet(nn.Module):
    """The tiny network f(h, u): add the injection u to the state h, then run the blocks.

    TRM uses one such network (the reference's ``L_level``) for both updates:
    ``z <- f(z, y + x)`` and ``y <- f(y, z)``.
    """

    def __init__(self, n_layers: int, **block_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(Block(**block_kwargs) for _ in range(n_layers))

    def forward(self, h: torch.Tensor, injection: torch.Tensor | None, rope: RotaryEmbedding | None) -> torch.Tensor:
        if injection is not None:
            h = h + injection
        for layer in self.layers:
            h = layer(h, rope)
        return h
