"""The training loop, with the reference's semantics (docs/reference.md section 8).

* the persistent carry: one optimiser step per supervision step; only halted slots take new puzzles;
* the loss (summed over the local batch) is divided by the GLOBAL batch size and the gradients are
  summed over ranks, so the update is the global-batch mean;
* AdamATan2 (or AdamW) for the dense weights and sign-SGD for the puzzle table, on one schedule;
* EMA after every step; evaluation and checkpoints every ``eval_interval`` epochs with the EMA weights;
* total optimiser steps = floor(epochs * total_groups * mean_puzzle_examples / global_batch_size).

Model selection (trmlab, not the reference): each evaluation scores the dataset's validation split
(``val/``) and the test split. ``best.pt`` is the checkpoint with the best validation headline (first on
ties); the test metrics are logged for reporting only (``for_selection: false``) and never choose a
checkpoint. Without a validation split no ``best.pt`` is written and the last checkpoint is the result.
Every checkpoint records ``selection`` (split, metric, best value and step, a sentence), and
``metrics.jsonl`` gets a ``selection`` record after every evaluation.

Everything a run produces lands in its folder: ``config.json``, ``metrics.jsonl``, ``checkpoints/``.
``train(cfg, out_dir)`` is the entry point (also under torchrun); ``resume(out_dir)`` continues a run.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..config import RunConfig, apply_overrides, load_config
from ..data.format import VAL_SPLIT, has_split, read_build_info, read_identifiers, read_metadata
from ..data.loader import TestLoader, TrainLoader
from ..eval.arc_vote import ArcEvaluator
from ..eval.batch_size import auto_eval_batch
from ..eval.evaluate import evaluate, format_metrics, headline
from ..io import write_json_atomic
from ..model import Carry, build_model, count_parameters
from . import checkpoint as ckpt
from . import distributed as D
from .losses import act_loss
from .logging import MetricsLogger
from .optim import EMA, AdamATan2, SparseSignSGD, make_schedule
from .progress import HaltedMean


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message says what and where."""


# train.compile=auto: `trmlab bench` on 2 CPU cores (bench/results/) measured compiling the recursion
# at 19-74 s, repaid after 74-728 training steps (1.1-1.3x faster steps); twice the slowest, rounded up
COMPILE_AUTO_MIN_STEPS = 2000
COMPILE_AUTO_MIN_MINUTES = 10.0


def compile_choice(setting: str, steps_left: int, max_minutes: float = 0.0) -> tuple[bool, str]:
    """Whether to compile the recursion, and why. ``setting``: train.compile (auto/true/false);
    ``steps_left``: the optimiser steps this run (or resumed run) will still take; ``max_minutes``: its
    wall-clock budget (0 = none). ``auto`` compiles when at least :data:`COMPILE_AUTO_MIN_STEPS` steps
    are left and any time budget is at least :data:`COMPILE_AUTO_MIN_MINUTES`: shorter runs would spend
    a good part of their time compiling."""
    if setting != "auto":
        return setting == "true", f"train.compile={setting}"
    if max_minutes and max_minutes < COMPILE_AUTO_MIN_MINUTES:
        return False, f"eager: a {max_minutes:g}-minute budget is too short to repay compiling (auto)"
    if steps_left < COMPILE_AUTO_MIN_STEPS:
        return False, f"eager: {steps_left} steps to go, compiling repays itself from ~{COMPILE_AUTO_MIN_STEPS} (auto)"
    return True, f"torch.compile of the recursion: {steps_left} steps to go, >= {COMPILE_AUTO_MIN_STEPS} (auto)"


def total_steps(epochs: int, total_groups: int, mean_puzzle_examples: float, global_batch_size: int) -> int:
    return int(epochs * total_groups * mean_puzzle_examples / global_batch_size)


