"""The paper's baselines, as switches of the same code where they can be.

* **HRM** (Wang et al. 2025, 27M): two 4-layer networks (f_L for the latent, f_H for the answer),
  H_cycles = L_cycles = 2, the 1-step gradient, and the Q-learning continue target. In trmlab that is
  :class:`~trmlab.model.trm.TinyRecursiveModel` with ``separate_networks=True, gradient="one_step",
  act_continue=True, n_layers=4, n_recursions=2, n_latent_steps=2, puzzle_emb_len=1``:
  ``trmlab.config.HRM_SWITCHES`` holds them (the presets ``hrm_*`` use it). The recursion of HRM -- L updates
  ``z_L <- f_L(z_L + z_H + x)`` then ``z_H <- f_H(z_H + z_L)`` -- is exactly TRM's with two networks.
* **Direct prediction** (the reference's ``transformers_baseline.py``, "HRM ACT V2", the paper's
  27M "Direct pred"): :class:`DirectPrediction`, one non-recursive transformer of ``n_layers`` blocks
  (8 in the reference, 12 heads of width 512 // 12 = 42) applied ONCE per supervision step to the
  carried answer with the input injected, ``y <- f(y + x)``: no latent, no inner cycles, the whole
  step carries gradient. Everything around it is TRM's: the same embedding with ONE puzzle-embedding
  position (the reference's ``ceil(puzzle_emb_ndim / hidden)``), the same output and halting heads
  (halting head reads position 0, zero weights and bias -5), the carried state ``y`` detached between
  steps and reset to the fixed ``answer_init`` (the reference's ``H_init``), and deep supervision with
  ACT over up to ``n_supervision = 16`` steps. Its ACT halts on ``q_halt > q_continue`` and trains the
  continue head with the Q-learning target (``act_continue=True``), as the reference's ACT V2 does;
  evaluation runs all 16 steps (the reference's ``act_inference`` is off by default) unless asked for
  learned halting. The preset ``direct_sudoku`` sets all of this (``DIRECT_SWITCHES`` in config.py).
"""
from __future__ import annotations

from typing import Optional

from ..config import ModelConfig
from .trm import Observer, TinyRecursiveModel


class DirectPrediction(TinyRecursiveModel):
    """The direct-prediction baseline (see the module docstring): per supervision step the one
    network is applied once to the carried answer with the input injected, y <- f(y + x). The latent z
    is carried unchanged (it stays at its initial vector; nothing reads it)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)

    def deep_recursion(self, x, y, z, observer: Optional[Observer] = None):
        y = self.call(self.net, y, x)
        return self.observe(observer, "answer", 0, 0, y, z)
