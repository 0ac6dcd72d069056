"""The ARC evaluator on real ARC-AGI-1 evaluation tasks (read from ../shared/data/arc).

The evaluator's inputs are built here, independently of trmlab.data's builders: random versions
(dihedral id + colour permutation with 0 fixed), encoded as the reference does (30x30, colour + 2,
EOS = 1 below and right of the grid where it fits, PAD 0, test split not translated).
"""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from trmlab.data.arc import crop_sizes as _crop_sizes
from trmlab.data.arc import decode_arc_grid as crop_arc_grid
from trmlab.data.arc import invert_version as invert_augmentation
from trmlab.data.arc import parse_version_name
from trmlab.data.augment import dihedral
from trmlab.eval.arc_vote import ArcEvaluator

REPO = Path(__file__).resolve().parents[2]
ARC_DIR = Path(os.environ.get("TRMLAB_ARC_DATA", REPO.parent / "shared" / "data" / "arc"))
KS = (1, 2, 5, 10, 100, 1000)


# ---------------------------------------------------------------------------------------------
# Building the evaluator's inputs from the raw tasks
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arc_eval_tasks():
    ch_path = ARC_DIR / "arc-agi_evaluation_challenges.json"
    if not ch_path.exists():
        pytest.skip(f"ARC data not found at {ARC_DIR}")
    challenges = json.loads(ch_path.read_text())
    solutions = json.loads((ARC_DIR / "arc-agi_evaluation_solutions.json").read_text())
    ids = sorted(challenges)
    single = [t for t in ids if len(challenges[t]["test"]) == 1]
    multi = [t for t in ids if len(challenges[t]["test"]) >= 2]
    # 20 tasks; tasks with 2+ test pairs in both halves; several have a 30-wide/high grid
    chosen = single[:7] + multi[:3] + single[7:14] + multi[3:6]
    test_puzzles = {}
    for t in chosen:
        pairs = [{"input": p["input"], "output": o} for p, o in zip(challenges[t]["test"], solutions[t])]
        test_puzzles[t] = {"train": challenges[t]["train"], "test": pairs}
    return test_puzzles


def encode(grid: np.ndarray) -> np.ndarray:
    h, w = grid.shape
    t = np.zeros((30, 30), dtype=np.int32)
    t[:h, :w] = grid.astype(np.int32) + 2
    if h < 30:
        t[h, :w] = 1
    if w < 30:
        t[:h, w] = 1
    return t.reshape(-1)


class Versions:
    """Random versions per task, with an identifiers list (0 = "<blank>")."""

    def __init__(self, tasks, n_random, seed):
        rng = np.random.default_rng(seed)
        self.identifiers = ["<blank>"]
        self.by_task = {}
        for task in tasks:
            vs = [(0, np.arange(10))]
            for _ in range(n_random):
                perm = np.concatenate([[0], rng.permutation(np.arange(1, 10))])
                vs.append((int(rng.integers(0, 8)), perm))
            self.by_task[task] = []
            for tid, perm in vs:
                name = f"{task}|||t{tid}|||{''.join(str(int(c)) for c in perm)}"
                self.identifiers.append(name)
                self.by_task[task].append((len(self.identifiers) - 1, tid, perm.astype(np.uint8)))


def augment(grid, tid, perm):
    return np.ascontiguousarray(dihedral(perm[np.asarray(grid, dtype=np.uint8)], tid))


def wrong_grid(grid):
    g = np.array(grid, dtype=np.uint8)
    g[0, 0] = (g[0, 0] + 1) % 10
    return g


def rows_for(test_puzzles, versions, answer, q_logit=lambda task, i, v: 0.0):
    """Rows (input tokens, id, predicted tokens, q logit); ``answer(task, pair, version)`` gives the
    prediction in the original (un-augmented) space, or None for no row."""
    rows = []
    for task, puzzle in test_puzzles.items():
        for i, pair in enumerate(puzzle["test"]):
            for v, (pid, tid, perm) in enumerate(versions.by_task[task]):
                pred = answer(task, i, v)
                if pred is None:
                    continue
                inp = encode(augment(pair["input"], tid, perm))
                out = encode(augment(pred, tid, perm))
                rows.append((inp, pid, out, q_logit(task, i, v)))
    return rows


