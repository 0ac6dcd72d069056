"""dtype=auto may measure; a resumed run must keep the dtype its checkpoints were trained in."""
import torch

from trmlab.config import get_preset
from trmlab.data.sudoku import build_sudoku
from trmlab.train import distributed as D
from trmlab.train.trainer import Trainer


def test_resume_keeps_the_dtype_auto_chose(tmp_path, monkeypatch):
    data = tmp_path / "s4"
    build_sudoku(data, generate=32, size=4, num_aug=0, test_generate=8, val=0, seed=0, progress=False,
                 echo=lambda *a, **k: None)
    cfg = get_preset("cpu_tiny", {"data": str(data), "train.max_steps": 2, "train.wandb_mode": "disabled",
                                  "train.dtype": "auto"})
    monkeypatch.setattr(D, "cpu_auto_dtype", lambda *a, **k: ("bfloat16", "bf16: measured (test)"))
    first = Trainer(cfg, tmp_path / "run", progress=False)
    assert first.dtype == torch.bfloat16
    first.run()
    monkeypatch.setattr(D, "cpu_auto_dtype", lambda *a, **k: ("float32", "fp32: measured (test)"))
    resumed = Trainer(cfg, tmp_path / "run", resume=True, progress=False)
    assert resumed.dtype == torch.bfloat16  # the checkpoint's, not a new measurement's
    fresh = Trainer(cfg, tmp_path / "run2", progress=False)
    assert fresh.dtype == torch.float32


def test_evaluations_on_a_cpu_run_in_fp32_and_never_measure(monkeypatch):
    from trmlab.runs import cfg_dtype

    def never(*a, **k):
        raise AssertionError("a CPU evaluation measured bf16 against fp32")

    monkeypatch.setattr(D, "cpu_auto_dtype", never)
    assert cfg_dtype("cpu") == "float32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cfg_dtype("auto") == "float32"  # device=auto on a machine without CUDA: the CPU
    assert D.resolve_dtype(cfg_dtype("auto"), D.resolve_device("auto")) == torch.float32
