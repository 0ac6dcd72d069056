"""Using a trained run: load it, solve puzzles, evaluate it. Needs no training state.

>>> model, cfg = load_run("runs/sudoku4")                      # last checkpoint, EMA weights by default
>>> model, cfg = load_run("sudoku9")                           # a zoo model by name
>>> model, cfg, choice = open_run("runs/sudoku4", "best")       # ... and which checkpoint, how chosen
>>> choice.describe()   # 'runs/sudoku4/checkpoints/best.pt (step 1200): best on validation exact accuracy ...'
>>> out = solve(model, {"inputs": tokens, "puzzle_identifiers": ids}, halting="learned")
>>> out["answers"], out["steps"], out["halt_prob"]

Every function here takes a run reference (a run folder, a checkpoint file, a zoo name, or a
:class:`~trmlab.runs.resolve.Run`) and resolves it with :func:`~trmlab.runs.resolve.resolve_run`.
Everything defaults to the LAST checkpoint: ``best.pt`` is chosen on the validation split, but the
last checkpoint needs no choice at all. Results carry the checkpoint they came from (``checkpoint``,
``checkpoint_step``, ``checkpoint_choice``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import RunConfig
from ..data import arc, maze, sudoku
from ..data.format import PuzzleFormatError
from ..eval.arc_vote import ArcEvaluator
from ..eval.batch_size import test_loader
from ..eval.evaluate import HALTING, evaluate, save_evaluation
from ..eval.rules import rule_violations
from ..eval.thinking import Thinking, think
from ..model import Between, DeepSupervision, ObserverFactory, StepHooks, run_to_halt
from ..train import checkpoint as ckpt
from ..train.distributed import resolve_device
from ..zoo import store
from .resolve import Run, resolve_run


def load_run(path: "str | os.PathLike | Run", checkpoint: str = "last", ema: bool = True, device: str = "cpu",
             dtype: str = "float32") -> tuple[DeepSupervision, RunConfig]:
    """Load a run folder (its ``last`` (default) / ``best`` / ``step_N`` checkpoint), a checkpoint file,
    or a zoo model by name (``load_run("sudoku9")``; see :mod:`trmlab.zoo.store`): anything
    :func:`~trmlab.runs.resolve.resolve_run` takes.

    With ``ema=True`` (default) the EMA weights are used when the run kept them, as the reference
    evaluates. Returns the model in eval mode and the run's config; :func:`open_run` also says which
    checkpoint was loaded and how it was chosen.
    """
    model, cfg, _ = open_run(path, checkpoint, ema, device, dtype)
    return model, cfg


def open_run(path: "str | os.PathLike | Run", checkpoint: str = "last", ema: bool = True, device: str = "cpu",
             dtype: str = "float32") -> tuple[DeepSupervision, RunConfig, ckpt.CheckpointChoice]:
    """:func:`load_run`, plus the :class:`~trmlab.train.checkpoint.CheckpointChoice` (file, step, how chosen).
    A zoo model ships one set of weights, so only ``checkpoint="last"`` applies to it."""
    run = resolve_run(path)
    if not run.is_zoo:
        return ckpt.load_model(run.checkpoint_file or run.folder, checkpoint, ema, device, dtype)
    if checkpoint != "last":
        raise store.ZooError(f"zoo model {run.zoo_name} ships one set of weights (its card says which checkpoint "
                             f"they are); checkpoint={checkpoint!r} applies to run folders only: use 'last'")
    choice, state = store.choose(run.folder)
    model, cfg = ckpt.model_from_state(choice.file, state, ema, device, dtype)
    return model, cfg, choice


def solver_batch(model: DeepSupervision, batch: dict) -> dict:
    """The batch :func:`solve` runs: ``inputs`` int32 [B, seq_len] (one puzzle may be given as [seq_len]),
    ``puzzle_identifiers`` int32 [B] (0 if absent) and blank ``labels``, on the model's device."""
    device = next(model.parameters()).device
    inputs = torch.as_tensor(batch["inputs"]).to(device)
    if inputs.dim() == 1:
        inputs = inputs[None]
    ids = batch.get("puzzle_identifiers")
    ids = torch.zeros(inputs.shape[0], dtype=torch.int32) if ids is None else torch.as_tensor(ids)
    return {"inputs": inputs.to(torch.int32), "puzzle_identifiers": ids.to(device).to(torch.int32).reshape(-1),
            "labels": torch.full(inputs.shape, -100, dtype=torch.int64, device=device)}


