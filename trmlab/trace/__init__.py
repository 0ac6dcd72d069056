"""Tracing: y and z at every latent update, answer update and supervision step of the recursion.

``trace(model, batch)`` -> :class:`Trace` (save/load as .npz + .json); see recorder.py. Choosing the
puzzle to trace (typed text, a dataset example, the most interesting of a sample): pickers.py. Every
state by name, and hooks that read or replace them (``run_with_cache``): hooks.py; ready-made
interventions (set a cell, reset, swap, noise) and their command-line spelling: interventions.py.
"""
from .hooks import Cache, HookPoint, Hooks, RunOutputs, StepOutputs, run_with_cache
from .interventions import (Intervention, Noise, Reset, SetAnswerCell, SetInputCell, Swap, hooks_for,
                            parse_intervention, parse_interventions)
from .projection import PCA, fit_pca
from .recorder import EVENTS, Trace, expected_records, trace
from .tasks import TaskSpec, arc_spec, dataset_task, infer_task, maze_spec, sudoku_spec

__all__ = ["trace", "Trace", "EVENTS", "expected_records", "PCA", "fit_pca", "TaskSpec", "infer_task",
           "dataset_task", "sudoku_spec", "maze_spec", "arc_spec", "run_with_cache", "Cache", "HookPoint", "Hooks",
           "RunOutputs", "StepOutputs", "Intervention", "SetAnswerCell", "SetInputCell", "Reset", "Swap", "Noise",
           "hooks_for", "parse_intervention", "parse_interventions"]
