"""A trained run, as a user names it: resolved once (:mod:`.resolve`), then loaded, solved with and
evaluated (:mod:`.inference`), also thinking longer or in parallel (:mod:`.thinking`).

>>> from trmlab.runs import load_run, resolve_run, solve, evaluate_run
>>> run = resolve_run("sudoku9")        # a run folder, a checkpoint file or a zoo name
>>> model, cfg = load_run(run)
"""
from .inference import cfg_dtype, evaluate_run, evaluate_selected, load_run, open_run, solve, solve_text
from .resolve import Run, RunNotFound, resolve_run
from .thinking import best_thinking, evaluate_thinking, search_best

__all__ = ["Run", "RunNotFound", "resolve_run", "load_run", "open_run", "solve", "solve_text", "evaluate_run", "evaluate_selected",
           "cfg_dtype", "best_thinking", "evaluate_thinking", "search_best"]