@torch.no_grad()
def solve(model: DeepSupervision, batch: dict, n_supervision: Optional[int] = None, halting: str = "max",
          observer_factory: Optional[ObserverFactory] = None, between: Optional[Between] = None) -> dict:
    """Answer a batch of puzzles from scratch.

    ``batch``: ``inputs`` [B, seq_len] tokens and ``puzzle_identifiers`` [B] (0 if absent).
    Returns ``answers`` [B, seq_len] tokens, ``steps`` [B] supervision steps used, ``halt_prob`` [B]
    (sigmoid of the halt logit when the puzzle stopped) and the ``logits``.

    ``observer_factory`` and ``between`` reach into the recursion (they go to
    :func:`trmlab.model.supervision_steps`; docs/contracts.md): an observer may read or replace y and z
    after every network call, ``between`` the carry before each step. ``trmlab.trace.interventions``
    makes them from interventions::

        of, between = hooks_for([Reset(step=2)])(model, solver_batch(model, batch), N)
        solve(model, batch, N, observer_factory=of, between=between)

    Without them nothing changes.
    """
    b = solver_batch(model, batch)
    res = run_to_halt(model, b, n_supervision=n_supervision, halting=halting, observer_factory=observer_factory,
                      between=between)
    return {"answers": res["preds"], "steps": res["steps"], "halt_prob": torch.sigmoid(res["q_halt_logits"]),
            "logits": res["logits"]}


def evaluate_run(path: "str | os.PathLike | Run", n_supervision: Optional[int] = None, halting: str = "max",
                 checkpoint: str = "last", data: Optional[str] = None, batch_size: Optional[int] = None,
                 ema: bool = True, device: str = "auto", progress: bool = True,
                 arc_pool_votes: Optional[bool] = None) -> dict:
    """Evaluate a run's checkpoint (default: the last) on its own dataset's test split (a zoo model's is
    built from its card when missing), or on ``data``'s; also writes ``eval_<checkpoint>_N<N>_<halting>.json``
    in the run folder (:func:`~trmlab.eval.evaluate.save_evaluation`; never into the shipped zoo).
    The metrics carry ``checkpoint`` (file), ``checkpoint_step`` and ``checkpoint_choice`` (how it was
    chosen, e.g. "last checkpoint").

    ``halting``: ``"max"`` (every puzzle runs N steps, the reference) or ``"learned"`` (each puzzle stops
    at its own step and the compute is saved); see :func:`trmlab.eval.evaluate.evaluate` for the keys.
    ``arc_pool_votes`` (default: the run's ``train.arc_pool_votes``), ARC runs only: the reference's
    protocol. The run's ``step_<N>`` checkpoints up to the evaluated one are evaluated first, in step
    order, into one pooled evaluator, so the result holds ``ARC/pass@K`` of the evaluated checkpoint
    alone and ``ARC_pooled/pass@K`` of the votes of all of them (``arc_pooled_checkpoints`` lists
    them) -- what the reference reports at that checkpoint.
    """
    if halting not in HALTING:
        raise ValueError(f"halting must be one of {', '.join(HALTING)}, got {halting!r}")
    run = resolve_run(path).require()
    model, cfg, choice = open_run(run, checkpoint=checkpoint, ema=ema, device=device, dtype=cfg_dtype(device))
    root = data or run.dataset(progress=progress, cfg=cfg)
    loader = test_loader(cfg, root, batch_size, model)
    pool = cfg.train.arc_pool_votes if arc_pool_votes is None else bool(arc_pool_votes)
    arc_votes = None
    if "arc" in cfg.train.evaluators:
        arc_votes = ArcEvaluator.from_dataset(root, pool_across_evaluations=pool)
    N = n_supervision or cfg.train.eval_supervision or cfg.model.n_supervision
    dev = next(model.parameters()).device
    p = run.folder
    pooled_from: list[str] = []
    if arc_votes is not None and pool and not run.is_zoo and p.is_dir():
        for name in _earlier_step_checkpoints(p, checkpoint):
            earlier, _ = load_run(p, checkpoint=name, ema=ema, device=device, dtype=cfg_dtype(device))
            evaluate(earlier, loader, N, arc_votes, dev, progress=progress, halting=halting)
            pooled_from.append(name)
    metrics = evaluate(model, loader, N, arc_votes, dev, progress=progress, halting=halting)
    if arc_votes is not None and pool:
        metrics["arc_pooled_checkpoints"] = [*pooled_from, checkpoint]
    metrics.update(choice.as_dict())
    if not run.is_zoo and p.is_dir():  # a shipped zoo model is never written to
        save_evaluation(p, metrics, checkpoint, N, halting)
    return metrics


