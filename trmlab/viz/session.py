"""What the recursion notebook does before drawing: get a model and a puzzle, trace it.

``prepare(...)`` is the notebook's one call: a trained run (``run``) or, without one, a tiny model
(untrained, or trained for ``train_seconds`` on generated 4x4 Sudoku when the trainer is there); a
puzzle from a dataset (``data`` + ``index`` or a ``pick`` rule), typed (``puzzle_text``), or generated.
"""
from __future__ import annotations

import os
import tempfile
from typing import Optional

import numpy as np

from trmlab.trace.tasks import TaskSpec, dataset_task, infer_task, sudoku_spec

from .pickers import Picked, from_dataset, make_batch, parse_puzzle, pick_interesting


def generated_sudoku(size: int = 4, seed: int = 0) -> Picked:
    """One generated Sudoku with its solution (trmlab.data.sudoku), e.g. when no dataset is given."""
    from trmlab.data.sudoku import generate_puzzles

    q, a, _ = generate_puzzles(1, n=size, seed=seed, difficulty="hard")[0]
    inputs = np.asarray(q).reshape(-1).astype(np.int64) + 1
    labels = np.asarray(a).reshape(-1).astype(np.int64) + 1
    return Picked(make_batch(inputs, labels), sudoku_spec(size), f"generated {size}x{size} Sudoku (seed {seed})")


def _train_tiny(seconds: float, workdir: str):
    from trmlab.config import get_preset
    from trmlab.data.sudoku import build_sudoku
    from trmlab.train.inference import load_run
    from trmlab.train.trainer import train

    data = os.path.join(workdir, "sudoku4")
    build_sudoku(data, generate=300, size=4, num_aug=0, seed=0, test_generate=32, progress=False,
                 echo=lambda *a, **k: None)
    cfg = get_preset("cpu_sudoku4", {"data": data, "train.max_minutes": seconds / 60.0})
    train(cfg, os.path.join(workdir, "run"), progress=False)
    model, _ = load_run(os.path.join(workdir, "run"))
    return model, data


def prepare(run: str = "", data: str = "", pick: str = "index", index: int = 0, puzzle_text: str = "",
            n_supervision: int = 0, train_seconds: float = 0.0, events=None, seed: int = 0,
            candidates: int = 64) -> tuple:
    """(model, picked, trace) for the recursion notebook. See the module docstring."""
    from trmlab.trace.tiny import tiny_model

    model = None
    if run:
        from trmlab.train.inference import load_run

        model, cfg = load_run(run)
        data = data or ""
    elif train_seconds and train_seconds > 0:
        model, gen_data = _train_tiny(train_seconds, tempfile.mkdtemp(prefix="trmlab-nb-"))
        data = data or gen_data
    task: Optional[TaskSpec] = None
    if model is not None:
        task = dataset_task(data) if data else infer_task(model.cfg.vocab_size, model.cfg.seq_len)
    if puzzle_text:
        picked = parse_puzzle(puzzle_text, task)
    elif data:
        if pick == "index":
            picked = from_dataset(data, index)
        else:
            if model is None:
                model = tiny_model(dataset_task(data), seed=seed)
            picked = pick_interesting(model, data, by=pick, k=1, candidates=candidates, seed=seed)
    else:
        picked = generated_sudoku(4, seed=seed + index)
    if model is None:
        model = tiny_model(picked.task, seed=seed)
    kw = {} if events is None else {"events": events}
    tr = picked.trace(model, n_supervision=n_supervision or None, **kw)
    return model, picked, tr
