"""Training and test iterators over a dataset in the reference's format (``puzzle_dataset.py`` behaviour).

Train: the stream is cut into blocks of ``epochs_per_block`` epochs (the trainer passes
``train.eval_interval``, as the reference yields ``eval_interval`` epochs per iteration). For each set of
the split in turn, a block concatenates ``epochs_per_block`` random orders of the set's groups (an epoch
visits every group once); each visit draws a random puzzle (augmented version) of the group and takes
all of its examples, in random order, truncated to what is left of the global batch; the last
incomplete batch of the set's block is dropped (once per block, as the reference; batches span epoch
boundaries). Every batch holds examples of one set only. Rank r takes rows [r * local, (r + 1) * local).
All randomness of block b, set s comes from ``numpy.random.default_rng([seed, b, s])``, so every rank
computes the same global batch (world size 2 == world size 1) and a stream resumes exactly from
``state_dict()``. ``epoch`` counts real epochs: group visits consumed so far / groups in the split.

Differences from the reference: the within-puzzle example order is seeded too (the reference used the
global RNG); a dataset too small to fill one global batch in a block is not skipped: its block is
lengthened to the fewest epochs that surely fill one batch (the reference would yield nothing).
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


def split_arrays(root, split: str = "test", limit: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``limit`` examples (0: all) of a split's first set as numpy arrays, in file order:
    ``inputs`` int64 [n, seq_len], ``labels`` int64 (the ignore label as -100) and the examples'
    ``puzzle_identifiers`` int64 [n]. What test-time scaling runs on (trmlab.eval.thinking)."""
    whole = open_split(root, split, mmap=True)
    pset = whole.first
    n = pset.num_examples if not limit else min(int(limit), pset.num_examples)
    b = _to_batch(pset, whole.metadata, np.arange(n), n)
    return (b["inputs"].numpy().astype(np.int64), b["labels"].numpy(),
            b["puzzle_identifiers"].numpy().astype(np.int64))


