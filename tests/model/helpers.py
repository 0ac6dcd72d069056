"""Small hand-made data for model tests (no dependency on the data builders)."""
import numpy as np
import torch

BASE4 = np.array([[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 2, 1]])


def sudoku4_batch(n: int, blanks: int = 6, seed: int = 0) -> dict:
    """n distinct valid 4x4 Sudokus (relabelled / band-shuffled copies of one grid) with `blanks` holes.
    Tokens as the reference: blank 1, digit d -> d + 1 (vocab 6)."""
    rng = np.random.default_rng(seed)
    inputs, labels, seen = [], [], set()
    while len(inputs) < n:
        g = rng.permutation(4)[BASE4 - 1] + 1  # digit relabel
        if rng.random() < 0.5:
            g = g[[1, 0, 2, 3]]
        if rng.random() < 0.5:
            g = g[:, [0, 1, 3, 2]]
        if rng.random() < 0.5:
            g = g.T
        q = g.copy().reshape(-1)
        q[rng.choice(16, blanks, replace=False)] = 0
        key = q.tobytes()
        if key in seen:
            continue
        seen.add(key)
        inputs.append(q + 1)
        labels.append(g.reshape(-1) + 1)
    return {
        "inputs": torch.tensor(np.array(inputs), dtype=torch.int32),
        "labels": torch.tensor(np.array(labels), dtype=torch.int64),
        "puzzle_identifiers": torch.zeros(n, dtype=torch.int32),
    }


def tiny_config(**overrides):
    from trmlab.config import get_preset

    cfg = get_preset("cpu_tiny").model
    cfg.vocab_size, cfg.seq_len, cfg.num_puzzle_identifiers = 6, 16, 1
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg
