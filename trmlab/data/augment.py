"""Augmentations shared by the builders and the evaluators.

Dihedral ids follow the reference (and HRM): 0 identity, 1 rot90, 2 rot180, 3 rot270,
4 left-right flip, 5 up-down flip, 6 transpose, 7 anti-diagonal reflection (left-right flip of rot90).
``rot90`` is numpy's counter-clockwise ``np.rot90``. The inverse of id k is ``DIHEDRAL_INVERSE[k]``.
"""
from __future__ import annotations

import numpy as np

DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)


def dihedral(grid: np.ndarray, tid: int) -> np.ndarray:
    """Apply dihedral transform ``tid`` (0..7) to a 2-D array."""
    if tid == 0:
        return grid
    if tid == 1:
        return np.rot90(grid, k=1)
    if tid == 2:
        return np.rot90(grid, k=2)
    if tid == 3:
        return np.rot90(grid, k=3)
    if tid == 4:
        return np.fliplr(grid)
    if tid == 5:
        return np.flipud(grid)
    if tid == 6:
        return grid.T
    if tid == 7:
        return np.fliplr(np.rot90(grid, k=1))
    raise ValueError(f"dihedral id must be in 0..7, got {tid}")


def inverse_dihedral(grid: np.ndarray, tid: int) -> np.ndarray:
    """Undo :func:`dihedral` with the same ``tid``."""
    return dihedral(grid, DIHEDRAL_INVERSE[tid])


class TokenTransforms:
    """``k`` transforms of a puzzle given as a flat token sequence of ``L`` cells, each a permutation of
    the cells and a relabelling of the tokens: transform j maps ``x`` to ``y[i] = token_map[j, x[src[j, i]]]``.
    Both parts are invertible, so an answer given in a transformed frame can be brought back to the
    puzzle's own frame (:meth:`invert`). Transform 0 is the identity when a constructor says so.

    ``src``: int [k, L], the source cell of every target cell; ``token_map``: int [k, V] over the
    vocabulary (a permutation of 0..V-1 that fixes the tokens that must not move, e.g. blank and pad).
    """

    def __init__(self, src: np.ndarray, token_map: np.ndarray):
        self.src = np.asarray(src, dtype=np.int64)
        self.token_map = np.asarray(token_map, dtype=np.int64)
        if self.src.ndim != 2 or self.token_map.ndim != 2 or len(self.src) != len(self.token_map):
            raise ValueError(f"src [k, L] and token_map [k, V] expected, got {self.src.shape} and {self.token_map.shape}")
        L, V = self.src.shape[1], self.token_map.shape[1]
        if not (np.sort(self.src, axis=1) == np.arange(L)).all():
            raise ValueError("src: every row must be a permutation of the cells")
        if not (np.sort(self.token_map, axis=1) == np.arange(V)).all():
            raise ValueError("token_map: every row must be a permutation of the tokens")
        self.inv_src = np.argsort(self.src, axis=1)
        self.inv_map = np.argsort(self.token_map, axis=1)

    def __len__(self) -> int:
        return len(self.src)

    def apply(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens [..., L] (one puzzle or a batch) -> [..., k, L]: every transform of every puzzle."""
        x = np.asarray(tokens, dtype=np.int64)
        moved = x[..., self.src]                                                    # [..., k, L]
        return np.take_along_axis(np.broadcast_to(self.token_map, moved.shape[:-1] + self.token_map.shape[-1:]),
                                  moved, axis=-1)

    def invert(self, tokens: np.ndarray) -> np.ndarray:
        """Answers in the transformed frames [..., k, L] -> the same answers in the puzzle's frame."""
        y = np.asarray(tokens, dtype=np.int64)
        relabelled = np.take_along_axis(np.broadcast_to(self.inv_map, y.shape[:-1] + self.inv_map.shape[-1:]),
                                        y, axis=-1)
        idx = np.broadcast_to(self.inv_src, relabelled.shape)
        return np.take_along_axis(relabelled, idx, axis=-1)


def dihedral_transforms(side: int, vocab_size: int, k: int = 8) -> TokenTransforms:
    """The first ``k`` (at most 8) dihedral transforms of a ``side`` x ``side`` grid of tokens (ids as
    :func:`dihedral`; 0 is the identity), tokens unchanged: the validity-preserving transforms of a maze."""
    if not 1 <= k <= 8:
        raise ValueError(f"a square grid has 8 dihedral transforms; asked for {k}")
    cells = np.arange(side * side).reshape(side, side)
    src = np.stack([dihedral(cells, t).reshape(-1) for t in range(k)])
    return TokenTransforms(src, np.tile(np.arange(vocab_size), (k, 1)))
