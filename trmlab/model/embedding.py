"""The input embedding x: tokens, the per-puzzle embedding, optional learned positions, sqrt(D) scale.

docs/reference.md section 3. The puzzle-embedding table is a *buffer*, not a parameter: it is trained
by its own sign-SGD optimiser (``trmlab.train.optim.SparseSignSGD``) which reads the gradient that lands
on ``local_weights`` (the batch's rows, copied into a leaf tensor in training mode).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import CastedEmbedding


class PuzzleEmbedding(nn.Module):
    """Per-puzzle vectors, zero-initialised, one row per puzzle identifier (the reference's
    ``CastedSparseEmbedding``). Only the rows a batch touches receive a gradient."""

    def __init__(self, num_ids: int, dim: int):
        super().__init__()
        self.register_buffer("weights", torch.zeros(num_ids, dim), persistent=True)
        self.local_weights: torch.Tensor | None = None
        self.local_ids: torch.Tensor | None = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()
        if not self.training or not torch.is_grad_enabled():
            return self.weights[ids]
        # A fresh leaf per step that holds the batch's rows; the optimiser reads its .grad.
        self.local_weights = self.weights[ids].detach().clone().requires_grad_(True)
        self.local_ids = ids
        return self.local_weights


class InputEmbedding(nn.Module):
    """x = sqrt(D) * [puzzle positions ; token embeddings] (+ learned positions, scaled 1/sqrt 2)."""

    def __init__(self, vocab_size: int, hidden: int, seq_len: int, num_puzzle_ids: int, puzzle_dim: int,
                 puzzle_positions: int, pos_encodings: str):
        super().__init__()
        self.hidden = hidden
        self.puzzle_dim = puzzle_dim
        self.puzzle_positions = puzzle_positions
        self.embed_scale = math.sqrt(hidden)
        init_std = 1.0 / self.embed_scale
        self.embed_tokens = CastedEmbedding(vocab_size, hidden, init_std)
        self.puzzle_emb = PuzzleEmbedding(num_puzzle_ids, puzzle_dim) if puzzle_dim > 0 else None
        self.embed_pos = (
            CastedEmbedding(seq_len + puzzle_positions, hidden, init_std) if pos_encodings == "learned" else None
        )

    def forward(self, inputs: torch.Tensor, puzzle_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        x = self.embed_tokens(inputs, dtype)
        if self.puzzle_emb is not None:
            pe = self.puzzle_emb(puzzle_ids)
            pad = self.puzzle_positions * self.hidden - self.puzzle_dim
            if pad > 0:  # only the first position carries the vector; the others are zeros
                pe = F.pad(pe, (0, pad))
            x = torch.cat((pe.view(-1, self.puzzle_positions, self.hidden).to(dtype), x), dim=-2)
        if self.embed_pos is not None:
            x = 0.707106781 * (x + self.embed_pos.weight.to(dtype))
        return self.embed_scale * x