class Trainer:
    """Holds the whole training state; ``run()`` trains until the schedule (or a budget) ends."""

    def __init__(self, cfg: RunConfig, out_dir: str | os.PathLike, resume: bool = False, progress: bool = True,
                 on_log: Optional[Callable[[int, str, dict], None]] = None):
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.on_log = on_log  # called on the main process as on_log(step, "train"|"eval", metrics) after each log
        t = cfg.train
        self.dist = D.setup(t.device)
        self.device = self.dist.device
        if not cfg.data:
            raise TrainingError("no dataset: set data=DIR (a folder built by `trmlab data ...`)")
        if t.global_batch_size % self.dist.world_size:
            raise TrainingError(f"train.global_batch_size ({t.global_batch_size}) must be divisible by the "
                                f"number of processes ({self.dist.world_size})")
        self.local_batch = t.global_batch_size // self.dist.world_size
        # one loader block per evaluation interval: the tail is dropped once per block, as the reference
        self.loader = TrainLoader(cfg.data, t.global_batch_size, rank=self.dist.rank,
                                  world_size=self.dist.world_size, seed=t.seed, epochs_per_block=t.eval_interval)
        meta = self.loader.metadata
        meta.apply_to(cfg.model)
        self.total_steps = total_steps(t.epochs, meta.total_groups, meta.mean_puzzle_examples, t.global_batch_size)
        if self.total_steps < 1:
            raise TrainingError(f"the schedule has no step: epochs={t.epochs} x {meta.total_groups} groups x "
                                f"{meta.mean_puzzle_examples:.3g} examples < global batch {t.global_batch_size}")
        n_evals = t.epochs // t.eval_interval
        # evaluate (and checkpoint) after every eval_interval epochs' worth of steps, and at the end
        self.eval_steps = {max(1, round(k * self.total_steps / n_evals)) for k in range(1, n_evals + 1)}
        self.task = read_build_info(cfg.data).get("family", "")
        self.has_val = has_split(cfg.data, VAL_SPLIT)

        torch.manual_seed(t.seed + self.dist.rank)
        self.model = build_model(cfg.model).to(self.device)
        # dtype=auto may measure (machine.choose_cpu_dtype): a resumed run keeps the dtype its checkpoint
        # was trained in, and under torchrun every rank takes rank 0's choice, so the numbers stay exact
        resume_file = ckpt.latest_checkpoint(self.out_dir) if resume else None
        saved = ckpt.load(resume_file, map_location="cpu") if resume else {}  # read once: restored below
        self.dtype = D.resolve_dtype(saved.get("dtype") or t.dtype, self.device, cfg.model,
                                     min(self.local_batch, 64), verbose=self.dist.is_main)
        self.dtype = getattr(torch, D.all_gather_objects(str(self.dtype).replace("torch.", ""), self.dist)[0])
        self.model.set_forward_dtype(self.dtype)
        # eval_batch_size=0 (auto) measures on a CPU (eval/batch_size.py); kept on resume, rank 0's choice
        if not t.eval_batch_size and saved.get("eval_batch_size"):
            self.eval_batch, why = int(saved["eval_batch_size"]), f"{saved['eval_batch_size']} (the run's choice)"
        else:
            self.eval_batch, why = auto_eval_batch(self.model, t.eval_batch_size, t.global_batch_size,
                                                   self.dist.world_size)
        self.eval_batch = int(D.all_gather_objects(self.eval_batch, self.dist)[0])
        if self.dist.is_main and not t.eval_batch_size:
            print(f"[trmlab] eval batch: {why}")
        self.model.core.checkpoint_activations = t.activation_checkpointing
        D.broadcast_module(self.model, self.dist)
        self.model.train()
        self.n_params = count_parameters(self.model)

        params = [p for p in self.model.parameters() if p.requires_grad]
        betas = (t.beta1, t.beta2)
        if t.optimizer == "adamw":
            main = torch.optim.AdamW(params, lr=t.lr, betas=betas, weight_decay=t.weight_decay, eps=1e-8)
        else:
            main = AdamATan2(params, lr=t.lr, betas=betas, weight_decay=t.weight_decay)
        self.optimizers = [main]
        if self.model.puzzle_emb is not None:
            self.optimizers.append(SparseSignSGD(self.model.puzzle_emb, lr=t.puzzle_emb_lr,
                                                 weight_decay=t.puzzle_emb_weight_decay))
        self.schedulers = [make_schedule(o, t.lr_warmup_steps, self.total_steps, t.lr_min_ratio)
                           for o in self.optimizers]
        self.ema = EMA(self.model, t.ema_rate) if t.ema else None
        self.params = params
        self.step = 0
        self.carry: Optional[Carry] = None
        self.best: Optional[float] = None        # best validation headline so far (model selection)
        self.best_step: Optional[int] = None
        self.best_metric: Optional[str] = None
        self._arc = None
        self._forward = self.model
        self._compiled = False
        if resume:
            self._restore(resume_file, saved)
        self.last_step = self.total_steps if not t.max_steps else min(self.total_steps, t.max_steps)
        self.compile_choice = compile_choice(t.compile, self.last_step - self.step, t.max_minutes)
        if self.dist.is_main and t.compile == "auto":
            print(f"[trmlab] compile: {self.compile_choice[1]}")
        if self.compile_choice[0]:  # the recursion and heads as one graph (TinyRecursiveModel.compile_recursion)
            try:
                self.model.core.compile_recursion()
                self._compiled = True
            except Exception as e:  # pragma: no cover - depends on the platform
                print(f"[trmlab] torch.compile unavailable ({e}); training eagerly")
        if not resume and self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.out_dir / "config.json", cfg.to_dict(), indent=2, sort_keys=True)
        D.barrier(self.dist)
        self.logger = MetricsLogger(self.out_dir, enabled=self.dist.is_main, wandb_mode=t.wandb_mode,
                                    project=t.wandb_project or f"trmlab-{Path(cfg.data).name}",
                                    run_name=cfg.name, config=cfg.to_dict(), group=t.wandb_group)
        if self.dist.is_main:  # a killed run's rows after its checkpoint (or all, if it had none) are redone
            self.logger.truncate_after(self.step if resume else -1)
        if self.dist.is_main and not resume:
            self.logger.log(0, "info", {"num_params": self.n_params, "total_steps": self.total_steps,
                                        "world_size": self.dist.world_size, "dtype": str(self.dtype),
                                        "compile": self.compile_choice[0], "eval_batch_size": self.eval_batch,
                                        "device": str(self.device),
                                        "model_selection": "best.pt on the validation split (val/)" if self.has_val
                                        else self.selection()["text"]})

    # -- one optimiser step ---------------------------------------------------------------------

    def train_step(self, batch: dict) -> dict:
        t = self.cfg.train
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        if self.carry is None:
            self.carry = self.model.initial_carry(batch)
        try:
            carry, out = self._forward(self.carry, batch)
        except Exception as e:
            if not self._compiled:
                raise
            print(f"[trmlab] torch.compile failed ({type(e).__name__}: {e}); falling back to eager mode")
            self.model.core.compile_recursion(False)
            self._compiled = False
            carry, out = self._forward(self.carry, batch)
        self.carry = carry
        loss, sums = act_loss(out, carry.current_data["labels"], carry.steps, carry.halted,
                              t.loss_type, t.halt_loss_weight)
        finite = torch.isfinite(loss.detach()).float()
        if self.dist.distributed:
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        if finite.item() < 1:
            raise TrainingError(
                f"non-finite loss at step {self.step + 1} (lm_loss={float(sums['lm_loss']):.4g}, "
                f"q_halt_loss={float(sums['q_halt_loss']):.4g}); stopped. The last good checkpoint is "
                f"{self.out_dir / 'checkpoints' / 'last.pt'}"
                + ("" if (self.out_dir / "checkpoints" / "last.pt").exists() else " (none was written yet)"))
        (loss / t.global_batch_size).backward()
        D.all_reduce_grads(self.params, self.dist)
        lr = self.schedulers[0].get_last_lr()[0]
        for opt, sched in zip(self.optimizers, self.schedulers):
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        sums = D.reduce_sums({k: float(v) for k, v in sums.items()}, self.dist)
        count = max(sums.pop("count"), 1.0)
        metrics = {k: (v / t.global_batch_size if k.endswith("loss") else v / count) for k, v in sums.items()}
        metrics["count"] = count
        metrics["lr"] = lr
        return metrics

    # -- evaluation and checkpoints ----------------------------------------------------------------

    def evaluate(self, n_supervision: Optional[int] = None, max_batches: Optional[int] = None,
                 split: str = "test") -> dict:
        """Score the EMA (or raw) weights on ``split``: ``test`` (reported) or ``val`` (model selection)."""
        t = self.cfg.train
        N = n_supervision or t.eval_supervision or self.cfg.model.n_supervision
        loader = TestLoader(self.cfg.data, self.eval_batch, rank=self.dist.rank,
                            world_size=self.dist.world_size, split=split)
        arc = None
        if "arc" in t.evaluators:
            if split == "test":
                arc = self.arc_evaluator()  # one evaluator for the run: votes pooled when asked
            else:  # the held-out training tasks of val_puzzles.json
                puzzles = _read_json(Path(self.cfg.data) / f"{split}_puzzles.json")
                arc = ArcEvaluator(read_identifiers(self.cfg.data), puzzles,
                                   blank_id=read_metadata(self.cfg.data, split).blank_identifier_id)
        merge = (lambda s: D.all_gather_objects(s, self.dist)) if self.dist.distributed else None
        if self.ema is not None:
            with self.ema.applied():
                return evaluate(self.model, loader, N, arc, self.device, merge, progress=False,
                                max_batches=max_batches)
        return evaluate(self.model, loader, N, arc, self.device, merge, progress=False, max_batches=max_batches)

    def arc_evaluator(self):
        """The run's ARC evaluator (None without ``"arc"`` in ``train.evaluators``). It lives as long as
        the trainer, so with ``train.arc_pool_votes`` every evaluation adds ``ARC_pooled/pass@K``: the
        votes of all evaluations of this process pooled (the reference's protocol; the votes are not
        in checkpoints, so after ``--resume`` the pool starts again from the resumed evaluation)."""
        t = self.cfg.train
        if "arc" not in t.evaluators:
            return None
        if self._arc is None:
            self._arc = ArcEvaluator.from_dataset(self.cfg.data, pool_across_evaluations=t.arc_pool_votes)
        return self._arc

    def state_dict(self) -> dict:
        """Everything for exact resume; per-rank parts (RNG, loader, carry) gathered from all ranks."""
        rank_state = {
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "rng_numpy": _numpy_state(), "rng_python": _python_state(),
            "loader": self.loader.state_dict(),
            "carry": {k: v.cpu() for k, v in self.carry.state_dict().items()} if self.carry is not None else None,
        }
        ranks = D.all_gather_objects(rank_state, self.dist)
        return {
            "format": "trmlab-checkpoint-1",
            "dtype": str(self.dtype).replace("torch.", ""),  # what dtype=auto chose: kept on resume
            "eval_batch_size": self.eval_batch,  # what eval_batch_size=0 chose: kept on resume
            "config": self.cfg.to_dict(),
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "best": self.best,
            "selection": self.selection(),
            "world_size": self.dist.world_size,
            "ranks": ranks,
        }

    def selection(self) -> dict:
        """How best.pt is chosen and where it stands (stored in every checkpoint, logged after evaluations)."""
        metric = self.best_metric or ("ARC/pass@2" if "arc" in self.cfg.train.evaluators else "all/exact_accuracy")
        return ckpt.selection_record(self.has_val, metric, self.best, self.best_step)

    def note_best(self, val_metrics: Optional[dict]) -> bool:
        """Take ``val_metrics`` (the validation split's, this step) into the selection; True when they
        beat the best so far (this step's checkpoint becomes ``best.pt``)."""
        if val_metrics is None:
            return False
        name, value = headline(val_metrics)  # the same merged numbers on every rank
        if ckpt.improves(value, self.best):
            self.best, self.best_step, self.best_metric = float(value), self.step, name
            return True
        return False

    def save_checkpoint(self, metrics: Optional[dict] = None, val_metrics: Optional[dict] = None,
                        improved: Optional[bool] = None) -> Optional[Path]:
        """Write ``step_N.pt`` and ``last.pt``; copy to ``best.pt`` when ``val_metrics`` (the validation
        split's) beat the best so far (``improved``: already decided by :meth:`note_best`). ``metrics`` (the
        test split's) are stored but choose nothing."""
        if improved is None:
            improved = self.note_best(val_metrics)
        state = self.state_dict()  # every rank takes part in the gather
        if not self.dist.is_main:
            return None
        cdir = self.out_dir / "checkpoints"
        path = cdir / f"step_{self.step}.pt"
        state["metrics"] = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
        state["val_metrics"] = {k: v for k, v in (val_metrics or {}).items() if isinstance(v, (int, float))}
        ckpt.save_atomic(state, path)
        ckpt.copy_atomic(path, cdir / "last.pt")
        if improved:
            ckpt.copy_atomic(path, cdir / "best.pt")
        return path

    def _restore(self, path: Path, state: dict) -> None:
        """Load ``state`` (the checkpoint read from ``path``) into the model, optimisers and loaders."""
        if state.get("format") != "trmlab-checkpoint-1":
            raise ckpt.CheckpointError(f"{path}: not a trmlab training checkpoint")
        if state["world_size"] != self.dist.world_size:
            raise ckpt.CheckpointError(f"{path}: written by {state['world_size']} processes; exact resume needs "
                                       f"the same number (now {self.dist.world_size})")
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        for o, s in zip(self.optimizers, state["optimizers"]):
            o.load_state_dict(s)
        for sch, s in zip(self.schedulers, state["schedulers"]):
            sch.load_state_dict(s)
        self.step = int(state["step"])
        sel = state.get("selection")
        if sel is not None and sel.get("split") == VAL_SPLIT:
            self.best, self.best_step, self.best_metric = sel["value"], sel["step"], sel["metric"]
        # else: an older checkpoint whose "best" was a test-split number, or no validation split: start over
        mine = state["ranks"][self.dist.rank]
        torch.set_rng_state(mine["rng_torch"])
        if mine["rng_cuda"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(mine["rng_cuda"], self.device)
        _set_numpy_state(mine["rng_numpy"])
        _set_python_state(mine["rng_python"])
        self.loader.load_state_dict(mine["loader"])
        if mine["carry"] is not None:
            self.carry = Carry.from_state_dict(mine["carry"]).to(self.device)

    # -- the loop -----------------------------------------------------------------------------------

    def run(self) -> dict:
        t = self.cfg.train
        last_step = self.last_step
        start = time.time()
        bar = None
        if self.progress and self.dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=last_step, initial=self.step, desc=f"train {self.cfg.name}", dynamic_ncols=True)
            halted = HaltedMean()  # acc / exact of the puzzles that halted recently (train/progress.py)
        eval_metrics: dict = {}
        batches = iter(self.loader)
        try:
            while self.step < last_step:
                metrics = self.train_step(next(batches))
                if self.dist.is_main:
                    if self.step % t.log_every == 0:
                        self.logger.log(self.step, "train", metrics, epoch=round(self.loader.epoch, 4))
                        if self.on_log is not None:
                            self.on_log(self.step, "train", metrics)
                    if bar is not None:
                        bar.update(1)
                        halted.update(metrics)
                        bar.set_postfix(halted.postfix(metrics["lm_loss"]))
                out_of_time = t.max_minutes > 0 and (time.time() - start) / 60 >= t.max_minutes
                out_of_time = bool(D.reduce_sums({"t": float(out_of_time)}, self.dist)["t"])
                if self.step in self.eval_steps or self.step == last_step or out_of_time:
                    val_metrics = self.evaluate(split=VAL_SPLIT) if self.has_val else None
                    eval_metrics = self.evaluate()
                    improved = self.note_best(val_metrics)
                    # the rows of this step are logged before its checkpoint is written: a run killed in
                    # between resumes from the checkpoint before, which drops them and redoes the step
                    if self.dist.is_main:
                        epoch = round(self.loader.epoch, 4)
                        if val_metrics is not None:
                            self.logger.log(self.step, "val", val_metrics, epoch=epoch, for_selection=True)
                        # the test split: logged for reporting, never used to choose a checkpoint
                        self.logger.log(self.step, "eval", eval_metrics, epoch=epoch, for_selection=False)
                        sel = self.selection()
                        self.logger.log(self.step, "selection", {"best_step": sel["step"], "metric": sel["metric"],
                                                                 "value": sel["value"], "choice": sel["text"]})
                        if self.on_log is not None:
                            self.on_log(self.step, "eval", eval_metrics)
                        if bar is not None:
                            name, value = headline(eval_metrics)
                            val_text = ""
                            if val_metrics is not None:
                                vname, vvalue = headline(val_metrics)
                                val_text = f"validation {vname} = {vvalue:.4f}; "
                            bar.write(f"step {self.step}: {val_text}test {name} = {value:.4f} "
                                      f"(reported, not used for selection)")
                    self.save_checkpoint(eval_metrics, val_metrics, improved=improved)
                if out_of_time:
                    break
        finally:
            if bar is not None:
                bar.close()
            self.logger.close()
        return eval_metrics