class TrainLoader:
    """Endless stream of training batches (dicts of tensors: inputs int32, labels int64 with -100, ids int32).

    ``epochs_per_block``: epochs per block (see the module docstring); the last partial batch of each
    set is dropped once per block. ``current_set`` is the set name of the batch ``next_batch()`` just
    returned; ``epoch`` the epochs done (fractional, real epochs).
    """

    def __init__(self, root, global_batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 split: str = "train", epochs_per_block: int = 1):
        self.root, self.split = root, split
        self.global_batch_size = int(global_batch_size)
        self.rank, self.world_size, self.seed = rank, world_size, int(seed)
        self.local_batch_size = _check_rank(self.global_batch_size, rank, world_size)
        if int(epochs_per_block) < 1:
            raise ValueError(f"epochs_per_block must be >= 1, got {epochs_per_block}")
        self.data = open_split(root, split)
        self.metadata = self.data.metadata
        self.set_names = list(self.metadata.sets)
        self.total_groups = sum(self.data.sets[n].num_groups for n in self.set_names)
        if self.total_groups < 1 or self.data.num_examples < 1:
            raise DatasetError(f"{root}/{split}: no examples to train on")
        self.requested_epochs_per_block = int(epochs_per_block)
        self.epochs_per_block = max(self.requested_epochs_per_block, self._epochs_to_fill_a_batch())
        self.current_set = self.set_names[0]
        self._block = 0
        self._batch = 0
        self._plan_block = None
        self._plan: List[np.ndarray] = []
        self._plan_sets: List[int] = []
        self._plan_visits: List[int] = []

    def _epochs_to_fill_a_batch(self) -> int:
        """The fewest epochs after which some set surely gives one full global batch (>= 1)."""
        best = None
        for name in self.set_names:
            s = self.data.sets[name]
            if s.num_groups < 1:
                continue
            per_puzzle = np.diff(s.puzzle_indices)
            # every visit takes at least the smallest puzzle of its group
            smallest = np.minimum.reduceat(per_puzzle, s.group_indices[:-1]) if per_puzzle.size else np.zeros(0)
            per_epoch = int(smallest.sum())
            if per_epoch > 0:
                k = -(-self.global_batch_size // per_epoch)
                best = k if best is None else min(best, k)
        if best is None:
            raise DatasetError(f"{self.root}/{self.split}: every group is empty")
        return best

    def _plan_for(self, block: int) -> List[np.ndarray]:
        """The global batches (example index arrays) of one block; a pure function of (seed, block)."""
        if self._plan_block == block:
            return self._plan
        B, E = self.global_batch_size, self.epochs_per_block
        batches: List[np.ndarray] = []
        set_of: List[int] = []
        visits_at: List[int] = []   # group visits of the block consumed when the batch is done
        visits_before = 0
        for si, name in enumerate(self.set_names):   # sets in order, as the reference
            s = self.data.sets[name]
            rng = np.random.default_rng([self.seed, block, si])
            gi, pi = s.group_indices.astype(np.int64), s.puzzle_indices.astype(np.int64)
            G = s.num_groups
            if G == 0:
                continue
            order = np.concatenate([rng.permutation(G) for _ in range(E)])
            puzzles = gi[order] + rng.integers(gi[order + 1] - gi[order])
            counts = pi[puzzles + 1] - pi[puzzles]
            first = pi[puzzles]
            if (counts == 1).all():   # one example per puzzle (Sudoku, Maze): no truncation
                n_full = len(first) // B
                for b in range(n_full):
                    batches.append(first[b * B:(b + 1) * B])
                    set_of.append(si)
                    visits_at.append(visits_before + (b + 1) * B)
            else:
                visit = np.repeat(np.arange(len(counts)), counts)
                starts = np.cumsum(counts) - counts
                within = np.arange(int(counts.sum())) - np.repeat(starts, counts)
                # each visit's examples in a random order
                shuffled = np.lexsort((rng.random(within.size), visit))
                examples = np.repeat(first, counts) + within[shuffled]
                take, ends = _fill(counts.tolist(), B)
                kept = examples[within < np.repeat(take, counts)]
                for b, end in enumerate(ends):
                    batches.append(kept[b * B:(b + 1) * B])
                    set_of.append(si)
                    visits_at.append(visits_before + end)
            # the last incomplete batch of the set's block is dropped
            visits_before += len(order)
        self._plan_block, self._plan, self._plan_sets, self._plan_visits = block, batches, set_of, visits_at
        return batches

    @property
    def steps_per_epoch(self) -> float:
        """Batches per epoch in the current block (constant for Sudoku/Maze; varies slightly for ARC)."""
        return len(self._plan_for(self._block)) / self.epochs_per_block

    @property
    def epoch(self) -> float:
        """Epochs done (fractional): group visits consumed / groups of the split."""
        plan = self._plan_for(self._block)
        visits = self._plan_visits[self._batch - 1] if self._batch > 0 and plan else 0
        return self._block * self.epochs_per_block + visits / self.total_groups

    def state_dict(self) -> dict:
        return {"format": 2, "block": self._block, "batch": self._batch, "seed": self.seed,
                "global_batch_size": self.global_batch_size, "epochs_per_block": self.epochs_per_block}

    def load_state_dict(self, state: dict) -> None:
        if state.get("global_batch_size", self.global_batch_size) != self.global_batch_size:
            raise ValueError(f"state was saved with global batch {state['global_batch_size']}, "
                             f"this loader has {self.global_batch_size}")
        self.seed = int(state.get("seed", self.seed))
        if state.get("format") == 2:
            if int(state["epochs_per_block"]) != self.epochs_per_block:
                raise ValueError(f"state was saved with {state['epochs_per_block']} epochs per block, this "
                                 f"loader has {self.epochs_per_block} (train.eval_interval changed?)")
            self._block, self._batch = int(state["block"]), int(state["batch"])
        else:  # a loader state from before blocks (epoch, batch): go on with the next block
            epoch, batch = int(state["epoch"]), int(state["batch"])
            self._block, self._batch = epoch // self.epochs_per_block + (1 if batch else 0), 0
        self._plan_block = None

    def next_batch(self) -> Dict[str, torch.Tensor]:
        plan = self._plan_for(self._block)
        while self._batch >= len(plan):
            self._block += 1
            self._batch = 0
            plan = self._plan_for(self._block)
        rows = plan[self._batch]
        self.current_set = self.set_names[self._plan_sets[self._batch]]
        self._batch += 1
        lo = self.rank * self.local_batch_size
        local = rows[lo:lo + self.local_batch_size]
        return _to_batch(self.data.sets[self.current_set], self.metadata, local, self.local_batch_size)

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        while True:
            yield self.next_batch()


def _fill(counts: List[int], B: int) -> tuple:
    """Examples taken from each visit when visits fill batches of ``B`` in order (a visit that does not
    fit is truncated, its rest dropped), and the visit count at which each full batch closes."""
    take = np.empty(len(counts), dtype=np.int64)
    ends: List[int] = []
    size = 0
    for v, c in enumerate(counts):
        t = c if c < B - size else B - size
        take[v] = t
        size += t
        if size == B:
            ends.append(v + 1)
            size = 0
    return take, ends


class TestLoader:
    """Every example of the split once, in file order, in global batches; each set's last one padded.

    Sets are read one after the other and a batch never mixes two sets. Extra keys: ``index`` int64
    (example index in the split, the sets counted in order; -1 for padding) and ``valid`` bool.
    """

    __test__ = False  # not a pytest class

    def __init__(self, root, batch_size: int, rank: int = 0, world_size: int = 1, split: str = "test"):
        self.batch_size = int(batch_size)
        self.rank, self.world_size = rank, world_size
        self.local_batch_size = _check_rank(self.batch_size, rank, world_size)
        self.data = open_split(root, split)
        self.metadata = self.data.metadata
        self.set_names = list(self.metadata.sets)
        self.num_examples = sum(self.data.sets[n].num_examples for n in self.set_names)

    def __len__(self) -> int:
        return sum(-(-self.data.sets[n].num_examples // self.batch_size) for n in self.set_names)

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        offset = 0
        for name in self.set_names:
            s = self.data.sets[name]
            n = s.num_examples
            for start in range(0, n, self.batch_size):
                lo = start + self.rank * self.local_batch_size
                rows = np.arange(lo, lo + self.local_batch_size)
                rows[rows >= n] = -1
                b = _to_batch(s, self.metadata, rows, self.local_batch_size)
                b["index"] = torch.from_numpy(np.where(rows >= 0, rows + offset, -1).astype(np.int64))
                b["valid"] = torch.from_numpy(rows >= 0)
                yield b
            offset += n
