"""Small models and batches for smoke runs, tests, benchmarks and the notebook's no-run default."""
from __future__ import annotations

import numpy as np
import torch

from trmlab.config import get_preset
from trmlab.data.arc import encode_arc_grid
from trmlab.model import build_model

from .tasks import TaskSpec


def tiny_model(task: TaskSpec, hidden: int = 32, heads: int = 2, n_recursions: int = 2, n_latent_steps: int = 2,
               n_supervision: int = 2, seed: int = 0, num_puzzle_identifiers: int = 1, **model_overrides):
    """An untrained TRM sized for ``task`` (random weights: the recursion runs, nothing is learnt)."""
    cfg = get_preset("cpu_tiny").model
    cfg.hidden_size, cfg.num_heads = hidden, heads
    cfg.n_recursions, cfg.n_latent_steps, cfg.n_supervision = n_recursions, n_latent_steps, n_supervision
    cfg.vocab_size, cfg.seq_len, cfg.num_puzzle_identifiers = task.vocab_size, task.seq_len, num_puzzle_identifiers
    for k, v in model_overrides.items():
        setattr(cfg, k, v)
    torch.manual_seed(seed)
    model = build_model(cfg)
    model.eval()
    return model


def random_batch(task: TaskSpec, batch_size: int = 2, seed: int = 0) -> dict:
    """Random tokens in the task's alphabet (inputs and labels), for shape and speed checks only."""
    rng = np.random.default_rng(seed)
    L = task.seq_len
    if task.family == "sudoku":
        inputs = rng.integers(1, task.vocab_size, (batch_size, L))
        labels = rng.integers(2, task.vocab_size, (batch_size, L))
    elif task.family == "maze":
        inputs = np.where(rng.random((batch_size, L)) < 0.3, 1, 2)
        inputs[:, 0], inputs[:, -1] = 3, 4
        labels = np.where(rng.random((batch_size, L)) < 0.1, 5, inputs)
    elif task.family == "arc":
        side = 12
        inputs = np.stack([encode_arc_grid(rng.integers(0, 10, (side, side))).reshape(-1) for _ in range(batch_size)])
        labels = np.stack([encode_arc_grid(rng.integers(0, 10, (side, side))).reshape(-1) for _ in range(batch_size)])
    else:
        inputs = rng.integers(0, task.vocab_size, (batch_size, L))
        labels = rng.integers(0, task.vocab_size, (batch_size, L))
    return {"inputs": torch.as_tensor(inputs, dtype=torch.int32), "labels": torch.as_tensor(labels, dtype=torch.int64),
            "puzzle_identifiers": torch.zeros(batch_size, dtype=torch.int32)}
