"""The trainer: distributed == single process, SIGKILL + resume == straight, safe checkpoints, NaN stop."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trmlab.config import get_preset
from trmlab.train import checkpoint as ckpt
from trmlab.train import trainer as trainer_mod
from trmlab.train.logging import read_metrics
from trmlab.train.trainer import TrainingError, resume, train

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def sudoku4(tmp_path_factory):
    """64 training puzzles (x5 versions), 32 test puzzles, 6 validation puzzles (the default 10%)."""
    from trmlab.data.sudoku import build_sudoku

    out = tmp_path_factory.mktemp("data") / "sudoku4"
    build_sudoku(out, generate=64, size=4, num_aug=4, test_generate=32, seed=0, progress=False, echo=lambda *a: None)
    return out


@pytest.fixture(scope="module")
def sudoku4_no_val(tmp_path_factory, sudoku4):
    """The same dataset as an older build without a validation split."""
    import shutil

    out = tmp_path_factory.mktemp("data") / "sudoku4_no_val"
    shutil.copytree(sudoku4, out)
    shutil.rmtree(out / "val")
    return out


def tiny(data, *extra):
    # 64 groups / global batch 32 = 2 steps an epoch; 4 epochs = 8 steps; evaluations at steps 4 and 8
    return ["data=" + str(data), "epochs=4", "eval_interval=2", "global_batch_size=32", "dtype=float32",
            "wandb_mode=disabled", "halt_exploration_prob=0", "eval_batch_size=32", *extra]


def cli(*args):
    return [sys.executable, "-m", "trmlab.cli", *args]


def load_last(run):
    return ckpt.load(Path(run) / "checkpoints" / "last.pt")


def assert_same_state(a, b, exact=True):
    def same(x, y):
        return torch.equal(x, y) if exact else torch.allclose(x, y, atol=2e-5, rtol=1e-4)

    assert a["step"] == b["step"]
    for k in a["model"]:
        assert same(a["model"][k], b["model"][k]), k
    if a["ema"] is not None:
        for x, y in zip(a["ema"]["shadow"], b["ema"]["shadow"]):
            assert same(x, y)
    for oa, ob in zip(a["optimizers"], b["optimizers"]):
        for pid, st in oa["state"].items():
            for key, v in st.items():
                if torch.is_tensor(v):
                    assert same(v, ob["state"][pid][key]), key


@pytest.mark.slow
def test_torchrun_two_processes_match_one(sudoku4, tmp_path):
    overrides = tiny(sudoku4, "max_steps=4")
    single = tmp_path / "single"
    dual = tmp_path / "dual"
    r = subprocess.run(cli("train", "--preset", "cpu_tiny", "--out", str(single), *overrides),
                       env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    torchrun = Path(sys.executable).with_name("torchrun")
    r = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "trmlab.cli", "train",
                        "--preset", "cpu_tiny", "--out", str(dual), *overrides],
                       env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = load_last(single), load_last(dual)
    assert a["world_size"] == 1 and b["world_size"] == 2 and len(b["ranks"]) == 2
    assert_same_state(a, b, exact=False)
    # and training did move the weights
    init = torch.load(single / "checkpoints" / "step_4.pt", weights_only=True)
    assert init["step"] == 4


@pytest.mark.slow
def test_sigkill_then_resume_equals_straight_run(sudoku4, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    r = subprocess.run(cli("train", "--preset", "cpu_tiny", "--out", str(straight), *tiny(sudoku4, "ema=true")),
                       env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    proc = subprocess.Popen(cli("train", "--preset", "cpu_tiny", "--out", str(killed), *tiny(sudoku4, "ema=true")),
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    half = killed / "checkpoints" / "step_4.pt"
    deadline = time.time() + 300
    while not half.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert half.exists(), "the run never reached its mid-way checkpoint"
    assert not (killed / "checkpoints" / "step_8.pt").exists(), "killed too late: the run had finished"
    # killed after step_4.pt was written (last.pt may or may not have been refreshed yet): resume takes
    # the newest checkpoint either way
    assert ckpt.load(ckpt.latest_checkpoint(killed))["step"] == 4
    r = subprocess.run(cli("train", "--resume", str(killed)), env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert_same_state(load_last(straight), load_last(killed), exact=True)
    # the metrics log continues the same step numbering
    steps = [m["step"] for m in read_metrics(killed, "train")]
    assert steps[-1] == 8


def test_resume_takes_the_newest_checkpoint_when_last_is_missing(sudoku4, tmp_path):
    cfg = get_preset("cpu_tiny", tiny(sudoku4))
    train(cfg, tmp_path / "run", progress=False)
    cdir = tmp_path / "run" / "checkpoints"
    (cdir / "last.pt").unlink()
    (cdir / "step_8.pt").unlink()  # as if killed right after writing step_4.pt
    assert ckpt.latest_checkpoint(tmp_path / "run").name == "step_4.pt"
    resume(tmp_path / "run", progress=False)
    assert load_last(tmp_path / "run")["step"] == 8


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_atomic({"step": 1, "w": torch.ones(3)}, path)

    def broken_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        ckpt.save_atomic({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    state = ckpt.load(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch " + str(Path(os.environ.get("TRMLAB_EVIL_MARK", "/tmp/x"))),))


def test_checkpoint_with_pickled_code_is_refused(tmp_path, monkeypatch):
    mark = tmp_path / "executed"
    monkeypatch.setenv("TRMLAB_EVIL_MARK", str(mark))
    bad = tmp_path / "evil.pt"
    torch.save({"model": _Evil()}, bad)
    with pytest.raises(ckpt.CheckpointError, match="refused"):
        ckpt.load(bad)
    assert not mark.exists()
    truncated = tmp_path / "trunc.pt"
    torch.save({"w": torch.ones(1000)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ckpt.CheckpointError, match="unreadable|truncated"):
        ckpt.load(truncated)


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(sudoku4, tmp_path, monkeypatch):
    real = trainer_mod.act_loss
    calls = {"n": 0}

    def poisoned(*a, **k):
        loss, metrics = real(*a, **k)
        calls["n"] += 1
        if calls["n"] >= 6:
            loss = loss * float("nan")
        return loss, metrics

    monkeypatch.setattr(trainer_mod, "act_loss", poisoned)
    cfg = get_preset("cpu_tiny", tiny(sudoku4))
    with pytest.raises(TrainingError, match="non-finite loss at step 6.*last.pt"):
        train(cfg, tmp_path / "run", progress=False)
    state = load_last(tmp_path / "run")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_existing_run_is_not_overwritten_and_resume_needs_a_run(sudoku4, tmp_path):
    cfg = get_preset("cpu_tiny", tiny(sudoku4, "max_steps=1"))
    train(cfg, tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(cfg, tmp_path / "run", progress=False)
    r = subprocess.run(cli("train", "--resume", str(tmp_path / "nothing")), env=ENV, capture_output=True, text=True)
    assert r.returncode == 2 and "error" in r.stderr and "Traceback" not in r.stderr


def test_run_folder_contents_and_inference(sudoku4, tmp_path):
    from trmlab.runs import evaluate_run, load_run, solve

    cfg = get_preset("cpu_tiny", tiny(sudoku4, "ema=true"))
    metrics = train(cfg, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert (run / "config.json").exists() and (run / "checkpoints" / "best.pt").exists()
    assert {"all/exact_accuracy", "halt/exact_accuracy", "step1/exact_accuracy", "q_halt_accuracy"} <= set(metrics)
    evals = read_metrics(run, "eval")
    assert [e["step"] for e in evals] == [4, 8]
    model, loaded = load_run(run, checkpoint="last")
    assert loaded.model.vocab_size == 6 and not model.training
    batch = {"inputs": torch.ones(3, 16, dtype=torch.int32)}
    out = solve(model, batch, n_supervision=3)
    assert out["answers"].shape == (3, 16) and out["steps"].tolist() == [3, 3, 3]
    assert ((out["halt_prob"] > 0) & (out["halt_prob"] < 1)).all()
    m = evaluate_run(run, n_supervision=5, checkpoint="last", progress=False)
    assert m["n_supervision"] == 5 and "step5/exact_accuracy" in m and m["all/count"] == 32
    assert (run / "eval_last_N5_max.json").exists()


def test_compile_failure_falls_back_to_eager(sudoku4, tmp_path, monkeypatch, capsys):
    def broken_compile(model, *a, **k):
        def run(*args, **kwargs):
            raise RuntimeError("no C++ compiler for inductor")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    cfg = get_preset("cpu_tiny", tiny(sudoku4, "max_steps=2", "compile=true"))
    metrics = train(cfg, tmp_path / "run", progress=False)
    assert "falling back to eager mode" in capsys.readouterr().out
    assert load_last(tmp_path / "run")["step"] == 2 and "all/exact_accuracy" in metrics


def test_wandb_offline_writes_locally_without_network(tmp_path, monkeypatch):
    from trmlab.train.logging import MetricsLogger

    monkeypatch.delenv("WANDB_MODE", raising=False)
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    log = MetricsLogger(tmp_path, wandb_mode="offline", project="trmlab-test", run_name="t", config={"a": 1})
    log.log(1, "train", {"loss": 0.5})
    log.close()
    assert read_metrics(tmp_path) [0]["loss"] == 0.5
    assert list((tmp_path / "wandb").rglob("offline-run-*")), "no offline wandb run written"


@pytest.mark.slow
def test_arc_training_runs_the_arc_evaluator(arc_dir, tmp_path):
    """A tiny model on a real ARC-AGI-1 build (1 augmentation, 3 held-out training tasks as the validation
    split): the trainer's evaluation runs the ARC evaluator (undo augmentations, vote) on the validation
    and the test split, reports pass@K for every K, and chooses best.pt on validation pass@2."""
    from trmlab.data.arc import build_arc

    data = tmp_path / "arc1"
    build_arc(data, family="arc1", arc_dir=arc_dir, num_aug=1, seed=0, val_tasks=3, progress=False,
              echo=lambda *a, **k: None)
    cfg = get_preset("cpu_tiny", ["data=" + str(data), "evaluators=arc", "max_steps=1", "global_batch_size=16",
                                  "eval_batch_size=512", "eval_supervision=1", "dtype=float32",
                                  "wandb_mode=disabled", "epochs=1", "eval_interval=1", "n_recursions=1",
                                  "n_latent_steps=1", "hidden_size=32", "num_heads=2"])
    metrics = train(cfg, tmp_path / "run", progress=False)
    for k in (1, 2, 5, 10, 100, 1000):
        assert 0.0 <= metrics[f"ARC/pass@{k}"] <= 1.0
    assert metrics["all/count"] == 838  # the 419 ARC-AGI-1 evaluation test pairs x 2 versions (identity + 1)
    import json
    val_tasks = json.loads((data / "val_puzzles.json").read_text())
    val = read_metrics(tmp_path / "run", "val")[0]
    assert val["all/count"] == 2 * sum(len(t["test"]) for t in val_tasks.values()) and "ARC/pass@2" in val
    best = ckpt.load(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best["selection"]["metric"] == "ARC/pass@2" and best["selection"]["value"] == val["ARC/pass@2"]
    state = load_last(tmp_path / "run")
    assert state["config"]["model"]["vocab_size"] == 12 and state["config"]["model"]["seq_len"] == 900


def test_cli_solve_prints_an_answer(sudoku4, tmp_path):
    cfg = get_preset("cpu_tiny", tiny(sudoku4, "max_steps=1"))
    train(cfg, tmp_path / "run", progress=False)
    r = subprocess.run(cli("solve", str(tmp_path / "run"), "--sudoku", "1..4..1..4..3..2"), env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 6 and all(len(l.split()) == 4 for l in lines[:4]) and "steps used: 4" in lines[5]  # the run's eval_supervision
    assert "the rules of sudoku" in lines[4].lower()  # whether the answer obeys the rules (and where it breaks them)
    assert lines[5].endswith("(checkpoint step 1: last checkpoint)")
    r = subprocess.run(cli("solve", str(tmp_path / "run"), "--sudoku", "1..4..1..4..3..X"), env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "character 'X' at line 1, column 16" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------ model selection
def test_best_is_chosen_on_validation_never_on_test(sudoku4, tmp_path, monkeypatch):
    """Validation and test disagree on purpose: best.pt is the validation-best step (4), not the
    test-best (6); ties keep the first; the best survives a resume; every record says how it was chosen."""
    from trmlab.train.checkpoint import choose_checkpoint
    from trmlab.runs import evaluate_run

    val_score = {2: 0.25, 4: 0.75, 6: 0.5, 8: 0.75}    # step 8 ties step 4: the first one stays best
    test_score = {2: 0.1, 4: 0.3, 6: 0.95, 8: 0.4}     # the test split would pick step 6
    real = trainer_mod.Trainer.evaluate
    counts = {}

    def scripted(self, *a, split="test", **k):
        m = real(self, *a, split=split, **k)           # the real evaluation runs, on the asked split
        counts.setdefault(split, set()).add(m["all/count"])
        m["all/exact_accuracy"] = (val_score if split == "val" else test_score)[self.step]
        return m

    monkeypatch.setattr(trainer_mod.Trainer, "evaluate", scripted)
    run = tmp_path / "run"
    train(get_preset("cpu_tiny", tiny(sudoku4, "eval_interval=1", "max_steps=4")), run, progress=False)
    resume(run, ["max_steps=0"], progress=False)       # steps 5..8 in a second process-life
    assert counts == {"val": {6}, "test": {32}}        # 6 validation puzzles, 32 test puzzles
    best = ckpt.load(run / "checkpoints" / "best.pt")
    assert best["step"] == 4
    assert best["selection"] == {"split": "val", "metric": "all/exact_accuracy", "value": 0.75, "step": 4,
                                 "text": "best on validation exact accuracy 0.7500 at step 4"}
    assert best["val_metrics"]["all/exact_accuracy"] == 0.75 and best["metrics"]["all/exact_accuracy"] == 0.3
    assert load_last(run)["selection"]["step"] == 4
    sel = read_metrics(run, "selection")
    assert [(r["step"], r["best_step"]) for r in sel] == [(2, 2), (4, 4), (6, 4), (8, 4)]
    assert all(r["for_selection"] for r in read_metrics(run, "val"))
    assert not any(r["for_selection"] for r in read_metrics(run, "eval"))
    choice, _ = choose_checkpoint(run, "best")
    assert (choice.file.name, choice.step, choice.how) == ("best.pt", 4, best["selection"]["text"])
    monkeypatch.undo()
    m = evaluate_run(run, n_supervision=1, progress=False)            # default: the last checkpoint
    assert (Path(m["checkpoint"]).name, m["checkpoint_step"], m["checkpoint_choice"]) == (
        "step_8.pt", 8, "last checkpoint")
    m = evaluate_run(run, n_supervision=1, checkpoint="step_6", progress=False)
    assert (m["checkpoint_step"], m["checkpoint_choice"]) == (6, "step_6 chosen by the user")
    import json
    saved = json.loads((run / "eval_step_6_N1_max.json").read_text())
    assert saved["checkpoint_choice"] == "step_6 chosen by the user" and saved["checkpoint_step"] == 6


def test_cli_eval_prints_the_checkpoint_and_how_it_was_chosen(sudoku4, tmp_path):
    run = tmp_path / "run"
    train(get_preset("cpu_tiny", tiny(sudoku4)), run, progress=False)
    r = subprocess.run(cli("eval", str(run), "--steps", "2"), env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == f"checkpoint {run / 'checkpoints' / 'step_8.pt'} (step 8), chosen as: last checkpoint"
    assert any(line.endswith("over 32 puzzles; step 8 (last checkpoint)") for line in lines)
    r = subprocess.run(cli("eval", str(run), "--steps", "2", "--checkpoint", "best"), env=ENV, capture_output=True,
                       text=True, timeout=300)
    best = ckpt.load(run / "checkpoints" / "best.pt")
    assert r.returncode == 0, r.stderr
    assert f"(step {best['step']}), chosen as: best on validation exact accuracy" in r.stdout.splitlines()[0]
    r = subprocess.run(cli("eval", str(run), "--steps", "2", "--json"), env=ENV, capture_output=True, text=True,
                       timeout=300)
    import json
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert (out["checkpoint_step"], out["checkpoint_choice"]) == (8, "last checkpoint")


def test_without_a_validation_split_nothing_is_selected(sudoku4_no_val, tmp_path):
    """An older dataset (no val/) trains as before; no best.pt; asking for best says it fell back to last."""
    from trmlab.train.checkpoint import choose_checkpoint

    run = tmp_path / "run"
    train(get_preset("cpu_tiny", tiny(sudoku4_no_val)), run, progress=False)
    assert not (run / "checkpoints" / "best.pt").exists()
    assert load_last(run)["selection"]["split"] is None
    assert [r["best_step"] for r in read_metrics(run, "selection")] == [None, None]
    assert "no validation split" in read_metrics(run, "selection")[0]["choice"]
    choice, _ = choose_checkpoint(run, "best")
    assert choice.step == 8 and choice.how.startswith("last checkpoint (best was asked for, but the run has no "
                                                      "best.pt: nothing selected: the dataset has no validation split")
    # a best.pt written before validation splits existed was chosen on the test split: said so
    old = load_last(run)
    del old["selection"]
    ckpt.save_atomic(old, run / "checkpoints" / "best.pt")
    choice, _ = choose_checkpoint(run, "best")
    assert "chosen on the TEST split" in choice.how


_KILL_AT = """
import os, signal, sys
from trmlab.config import get_preset
from trmlab.train.trainer import train