def _also_evaluate_every(trainer: "Trainer", eval_every: int) -> None:
    if eval_every < 0:
        raise TrainingError(f"eval_every must be >= 0, got {eval_every}")
    if eval_every:
        trainer.eval_steps |= set(range(eval_every, trainer.last_step, eval_every))


def train(cfg: RunConfig, out_dir: str | os.PathLike, progress: bool = True,
          on_log: Optional[Callable[[int, str, dict], None]] = None, eval_every: int = 0) -> dict:
    """Train ``cfg`` into ``out_dir``; returns the last evaluation's metrics. Works under torchrun.
    ``on_log(step, split, metrics)`` is called after every logged train/eval record (live curves);
    ``eval_every``: also evaluate and checkpoint every this many steps (0: the schedule's only)."""
    out_dir = Path(out_dir)
    if (out_dir / "checkpoints").is_dir() and any((out_dir / "checkpoints").glob("*.pt")):
        raise TrainingError(f"{out_dir} already holds a run; use resume (trmlab train --resume {out_dir}) "
                            f"or another --out")
    trainer = Trainer(cfg, out_dir, progress=progress, on_log=on_log)
    _also_evaluate_every(trainer, eval_every)
    try:
        return trainer.run()
    finally:
        D.teardown()


def resume(out_dir: str | os.PathLike, overrides=None, progress: bool = True,
           on_log: Optional[Callable[[int, str, dict], None]] = None, eval_every: int = 0) -> dict:
    """Continue the run in ``out_dir`` exactly where its last checkpoint left it."""
    cfg = load_config(str(Path(out_dir) / "config.json"))
    cfg = apply_overrides(cfg, overrides)
    trainer = Trainer(cfg, out_dir, resume=True, progress=progress, on_log=on_log)
    _also_evaluate_every(trainer, eval_every)
    try:
        return trainer.run()
    finally:
        D.teardown()


def training_summary(out_dir: str | os.PathLike, metrics: dict) -> str:
    """What ``trmlab train`` prints when a run ends: the test split's metrics of the last checkpoint
    (reported, never used to choose), how ``best.pt`` was chosen, and what was written."""
    last, state = ckpt.choose_checkpoint(out_dir, "last")
    head = format_metrics(metrics)
    return "\n".join([f"test split, checkpoint {last.describe()} (reported; the test split chooses nothing):",
                      *([head] if head else []),
                      f"best.pt: {state.get('selection', {}).get('text', 'not recorded')}",
                      f"wrote {out_dir} (config.json, metrics.jsonl, checkpoints/)"])


def _read_json(path: Path):
    if not path.is_file():
        raise TrainingError(f"{path}: file missing (the ARC evaluator of the validation split needs it)")
    return json.loads(path.read_text())


def _numpy_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def _set_numpy_state(s: dict) -> None:
    np.random.set_state((s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"], s["cached"]))


def _python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_state(s: list) -> None:
    random.setstate((s[0], tuple(s[1]), s[2]))
