"""Metrics: always appended to ``metrics.jsonl`` in the run folder; to Weights & Biases when asked.

``wandb`` runs ``offline`` by default (no network, no login prompt), writing under the run folder;
``disabled`` (tests) writes nothing; ``online`` needs a configured API key. The environment variable
``WANDB_MODE=disabled`` always wins, so test suites can switch it off globally.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from ..io import atomic_write


def _clean(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e308 if v > 0 else -1e308)
    return v


class MetricsLogger:
    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True, wandb_mode: str = "offline",
                 project: str = "trmlab", run_name: str = "run", config: dict | None = None, group: str = ""):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self._wandb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = "disabled" if os.environ.get("WANDB_MODE") == "disabled" else wandb_mode
        if mode != "disabled":
            wdir = Path(run_dir) / "wandb"
            wdir.mkdir(parents=True, exist_ok=True)
            for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
                os.environ.setdefault(var, str(wdir))
            import wandb

            self._wandb = wandb.init(project=project, name=run_name, config=config or {}, mode=mode,
                                     group=group or None,
                                     dir=str(wdir), settings=wandb.Settings(x_disable_stats=True, silent=True))

    def log(self, step: int, split: str, metrics: dict, **extra) -> None:
        if not self.enabled:
            return
        rec = {"step": int(step), "split": split, "time": round(time.time(), 3), **extra}
        rec.update({k: _clean(v) for k, v in metrics.items() if isinstance(_clean(v), (int, float, str, type(None)))})
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self._wandb is not None:
            self._wandb.log({f"{split}/{k}": v for k, v in rec.items() if k not in ("step", "split", "time")},
                            step=int(step))

    def truncate_after(self, step: int) -> int:
        """Drop the records of steps after ``step`` (and a last line cut off mid-write) from
        ``metrics.jsonl``, atomically; returns how many were dropped. A resumed run calls it with the step
        of the checkpoint it resumes from: the rows a killed run logged after that checkpoint are logged
        again as the steps are redone, so each (split, step) appears once."""
        if not self.enabled or not self.path.is_file():
            return 0
        kept, dropped = [], 0
        lines = self.path.read_text().splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if n == len(lines):  # the process was killed while writing this line
                    dropped += 1
                    continue
                raise ValueError(f"{self.path}: line {n} is not valid JSON") from None
            if int(rec.get("step", 0)) > step:
                dropped += 1
                continue
            kept.append(line)
        if dropped:
            text = "".join(line + "\n" for line in kept)
            atomic_write(self.path, lambda f: f.write(text.encode("utf-8")))
        return dropped

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def read_metrics(run_dir: str | os.PathLike, split: str | None = None) -> list[dict]:
    """The records of a run's ``metrics.jsonl`` (optionally only one split)."""
    path = Path(run_dir) / "metrics.jsonl"
    out = []
    if not path.exists():
        return out
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{path}: line {n} is not valid JSON") from None
            if split is None or rec.get("split") == split:
                out.append(rec)
    return out
