"""What the recursion notebook (04-recursion) does before drawing: a model, a puzzle, a trace, files.

>>> rec = prepare(task="sudoku9", pick="solved")  # the 9x9 zoo model on a held-out puzzle it solves
>>> rec = prepare(run="runs/demo-sudoku4")   # a run's own test split, example 0
>>> print(rec.describe())                    # model, puzzle (no solution), what was traced
>>> rec.save()                               # runs/demo-sudoku4/recursion/{trace.npz, ...}
>>> rec.player()                             # the player with edit and continue (a kernel runs the model)

The model comes from a trained run folder or a zoo model (``run``: a folder, or a zoo name such as
``sudoku9``; the model that ``trmlab eval`` scores, loaded with ``trmlab.runs.open_run``),
or with no run from the zoo model of ``task``, or with neither is a tiny untrained TRM (or one trained
for ``train_seconds`` on generated 4x4 Sudoku). A zoo model's dataset is built from its card when
missing, and its files go to ``runs/zoo/<name>/`` (the shipped zoo is never written to). The puzzle comes from, in this order: ``puzzle_text``
(typed), ``data`` (a built dataset), the run's own dataset (``data`` in its ``config.json``), or a
generated 4x4 Sudoku. Dataset puzzles are example ``index`` of ``split`` (default ``test``), or the
one where the recursion works hardest (``pick``: see :func:`trmlab.trace.pickers.rank_puzzles`).

A run is traced for as many supervision steps as it is evaluated (``train.eval_supervision`` of its
config, else the model's N_sup), so the animation reaches the step at which ``trmlab eval`` reports
its accuracy. A missing run folder is an error.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from trmlab.config import RunConfig, get_preset
from trmlab.data.sudoku import build_sudoku, generate_puzzles
from trmlab.paths import project_root, resolve
from trmlab.runs import Run, load_run, open_run, resolve_run
from trmlab.trace.recorder import EVENTS, Trace
from trmlab.trace.tiny import tiny_model
from trmlab.train.trainer import train
from trmlab.trace.tasks import TaskSpec, dataset_task, infer_task, sudoku_spec
from trmlab.viz.animation import export_html, png_strip
from trmlab.viz.player import Player
from trmlab.trace.pickers import Picked, from_dataset, make_batch, parse_puzzle, pick_interesting, puzzle_summary


#: the recursion files written into a run folder (``RUN/recursion/...``), for reports and the README
RECURSION_DIR = "recursion"
TRACE_STEM, ANIMATION_FILE, STRIP_FILE = "trace", "animation.html", "strip.png"
PICK_RULES = ("index", "solved", "changed", "hardest", "gain")


@dataclass
class Recursion:
    """A traced puzzle and where it came from (what the recursion notebook shows)."""

    model: Any
    picked: Picked
    trace: Trace
    run: Optional[Run]  # the run traced (resolved: folder, zoo or not, outputs); None for a tiny model
    config: Optional[RunConfig]  # the trained model's config (None for an untrained tiny model)
    data: Optional[Path]  # the dataset the puzzle comes from; None for a typed or generated puzzle
    source: str  # the model, in words
    trace_kw: dict = field(default_factory=dict)  # the trace()'s arguments besides the batch and the task

    @property
    def n_supervision(self) -> int:
        return int(self.trace.meta["n_supervision"])

    def describe(self) -> str:
        """A few readable lines: the model, the puzzle (task, split, index, givens; never the
        solution) and what was traced."""
        m = self.trace.meta
        lines = [f"model: {self.source}"]
        lines.append(f"puzzle: {self.picked.description}")
        why = m.get("n_supervision_source", "")
        lines.append(f"trace: {len(self.trace)} records over {m['n_supervision']} supervision steps"
                     + (f" ({why})" if why else "")
                     + f", T={m['n_recursions']} recursions of n={m['n_latent_steps']} latent updates each")
        return "\n".join(lines)

    def continue_with(self, interventions: Sequence) -> Trace:
        """The puzzle traced again by the same model with the same arguments, plus ``interventions``
        (:mod:`trmlab.trace.interventions`; their rows index the traced batch), projected on the
        original trace's PCA planes: evaluation is deterministic, so its records before the first
        intervention point are bit-identical to :attr:`trace`'s. What the player's edit panel runs."""
        return self.picked.trace(self.model, **self.trace_kw, interventions=list(interventions),
                                 planes=self.trace.planes)

    def player(self, **kw) -> Player:
        """The player of :attr:`trace` with its edit panel bound to this model and puzzle
        (:meth:`continue_with`); ``kw`` go to :class:`trmlab.viz.player.Player` (``interval_ms``...)."""
        return Player(self.trace, continue_with=self.continue_with, **kw)

    def output_dir(self, out_dir: Optional[str | os.PathLike] = None) -> Optional[Path]:
        """Where :meth:`save` writes: ``out_dir`` when given, else ``RUN/recursion`` for a run
        (``runs/zoo/<name>/recursion`` for a zoo model), else None."""
        if out_dir:
            return Path(out_dir)
        if self.run is not None:
            return self.run.outputs / RECURSION_DIR
        return None

    def save(self, out_dir: Optional[str | os.PathLike] = None, max_frames: int = 200) -> dict:
        """Write the trace (``trace.npz`` + ``trace.json``), the static HTML animation
        (``animation.html``: plays with no kernel and no network) and the PNG strip (``strip.png``)
        into :meth:`output_dir`; returns {"trace", "trace_json", "animation", "strip"} -> path ({}
        when there is nowhere to write: no run and no ``out_dir``)."""
        folder = self.output_dir(out_dir)
        if folder is None:
            return {}
        folder.mkdir(parents=True, exist_ok=True)
        npz, js = self.trace.save(str(folder / TRACE_STEM))
        animation = folder / ANIMATION_FILE
        export_html(self.trace, str(animation), full_html=True, max_frames=max_frames)
        strip = Path(png_strip(self.trace, str(folder / STRIP_FILE)))
        return {"trace": Path(npz), "trace_json": Path(js), "animation": animation, "strip": strip}


# -----------------------------------------------------------------------------------------------------
# Runs and their data
# -----------------------------------------------------------------------------------------------------


def eval_steps(cfg: RunConfig) -> int:
    """The supervision steps a run is evaluated with: ``train.eval_supervision``, else its N_sup."""
    return int(cfg.train.eval_supervision or cfg.model.n_supervision)


def check_fits(model, task: TaskSpec, where: str) -> None:
    """The puzzles of ``task`` (from ``where``) are what ``model`` reads: same cell count and alphabet."""
    cfg = model.cfg
    if task.seq_len != cfg.seq_len or task.vocab_size > cfg.vocab_size:
        raise ValueError(
            f"{where}: {task.name} puzzles of {task.seq_len} cells (vocabulary {task.vocab_size}), but the model "
            f"reads {cfg.seq_len} cells (vocabulary {cfg.vocab_size}); use the run's own dataset (leave `data` empty) "
            f"or a dataset built for the same task")


def generated_sudoku(size: int = 4, seed: int = 0) -> Picked:
    """One generated Sudoku with its solution (trmlab.data.sudoku), when there is no dataset."""
    q, a, _ = generate_puzzles(1, n=size, seed=seed, difficulty="hard")[0]
    inputs = np.asarray(q).reshape(-1).astype(np.int64) + 1
    labels = np.asarray(a).reshape(-1).astype(np.int64) + 1
    task = sudoku_spec(size)
    return Picked(make_batch(inputs, labels), task,
                  f"a generated {size}x{size} Sudoku (seed {seed}): {puzzle_summary(task, inputs)}")


def train_tiny(seconds: float, workdir: str | os.PathLike):
    """A cpu_sudoku4 model trained ``seconds`` on 300 generated 4x4 Sudoku in ``workdir``:
    (model, config, data folder, run folder)."""
    workdir = Path(workdir)
    data = workdir / "sudoku4"
    build_sudoku(data, generate=300, size=4, num_aug=0, seed=0, test_generate=32, progress=False,
                 echo=lambda *a, **k: None)
    cfg = get_preset("cpu_sudoku4", {"data": str(data), "train.max_minutes": seconds / 60.0,
                                     "train.wandb_mode": "disabled"})
    train(cfg, workdir / "run", progress=False)
    model, cfg = load_run(workdir / "run")
    return model, cfg, data, workdir / "run"


# -----------------------------------------------------------------------------------------------------
# The notebook's one call
# -----------------------------------------------------------------------------------------------------


def _as_path(p) -> Optional[Path]:
    return Path(p) if p not in (None, "") else None


def prepare(run: Optional[str | os.PathLike] = None, data: Optional[str | os.PathLike] = None,
            split: str = "test", pick: str = "index", index: int = 0, puzzle_text: str = "",
            n_supervision: int = 0, train_seconds: float = 0.0, seed: int = 0, candidates: int = 64,
            events=EVENTS, root: Optional[str | os.PathLike] = None, task: str = "") -> Recursion:
    """A model, a puzzle and its trace for the recursion notebook (see the module docstring).

    ``run``: a run folder (relative ones are taken from the project root ``root``) or a zoo name;
    empty: the zoo model of ``task`` (``sudoku9``, ``maze10``... see ``trmlab zoo list``); both empty:
    a tiny model (untrained, or trained ``train_seconds``). ``pick``: ``index`` (example ``index``),
    ``solved`` (a puzzle the model solves, the one whose answer changes most), or ``changed`` /
    ``hardest`` / ``gain`` (:func:`trmlab.trace.pickers.rank_puzzles`) among ``candidates`` random test
    puzzles. ``n_supervision``: steps to trace; 0 = the run's evaluation steps (a tiny model: its
    N_sup). ``events``: which records to keep (trmlab.trace.EVENTS)."""
    if pick not in PICK_RULES:
        raise ValueError(f"pick must be one of {', '.join(PICK_RULES)}, got {pick!r}")
    root = Path(root) if root is not None else project_root()
    run_ref: Optional[Run] = None
    if run not in (None, ""):
        run_ref = resolve_run(run, root)
        if not run_ref.exists:
            raise FileNotFoundError(f"run folder {run_ref.folder} does not exist (the `run` parameter), and "
                                    f"{str(run)!r} is no zoo model (`trmlab zoo list`); train one with `trmlab train` "
                                    f"or the 02-train notebook")
    elif task and not train_seconds:
        run_ref = resolve_run("", root, task=task)
    data_path = _as_path(data)
    data_path = resolve(data_path, root) if data_path is not None else None
    model = cfg = None
    source = ""
    if run_ref is not None:
        model, cfg, choice = open_run(run_ref)
        kind = "the zoo model" if run_ref.is_zoo else "the run"
        source = (f"{kind} {run_ref.zoo_name if run_ref.is_zoo else run_ref.folder} ({cfg.preset or cfg.name}, "
                  f"{_n_params(model):,} parameters, step {choice.step})")
        if data_path is None and not puzzle_text:
            data_path = run_ref.dataset(cfg=cfg)
    elif train_seconds and train_seconds > 0:
        workdir = Path(tempfile.mkdtemp(prefix="trmlab-nb-"))
        model, cfg, gen_data, _ = train_tiny(train_seconds, workdir)
        source = f"a cpu_sudoku4 model trained {train_seconds:g} s on generated 4x4 Sudoku ({workdir})"
        data_path = data_path or gen_data

    task: Optional[TaskSpec] = None
    if data_path is not None:
        task = dataset_task(str(data_path))
    elif model is not None:
        task = infer_task(model.cfg.vocab_size, model.cfg.seq_len)
    if puzzle_text:
        picked = parse_puzzle(puzzle_text, task)
        data_path = None
    elif data_path is not None:
        if model is not None:
            check_fits(model, task, str(data_path))
        if pick == "index":
            picked = from_dataset(str(data_path), index, split)
        else:
            if model is None:
                model = tiny_model(task, seed=seed)
            picked = pick_interesting(model, str(data_path), by=pick, k=1, candidates=candidates, split=split,
                                      n_supervision=(n_supervision or (eval_steps(cfg) if cfg else None)),
                                      seed=seed)
    else:
        picked = generated_sudoku(4, seed=seed + index)
    if model is None:
        model = tiny_model(picked.task, seed=seed)
        source = (f"a tiny UNTRAINED TRM (hidden {model.cfg.hidden_size}, random weights, seed {seed}): "
                  f"the recursion runs, nothing is learnt")
    else:
        check_fits(model, picked.task, "the puzzle")

    if n_supervision:
        N, why = int(n_supervision), "set by n_supervision"
    elif cfg is not None:
        N = eval_steps(cfg)
        why = ("the run's evaluation steps, train.eval_supervision" if cfg.train.eval_supervision
               else "the run's N_sup, as it is evaluated")
    else:
        N, why = int(model.cfg.n_supervision), "the model's N_sup"
    meta = {"n_supervision_source": why, "source": source, "split": split if data_path is not None else None,
            "run": str(run_ref.folder) if run_ref is not None else None,
            "data": str(data_path) if data_path is not None else None}
    trace_kw = dict(n_supervision=N, events=events, meta=meta)
    tr = picked.trace(model, **trace_kw)
    return Recursion(model, picked, tr, run_ref, cfg, data_path, source, trace_kw)


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())
