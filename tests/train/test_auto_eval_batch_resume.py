"""train.eval_batch_size=0 measures on a CPU; the run records its choice, evaluates with it, and a resumed
run keeps it (so its evaluations are exactly what they would have been)."""
import json

from trmlab.config import get_preset
from trmlab.data.sudoku import build_sudoku
from trmlab.train import trainer as T
from trmlab.train import checkpoint as ckpt


def test_the_measured_eval_batch_is_used_recorded_and_kept_on_resume(tmp_path, monkeypatch):
    data = tmp_path / "s4"
    build_sudoku(data, generate=32, size=4, num_aug=0, test_generate=8, val=0, seed=0, progress=False,
                 echo=lambda *a, **k: None)
    cfg = get_preset("cpu_tiny", {"data": str(data), "train.max_steps": 2, "train.wandb_mode": "disabled"})
    assert cfg.train.eval_batch_size == 0
    monkeypatch.setattr(T, "auto_eval_batch", lambda model, configured, *a: (configured or 3, "measured (test)"))
    first = T.Trainer(cfg, tmp_path / "run", progress=False)
    assert first.eval_batch == 3
    metrics = first.run()
    assert metrics["halt/count"] == 8  # every test puzzle once, in batches of 3 (the last one padded)
    assert ckpt.load(ckpt.latest_checkpoint(tmp_path / "run"))["eval_batch_size"] == 3
    info = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert info["eval_batch_size"] == 3
    monkeypatch.setattr(T, "auto_eval_batch", lambda model, configured, *a: (configured or 5, "measured (test)"))
    assert T.Trainer(cfg, tmp_path / "run", resume=True, progress=False).eval_batch == 3
    assert T.Trainer(cfg, tmp_path / "fresh", progress=False).eval_batch == 5
    configured = get_preset("cpu_tiny", {"data": str(data), "train.eval_batch_size": 4,
                                         "train.wandb_mode": "disabled"})
    assert T.Trainer(configured, tmp_path / "configured", progress=False).eval_batch == 4
