"""Checkpoints that allow exact resume, written atomically and loaded safely.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values: model weights,
EMA shadow, both optimisers, schedulers, step, RNG states, loader position and the carry (per rank).
It is written to a temporary file in the same folder and renamed, so an interrupted write leaves the
previous checkpoint intact. Loading uses ``weights_only=True``: a file that carries pickled code is
refused with :class:`CheckpointError`, never executed.
"""
from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import torch

from ..io import atomic_write


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
