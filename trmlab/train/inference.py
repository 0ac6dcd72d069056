"""Using a trained run: load it, solve puzzles, evaluate it. Needs no training state.

>>> model, cfg = load_run("runs/sudoku4")                      # EMA weights by default
>>> out = solve(model, {"inputs": tokens, "puzzle_identifiers": ids}, halting="learned")
>>> out["answers"], out["steps"], out["halt_prob"]
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import RunConfig
from ..io import write_json_atomic
from ..model import DeepSupervision, build_model, run_to_halt
from . import checkpoint as ckpt
from .distributed import resolve_device, resolve_dtype


def load_run(path: str | os.PathLike, checkpoint: str = "best", ema: bool = True, device: str = "cpu",
             dtype: str = "float32") -> tuple[DeepSupervision, RunConfig]:
    """Load a run folder (its ``best``/``last``/``step_N`` checkpoint) or a checkpoint file.

    With ``ema=True`` (default) the EMA weights are used when the run kept them, as the reference
    evaluates. Returns the model in eval mode and the run's config.
    """
    p = Path(path)
    if p.is_dir() and checkpoint == "best" and not (p / "checkpoints" / "best.pt").exists():
        file = ckpt.latest_checkpoint(p)  # no evaluation gave a finite headline yet
    else:
        file = ckpt.find_checkpoint(p, checkpoint) if p.is_dir() else p
    state = ckpt.load(file)
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise ckpt.CheckpointError(f"{file}: not a trmlab checkpoint (missing config/model)")
    cfg = RunConfig.from_dict(state["config"])
    model = build_model(cfg.model)
    model.load_state_dict(state["model"])
    if ema and state.get("ema") is not None:
        params = [q for q in model.parameters() if q.requires_grad]
        with torch.no_grad():
            for q, s in zip(params, state["ema"]["shadow"]):
                q.copy_(s)
    dev = resolve_device(device)
    model.to(dev)
    model.set_forward_dtype(resolve_dtype(dtype, dev))
    model.eval()
    return model, cfg


@torch.no_grad()
def solve(model: DeepSupervision, batch: dict, n_supervision: Optional[int] = None, halting: str = "max") -> dict:
    """Answer a batch of puzzles from scratch.

    ``batch``: ``inputs`` [B, seq_len] tokens and ``puzzle_identifiers`` [B] (0 if absent).
    Returns ``answers`` [B, seq_len] tokens, ``steps`` [B] supervision steps used, ``halt_prob`` [B]
    (sigmoid of the halt logit when the puzzle stopped) and the ``logits``.
    """
    device = next(model.parameters()).device
    inputs = torch.as_tensor(batch["inputs"]).to(device)
    if inputs.dim() == 1:
        inputs = inputs[None]
    ids = batch.get("puzzle_identifiers")
    ids = torch.zeros(inputs.shape[0], dtype=torch.int32) if ids is None else torch.as_tensor(ids)
    b = {"inputs": inputs.to(torch.int32), "puzzle_identifiers": ids.to(device).to(torch.int32).reshape(-1),
         "labels": torch.full(inputs.shape, -100, dtype=torch.int64, device=device)}
    res = run_to_halt(model, b, n_supervision=n_supervision, halting=halting)
    return {"answers": res["preds"], "steps": res["steps"], "halt_prob": torch.sigmoid(res["q_halt_logits"]),
            "logits": res["logits"]}


def evaluate_run(path: str | os.PathLike, n_supervision: Optional[int] = None, halting: str = "max",
                 checkpoint: str = "best", data: Optional[str] = None, batch_size: Optional[int] = None,
                 ema: bool = True, device: str = "auto", progress: bool = True) -> dict:
    """Evaluate a run on its (or another) dataset's test split; also writes ``eval_<ckpt>.json``."""
    from ..data.loader import TestLoader
    from ..eval.evaluate import evaluate

    model, cfg = load_run(path, checkpoint=checkpoint, ema=ema, device=device, dtype=cfg_dtype(device))
    root = data or cfg.data
    loader = TestLoader(root, batch_size or cfg.train.eval_batch_size or min(cfg.train.global_batch_size, 256))
    arc = None
    if "arc" in cfg.train.evaluators:
        from ..eval.arc_vote import ArcEvaluator

        arc = ArcEvaluator.from_dataset(root)
    N = n_supervision or cfg.train.eval_supervision or cfg.model.n_supervision
    metrics = evaluate(model, loader, N, arc, next(model.parameters()).device, progress=progress)
    metrics["halting"] = halting
    p = Path(path)
    if p.is_dir():
        write_json_atomic(p / f"eval_{checkpoint}_N{N}.json", metrics, indent=2, sort_keys=True, default=float)
    return metrics


def cfg_dtype(device: str) -> str:
    return "auto" if device != "cpu" else "float32"


def solve_text(path: str | os.PathLike, kind: str, text: str, n_supervision: Optional[int] = None,
               halting: str = "max") -> dict:
    """Solve one puzzle given as text (a Sudoku string, a maze file, an ARC task file) with a run. The
    text goes through the data layer's parsers (``sudoku.parse_board``, ``maze.parse_maze``,
    ``arc.parse_task``), the ones the widgets use."""
    from ..data.format import PuzzleFormatError

    model, cfg = load_run(path)
    n_supervision = n_supervision or cfg.train.eval_supervision or None
    seq_len = cfg.model.seq_len
    if kind == "sudoku":
        from ..data import sudoku

        n = int(round(seq_len ** 0.5))
        try:
            board = sudoku.parse_board(text, n)
        except PuzzleFormatError as e:
            raise PuzzleFormatError(f"--sudoku: {e} (this run solves {n}x{n} Sudoku)") from None
        tokens = sudoku.encode(board)
        out = solve(model, {"inputs": torch.from_numpy(tokens.astype(np.int64))[None]}, n_supervision, halting)
        answer = sudoku.decode(out["answers"][0].cpu().numpy(), n)
        body = "\n".join(" ".join(str(int(v)) for v in row) for row in answer)
    elif kind == "maze":
        from ..data import maze

        n = int(round(seq_len ** 0.5))
        try:
            question, _ = maze.parse_maze(Path(text).read_text(), n)
        except PuzzleFormatError as e:
            raise PuzzleFormatError(f"{text}: {e}") from None
        tokens = maze.encode(question)
        out = solve(model, {"inputs": torch.from_numpy(tokens.astype(np.int64))[None]}, n_supervision, halting)
        answer = maze.decode(out["answers"][0].cpu().numpy(), n)
        body = "\n".join("".join(row) for row in answer)
    elif kind == "arc":
        from ..data import arc

        grid = arc.parse_task(Path(text).read_text(), str(text), test_outputs=False)["test"][0][0]
        tokens = arc.encode_arc_grid(grid).reshape(-1)
        out = solve(model, {"inputs": torch.from_numpy(tokens.astype(np.int64))[None]}, n_supervision, halting)
        answer = arc.decode_arc_grid(out["answers"][0].cpu().numpy())
        body = "\n".join(" ".join(str(int(v)) for v in row) for row in answer)
    else:
        raise ValueError(f"unknown puzzle kind {kind!r}")
    return {"text": body, "answer": answer, "steps": int(out["steps"][0]), "halt_prob": float(out["halt_prob"][0])}
