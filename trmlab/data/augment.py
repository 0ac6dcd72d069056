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
