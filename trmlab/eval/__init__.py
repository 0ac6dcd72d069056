"""Evaluation: Sudoku/Maze accuracy with Wilson intervals, the reference's metric sums, and the
reference's ARC voting evaluator (pass@K and ``submission.json``). See docs/evaluation.md.

Imports only from trmlab.data (upstream); never from model/train/trace/viz.
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
from trmlab.eval.arc_vote import ArcEvaluator, crop_arc_grid, grid_hash, invert_augmentation, parse_version_name

__all__ = [
    "IGNORE_INDEX",
    "ExactAccuracy",
    "StepwiseAccuracy",
    "normalise_metric_sums",
    "reference_metric_sums",
    "sequence_correctness",
    "wilson_interval",
    "ArcEvaluator",
    "crop_arc_grid",
    "grid_hash",
    "invert_augmentation",
    "parse_version_name",
]