def evaluate_selected(path: "str | os.PathLike | Run", n_supervision: int, device: str = "auto",
                      batch_size: Optional[int] = None, progress: bool = True) -> dict:
    """The run's selected checkpoint (``best``, chosen on the validation split; ``last`` when the run has
    no ``best.pt``) on its test split at ``n_supervision`` fixed steps (more than training's: accuracy
    with more test-time steps), written as ``eval_<checkpoint>_N<n>_max.json`` like :func:`evaluate_run`'s,
    with three more things taken from the per-puzzle records (what the study report reads):

    * ``train_steps``: the supervision steps the run is evaluated at (``train.eval_supervision``, else
      N_sup); ``wrong_indices``: test example indices whose answer after that many steps is wrong;
    * ``halt_table/<k>/n`` and ``halt_table/<k>/correct``: puzzles the halting head halts at step k (of
      ``n_supervision``) and how many of them are exactly right at that step (steps used against
      correctness).
    """
    run = resolve_run(path).require()
    checkpoint = "best" if (run.folder / "checkpoints" / "best.pt").is_file() else "last"
    model, cfg, choice = open_run(run, checkpoint=checkpoint, ema=True, device=device, dtype=cfg_dtype(device))
    loader = test_loader(cfg, run.dataset(progress=progress, cfg=cfg), batch_size, model)
    N = int(n_supervision)
    train_steps = int(cfg.train.eval_supervision or cfg.model.n_supervision)
    if N < train_steps:
        raise ValueError(f"n_supervision={N}: give at least the run's own {train_steps} supervision steps")
    metrics = evaluate(model, loader, N, None, next(model.parameters()).device, progress=progress, halting="max",
                       records=True)
    rec = metrics.pop("records")
    right = rec["correct_by_step"][:, train_steps - 1]
    metrics["train_steps"] = train_steps
    metrics["wrong_indices"] = [int(i) for i in rec["index"][~right]]
    for k in range(1, N + 1):
        at = rec["halt_step"] == k
        metrics[f"halt_table/{k}/n"] = int(at.sum())
        metrics[f"halt_table/{k}/correct"] = int((at & rec["correct_at_halt"]).sum())
    metrics.update(choice.as_dict())
    if not run.is_zoo and run.folder.is_dir():
        save_evaluation(run.folder, metrics, checkpoint, N, "max")
    return metrics


def _earlier_step_checkpoints(run: Path, checkpoint: str) -> list[str]:
    """Names ``step_<N>`` of the run's checkpoints before the one ``checkpoint`` names, in step order."""
    if checkpoint == "best" and not (run / "checkpoints" / "best.pt").exists():
        file = ckpt.latest_checkpoint(run)
    else:
        file = ckpt.find_checkpoint(run, checkpoint)
    upto = int(ckpt.load(file).get("step", 0))
    steps = []
    for f in (run / "checkpoints").glob("step_*.pt"):
        try:
            steps.append(int(f.stem[len("step_"):]))
        except ValueError:
            continue
    return [f"step_{k}" for k in sorted(steps) if k < upto]


def cfg_dtype(device: str) -> str:
    """The dtype an evaluation on ``device`` runs in: bf16 where CUDA supports it ("auto"), fp32 on a
    CPU. A CPU evaluation never measures (``dtype=auto`` would pick bf16 on a CPU where it is faster,
    and the numbers would then differ from fp32 ones in the last bits from one machine to another)."""
    return "auto" if resolve_device(device).type == "cuda" else "float32"


