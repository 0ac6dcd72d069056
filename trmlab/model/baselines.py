"""The paper's baselines, as switches of the same code where they can be.

* **HRM** (Wang et al. 2025, 27M): two 4-layer networks (f_L for the latent, f_H for the answer),
  H_cycles = L_cycles = 2, the 1-step gradient, and the Q-learning continue target. In trmlab that is
  :class:`~trmlab.model.trm.TinyRecursiveModel` with ``separate_networks=True, gradient="one_step",
  act_continue=True, n_layers=4, n_recursions=2, n_latent_steps=2, puzzle_emb_len=1``:
  ``trmlab.config.HRM_SWITCHES`` holds them (the presets ``hrm_*`` use it). The recursion of HRM -- L updates
  ``z_L <- f_L(z_L + z_H + x)`` then ``z_H <- f_H(z_H + z_L)`` -- is exactly TRM's with two networks.
* **Direct prediction** (the reference's ``transformers_baseline``): one non-recursive transformer of
  ``n_layers`` (8 in the reference) applied once per supervision step, ``y <- f(y + x)``, with the same
  embedding and heads. With ``n_supervision=1`` it is a plain one-shot predictor.
"""
from __future__ import annotations

from typing import Optional

from ..config import ModelConfig
from .trm import Observer, TinyRecursiveModel


class DirectPrediction(TinyRecursiveModel):
    """A single transformer applied once per supervision step: y <- f(y + x). No latent, no recursion."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)

    def deep_recursion(self, x, y, z, observer: Optional[Observer] = None):
        y = self.net(y, x, self.rope)
        if observer is not None:
            observer("answer", 0, 0, y, z)
        return y, z
