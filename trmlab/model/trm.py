"""The Tiny Recursion Model: one supervision step of recursive reasoning.

Reads like the paper's pseudocode (arXiv:2510.04871, Figure 3)::

    def latent_recursion(x, y, z, n):
        for i in range(n):          # n latent updates   (reference: L_cycles)
            z = net(x, y, z)        #   z <- f(z + y + x)
        y = net(y, z)               # the answer update: y <- f(y + z), no x
        return y, z

    def deep_recursion(x, y, z, n, T):
        with torch.no_grad():       # T-1 repeats without gradient   (reference: H_cycles = T)
            for t in range(T - 1):
                y, z = latent_recursion(x, y, z, n)
        y, z = latent_recursion(x, y, z, n)   # the last one with gradient
        return (y.detach(), z.detach()), output_head(y), Q_head(y)

The deep-supervision loop (up to N_sup steps, the halting head, the carry) is in ``act.py``.

Names: ``answer`` is the paper's y (the reference's ``z_H``), ``latent`` is z (``z_L``).
Ablations (paper Tables 1-2) are switches of this class, not copies: ``latent_mode="single_z"``,
``separate_networks`` (f_L for z, f_H for y), ``gradient="one_step"`` (HRM's 1-step gradient).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.utils.checkpoint
from torch import nn

from ..config import ModelConfig
from .embedding import InputEmbedding
from .layers import CastedLinear, ReasoningNet, RotaryEmbedding, trunc_normal_

#: observer(event, recursion, latent_step, answer, latent): called after every network call when given.
Observer = Callable[[str, int, int, torch.Tensor, torch.Tensor], None]


class TinyRecursiveModel(nn.Module):
    """Embedding, the shared network f, the output and halting heads, and the recursion."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size < 1 or cfg.seq_len < 1:
            raise ValueError("ModelConfig.vocab_size and seq_len must be set from the dataset before building")
        self.cfg = cfg
        self.forward_dtype = torch.float32
        self._compiled_step = None  # set by compile_recursion()
        self.checkpoint_activations = False  # recompute each network call's insides in the backward
        D = cfg.hidden_size
        self.puzzle_positions = cfg.puzzle_positions
        total_len = cfg.seq_len + self.puzzle_positions

        self.embed = InputEmbedding(
            cfg.vocab_size, D, cfg.seq_len, cfg.num_puzzle_identifiers, cfg.puzzle_emb_dim,
            self.puzzle_positions, cfg.pos_encodings,
        )
        self.rope = (
            RotaryEmbedding(D // cfg.num_heads, total_len, cfg.rope_theta) if cfg.pos_encodings == "rope" else None
        )
        block = dict(hidden=D, num_heads=cfg.num_heads, expansion=cfg.expansion, eps=cfg.rms_norm_eps,
                     mlp_t=cfg.mlp_t, total_len=total_len)
        self.net = ReasoningNet(cfg.n_layers, **block)  # f, shared by both updates (reference: L_level)
        if cfg.separate_networks:  # ablation "w/ separate f_H, f_L": y gets its own network
            self.answer_net = ReasoningNet(cfg.high_layers or cfg.n_layers, **block)
        else:
            self.answer_net = self.net

        self.lm_head = CastedLinear(D, cfg.vocab_size)  # output head: answer -> token logits
        self.q_head = CastedLinear(D, 2, bias=True)  # halting head on position 0: [halt, continue]
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)  # sigmoid(-5) ~ 0.0067: nothing halts early at first

        # Fixed random initial states (buffers, never trained): the reference's H_init and L_init.
        self.register_buffer("answer_init", trunc_normal_(torch.empty(D), 1.0), persistent=True)
        self.register_buffer("latent_init", trunc_normal_(torch.empty(D), 1.0), persistent=True)

    # -- the two updates --------------------------------------------------------------------------

    def call(self, net: nn.Module, h: torch.Tensor, injection: Optional[torch.Tensor]) -> torch.Tensor:
        """One call of a network, f(h + injection). With ``checkpoint_activations`` and gradient on, only
        its inputs are kept for the backward, which runs the call again (activation checkpointing): the
        memory of the gradient recursion then grows with n+1 states, not with every layer's insides,
        for one more forward of the last recursion (the same numbers)."""
        if self.checkpoint_activations and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(net, h, injection, self.rope, use_reentrant=False)
        return net(h, injection, self.rope)

    def update_latent(self, x, y, z, t, i, observer: Optional[Observer]):
        """One latent update: z <- f(z + y + x) (single-z ablation: z <- f(z + x))."""
        injection = x if self.cfg.latent_mode == "single_z" else y + x
        z = self.call(self.net, z, injection)
        if observer is not None:
            observer("latent", t, i, y if self.cfg.latent_mode == "yz" else z, z)
        return z

    def update_answer(self, y, z, t, observer: Optional[Observer]):
        """The answer update: y <- f(y + z), with no x (single-z ablation: z <- f(z), and y is z)."""
        if self.cfg.latent_mode == "single_z":
            z = self.call(self.answer_net, z, None)
            y = z
        else:
            y = self.call(self.answer_net, y, z)
        if observer is not None:
            observer("answer", t, self.cfg.n_latent_steps, y, z)
        return y, z

    # -- the recursion ----------------------------------------------------------------------------

    def latent_recursion(self, x, y, z, t: int, observer: Optional[Observer] = None):
        """n latent updates, then one answer update."""
        for i in range(self.cfg.n_latent_steps):
            z = self.update_latent(x, y, z, t, i, observer)
        return self.update_answer(y, z, t, observer)

    def deep_recursion(self, x, y, z, observer: Optional[Observer] = None):
        """T recursions: the first T-1 without gradient, the last with gradient through all n+1 calls."""
        T, n = self.cfg.n_recursions, self.cfg.n_latent_steps
        with torch.no_grad():
            for t in range(T - 1):
                y, z = self.latent_recursion(x, y, z, t, observer)
        if self.cfg.gradient == "one_step":
            # HRM's 1-step gradient (ablation): only the final z update and the y update carry gradient.
            with torch.no_grad():
                for i in range(n - 1):
                    z = self.update_latent(x, y, z, T - 1, i, observer)
            z = self.update_latent(x, y, z, T - 1, n - 1, observer)
            return self.update_answer(y, z, T - 1, observer)
        return self.latent_recursion(x, y, z, T - 1, observer)

    # -- heads --------------------------------------------------------------------------------------

    def decode(self, state: torch.Tensor) -> torch.Tensor:
        """Token logits [B, seq_len, vocab] of any state (the answer y, or what the latent z would answer)."""
        return self.lm_head(state)[:, self.puzzle_positions:]

    def q_logits(self, answer: torch.Tensor) -> torch.Tensor:
        """[B, 2] fp32: halt and continue logits read from position 0 of the answer (like a CLS token)."""
        return self.q_head(answer[:, 0]).float()

    def halt_logit(self, answer: torch.Tensor) -> torch.Tensor:
        return self.q_logits(answer)[:, 0]

    # -- one supervision step -----------------------------------------------------------------------

    def initial_state(self, batch_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        L = self.cfg.seq_len + self.puzzle_positions
        shape = (batch_size, L, self.cfg.hidden_size)
        y = self.answer_init.to(self.forward_dtype).expand(shape).to(device)
        z = self.latent_init.to(self.forward_dtype).expand(shape).to(device)
        return y, z

    def embed_input(self, inputs: torch.Tensor, puzzle_identifiers: torch.Tensor) -> torch.Tensor:
        return self.embed(inputs, puzzle_identifiers, self.forward_dtype)

    def forward(self, inputs, puzzle_identifiers, y, z, observer: Optional[Observer] = None):
        """One supervision step from (y, z). Returns (y, z) detached, logits and [B, 2] Q logits."""
        x = self.embed_input(inputs, puzzle_identifiers)
        if observer is None and self._compiled_step is not None:
            return self._compiled_step(x, y, z)
        return self.recursion_step(x, y, z, observer)

    def recursion_step(self, x, y, z, observer: Optional[Observer] = None):
        """Everything of a supervision step after the embedding: the recursion and both heads. This is
        what :meth:`compile_recursion` compiles (one graph, no breaks); the embedding stays eager
        because the puzzle embedding makes a fresh leaf tensor for its sign-SGD every step."""
        y, z = self.deep_recursion(x, y, z, observer)
        return y.detach(), z.detach(), self.decode(y), self.q_logits(y)

    def compile_recursion(self, enable: bool = True, **options) -> None:
        """``torch.compile`` the recursion and heads (:meth:`recursion_step`) for steps without an observer
        (training, evaluation, solving); traced runs keep the eager path, which calls the observer.
        ``options`` go to ``torch.compile`` (e.g. ``fullgraph=True``, ``mode=...``)."""
        self._compiled_step = torch.compile(self.recursion_step, **options) if enable else None


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (the puzzle-embedding table and the initial states are buffers)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
