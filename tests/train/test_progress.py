"""The training progress bar: a running mean over the puzzles that halted recently, not 0.000 on
the steps where none halted."""
import pytest

from trmlab.train.progress import HaltedMean, halted_count


def step(count, acc, exact, steps=2.0):
    """A train_step's metrics: means over ``count`` halted slots (count floored at 1, steps 0 when none)."""
    if count == 0:
        return {"count": 1.0, "accuracy": 0.0, "exact_accuracy": 0.0, "steps": 0.0, "lm_loss": 1.0}
    return {"count": float(count), "accuracy": acc, "exact_accuracy": exact, "steps": steps, "lm_loss": 1.0}


def test_halted_count_reads_a_step_with_no_halted_puzzle_as_zero():
    assert halted_count(step(0, 0, 0)) == 0
    assert halted_count(step(1, 0.5, 0)) == 1 and halted_count(step(64, 0.5, 0)) == 64


def test_steps_without_halted_puzzles_leave_the_mean_alone():
    m = HaltedMean(decay=0.5)
    assert m.mean("accuracy") is None and m.postfix(1.234) == {"loss": "1.234", "acc": "-", "exact": "-"}
    shown = []
    for k in range(6):  # N_sup = 2: every slot halts on every other step
        m.update(step(64, 0.8, 0.25) if k % 2 else step(0, 0, 0))
        shown.append(m.postfix(0.5))
    assert shown[0]["acc"] == "-"
    assert all(s["acc"] == "0.800" and s["exact"] == "0.250" for s in shown[1:])


def test_weighted_by_halted_puzzles_and_recent_steps_count_more():
    m = HaltedMean(decay=0.5)
    m.update(step(3, 1.0, 1.0))
    m.update(step(1, 0.0, 0.0))
    # (0.5 * 3 * 1.0 + 1 * 0.0) / (0.5 * 3 + 1)
    assert m.mean("accuracy") == pytest.approx(1.5 / 2.5)
    m.update(step(0, 0, 0))
    assert m.mean("exact_accuracy") == pytest.approx(1.5 / 2.5)
    for _ in range(60):
        m.update(step(8, 0.9, 0.5))
    assert m.mean("accuracy") == pytest.approx(0.9) and m.mean("exact_accuracy") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="decay"):
        HaltedMean(decay=1.0)


def test_the_trainers_bar_shows_the_running_mean(tmp_path, capsys, monkeypatch):
    """A few real training steps with the bar on: acc / exact never read 0.000 for want of halted puzzles."""
    from trmlab.config import get_preset
    from trmlab.data.sudoku import build_sudoku
    from trmlab.train import trainer as trainer_mod

    data = tmp_path / "s4"
    build_sudoku(data, generate=32, size=4, num_aug=0, test_generate=8, seed=0, progress=False, echo=lambda *a: None)
    cfg = get_preset("cpu_tiny", {"data": str(data), "train.max_steps": 4, "train.wandb_mode": "disabled",
                                  "train.global_batch_size": 8, "model.hidden_size": 32, "model.num_heads": 2,
                                  "model.halt_exploration_prob": 0, "train.eval_batch_size": 8})
    seen = []
    real = trainer_mod.Trainer.train_step

    def spy(self, batch):
        metrics = real(self, batch)
        seen.append(metrics)
        return metrics

    monkeypatch.setattr(trainer_mod.Trainer, "train_step", spy)
    trainer_mod.train(cfg, tmp_path / "run", progress=True)
    assert [halted_count(m) for m in seen] == [0, 8, 0, 8]  # N_sup = 2: halts on every other step
    err = capsys.readouterr().err
    final = err.replace("\r", "\n").strip().splitlines()
    bar = [line for line in final if "4/4" in line][-1]
    expected = HaltedMean()
    for m in seen:
        expected.update(m)
    assert f"acc={expected.postfix(0)['acc']}" in bar and f"exact={expected.postfix(0)['exact']}" in bar