def kill(step, split, metrics):
    if split == "train" and step == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)   # no clean-up of any kind, as a scheduler's kill

train(get_preset("cpu_tiny", sys.argv[4:]), sys.argv[2], progress=False, on_log=kill)
"""


def test_sigkill_after_a_checkpoint_resumes_without_repeating_rows(sudoku4, tmp_path):
    """Killed at step 6 (checkpoint at 4, train rows 5 and 6 logged): the resumed run (as the sweep
    resumes it, through train_run) ends with the straight run's checkpoint and each (split, step) once."""
    from trmlab.train.launch import train_run

    overrides = tiny(sudoku4, "ema=true")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(get_preset("cpu_tiny", overrides), straight, progress=False)
    r = subprocess.run([sys.executable, "-c", _KILL_AT, "-", str(killed), "6", *overrides], env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    rows = read_metrics(killed)
    assert max(m["step"] for m in rows if m["split"] == "train") == 6
    assert ckpt.load(ckpt.latest_checkpoint(killed))["step"] == 4
    train_run("cpu_tiny", killed, if_exists="resume", progress=False, echo=lambda *a: None)
    assert_same_state(load_last(straight), load_last(killed), exact=True)
    keys = [(m["split"], m["step"]) for m in read_metrics(killed) if m["split"] != "info"]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    straight_keys = [(m["split"], m["step"]) for m in read_metrics(straight) if m["split"] != "info"]
    assert sorted(keys) == sorted(straight_keys)


def test_a_line_cut_off_by_the_kill_is_dropped_on_resume(tmp_path):
    from trmlab.train.logging import MetricsLogger

    log = MetricsLogger(tmp_path, wandb_mode="disabled")
    for s in (1, 2, 3):
        log.log(s, "train", {"lm_loss": 1.0})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "spl')
    assert log.truncate_after(2) == 2
    assert [m["step"] for m in read_metrics(tmp_path)] == [1, 2]
