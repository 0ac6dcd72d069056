"""The model: building blocks, the input embedding, the recursion, deep supervision, baselines.

``build_model(cfg)`` returns a :class:`~trmlab.model.act.DeepSupervision` around the core network
(TRM, its ablations, or a baseline); ``count_parameters`` counts what ``model.parameters()`` trains.
"""
from __future__ import annotations

from ..config import ModelConfig
from .act import (Between, Carry, DeepSupervision, ObserverFactory, StepHooks, SupervisionStep, run_to_halt,
                  started_carry, supervision_steps, wants_to_halt)
from .baselines import DirectPrediction
from .trm import Observer, TinyRecursiveModel, checked_replacement, count_parameters, one_state

__all__ = ["build_model", "Carry", "DeepSupervision", "SupervisionStep", "run_to_halt", "started_carry", "supervision_steps",
           "wants_to_halt", "TinyRecursiveModel", "DirectPrediction", "count_parameters", "Observer",
           "checked_replacement", "one_state", "Between", "ObserverFactory", "StepHooks"]


def build_model(cfg: ModelConfig) -> DeepSupervision:
    """Build the model a config describes (``cfg.vocab_size``/``seq_len`` must come from the data)."""
    core_cls = DirectPrediction if cfg.arch == "direct" else TinyRecursiveModel
    return DeepSupervision(core_cls(cfg))
