"""Checkpoints that allow exact resume, written atomically and loaded safely.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values: model weights,
EMA shadow, both optimisers, schedulers, step, RNG states, loader position and the carry (per rank),
and ``selection``: how ``best.pt`` is chosen and where it stands (see :func:`selection_record`).

Which checkpoint a number comes from is always said: :func:`choose_checkpoint` resolves ``last`` (the
default everywhere), ``best`` or ``step_N`` to a file, its step and a sentence saying how it was chosen.
It is written to a temporary file in the same folder and renamed, so an interrupted write leaves the
previous checkpoint intact. Loading uses ``weights_only=True``: a file that carries pickled code is
refused with :class:`CheckpointError`, never executed.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pickle
import shutil
from pathlib import Path
from typing import Optional

import torch

from ..config import RunConfig
from ..io import atomic_write
from ..model import DeepSupervision, build_model
from .distributed import resolve_device, resolve_dtype


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or not a plain-data checkpoint."""


def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and a rename."""
    atomic_write(path, lambda f: torch.save(obj, f))


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    with open(src, "rb") as source:
        atomic_write(dst, lambda f: shutil.copyfileobj(source, f, 1 << 20))


def load(path: str | os.PathLike, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused to load: the file is not a plain-data checkpoint (it carries pickled Python "
            f"objects or code, which trmlab never executes). Details: {str(e).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"{path}: unreadable or truncated checkpoint ({e})") from None


def latest_checkpoint(run: str | os.PathLike) -> Path:
    """The newest checkpoint of a run: the ``step_N.pt`` with the largest N (a crash between writing it
    and refreshing ``last.pt`` leaves ``last.pt`` stale or missing), else ``last.pt``."""
    cdir = Path(run) / "checkpoints"
    steps = []
    for f in cdir.glob("step_*.pt"):
        try:
            steps.append((int(f.stem[len("step_"):]), f))
        except ValueError:
            continue
    if steps:
        return max(steps)[1]
    return find_checkpoint(run, "last")


def find_checkpoint(run_or_file: str | os.PathLike, which: str = "last") -> Path:
    """A checkpoint file: the path itself if it is a file, else ``<run>/checkpoints/<which>.pt``."""
    p = Path(run_or_file)
    if p.is_file():
        return p
    cand = p / "checkpoints" / f"{which}.pt"
    if cand.is_file():
        return cand
    raise CheckpointError(f"{p}: no checkpoint '{which}.pt' under {p / 'checkpoints'}")


# ------------------------------------------------------------------------------------- model selection
_METRIC_WORDS = {"all/exact_accuracy": "exact accuracy", "ARC/pass@2": "ARC pass@2",
                 "halt/exact_accuracy": "exact accuracy with learned halting"}


def metric_words(name: str) -> str:
    """A metric key in words (``all/exact_accuracy`` -> ``exact accuracy``)."""
    return _METRIC_WORDS.get(name, name)


def selection_record(has_val: bool, metric: Optional[str] = None, value: Optional[float] = None,
                     step: Optional[int] = None) -> dict:
    """How ``best.pt`` is chosen, as stored in every checkpoint (``state["selection"]``) and logged to
    ``metrics.jsonl``: the split (``val`` or None), the metric, the best value so far and its step, and
    ``text``, the sentence printed next to numbers that come from ``best.pt``."""
    if not has_val:
        return {"split": None, "metric": None, "value": None, "step": None,
                "text": "nothing selected: the dataset has no validation split, so no best.pt is written "
                        "and the last checkpoint is the one to report"}
    if step is None:
        return {"split": "val", "metric": metric, "value": None, "step": None,
                "text": f"best on validation {metric_words(metric)}: no finite value yet"}
    return {"split": "val", "metric": metric, "value": float(value), "step": int(step),
            "text": f"best on validation {metric_words(metric)} {value:.4f} at step {step}"}


def improves(value, best) -> bool:
    """Whether a validation value beats the best so far (finite, strictly greater: the first wins ties)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return best is None or value > best


@dataclasses.dataclass
class CheckpointChoice:
    """Which checkpoint a result comes from: ``file``, its training ``step`` and ``how`` it was chosen."""

    file: Path
    step: Optional[int]
    how: str

    def as_dict(self) -> dict:
        """The keys that go into every eval JSON."""
        return {"checkpoint": str(self.file), "checkpoint_step": self.step, "checkpoint_choice": self.how}

    def describe(self) -> str:
        return f"{self.file} (step {self.step}): {self.how}"


def choose_checkpoint(run_or_file: str | os.PathLike, which: str = "last", map_location="cpu"):
    """Resolve ``which`` (``last`` | ``best`` | ``step_N``; or a checkpoint file) to a loaded checkpoint.

    Returns ``(CheckpointChoice, state)``. ``last`` is the newest checkpoint (:func:`latest_checkpoint`).
    ``best`` is ``best.pt``, chosen on the validation split; a run without one (its dataset had no
    validation split, or no evaluation gave a finite value) falls back to the last checkpoint and says
    so. A ``best.pt`` written before trmlab had validation splits was chosen on the TEST split; the
    sentence says that too.
    """
    p = Path(run_or_file)
    fallback = None
    if p.is_file():
        file = p
        which = {"last.pt": "last", "best.pt": "best"}.get(p.name, p.stem)
    elif which == "last":
        file = latest_checkpoint(p)
    elif which == "best" and not (p / "checkpoints" / "best.pt").is_file():
        file = latest_checkpoint(p)
        fallback = file
    else:
        file = find_checkpoint(p, which)
    state = load(file, map_location=map_location)
    step = state.get("step") if isinstance(state, dict) else None
    sel = state.get("selection") if isinstance(state, dict) else None
    if fallback is not None:
        why = sel["text"] if sel else "no evaluation chose one"
        how = f"last checkpoint (best was asked for, but the run has no best.pt: {why})"
    elif which == "last":
        how = "last checkpoint"
    elif which == "best":
        if sel is None:
            how = ("best.pt written by an older trmlab, chosen on the TEST split's headline "
                   "(an optimistic number: report the last checkpoint instead)")
        else:
            how = sel["text"]
    else:
        how = f"{which} chosen by the user"
    return CheckpointChoice(file, None if step is None else int(step), how), state


def model_from_state(file: str | os.PathLike, state, ema: bool = True, device: str = "cpu",
                     dtype: str = "float32") -> tuple[DeepSupervision, RunConfig]:
    """The model a loaded checkpoint ``state`` (from ``file``) holds, in eval mode on ``device`` in
    ``dtype``, and its run config. With ``ema=True`` the EMA weights are used when the run kept them,
    as the reference evaluates."""
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise CheckpointError(f"{file}: not a trmlab checkpoint (missing config/model)")
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
    model.set_forward_dtype(resolve_dtype(dtype, dev, cfg.model))
    model.eval()
    return model, cfg


def load_model(run_or_file: str | os.PathLike, which: str = "last", ema: bool = True, device: str = "cpu",
               dtype: str = "float32") -> tuple[DeepSupervision, RunConfig, CheckpointChoice]:
    """The model of a run folder's checkpoint ``which`` (or of a checkpoint file), its config, and which
    checkpoint it is (:func:`choose_checkpoint`). Run folders only: a reference that may name a zoo model
    goes through :func:`trmlab.runs.open_run`."""
    choice, state = choose_checkpoint(run_or_file, which)
    model, cfg = model_from_state(choice.file, state, ema, device, dtype)
    return model, cfg, choice
