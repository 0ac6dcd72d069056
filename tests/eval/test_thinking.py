"""Test-time scaling (trmlab.eval.thinking) and the rule checks (trmlab.eval.rules)."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from trmlab.data import maze, sudoku
from trmlab.data.augment import dihedral_transforms
from trmlab.eval import rules, thinking
from trmlab.eval.evaluate import evaluate
from trmlab.model import run_to_halt
from trmlab.model.act import Carry
from trmlab.trace.tasks import maze_spec, sudoku_spec
from trmlab.trace.tiny import tiny_model


def _sudoku_set(count=12, n=4, seed=3, difficulty="hard"):
    qs = sudoku.generate_puzzles(count, n=n, seed=seed, difficulty=difficulty)
    x = np.stack([sudoku.encode(q) for q, _, _ in qs]).astype(np.int64)
    y = np.stack([sudoku.encode(a) for _, a, _ in qs]).astype(np.int64)
    return x, y


def _maze_set(count=6, n=6, seed=1):
    ms = maze.generate_mazes(count, size=n, min_path=4, seed=seed)
    x = np.stack([maze.encode(q) for q, _, _ in ms]).astype(np.int64)
    y = np.stack([maze.encode(a) for _, a, _ in ms]).astype(np.int64)
    return x, y


# -- the rule checks ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [4, 6, 9])
def test_the_sudoku_rule_check_accepts_every_generated_solution_and_rejects_a_swap(n):
    x, y = _sudoku_set(8, n=n, difficulty="easy" if n == 9 else "hard")
    assert rules.rule_check("sudoku", x, y).all()
    assert all(rules.rule_violations("sudoku", q, a) == [] for q, a in zip(x, y))
    bad = y.copy()
    for b in range(len(bad)):  # two different digits of a row swapped: the columns now repeat
        i, j = 0, int(np.nonzero(bad[b, :n] != bad[b, 0])[0][0])
        bad[b, [i, j]] = bad[b, [j, i]]
    assert not rules.rule_check("sudoku", x, bad).any()
    why = rules.rule_violations("sudoku", x[0], bad[0])
    assert any(w.startswith("column ") and "twice" in w for w in why), why
    blank = y[0].copy()
    blank[5] = 1
    assert "left blank" in rules.rule_violations("sudoku", x[0], blank)[0]


def test_the_sudoku_rule_check_names_a_changed_given():
    x, y = _sudoku_set(1, n=4)
    q, a = x[0], y[0].copy()
    given = int(np.nonzero(q >= 2)[0][0])
    # a valid board that differs at a given: relabel two digits everywhere
    d1, d2 = a[given], (a[given] - 2 + 1) % 4 + 2
    a = np.where(a == d1, d2, np.where(a == d2, d1, a))
    assert not rules.rule_check("sudoku", q, a)[0]
    assert any("the given" in w for w in rules.rule_violations("sudoku", q, a))


def test_the_maze_rule_check_accepts_generated_paths_and_rejects_a_broken_one():
    x, y = _maze_set()
    assert rules.rule_check("maze", x, y).all()
    bad = y.copy()
    o = maze.encode(np.array(["o"]))[0]
    bad[0][np.nonzero(bad[0] == o)[0][0]] = maze.encode(np.array([" "]))[0]  # a gap in the path
    assert not rules.rule_check("maze", x, bad)[0] and rules.rule_violations("maze", x[0], bad[0])
    assert rules.rule_check("arc", x, y) is None and rules.rule_violations("arc", x[0], y[0]) is None


# -- the transforms ---------------------------------------------------------------------------------------------

def test_each_transform_s_inverse_restores_the_puzzle_and_its_labels_exactly():
    rng = np.random.default_rng(0)
    x, y = _sudoku_set(5, n=9, difficulty="easy")
    for q, a in zip(x, y):
        t = sudoku.token_transforms(9, 64, rng)
        tq, ta = t.apply(q), t.apply(a)
        assert (tq[0] == q).all() and (ta[0] == a).all()          # transform 0 is the puzzle itself
        assert rules.rule_check("sudoku", tq, ta).all()           # every transform keeps the grid valid
        assert (t.invert(tq) == q).all() and (t.invert(ta) == a).all()
        assert len({r.tobytes() for r in tq}) > 32                # and they differ
    mx, my = _maze_set()
    t = dihedral_transforms(6, 6)
    assert rules.rule_check("maze", t.apply(mx[0]), t.apply(my[0])).all()
    assert (t.invert(t.apply(my)) == my[:, None, :]).all()


# -- K = 1, sigma = 0 is the plain evaluation ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny4():
    torch.manual_seed(0)
    model = tiny_model(sudoku_spec(4), hidden=32, n_supervision=3, seed=1)
    with torch.no_grad():  # a halting head that fires on some puzzles and not on others
        model.core.q_head.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
        model.core.q_head.bias[0] = 0.0
    return model


def test_one_plain_trajectory_is_the_plain_evaluation(tiny4):
    x, y = _sudoku_set(24, n=4)
    tr = thinking.run_trajectories(tiny4, x, y, steps=6, batch_size=10)
    batch = {"inputs": torch.as_tensor(x, dtype=torch.int32), "labels": torch.as_tensor(y),
             "puzzle_identifiers": torch.zeros(len(x), dtype=torch.int32)}
    plain = run_to_halt(tiny4, batch, 6)
    assert (tr.last_answers[:, 0] == plain["preds"].numpy()).all()
    m = evaluate(tiny4, [batch], 6, records=True)
    for s in range(1, 7):
        r = thinking.select(tr, "halt", steps=s)
        assert r["exact_accuracy"] == pytest.approx(m[f"step{s}/exact_accuracy"]), s
        assert r["calls_per_puzzle"] == s * tiny4.cfg.n_recursions * (tiny4.cfg.n_latent_steps + 1)
    learned = evaluate(tiny4, [batch], 6, halting="learned", records=True)
    r = thinking.select(tr, "halt", halting="learned")
    assert r["exact_accuracy"] == pytest.approx(learned["halt/exact_accuracy"])
    assert (r["answered_at"] == learned["records"]["halt_step"]).all()
    # the oracle of one candidate is that candidate; a vote of one is that one
    assert thinking.select(tr, "oracle")["exact_accuracy"] == thinking.select(tr, "vote")["exact_accuracy"] \
        == m["step6/exact_accuracy"]


def test_noise_changes_only_the_extra_trajectories_and_the_seed_repeats_them(tiny4):
    x, y = _sudoku_set(6, n=4)
    plain = thinking.run_trajectories(tiny4, x, y, steps=4)
    noisy = thinking.run_trajectories(tiny4, x, y, steps=4, k=3, sigma=0.5, init_noise=True, seed=7)
    again = thinking.run_trajectories(tiny4, x, y, steps=4, k=3, sigma=0.5, init_noise=True, seed=7)
    assert (noisy.last_answers[:, 0] == plain.last_answers[:, 0]).all()   # trajectory 0 is the plain one
    assert (noisy.halt_logit[:, :, 1:] != plain.halt_logit[:, :, :1]).any()
    assert (noisy.last_answers == again.last_answers).all() and (noisy.halt_logit == again.halt_logit).all()
    with pytest.raises(ValueError, match="this run has k <= 3"):
        thinking.select(noisy, "halt", k=4)


# -- voting over transforms on a model that is always right --------------------------------------------------------

class _Solver(nn.Module):
    """A stand-in for a trained model that solves every Sudoku it is given (by search), and whose halting
    logit is high: a model that is always right, in whatever frame the puzzle comes."""

    def __init__(self, n):
        super().__init__()
        self.n = n
        self.w = nn.Parameter(torch.zeros(1))
        spec = sudoku_spec(n)
        self.cfg = tiny_model(spec, n_supervision=2).cfg
        self.solver = sudoku._Solver(n)

    def initial_carry(self, batch):
        B, L = batch["inputs"].shape
        z = torch.zeros(B, L, 1)
        return Carry(z, z, torch.zeros(B, dtype=torch.int32), torch.ones(B, dtype=torch.bool),
                     {k: v for k, v in batch.items() if k in ("inputs", "labels", "puzzle_identifiers")})

    def forward(self, carry, batch, observer=None, n_supervision=None):
        x = batch["inputs"].numpy() - 1
        sol = [self.solver.search([int(v) for v in row], limit=1)[2] for row in x]
        tokens = torch.as_tensor(np.array(sol) + 1)
        logits = torch.nn.functional.one_hot(tokens, self.cfg.vocab_size).float()
        q = torch.tensor([[5.0, 0.0]]).expand(len(x), 2)
        return carry, {"logits": logits, "q_halt_logits": q[:, 0], "q_continue_logits": q[:, 1]}


@pytest.mark.parametrize("selector", ["halt", "first", "vote", "rule", "oracle"])
def test_voting_over_transforms_on_a_model_that_is_always_right_stays_right(selector):
    x, y = _sudoku_set(6, n=6)
    tr = thinking.run_trajectories(_Solver(6), x, y, steps=2, augment=8, k=2, sigma=0.1, family="sudoku")
    assert tr.correct.all() and tr.valid.all()
    r = thinking.select(tr, selector)
    assert r["exact_accuracy"] == 1.0 and r["uses_rule_check"] == (selector == "rule")


def test_selectors_pick_by_votes_confidence_and_rules():
    """Hand-made candidates: 3 per puzzle over 2 steps."""
    S, B, C, L = 2, 3, 3, 4
    correct = np.zeros((S, B, C), bool)
    ids = np.zeros((S, B, C), np.int64)
    logit = np.zeros((S, B, C), np.float32)
    valid = np.zeros((S, B, C), bool)
    # puzzle 0: two candidates agree on a wrong answer, the most confident one is right
    ids[:, 0] = [1, 1, 2]
    correct[:, 0] = [False, False, True]
    logit[:, 0] = [0.0, 0.0, 3.0]
    valid[:, 0] = [False, False, True]
    # puzzle 1: the majority is right; the confident one is wrong and breaks the rules
    ids[:, 1] = [5, 5, 6]
    correct[:, 1] = [True, True, False]
    logit[:, 1] = [-1.0, -1.0, 2.0]
    valid[:, 1] = [True, True, False]
    # puzzle 2: nobody is right
    ids[:, 2] = [7, 8, 9]
    tr = thinking.Trajectories("sudoku", 3, 1, 0.1, False, correct, ids, logit, logit > 0, valid,
                               np.zeros((B, C, L), np.int16), None, np.zeros((B, L)), np.zeros((B, L)), 8, 1e-3)
    pick = {sel: thinking.select(tr, sel)["correct"].tolist() for sel in ("halt", "vote", "rule", "oracle")}
    assert pick == {"halt": [True, False, False], "vote": [False, True, False], "rule": [True, True, False],
                    "oracle": [True, True, False]}
    frontier = thinking.cheapest(thinking.curve(tr, "k", [1, 2, 3], selectors=("vote",)))
    assert [r["k"] for r in frontier] == [1] or frontier[0]["calls_per_puzzle"] <= frontier[-1]["calls_per_puzzle"]


def test_the_fixed_point_rule_stops_when_the_answer_stops_changing():
    S, B, C = 5, 1, 1
    ids = np.array([1, 2, 3, 3, 3]).reshape(S, B, C)
    correct = (ids == 3)
    tr = thinking.Trajectories("sudoku", 1, 1, 0.0, False, correct, ids, np.zeros((S, B, C), np.float32),
                               np.zeros((S, B, C), bool), None, np.zeros((B, C, 4), np.int16), None,
                               np.zeros((B, 4)), np.zeros((B, 4)), 8, 1e-3)
    assert thinking.select(tr, "halt", halting="fixed_point", fixed_point=1)["answered_at"].tolist() == [4]
    assert thinking.select(tr, "halt", halting="fixed_point", fixed_point=2)["answered_at"].tolist() == [5]
    assert thinking.select(tr, "halt", halting="learned")["answered_at"].tolist() == [5]


def test_thinking_settings_parse_and_refuse_what_they_do_not_know():
    th = thinking.Thinking.parse("augment=32, steps=24, select=vote, sigma=0.2, k=4, init_noise=true")
    assert (th.augment, th.steps, th.select, th.sigma, th.k, th.init_noise) == (32, 24, "vote", 0.2, 4, True)
    assert thinking.Thinking.from_dict(json.loads(json.dumps(th.to_dict()))) == th
    with pytest.raises(ValueError, match="unknown key 'K'"):
        thinking.Thinking.parse("K=3")
    with pytest.raises(ValueError, match="select must be one of"):
        thinking.Thinking(select="best")
    with pytest.raises(ValueError, match="the oracle knows the labels"):
        thinking.Thinking(select="oracle")
    assert "uses the rule check" in thinking.Thinking(select="rule").describe()


def test_think_answers_with_the_chosen_candidate(tiny4):
    x, y = _sudoku_set(5, n=4)
    out = thinking.think(tiny4, x, y, thinking=thinking.Thinking(steps=4, augment=4, select="vote"))
    assert out["answers"].shape == x.shape and out["rule_ok"].shape == (5,)
    assert ((out["answers"] == y).all(1) == out["correct"]).all()
    learned = thinking.think(tiny4, x, y, thinking=thinking.Thinking(steps=4, halting="learned"))
    batch = {"inputs": torch.as_tensor(x, dtype=torch.int32), "puzzle_identifiers": torch.zeros(5, dtype=torch.int32),
             "labels": torch.as_tensor(y)}
    plain = run_to_halt(tiny4, batch, 4, halting="learned")
    assert (learned["answers"] == plain["preds"].numpy()).all() and (learned["steps"] == plain["steps"].numpy()).all()
    with pytest.raises(ValueError, match="8 dihedral transforms"):
        thinking.run_trajectories(tiny_model(maze_spec(5)), np.ones((1, 25)), np.ones((1, 25)), steps=1, augment=9)


def test_stopping_halted_trajectories_saves_compute_and_gives_learned_halting(tiny4):
    x, y = _sudoku_set(16, n=4)
    full = thinking.run_trajectories(tiny4, x, y, steps=6, k=4, sigma=0.3, augment=2, seed=2)
    cut = thinking.run_trajectories(tiny4, x, y, steps=6, k=4, sigma=0.3, augment=2, seed=2, stop_when_halted=True)
    assert cut.ran_steps.min() >= 1 and (cut.ran_steps <= 6).all() and cut.ran_steps.min() < 6
    for sel in ("halt", "vote", "first", "oracle"):
        a = thinking.select(full, sel, halting="learned")
        b = thinking.select(cut, sel, halting="learned")
        assert (a["correct"] == b["correct"]).all() and (a["answered_at"] == b["answered_at"]).all(), sel
        assert b["calls_per_puzzle"] <= a["calls_per_puzzle"] + 1e-9
    # every trajectory's answer is frozen at its stop: asking for all steps gives learned halting
    assert (thinking.select(cut, "halt")["correct"] == thinking.select(full, "halt", halting="learned")["correct"]).all()


def test_the_best_setting_uses_no_rule_check_and_no_labels_and_respects_the_cost_cap(tiny4):
    x, y = _sudoku_set(12, n=4)
    runs = {0.0: thinking.run_trajectories(tiny4, x, y, steps=8, augment=4, stop_when_halted=True),
            0.3: thinking.run_trajectories(tiny4, x, y, steps=8, k=4, sigma=0.3, stop_when_halted=True)}
    th, best, rows = thinking.best_setting(runs, max_ratio=2.0)
    assert th.select in ("halt", "first", "vote") and th.halting == "learned"
    assert all(r["calls_ratio"] <= 2.0 + 1e-9 and not r["uses_rule_check"] and not r["uses_labels"] for r in rows)
    assert best["exact_accuracy"] == max(r["exact_accuracy"] for r in rows)
    assert (th.sigma > 0) == (th.k > 1)


def test_depth_and_parallel_work_on_arc_and_the_rule_selector_says_it_has_no_rules():
    from trmlab.trace.tasks import arc_spec
    from trmlab.trace.tiny import random_batch

    spec = arc_spec()
    b = random_batch(spec, 2)
    model = tiny_model(spec, hidden=16, n_supervision=2)
    tr = thinking.run_trajectories(model, b["inputs"], b["labels"], steps=3, k=2, sigma=0.2)
    assert tr.family == "arc" and tr.valid is None and tr.correct.shape == (3, 2, 2)
    assert 0 <= thinking.select(tr, "vote")["exact_accuracy"] <= 1
    with pytest.raises(ValueError, match="no rules to check"):
        thinking.select(tr, "rule")
    with pytest.raises(ValueError, match="dataset's own augmented versions"):
        thinking.run_trajectories(model, b["inputs"], b["labels"], steps=1, augment=2)
