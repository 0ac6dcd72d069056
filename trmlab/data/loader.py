"""Training and test iterators over a dataset in the reference's format (``puzzle_dataset.py`` behaviour).

Train: an epoch visits every group once in a random order; for each group a random puzzle (augmented
version) is drawn and all of its examples are taken, in random order, truncated to what is left of the
global batch; the last incomplete batch is dropped; rank r takes rows [r * local, (r + 1) * local).
All randomness of epoch e comes from ``numpy.random.default_rng([seed, e])``, so every rank computes the
same global batch (world size 2 == world size 1) and a stream resumes exactly from ``state_dict()``.
Unlike the reference, the within-puzzle example order is seeded too (the reference used the global RNG).
"""
from __future__ import annotations

from typing import Dict, Iterator, List

import numpy as np
import torch

from .format import DatasetError, open_split

IGNORE = -100


def _check_rank(batch_size: int, rank: int, world_size: int) -> int:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..world_size-1 (world_size {world_size})")
    if batch_size < 1 or batch_size % world_size:
        raise ValueError(f"global batch size {batch_size} must be a positive multiple of world_size {world_size}")
    return batch_size // world_size


def _to_batch(pset, meta, rows: np.ndarray, local: int) -> Dict[str, torch.Tensor]:
    """Gather examples ``rows`` (-1 = padding) into tensors of ``local`` rows."""
    valid = rows >= 0
    inputs = np.full((local, meta.seq_len), meta.pad_id, dtype=np.int32)
    labels = np.full((local, meta.seq_len), IGNORE, dtype=np.int64)
    ids = np.full(local, meta.blank_identifier_id, dtype=np.int32)
    if valid.any():
        r = rows[valid]
        order = np.argsort(r, kind="stable")            # read the memmap in increasing order
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        x = np.asarray(pset.inputs[r[order]])[inv].astype(np.int32)
        y = np.asarray(pset.labels[r[order]])[inv].astype(np.int64)
        if meta.ignore_label_id is not None:
            y[y == meta.ignore_label_id] = IGNORE
        idx = np.flatnonzero(valid)
        inputs[idx] = x
        labels[idx] = y
        ids[idx] = pset.puzzle_identifiers[pset.example_puzzle(r)]
    return {"inputs": torch.from_numpy(inputs), "labels": torch.from_numpy(labels),
            "puzzle_identifiers": torch.from_numpy(ids)}


class TrainLoader:
    """Endless stream of training batches (dicts of tensors: inputs int32, labels int64 with -100, ids int32)."""

    def __init__(self, root, global_batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 split: str = "train"):
        self.root, self.split = root, split
        self.global_batch_size = int(global_batch_size)
        self.rank, self.world_size, self.seed = rank, world_size, int(seed)
        self.local_batch_size = _check_rank(self.global_batch_size, rank, world_size)
        self.data = open_split(root, split)
        self.metadata = self.data.metadata
        self._epoch = 0
        self._batch = 0
        self._plan_epoch = None
        self._plan: List[np.ndarray] = []
        if not self._plan_for(0):
            raise DatasetError(f"{root}/{split}: an epoch gives no full batch of {self.global_batch_size} "
                               f"examples ({self.data.num_examples} examples in {self.data.num_groups} groups)")

    def _plan_for(self, epoch: int) -> List[np.ndarray]:
        """The global batches (example index arrays) of one epoch; a pure function of (seed, epoch)."""
        if self._plan_epoch == epoch:
            return self._plan
        rng = np.random.default_rng([self.seed, epoch])
        batches: List[np.ndarray] = []
        B = self.global_batch_size
        for set_name in self.metadata.sets:   # sets in order, as the reference
            s = self.data.sets[set_name]
            gi, pi = s.group_indices, s.puzzle_indices
            cur: List[np.ndarray] = []
            size = 0
            for g in rng.permutation(s.num_groups):
                p = int(gi[g]) + int(rng.integers(int(gi[g + 1] - gi[g])))
                ex = np.arange(pi[p], pi[p + 1])
                if ex.size > 1:
                    ex = rng.permutation(ex)
                ex = ex[:B - size]
                cur.append(ex)
                size += ex.size
                if size == B:
                    batches.append(np.concatenate(cur))
                    cur, size = [], 0
            # the last incomplete batch is dropped
        self._plan_epoch, self._plan = epoch, batches
        return batches

    @property
    def steps_per_epoch(self) -> int:
        """Batches in the current epoch (constant for Sudoku/Maze; varies slightly for ARC)."""
        return len(self._plan_for(self._epoch))

    @property
    def epoch(self) -> float:
        """Epochs done (fractional)."""
        return self._epoch + self._batch / max(1, len(self._plan_for(self._epoch)))

    def state_dict(self) -> dict:
        return {"epoch": self._epoch, "batch": self._batch, "seed": self.seed,
                "global_batch_size": self.global_batch_size}

    def load_state_dict(self, state: dict) -> None:
        if state.get("global_batch_size", self.global_batch_size) != self.global_batch_size:
            raise ValueError(f"state was saved with global batch {state['global_batch_size']}, "
                             f"this loader has {self.global_batch_size}")
        self.seed = int(state.get("seed", self.seed))
        self._epoch, self._batch = int(state["epoch"]), int(state["batch"])
        self._plan_epoch = None

    def next_batch(self) -> Dict[str, torch.Tensor]:
        plan = self._plan_for(self._epoch)
        while self._batch >= len(plan):
            self._epoch += 1
            self._batch = 0
            plan = self._plan_for(self._epoch)
        rows = plan[self._batch]
        self._batch += 1
        lo = self.rank * self.local_batch_size
        local = rows[lo:lo + self.local_batch_size]
        s = self.data.sets[self.metadata.sets[0]]
        return _to_batch(s, self.metadata, local, self.local_batch_size)

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        while True:
            yield self.next_batch()


class TestLoader:
    """Every example of the split once, in file order, in global batches; the last one padded.

    Extra keys: ``index`` int64 (example index, -1 for padding) and ``valid`` bool.
    """

    __test__ = False  # not a pytest class

    def __init__(self, root, batch_size: int, rank: int = 0, world_size: int = 1, split: str = "test"):
        self.batch_size = int(batch_size)
        self.rank, self.world_size = rank, world_size
        self.local_batch_size = _check_rank(self.batch_size, rank, world_size)
        self.data = open_split(root, split)
        self.metadata = self.data.metadata
        if len(self.metadata.sets) != 1:
            raise DatasetError(f"{root}/{split}: TestLoader reads one set, found {self.metadata.sets}")
        self.num_examples = self.data.num_examples

    def __len__(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        s = self.data.first
        for start in range(0, self.num_examples, self.batch_size):
            lo = start + self.rank * self.local_batch_size
            rows = np.arange(lo, lo + self.local_batch_size)
            rows[rows >= self.num_examples] = -1
            b = _to_batch(s, self.metadata, rows, self.local_batch_size)
            b["index"] = torch.from_numpy(rows.astype(np.int64))
            b["valid"] = torch.from_numpy(rows >= 0)
            yield b
