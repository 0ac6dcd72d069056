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

After every network call an observer (when given) sees (y, z) and may replace them: the recursion
continues from what it returns (``observe``; docs/contracts.md). With no observer nothing changes.
The deep-supervision loop (up to N_sup steps, the halting head, the carry) is in ``act.py``.

Names: ``answer`` is the paper's y (the reference's ``z_H``), ``latent`` is z (``z_L``).
Ablations (paper Tables 1-2) are switches of this class, not copies: ``latent_mode="single_z"``,
``separate_networks`` (f_L for z, f_H for y), ``gradient="one_step"`` (HRM's 1-step gradient).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.utils.checkpoint
from torch import nn

from ..config import ModelConfig
from .embedding import InputEmbedding
from .layers import CastedLinear, ReasoningNet, RotaryEmbedding, trunc_normal_

#: observer(event, recursion, latent_step, answer, latent) -> None | (answer, latent): called after every
#: network call when given; None reads, a pair replaces the states the recursion continues from.
Observer = Callable[[str, int, int, torch.Tensor, torch.Tensor], Optional[tuple[torch.Tensor, torch.Tensor]]]


def checked_replacement(where: str, replaced, answer: torch.Tensor, latent: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``replaced`` as a pair (answer, latent) of tensors shaped, typed and placed like ``answer`` and
    ``latent``, or a ValueError naming ``where`` and what was expected.

    >>> y = z = torch.zeros(1, 3, 4)
    >>> checked_replacement("hook", (y, z), y, z)[0].shape
    torch.Size([1, 3, 4])
    >>> checked_replacement("hook", y, y, z)
    Traceback (most recent call last):
    ValueError: hook returned a Tensor; expected None or a pair (answer, latent) of tensors
    """
    if not isinstance(replaced, Sequence) or isinstance(replaced, torch.Tensor) or len(replaced) != 2:
        raise ValueError(f"{where} returned a {type(replaced).__name__}; expected None or a pair (answer, latent) "
                         f"of tensors")
    for name, new, old in (("answer", replaced[0], answer), ("latent", replaced[1], latent)):
        if not isinstance(new, torch.Tensor):
            raise ValueError(f"{where} returned {name} as a {type(new).__name__}; expected a tensor")
        if new.shape != old.shape or new.dtype != old.dtype or new.device != old.device:
            raise ValueError(f"{where} returned {name} of shape {tuple(new.shape)}, {new.dtype} on {new.device}; "
                             f"expected shape {tuple(old.shape)}, {old.dtype} on {old.device} (the state it replaces)")
    return replaced[0], replaced[1]


def one_state(where: str, shown: torch.Tensor, answer: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """The single-z ablation has one state, z (y is z): an observer is shown it as both ``answer`` and
    ``latent``, and its replacement is the one of the two it changed (``latent`` when it returned one
    tensor twice, equal values, or changed only the latent; ``answer`` when it changed only the answer).
    Two different changes are a ValueError: there is only one state to put them in.

    >>> s = torch.zeros(2)
    >>> one_state("hook", s, s + 1, s).tolist()   # only the answer changed: it is the state
    [1.0, 1.0]
    """
    if answer is latent or torch.equal(answer, latent) or torch.equal(answer, shown):
        return latent
    if torch.equal(latent, shown):
        return answer
    raise ValueError(f"{where} changed both answer and latent differently, but the single-z model (latent_mode="
                     f"'single_z') has one state (y is z): change one of them, or return the same tensor twice")


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
        """One latent update: z <- f(z + y + x) (single-z ablation: z <- f(z + x)). Returns (y, z), which
        the observer may have replaced."""
        injection = x if self.cfg.latent_mode == "single_z" else y + x
        z = self.call(self.net, z, injection)
        return self.observe(observer, "latent", t, i, y, z)

    def update_answer(self, y, z, t, observer: Optional[Observer]):
        """The answer update: y <- f(y + z), with no x (single-z ablation: z <- f(z), and y is z).
        Returns (y, z), which the observer may have replaced."""
        if self.cfg.latent_mode == "single_z":
            z = self.call(self.answer_net, z, None)
            y = z
        else:
            y = self.call(self.answer_net, y, z)
        return self.observe(observer, "answer", t, self.cfg.n_latent_steps, y, z)

    def observe(self, observer: Optional[Observer], event: str, t: int, i: int, y, z):
        """Show (y, z) to the observer after a network call; returns the (y, z) the recursion continues
        from: the same tensors when there is no observer or it returns None, else its pair (checked:
        same shape, dtype and device). Single-z ablation: the observer sees z as both y and z, and its
        replacement becomes both (:func:`one_state`)."""
        if observer is None:
            return y, z
        single = self.cfg.latent_mode == "single_z"
        shown_y = z if single else y
        replaced = observer(event, t, i, shown_y, z)
        if replaced is None:
            return y, z
        where = f"observer at {event} (recursion {t}, latent step {i})"
        new_y, new_z = checked_replacement(where, replaced, shown_y, z)
        if single:
            state = one_state(where, z, new_y, new_z)
            return state, state
        return new_y, new_z

    # -- the recursion ----------------------------------------------------------------------------

    def latent_recursion(self, x, y, z, t: int, observer: Optional[Observer] = None):
        """n latent updates, then one answer update."""
        for i in range(self.cfg.n_latent_steps):
            y, z = self.update_latent(x, y, z, t, i, observer)
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
                    y, z = self.update_latent(x, y, z, T - 1, i, observer)
            y, z = self.update_latent(x, y, z, T - 1, n - 1, observer)
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
