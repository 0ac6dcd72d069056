"""The training loader: several sets, the tail dropped once per block, small datasets, real epochs."""
import json
from collections import Counter

import numpy as np
import pytest

from trmlab.data.loader import TestLoader, TrainLoader

SEQ = 4  # token 0: the set (1, 2, ...); tokens 1..3: the example's index in its set, base 10


def _write(root, split, sets):
    """A dataset in the reference layout with one set per entry of ``sets``: a list of groups, each a
    list of puzzles, each the number of its examples."""
    d = root / split
    d.mkdir(parents=True)
    total_groups = total_puzzles = total_examples = 0
    pid = 1
    for si, (name, groups) in enumerate(sets.items(), start=1):
        counts = [c for g in groups for c in g]
        n = sum(counts)
        idx = np.arange(n)
        inputs = np.stack([np.full(n, si), idx // 100 % 10, idx // 10 % 10, idx % 10], axis=1).astype(np.uint8)
        np.save(d / f"{name}__inputs.npy", inputs)
        np.save(d / f"{name}__labels.npy", inputs.copy())
        np.save(d / f"{name}__puzzle_identifiers.npy", np.arange(pid, pid + len(counts), dtype=np.int32))
        np.save(d / f"{name}__puzzle_indices.npy", np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
        np.save(d / f"{name}__group_indices.npy",
                np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int32))
        pid += len(counts)
        total_groups += len(groups)
        total_puzzles += len(counts)
        total_examples += n
    meta = {"pad_id": 0, "ignore_label_id": None, "blank_identifier_id": 0, "vocab_size": 10, "seq_len": SEQ,
            "num_puzzle_identifiers": pid, "total_groups": total_groups,
            "mean_puzzle_examples": total_examples / total_puzzles, "total_puzzles": total_puzzles,
            "sets": list(sets)}
    (d / "dataset.json").write_text(json.dumps(meta))
    return root


def _rows(batch):
    """(set, example index) of every row."""
    x = batch["inputs"].numpy().astype(int)
    return [(int(r[0]), int(r[1] * 100 + r[2] * 10 + r[3])) for r in x]


def test_each_batch_comes_from_its_own_set(tmp_path):
    # set "a": 12 groups of 2 puzzles of 1 example; set "b": 8 groups of 1 puzzle of 1 example
    root = _write(tmp_path, "train", {"a": [[1, 1]] * 12, "b": [[1]] * 8})
    L = TrainLoader(root, 4, seed=0, epochs_per_block=1)
    seen = Counter()
    for _ in range(2 * (3 + 2)):   # two blocks: 12 // 4 = 3 batches of a, 8 // 4 = 2 of b
        b = L.next_batch()
        sets = {s for s, _ in _rows(b)}
        assert len(sets) == 1, "a batch mixes sets"
        (s,) = sets
        assert L.current_set == {1: "a", 2: "b"}[s]
        # identifiers of set b are those of set b's puzzles (read from b's arrays, not a's)
        ids = b["puzzle_identifiers"].numpy()
        assert ((ids > 24) if s == 2 else (ids <= 24)).all()
        seen[s] += 1
    assert seen == {1: 6, 2: 4}
    # every group of each set once per epoch (block = 1 epoch here)
    L2 = TrainLoader(root, 4, seed=0)
    first = [L2.next_batch() for _ in range(5)]
    groups_a = {i // 2 for b in first[:3] for s, i in _rows(b) if s == 1}
    groups_b = {i for b in first[3:] for s, i in _rows(b) if s == 2}
    assert len(groups_a) == 12 and len(groups_b) == 8
    assert L2.epoch == pytest.approx(1.0)


def test_tail_dropped_once_per_block_and_epochs_are_real(tmp_path):
    root = _write(tmp_path, "train", {"all": [[1]] * 10})
    # 3 epochs per block = 30 group visits -> 7 batches of 4, 2 visits dropped once (per epoch: 6 batches)
    L = TrainLoader(root, 4, seed=1, epochs_per_block=3)
    assert len(L._plan_for(0)) == 7 and L.steps_per_epoch == pytest.approx(7 / 3)
    batches = [L.next_batch() for _ in range(7)]
    visits = Counter(i for b in batches for _, i in _rows(b))
    assert sum(visits.values()) == 28 and max(visits.values()) <= 3 and len(visits) == 10
    # batch 3 (rows 8..11) spans the boundary of epochs 1 and 2
    assert L.epoch == pytest.approx(28 / 10)
    L.next_batch()  # first batch of block 1
    assert L.epoch == pytest.approx(3 + 4 / 10)
    # epochs logged along the way count group visits
    L1 = TrainLoader(root, 4, seed=1, epochs_per_block=3)
    got = []
    for _ in range(3):
        L1.next_batch()
        got.append(L1.epoch)
    assert got == pytest.approx([0.4, 0.8, 1.2])


def test_truncated_visits_and_epochs_with_multi_example_puzzles(tmp_path):
    # 6 groups of 2 puzzles with 3 examples each (ARC-like); batches of 4: a visit that does not fit
    # is truncated and its rest dropped, the next visit starts a new batch
    root = _write(tmp_path, "train", {"all": [[3, 3]] * 6})
    L = TrainLoader(root, 4, seed=2, epochs_per_block=2)
    plan = L._plan_for(0)
    assert len(plan) == 6  # 12 visits, (3 + 1 truncated) per batch
    for rows in plan:
        assert len(rows) == 4 and len(set(rows.tolist())) == 4
        puzzles = {int(r) // 3 for r in rows}
        assert len(puzzles) == 2  # one whole visit (3 examples) + one truncated to 1
    for _ in range(3):
        L.next_batch()
    assert L.epoch == pytest.approx(6 / 6)  # 3 batches x 2 visits = 6 visits = one epoch of 6 groups


def test_dataset_smaller_than_the_batch_is_trained_on(tmp_path):
    root = _write(tmp_path, "train", {"all": [[1]] * 5})
    L = TrainLoader(root, 8, seed=3)  # 5 examples an epoch < batch 8: the block covers 2 epochs
    assert L.epochs_per_block == 2
    b = L.next_batch()
    assert b["inputs"].shape == (8, SEQ)
    assert Counter(i for _, i in _rows(b)).most_common(1)[0][1] <= 2
    assert L.epoch == pytest.approx(8 / 5)
    # with enough epochs per block (the trainer's eval_interval) nothing changes
    assert TrainLoader(root, 8, seed=3, epochs_per_block=4).epochs_per_block == 4


def test_resume_inside_and_across_blocks_and_ranks(tmp_path):
    root = _write(tmp_path, "train", {"a": [[2, 1]] * 9, "b": [[1, 1, 1]] * 7})
    L = TrainLoader(root, 4, seed=4, epochs_per_block=2)
    for _ in range(5):
        L.next_batch()
    st = json.loads(json.dumps(L.state_dict()))
    nxt = [L.next_batch() for _ in range(12)]  # crosses into the next block
    L2 = TrainLoader(root, 4, seed=4, epochs_per_block=2)
    L2.load_state_dict(st)
    for b in nxt:
        assert all((b[k] == v).all() for k, v in L2.next_batch().items())
    assert L2.epoch == L.epoch
    with pytest.raises(ValueError, match="epochs per block"):
        TrainLoader(root, 4, seed=4, epochs_per_block=3).load_state_dict(st)
    # two ranks: their halves make the single-process global batch
    one = TrainLoader(root, 4, seed=4, epochs_per_block=2)
    r0, r1 = (TrainLoader(root, 4, r, 2, seed=4, epochs_per_block=2) for r in (0, 1))
    for _ in range(10):
        full = one.next_batch()["inputs"].numpy()
        assert (np.concatenate([r0.next_batch()["inputs"].numpy(), r1.next_batch()["inputs"].numpy()]) == full).all()
    # a loader state written before blocks existed is accepted: the stream goes on from a fresh block
    old = TrainLoader(root, 4, seed=4, epochs_per_block=2)
    old.load_state_dict({"epoch": 3, "batch": 2, "seed": 4, "global_batch_size": 4})
    old.next_batch()
    assert old.state_dict()["block"] == 2 and old.state_dict()["batch"] == 1


def test_test_loader_reads_every_set(tmp_path):
    root = _write(tmp_path, "test", {"a": [[1]] * 5, "b": [[2]] * 2})
    T = TestLoader(root, 4)
    bs = list(T)
    assert len(bs) == len(T) == 3 and T.num_examples == 9
    assert [{s for s, _ in _rows(b)} for b in bs] == [{1}, {1, 0}, {2}]  # padding rows read as set 0
    assert bs[1]["valid"].tolist() == [True, False, False, False]
    assert bs[2]["index"].tolist() == [5, 6, 7, 8]
    assert bs[1]["index"].tolist() == [4, -1, -1, -1]
