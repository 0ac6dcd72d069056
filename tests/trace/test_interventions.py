"""Ready-made interventions: where they act, what they change (and what not), the spec parser, the CLI."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trmlab.eval.evaluate import evaluate
from trmlab.runs.inference import solve, solver_batch
from trmlab.trace import (Noise, Reset, SetAnswerCell, SetInputCell, Swap, hooks_for, parse_intervention,
                          run_with_cache, sudoku_spec, trace)
from trmlab.trace.tiny import random_batch

REPO = Path(__file__).resolve().parents[2]
TASK = sudoku_spec(4)
T, n, N = 2, 2, 3  # the shape of conftest.py's `model`


@pytest.fixture(scope="module")
def plain_trace(model, batch):
    return trace(model, batch, pca="none")


def first_record(tr, step, recursion=0, latent_step=0):
    hits = np.nonzero((tr.index == (step, recursion, latent_step)).all(1))[0]
    return int(hits[0])


@pytest.mark.parametrize("iv, at", [
    (Noise(step=1, sigma=0.5), (1, 0, 0)),
    (Noise(step=2, recursion=0, latent_step=1, sigma=0.5), (2, 0, 1)),
    (SetAnswerCell(step=1, recursion=1, cell=5, token=3), (1, 1, n)),
    (Reset(step=2, state="both"), (2, 0, 0)),
])
def test_trace_records_before_are_bit_identical_and_after_change(model, batch, plain_trace, iv, at):
    tr = trace(model, batch, pca="none", interventions=[iv])
    k = first_record(tr, *at)
    assert len(tr) == len(plain_trace) and np.array_equal(tr.index, plain_trace.index)
    for name in ("y_pred", "z_pred", "y_conf", "z_conf", "halt_logit", "y_norm", "z_norm"):
        assert np.array_equal(tr.arrays[name][:k], plain_trace.arrays[name][:k]), name
    changed = ("y_norm", "z_norm") if isinstance(iv, Reset) else (("y_norm",) if isinstance(iv, SetAnswerCell)
                                                                 else ("z_norm",))
    assert any(not np.array_equal(tr.arrays[c][k], plain_trace.arrays[c][k]) for c in changed)
    assert not np.array_equal(tr.y_norm[k:], plain_trace.y_norm[k:])
    assert tr.meta["interventions"] == [iv.describe()]


def test_forcing_an_answer_cell_decodes_the_token_right_after(model, batch, plain, plain_trace):
    _, cache = plain
    cell = 6
    before = model.decode(cache["answer", 1, 0])[:, cell].argmax(-1)
    token = int((before[0] + 1) % TASK.vocab_size)
    _, c = run_with_cache(model, batch, interventions=[SetAnswerCell(step=1, recursion=0, cell=cell, token=token)])
    logits = model.decode(c["answer", 1, 0])
    assert (logits[:, cell].argmax(-1) == token).all()
    top2 = logits[:, cell].topk(2).values
    assert (top2[:, 0] - top2[:, 1] >= 1.0 - 1e-4).all()  # by the margin
    other = [k for k in range(TASK.seq_len) if k != cell]
    assert torch.equal(logits[:, other], model.decode(cache["answer", 1, 0])[:, other])  # only that cell
    # at the start of a step: the step's first record shows y decoding the token (y is unchanged by z updates)
    tr = trace(model, batch, pca="none", interventions=[SetAnswerCell(step=2, cell=cell, token=token, rows=(1,))])
    k = first_record(tr, 2)
    assert tr.y_pred[k, 1, cell] == token
    assert np.array_equal(tr.y_pred[k, [0, 2]], plain_trace.y_pred[k, [0, 2]])  # other rows untouched


def test_resetting_z_at_step_0_changes_nothing(model, batch, plain):
    ref, cache = plain
    out, c = run_with_cache(model, batch, interventions=[Reset(step=0, state="both")])
    assert torch.equal(out.logits, ref.logits) and all(torch.equal(c[p], cache[p]) for p in cache.keys())
    out, c = run_with_cache(model, batch, interventions=[Reset(step=1, recursion=0, latent_step=0, state="latent")])
    z0 = model.core.initial_state(3, "cpu")[1]
    assert torch.equal(c["latent", 1, 0, 0], z0)
    assert not torch.equal(out.logits, ref.logits)


def test_swapping_z_between_puzzles(model):
    same = random_batch(TASK, batch_size=2, seed=4)
    same = {k: torch.cat([v[:1], v[:1]]) for k, v in same.items()}  # two identical puzzles
    ref, _ = run_with_cache(model, same)
    out, _ = run_with_cache(model, same, interventions=[Swap(step=1, state="latent", rows=(0, 1))])
    assert torch.equal(out.logits, ref.logits)
    diff = random_batch(TASK, batch_size=2, seed=4)
    ref, cache = run_with_cache(model, diff)
    out, c = run_with_cache(model, diff, interventions=[Swap(step=1, recursion=0, latent_step=1, rows=(0, 1))])
    assert torch.equal(c["latent", 1, 0, 1], cache["latent", 1, 0, 1][[1, 0]])
    assert not torch.equal(out.logits, ref.logits)
    out, _ = run_with_cache(model, diff, interventions=[Swap(step=2, state="answer", rows=(0, 1))])
    assert not torch.equal(out.logits, ref.logits)


def test_input_cell_edit_is_seen_from_its_step_on(model, batch, plain):
    ref, cache = plain
    cell = 3
    token = int((batch["inputs"][0, cell] + 1) % TASK.vocab_size)
    out, c = run_with_cache(model, batch, interventions=[SetInputCell(step=1, cell=cell, token=token, rows=(0,))])
    p = cell + model.core.puzzle_positions
    assert torch.equal(c["input", 0], cache["input", 0])
    for s in (1, 2):
        assert not torch.equal(c["input", s][0, p], cache["input", s][0, p])
        assert torch.equal(c["input", s][1:], cache["input", s][1:])  # other rows
        other = [q for q in range(c["input", s].shape[1]) if q != p]
        assert torch.equal(c["input", s][0, other], cache["input", s][0, other])
    edited = batch["inputs"].clone()
    edited[0, cell] = token
    x = model.core.embed_input(edited, batch["puzzle_identifiers"])
    assert torch.equal(c["input", 2], x)
    assert torch.equal(c["latent", 0, 1, 1], cache["latent", 0, 1, 1])
    assert not torch.equal(c["latent", 1, 0, 0][0], cache["latent", 1, 0, 0][0])


def test_noise_is_seeded(model, batch, plain):
    a, _ = run_with_cache(model, batch, interventions=[Noise(step=1, sigma=0.3, seed=0)])
    b, _ = run_with_cache(model, batch, interventions=[Noise(step=1, sigma=0.3, seed=0)])
    c, _ = run_with_cache(model, batch, interventions=[Noise(step=1, sigma=0.3, seed=1)])
    assert torch.equal(a.logits, b.logits) and not torch.equal(a.logits, c.logits)
    zero, _ = run_with_cache(model, batch, interventions=[Noise(step=1, sigma=0.0)])
    assert torch.equal(zero.logits, plain[0].logits)


def test_solve_and_evaluate_take_interventions(model, batch, plain):
    b = solver_batch(model, batch)
    ref = solve(model, batch)
    of, between = hooks_for([])(model, b, N)
    assert torch.equal(solve(model, batch, observer_factory=of, between=between)["logits"], ref["logits"])
    of, between = hooks_for([Reset(step=1, state="both")])(model, b, N)
    out = solve(model, batch, observer_factory=of, between=between)
    assert torch.equal(out["logits"], run_with_cache(model, batch, interventions=[Reset(step=1, state="both")])[0].logits)
    metrics = evaluate(model, [batch], N, records=True)
    same = evaluate(model, [batch], N, records=True, hooks=hooks_for([Reset(step=0)]))
    assert np.array_equal(metrics["records"]["preds"], same["records"]["preds"])
    moved = evaluate(model, [batch], N, records=True, hooks=hooks_for([SetAnswerCell(step=2, recursion=T - 1, cell=0,
                                                                                     token=2)]))
    assert (moved["records"]["preds"][:, 0] == 2).all()
    with pytest.raises(ValueError, match="step 3 is never run"):
        hooks_for([Reset(step=3)])(model, b, N)


def test_checks_name_the_field(model, batch):
    for iv, msg in ((SetAnswerCell(step=0, cell=16, token=2), "SetAnswerCell.cell=16: the puzzles have 16 cells"),
                    (SetAnswerCell(step=0, cell=0, token=6), "token=6: the model's vocabulary has 6 tokens"),
                    (Reset(step=0, recursion=T), f"Reset.recursion={T}: the model has T={T}"),
                    (Noise(step=0, recursion=0, latent_step=n, sigma=1), f"latent_step={n}: the model has n={n}"),
                    (Swap(step=0, rows=(0, 3)), "row 3 is not in the batch of 3"),
                    (Reset(step=N), f"step {N} is never run")):
        with pytest.raises(ValueError, match=msg):
            run_with_cache(model, batch, interventions=[iv])
    for bad, msg in ((lambda: Swap(step=0, rows=(1,)), "two different batch rows"),
                     (lambda: Reset(step=-1), "step must be an integer >= 0"),
                     (lambda: Reset(step=0, latent_step=1), "needs recursion"),
                     (lambda: Noise(step=0, sigma=-1), "sigma must be a number >= 0"),
                     (lambda: SetInputCell(step=0, recursion=0, cell=0, token=1), "start of a step")):
        with pytest.raises(ValueError, match=msg):
            bad()


GOOD = ["answer-cell:step=4,cell=12,token=5", "input-cell:step=3,cell=0,token=7", "reset:step=5,state=answer",
        "swap:step=4,rows=0+1", "noise:step=2,sigma=0.3", "noise:step=2,recursion=1,latent_step=0,rows=0-3,sigma=1.5,seed=7",
        "answer-cell:step=0,recursion=1,cell=3,token=2,margin=2.5"]


@pytest.mark.parametrize("spec", GOOD)
def test_specs_round_trip(spec):
    iv = parse_intervention(spec)
    assert iv.spec() == spec and parse_intervention(iv.spec()) == iv and iv.describe()


def test_spec_spelling():
    assert parse_intervention("swap:step=4,state=latent,rows=0-1") == Swap(step=4, state="latent", rows=(0, 1))
    assert parse_intervention("reset:step=5,state=latent") == Reset(step=5)
    assert parse_intervention("noise:step=2,sigma=0.3,seed=0") == Noise(step=2, sigma=0.3, seed=0)
    assert parse_intervention("reset:step=1,rows=2").rows == (2,)


@pytest.mark.parametrize("spec, msg", [
    ("rest:step=1", r"unknown kind 'rest'; valid: answer-cell, input-cell, reset, swap, noise"),
    ("reset:stpe=1", r"unknown key 'stpe' for reset; valid: step, recursion, latent_step, rows, state"),
    ("noise:step=1,sigma=x", r"sigma='x' is not a valid number"),
    ("reset:step=one", r"step='one' is not a valid integer"),
    ("swap:step=1,rows=a-b", r"rows='a-b' is not a valid rows"),
    ("noise:step=1", r"missing sigma"),
    ("reset:step", r"'step' is not KEY=VALUE"),
    ("reset:step=1,state=z", r"Reset.state must be one of latent, answer, both, got 'z'"),
    ("reset:step=1,step=2", r"given twice"),
])
def test_bad_specs_name_what_is_wrong(spec, msg):
    with pytest.raises(ValueError, match=msg):
        parse_intervention(spec)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "trmlab.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env={**__import__("os").environ, "WANDB_MODE": "disabled"}, timeout=300)


PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


def test_cli_solve_intervene():
    r = cli("solve", "sudoku9", "--sudoku", PUZZLE, "--intervene", "reset:step=0,state=both",
            "--intervene", "answer-cell:step=7,recursion=1,cell=0,token=3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split()[0] == "2"  # cell 0 forced to token 3 = digit 2 at the last update
    assert "intervention: reset y and z to their initial states at the start of supervision step 0" in r.stdout
    assert "intervention: set answer cell 0 to token 3" in r.stdout
    r = cli("solve", "sudoku9", "--sudoku", PUZZLE, "--intervene", "reset:step=0,stat=both")
    assert r.returncode == 2 and "unknown key 'stat' for reset; valid: step" in r.stderr
    r = cli("solve", "sudoku9", "--sudoku", PUZZLE, "--intervene", "reset:step=99")
    assert r.returncode == 2 and "step 99 is never run" in r.stderr


def test_zoo_sudoku9_forced_cell_and_reset():
    from trmlab.data.sudoku import encode, parse_board
    from trmlab.runs.inference import load_run

    model, _ = load_run("sudoku9")
    x = torch.from_numpy(encode(parse_board(PUZZLE, 9)).astype(np.int64))[None]
    batch = {"inputs": x}
    ref, cache = run_with_cache(model, batch, n_supervision=2, names=["answer"])
    out, _ = run_with_cache(model, batch, n_supervision=2, names=["answer"], interventions=[Reset(step=0, state="both")])
    assert torch.equal(out.logits, ref.logits)
    cell = 2  # a blank
    token = 2 + (int(ref.preds[0, cell]) - 2 + 1) % 9  # the next digit
    assert token != int(ref.preds[0, cell])
    _, c = run_with_cache(model, batch, n_supervision=2, names=["answer"],
                          interventions=[SetAnswerCell(step=1, recursion=0, cell=cell, token=token)])
    assert int(model.decode(c["answer", 1, 0])[0, cell].argmax()) == token