def solve_text(path: "str | os.PathLike | Run", kind: str, text: str, n_supervision: Optional[int] = None,
               halting: str = "max", checkpoint: str = "last", thinking: Optional[Thinking] = None,
               hooks: Optional[StepHooks] = None) -> dict:
    """Solve one puzzle given as text (a Sudoku string, a maze file, an ARC task file) with a run's
    checkpoint (default: the last); the result says which (``checkpoint``, ``checkpoint_step``,
    ``checkpoint_choice``). The text goes through the data layer's parsers (``sudoku.parse_board``,
    ``maze.parse_maze``, ``arc.parse_task``), the ones the widgets use.

    ``thinking``: answer by test-time scaling (:class:`~trmlab.eval.thinking.Thinking`: more steps,
    parallel trajectories, transforms of the puzzle) instead of the plain recursion. The answer is checked
    against the puzzle's rules (Sudoku, mazes): ``rule_violations`` lists what it breaks (empty: valid;
    None: no rules to check), next to what the halting head thought of it (``halt_prob``).

    ``hooks(model, batch, n_supervision) -> (observer_factory, between)`` reaches into the recursion (see
    :func:`solve`); it is called with the loaded model, the one-puzzle batch :func:`solver_batch` makes
    and the steps it runs
    (``trmlab solve --intervene``: ``trmlab.trace.interventions.Interventions.hooks``). Not with
    ``thinking``, which steers the steps itself."""
    if hooks is not None and thinking is not None:
        raise ValueError("interventions and thinking cannot be combined: thinking runs its own trajectories")
    model, cfg, choice = open_run(path, checkpoint)
    n_supervision = n_supervision or cfg.train.eval_supervision or None
    seq_len = cfg.model.seq_len
    n = int(round(seq_len ** 0.5))
    if kind == "sudoku":
        try:
            board = sudoku.parse_board(text, n)
        except PuzzleFormatError as e:
            raise PuzzleFormatError(f"--sudoku: {e} (this run solves {n}x{n} Sudoku)") from None
        tokens = sudoku.encode(board)
    elif kind == "maze":
        try:
            question, _ = maze.parse_maze(Path(text).read_text(), n)
        except PuzzleFormatError as e:
            raise PuzzleFormatError(f"{text}: {e}") from None
        tokens = maze.encode(question)
    elif kind == "arc":
        grid = arc.parse_task(Path(text).read_text(), str(text), test_outputs=False)["test"][0][0]
        tokens = arc.encode_arc_grid(grid).reshape(-1)
    else:
        raise ValueError(f"unknown puzzle kind {kind!r}")
    x = torch.from_numpy(tokens.astype(np.int64))[None]
    if thinking is None:
        batch = solver_batch(model, {"inputs": x})
        steps = n_supervision or cfg.model.n_supervision
        observer_factory, between = hooks(model, batch, steps) if hooks is not None else (None, None)
        out = solve(model, batch, n_supervision, halting, observer_factory=observer_factory, between=between)
        answer_tokens = out["answers"][0].cpu().numpy()
        steps, halt_prob, calls = int(out["steps"][0]), float(out["halt_prob"][0]), None
    else:
        out = think(model, x, thinking=thinking)
        answer_tokens = out["answers"][0]
        steps, halt_prob, calls = int(out["steps"][0]), float(out["halt_prob"][0]), out["calls_per_puzzle"]
    if kind == "sudoku":
        answer = sudoku.decode(answer_tokens, n)
        body = "\n".join(" ".join(str(int(v)) for v in row) for row in answer)
    elif kind == "maze":
        answer = maze.decode(answer_tokens, n)
        body = "\n".join("".join(row) for row in answer)
    else:
        answer = arc.decode_arc_grid(answer_tokens)
        body = "\n".join(" ".join(str(int(v)) for v in row) for row in answer)
    return {"text": body, "answer": answer, "steps": steps, "halt_prob": halt_prob, "kind": kind,
            "rule_violations": rule_violations(kind, tokens, answer_tokens),
            "thinking": None if thinking is None else thinking.describe(), "calls": calls, **choice.as_dict()}


def format_solution(result: dict) -> str:
    """What ``trmlab solve`` prints: the answer; whether it obeys the puzzle's rules and, if not, where it
    breaks them; the steps used and what the halting head thought; the checkpoint."""
    lines = [result["text"]]
    why = result.get("rule_violations")
    if why:
        shown = why[:6] + ([f"... and {len(why) - 6} more"] if len(why) > 6 else [])
        lines.append(f"this answer BREAKS THE RULES of {result['kind']}: " + "; ".join(shown))
    elif why is not None:
        lines.append(f"this answer obeys the rules of {result['kind']} (checked after the model answered; the "
                     f"model itself uses no rule check)")
    head = "sure it is right" if result["halt_prob"] > 0.5 else "not sure it is right"
    lines.append(f"steps used: {result['steps']}  halting probability: {result['halt_prob']:.3f} (the halting head is "
                 f"{head})  (checkpoint step {result['checkpoint_step']}: {result['checkpoint_choice']})")
    if result.get("thinking"):
        lines.append(f"thinking: {result['thinking']}; {result['calls']:.0f} network calls")
    return "\n".join(lines)
