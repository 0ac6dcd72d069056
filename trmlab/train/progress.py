"""What the training progress bar shows: metrics of the puzzles that halted recently.

A training step's accuracy metrics are means over the batch slots whose puzzle halted at that step
(the reference's counting, trmlab/train/losses.py). With N_sup = 2 and no early halting, every slot
halts on every other step, so the raw numbers read 0.000 on the steps where nothing halted. The bar
shows instead an exponential running mean over the halted puzzles: each step's mean enters with the
number of puzzles that halted at it as its weight, and steps where none halted change nothing.
"""
from __future__ import annotations

from typing import Iterable, Optional


def halted_count(metrics: dict) -> float:
    """How many puzzles a training step's metrics average over (those that halted at the step).

    ``Trainer.train_step`` reports ``count`` floored at 1 (to divide by it); a step where no puzzle
    halted is the one whose mean supervision-step count ``steps`` is 0, since a halted puzzle has
    taken at least one step."""
    if float(metrics.get("steps", 0.0)) <= 0:
        return 0.0
    return float(metrics.get("count", 0.0))


class HaltedMean:
    """Exponential running mean of per-puzzle metrics, weighted by the puzzles that halted.

    ``decay`` per step with halted puzzles (0.9: about the last ten such steps count).
    ``mean(key)`` is None until some puzzle has halted."""

    def __init__(self, keys: Iterable[str] = ("accuracy", "exact_accuracy"), decay: float = 0.9):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.keys, self.decay = tuple(keys), decay
        self.weight = 0.0
        self.sums = {k: 0.0 for k in self.keys}

    def update(self, metrics: dict) -> None:
        n = halted_count(metrics)
        if n <= 0:
            return
        self.weight = self.decay * self.weight + n
        for k in self.keys:
            self.sums[k] = self.decay * self.sums[k] + n * float(metrics.get(k, 0.0))

    def mean(self, key: str) -> Optional[float]:
        return self.sums[key] / self.weight if self.weight > 0 else None

    def postfix(self, loss: float) -> dict:
        """The bar's postfix: the step's loss, and accuracy / exact accuracy of recently halted puzzles."""
        out = {"loss": f"{loss:.3f}"}
        for key, label in (("accuracy", "acc"), ("exact_accuracy", "exact")):
            if key in self.sums:
                m = self.mean(key)
                out[label] = "-" if m is None else f"{m:.3f}"
        return out