def feed(ev, rows, batch=16, seed=0, as_torch=False):
    """Shuffle rows into padded batches (padding rows: blank id, garbage tokens)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    for s in range(0, len(rows), batch):
        chunk = [rows[j] for j in order[s : s + batch]]
        pad = batch - len(chunk)
        inputs = np.stack([r[0] for r in chunk] + [rng.integers(0, 12, 900) for _ in range(pad)])
        ids = np.array([r[1] for r in chunk] + [0] * pad, dtype=np.int32)
        preds = np.stack([r[2] for r in chunk] + [rng.integers(0, 12, 900) for _ in range(pad)])
        q = np.array([r[3] for r in chunk] + [9.0] * pad, dtype=np.float32)
        if as_torch:
            ev.update(torch.from_numpy(inputs), torch.from_numpy(ids), torch.from_numpy(preds), torch.from_numpy(q).bfloat16())
        else:
            ev.update(inputs, ids, preds, q)


def truth(tp):
    return lambda task, i, v: np.array(tp[task]["test"][i]["output"], dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# Must show: true answers under random augmentations -> 1.0, wrong -> 0.0, a mix -> the fraction
# ---------------------------------------------------------------------------------------------


def test_all_true_predictions_score_one(arc_eval_tasks, tmp_path):
    tp = arc_eval_tasks
    assert len(tp) == 20 and sum(len(p["test"]) >= 2 for p in tp.values()) == 6
    vers = Versions(tp, n_random=4, seed=1)
    assert any(tid != 0 for vs in vers.by_task.values() for _, tid, _ in vs[1:])
    ev = ArcEvaluator(vers.identifiers, tp)
    ev.begin()
    rows = rows_for(tp, vers, truth(tp))
    feed(ev, rows[: len(rows) // 2], as_torch=True)
    feed(ev, rows[len(rows) // 2 :])
    r = ev.result(out_dir=tmp_path)
    for k in KS:
        assert r[f"ARC/pass@{k}"] == 1.0
    s = r["summary"]
    assert s["votes_matched"] == len(rows) == s["rows"] and s["votes_unmatched"] == 0
    assert s["tasks_with_votes"] == 20
    sub = json.loads((tmp_path / "submission.json").read_text())
    assert set(sub) == set(tp)
    for task, puzzle in tp.items():
        assert len(sub[task]) == len(puzzle["test"])
        for att, pair in zip(sub[task], puzzle["test"]):
            assert att["attempt_1"] == pair["output"] == att["attempt_2"]  # one candidate: repeated


def test_all_wrong_predictions_score_zero(arc_eval_tasks):
    tp = arc_eval_tasks
    vers = Versions(tp, n_random=3, seed=2)
    ev = ArcEvaluator(vers.identifiers, tp)
    ev.begin()
    feed(ev, rows_for(tp, vers, lambda t, i, v: wrong_grid(tp[t]["test"][i]["output"])))
    r = ev.result()
    for k in KS:
        assert r[f"ARC/pass@{k}"] == 0.0
    assert r["summary"]["votes_unmatched"] == 0


def test_mix_scores_the_per_task_mean(arc_eval_tasks):
    tp = arc_eval_tasks
    tasks = list(tp)
    first_half = set(tasks[:10])
    vers = Versions(tp, n_random=3, seed=3)

    def answer(task, i, v):
        out = tp[task]["test"][i]["output"]
        # first half: every pair right; second half: only test pair 0 of tasks with 2+ pairs
        if task in first_half or (i == 0 and len(tp[task]["test"]) >= 2):
            return np.array(out, dtype=np.uint8)
        return wrong_grid(out)

    ev = ArcEvaluator(vers.identifiers, tp)
    ev.begin()
    feed(ev, rows_for(tp, vers, answer), batch=7)
    r = ev.result()
    n_pairs = {t: len(tp[t]["test"]) for t in tasks}
    expected = (10 + sum(1 / n_pairs[t] for t in tasks[10:] if n_pairs[t] >= 2)) / 20
    per_pair = (sum(n_pairs[t] for t in tasks[:10]) + sum(1 for t in tasks[10:] if n_pairs[t] >= 2)) / sum(n_pairs.values())
    assert 0.5 < expected < 1.0 and abs(expected - per_pair) > 1e-3  # the definition matters
    assert r["ARC/pass@1"] == pytest.approx(expected, abs=1e-12)
    assert r["ARC/pass@1000"] == pytest.approx(expected, abs=1e-12)
    for t in tasks:
        want = 1.0 if t in first_half else (1 / n_pairs[t] if n_pairs[t] >= 2 else 0.0)
        assert r["per_task"][t]["pass@1"] == pytest.approx(want)


# ---------------------------------------------------------------------------------------------
# Voting: count first, then mean halting probability
# ---------------------------------------------------------------------------------------------


def _single_task(tp):
    task = next(t for t in tp if len(tp[t]["test"]) == 1)
    return task, {task: tp[task]}


@pytest.mark.parametrize(
    "truth_q,wrong_q,truth_wins",
    [
        # equal counts (2 vs 2): mean sigmoid decides. sigmoid(3)=.953, sigmoid(-3)=.047 -> mean .5;
        # sigmoid(.5)=.622 -> the wrong grid wins although the truth has the single highest vote.
        ([3.0, -3.0], [0.5, 0.5], False),
        ([3.0, 0.0], [0.5, 0.5], True),  # mean .726 > .622
        ([-5.0, -5.0, -5.0], [5.0, 5.0], True),  # more votes beat any probability
        ([5.0], [-5.0, -5.0], False),
    ],
)
def test_vote_tie_break_by_mean_halting_probability(arc_eval_tasks, truth_q, wrong_q, truth_wins):
    task, tp = _single_task(arc_eval_tasks)
    n = len(truth_q) + len(wrong_q)
    vers = Versions(tp, n_random=n - 1, seed=4)
    out = np.array(tp[task]["test"][0]["output"], dtype=np.uint8)
    bad = wrong_grid(out)
    answer = lambda t, i, v: out if v < len(truth_q) else bad
    q = lambda t, i, v: truth_q[v] if v < len(truth_q) else wrong_q[v - len(truth_q)]
    ev = ArcEvaluator(vers.identifiers, tp)
    ev.begin()
    feed(ev, rows_for(tp, vers, answer, q), batch=3, seed=5)
    r = ev.result()
    assert r["ARC/pass@1"] == (1.0 if truth_wins else 0.0)
    assert r["ARC/pass@2"] == 1.0
    first, second = (out, bad) if truth_wins else (bad, out)
    att = ev.submission()[task][0]
    assert att["attempt_1"] == first.tolist() and att["attempt_2"] == second.tolist()
    assert r["per_task"][task]["pairs"][0]["rank_of_truth"] == (1 if truth_wins else 2)


def test_pooling_across_evaluations(arc_eval_tasks):
    task, tp = _single_task(arc_eval_tasks)
    vers = Versions(tp, n_random=4, seed=6)
    out = np.array(tp[task]["test"][0]["output"], dtype=np.uint8)
    bad = wrong_grid(out)
    round1 = rows_for(tp, vers, lambda t, i, v: out if v < 3 else None)  # 3 true votes
    round2 = rows_for(tp, vers, lambda t, i, v: bad if v < 2 else None)  # 2 wrong votes
    results = {}
    for pool in (False, True):
        ev = ArcEvaluator(vers.identifiers, tp, pool_across_evaluations=pool)
        ev.begin()
        feed(ev, round1)
        assert ev.result()["ARC/pass@1"] == 1.0
        ev.begin()
        feed(ev, round2)
        results[pool] = ev.result()
    assert results[False]["ARC/pass@1"] == 0.0 and results[False]["ARC/pass@2"] == 0.0
    assert results[True]["ARC/pass@1"] == 1.0  # 3 pooled true votes beat 2 wrong ones
    assert results[True]["summary"]["rows"] == 5 and results[False]["summary"]["rows"] == 2


# ---------------------------------------------------------------------------------------------
# Distributed state / merge
# ---------------------------------------------------------------------------------------------


def test_state_merge_equals_single_evaluator(arc_eval_tasks):
    tp = arc_eval_tasks
    vers = Versions(tp, n_random=3, seed=7)
    rng = np.random.default_rng(8)
    answer = lambda t, i, v: np.array(tp[t]["test"][i]["output"], dtype=np.uint8) if rng.random() < 0.5 else wrong_grid(tp[t]["test"][i]["output"])
    rows = rows_for(tp, vers, answer, lambda t, i, v: float(rng.normal()))
    single = ArcEvaluator(vers.identifiers, tp)
    feed(single, rows)
    ranks = [ArcEvaluator(vers.identifiers, tp) for _ in range(3)]
    for k, ev in enumerate(ranks):
        ev.begin()
        feed(ev, rows[k::3])
    states = [pickle.loads(pickle.dumps(ev.state())) for ev in ranks]  # as gather_object would
    ranks[0].merge(states)  # includes its own state: not counted twice
    a, b = single.result(), ranks[0].result()
    for k in KS:
        assert a[f"ARC/pass@{k}"] == pytest.approx(b[f"ARC/pass@{k}"])
    assert a["summary"] == b["summary"]
    assert single.submission() == ranks[0].submission()
    ranks[0].merge(states[1:])  # without its own: the same
    assert ranks[0].result()["summary"] == a["summary"]
    # a state stores each distinct grid once
    st = ranks[1].state()
    referenced = {p for inner in st["votes"].values() for d in inner.values() for p in d}
    assert set(st["grids"]) == referenced


# ---------------------------------------------------------------------------------------------
# submission.json
# ---------------------------------------------------------------------------------------------


def test_submission_contents_and_atomic_write(arc_eval_tasks, tmp_path, monkeypatch):
    tp = arc_eval_tasks
    vers = Versions(tp, n_random=2, seed=9)
    voted = list(tp)[:5]
    rows = rows_for(tp, vers, lambda t, i, v: np.array(tp[t]["test"][i]["output"], dtype=np.uint8) if t in voted else None)
    ev = ArcEvaluator(vers.identifiers, tp, submission_k=2)
    ev.begin()
    feed(ev, rows)
    r = ev.result(out_dir=tmp_path)
    path = tmp_path / "submission.json"
    assert r["submission_path"] == str(path)
    sub = json.loads(path.read_text())
    assert list(sub) == list(tp)
    for t, puzzle in tp.items():
        assert len(sub[t]) == len(puzzle["test"])
        for att, pair in zip(sub[t], puzzle["test"]):
            assert set(att) == {"attempt_1", "attempt_2"}
            want = pair["output"] if t in voted else [[0]]
            assert att["attempt_1"] == want and att["attempt_2"] == want
    assert [p.name for p in tmp_path.iterdir()] == ["submission.json"]

    # a failure while writing leaves the previous file intact and no temporary file behind
    before = path.read_bytes()

    def broken_dump(obj, f, *a, **k):
        f.write('{"partial": ')
        raise RuntimeError("disk full")

    monkeypatch.setattr(json, "dump", broken_dump)
    with pytest.raises(RuntimeError):
        ev.result(out_dir=tmp_path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["submission.json"]


# ---------------------------------------------------------------------------------------------
# Decoding helpers
# ---------------------------------------------------------------------------------------------


def _loop_crop_size(tokens):
    """A plain loop statement of the crop rule, for comparison with the vectorised one."""
    g = np.asarray(tokens).reshape(30, 30)
    best, size, width = 0, (0, 0), 30
    for r in range(30):
        for c in range(width):
            if not 2 <= g[r, c] <= 11:
                width = c
                break
        if (r + 1) * width > best:
            best, size = (r + 1) * width, (r + 1, width)
    return size


def test_crop_at_border_and_eos():
    rng = np.random.default_rng(10)
    full = rng.integers(0, 10, (30, 30)).astype(np.uint8)
    t = encode(full)
    assert (t != 1).all()  # 30x30: no EOS anywhere
    assert np.array_equal(crop_arc_grid(t), full)
    tall = rng.integers(0, 10, (30, 4)).astype(np.uint8)  # touches the bottom: EOS column only
    assert np.array_equal(crop_arc_grid(encode(tall)), tall)
    wide = rng.integers(0, 10, (5, 30)).astype(np.uint8)  # touches the right: EOS row only
    assert np.array_equal(crop_arc_grid(encode(wide)), wide)
    assert crop_arc_grid(np.zeros(900, dtype=np.int64)).shape == (0, 0)
    # ragged prediction: widths 5, 3, 3 then EOS -> areas 5, 6, 9: the 3x3 rectangle wins
    rag = np.zeros((30, 30), dtype=np.int64)
    rag[0, :5] = 3
    rag[1:3, :3] = 4
    rag[1:3, 3] = 1
    assert crop_arc_grid(rag).shape == (3, 3)
    # the vectorised sizes agree with the plain rule on random token soups and encoded grids
    soups = rng.integers(0, 12, (200, 900))
    soups[:100] = np.where(rng.random((100, 900)) < 0.98, rng.integers(2, 12, (100, 900)), soups[:100])
    enc = np.stack([encode(rng.integers(0, 10, tuple(rng.integers(1, 31, 2))).astype(np.uint8)) for _ in range(50)])
    allt = np.concatenate([soups, enc])
    got = _crop_sizes(allt.reshape(-1, 30, 30))
    assert [tuple(x) for x in got] == [_loop_crop_size(x) for x in allt]


def test_real_30_grid_roundtrip(arc_eval_tasks):
    grids = [np.array(p[k], dtype=np.uint8) for pz in arc_eval_tasks.values() for p in pz["test"] for k in ("input", "output")]
    border = [g for g in grids if 30 in g.shape]
    assert border, "the chosen tasks should include a grid touching the 30x30 border"
    for g in grids:
        assert np.array_equal(crop_arc_grid(encode(g)), g)


def test_parse_and_invert():
    task, tid, perm = parse_version_name("abc123|||t6|||0935718264")
    assert task == "abc123" and tid == 6 and perm.tolist() == [0, 9, 3, 5, 7, 1, 8, 2, 6, 4]
    assert parse_version_name("abc123|||t0|||0123456789")[1] == 0
    assert parse_version_name("abc123")[0] == "abc123"
    for bad in ("abc|||t9|||0123456789", "abc|||t1|||0123", "abc|||x1|||0123456789"):
        with pytest.raises(ValueError):
            parse_version_name(bad)
    rng = np.random.default_rng(11)
    g = rng.integers(0, 10, (3, 5)).astype(np.uint8)
    for t in range(8):
        assert np.array_equal(invert_augmentation(augment(g, t, perm), t, perm), g)
