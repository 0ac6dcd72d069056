"""FLOPs of a configured model, counted from its matrix products (the benchmark's yardstick).

Only matrix products are counted, each as ``2 * m * k * n`` (a multiply and an add): the linear layers
(QKV, output projection, SwiGLU gate/up and down, TRM-MLP's token mixer, the output and halting heads)
and the two attention products (scores ``Q K^T`` and ``softmax(.) V``). Norms, RoPE, SiLU, softmax,
residual adds, the embedding lookup and the loss are not counted: at the shapes TRM runs they are
under 1% of the products' FLOPs, and they are what a faster implementation is expected to hide.

One **training supervision step** of one sample is:

* the T-1 gradient-free recursions (and, with ``gradient="one_step"``, the first n-1 latent updates of
  the last one), forward only;
* the last recursion's n+1 network calls and the heads, forward;
* their backward: twice the forward products (the input gradient ``dY W`` and the weight gradient
  ``dY^T X`` of every product);
* with ``act_continue`` the extra gradient-free step that computes the Q-learning target.

One **inference supervision step** is the forward of all T (n+1) calls and the heads; solving a puzzle
with all ``n_supervision`` steps costs ``n_supervision`` of them.

For the reference TRM-Att Sudoku shape (hidden 512, 2 layers, 8 heads, SwiGLU width 1536, 81+16
positions, T=3, n=6) this gives 47.62 GFLOP per training sample-step (``train_flops``); the issue that
asked for the benchmark counted 47.5 (docs/performance.md explains the difference: heads and the
attention products).

:func:`train_gemms` / :func:`inference_gemms` list every product with its shape and how often it runs,
so the benchmark can measure this machine's matmul speed at exactly those shapes.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..config import ModelConfig
from .layers import swiglu_width


@dataclass(frozen=True)
class Gemm:
    """``count`` matrix products of ``batch`` x [m, k] @ [k, n] (``batch`` = 1 for a plain matmul)."""

    name: str
    batch: int
    m: int
    k: int
    n: int
    count: int = 1

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.m, self.k, self.n)

    @property
    def flops(self) -> int:
        return 2 * self.batch * self.m * self.k * self.n * self.count

    def times(self, count: int) -> "Gemm":
        return Gemm(self.name, self.batch, self.m, self.k, self.n, self.count * count)

    def backward(self) -> list["Gemm"]:
        """The two products of this one's backward: input gradient [m, n] @ [n, k] and weight (or second
        operand) gradient [k, m] @ [m, n]."""
        return [Gemm(f"{self.name}.grad_in", self.batch, self.m, self.n, self.k, self.count),
                Gemm(f"{self.name}.grad_w", self.batch, self.k, self.m, self.n, self.count)]


def total_len(cfg: ModelConfig) -> int:
    """Positions the network sees: the puzzle-embedding positions plus the task's sequence."""
    return cfg.seq_len + cfg.puzzle_positions


def network_gemms(cfg: ModelConfig, n_layers: int, batch: int = 1) -> list[Gemm]:
    """The products of ONE call of a network of ``n_layers`` blocks on ``batch`` samples."""
    if cfg.seq_len < 1 or cfg.vocab_size < 1:
        raise ValueError("ModelConfig.seq_len and vocab_size must be set to count FLOPs")
    D, L, H = cfg.hidden_size, total_len(cfg), cfg.num_heads
    hd = D // H
    inter = swiglu_width(D, cfg.expansion)
    rows = batch * L
    layer: list[Gemm] = []
    if cfg.mlp_t:
        inter_t = swiglu_width(L, cfg.expansion)  # the token mixer runs over the sequence axis
        layer += [Gemm("token_mlp.gate_up", 1, batch * D, L, 2 * inter_t), Gemm("token_mlp.down", 1, batch * D, inter_t, L)]
    else:
        layer += [Gemm("attn.qkv", 1, rows, D, 3 * H * hd), Gemm("attn.scores", batch * H, L, hd, L),
                  Gemm("attn.values", batch * H, L, L, hd), Gemm("attn.out", 1, rows, H * hd, D)]
    layer += [Gemm("mlp.gate_up", 1, rows, D, 2 * inter), Gemm("mlp.down", 1, rows, inter, D)]
    return [g.times(n_layers) for g in layer]


def head_gemms(cfg: ModelConfig, batch: int = 1) -> list[Gemm]:
    """The output head (on every position, as ``decode`` computes it) and the halting head (position 0)."""
    return [Gemm("lm_head", 1, batch * total_len(cfg), cfg.hidden_size, cfg.vocab_size),
            Gemm("q_head", 1, batch, cfg.hidden_size, 2)]


def _calls(cfg: ModelConfig) -> tuple[list[int], list[int]]:
    """(gradient-free calls, calls with gradient) of one training supervision step, each given by the
    depth of the network it calls."""
    low = cfg.n_layers
    high = (cfg.high_layers or cfg.n_layers) if cfg.separate_networks else cfg.n_layers
    if cfg.arch == "direct":
        return [], [low]
    T, n = cfg.n_recursions, cfg.n_latent_steps
    recursion = [low] * n + [high]
    free = recursion * (T - 1)
    if cfg.gradient == "one_step":
        return free + [low] * (n - 1), [low, high]
    return free, recursion


def _merge(gemms: list[Gemm]) -> list[Gemm]:
    """Sum the counts of products with the same name and shape."""
    counts: Counter = Counter()
    for g in gemms:
        counts[(g.name, g.shape)] += g.count
    return [Gemm(name, *shape, count) for (name, shape), count in counts.items()]


def inference_gemms(cfg: ModelConfig, batch: int = 1) -> list[Gemm]:
    """Every product of one gradient-free supervision step (forward only)."""
    free, grad = _calls(cfg)
    out: list[Gemm] = []
    for depth in free + grad:
        out += network_gemms(cfg, depth, batch)
    return _merge(out + head_gemms(cfg, batch))


def train_gemms(cfg: ModelConfig, batch: int = 1) -> list[Gemm]:
    """Every product of one training supervision step: gradient-free forward, forward and backward of
    the part with gradient, and the continue target's extra forward with ``act_continue``."""
    free, grad = _calls(cfg)
    out: list[Gemm] = []
    for depth in free:
        out += network_gemms(cfg, depth, batch)
    with_grad: list[Gemm] = []
    for depth in grad:
        with_grad += network_gemms(cfg, depth, batch)
    with_grad += head_gemms(cfg, batch)
    out += with_grad
    for g in with_grad:
        out += g.backward()
    if cfg.act_continue and cfg.n_supervision > 1:
        out += inference_gemms(cfg, batch)
    return _merge(out)


def total_flops(gemms: list[Gemm]) -> int:
    return sum(g.flops for g in gemms)


def train_flops(cfg: ModelConfig) -> int:
    """FLOPs of one training supervision step of one sample (forward + backward; see the module text)."""
    return total_flops(train_gemms(cfg, 1))


def inference_flops(cfg: ModelConfig, n_supervision: int | None = None) -> int:
    """FLOPs of solving one puzzle with all ``n_supervision`` supervision steps (default: the model's)."""
    return total_flops(inference_gemms(cfg, 1)) * (n_supervision or cfg.n_supervision)
