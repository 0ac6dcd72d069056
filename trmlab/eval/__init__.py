"""Evaluation: Sudoku/Maze accuracy with Wilson intervals, the reference's metric sums, and the
reference's ARC voting evaluator (pass@K and ``submission.json``). See docs/evaluation.md.

Imports only from the layers below it (config/io, data, model); never from train/trace/viz/workbench.
The ARC grid helpers (crop, version names, inverse augmentation) are trmlab.data.arc's.
"""
from trmlab.eval.metrics import (
    IGNORE_INDEX,
    ExactAccuracy,
    StepwiseAccuracy,
    normalise_metric_sums,
    reference_metric_sums,
    sequence_correctness,
    wilson_interval,
)
from trmlab.eval.arc_vote import ArcEvaluator, grid_hash

__all__ = [
    "IGNORE_INDEX",
    "ExactAccuracy",
    "StepwiseAccuracy",
    "normalise_metric_sums",
    "reference_metric_sums",
    "sequence_correctness",
    "wilson_interval",
    "ArcEvaluator",
    "grid_hash",
]
