"""``trmlab zoo train NAME``: reproduce a zoo model from its card (or a new one from its recipe).

>>> train_zoo_model("sudoku4", steps=5)          # runs/zoo-sudoku4, resumable like `trmlab train`
"""
from __future__ import annotations

import os
from typing import Callable, Optional

from ..paths import display_path, resolve
from ..train.launch import TrainResult, train_run
from . import store
from .recipes import ensure_zoo_data, recipe_of, train_overrides


def train_zoo_model(name: str, run: str = "", steps: int = 0, progress: bool = True, echo: Callable = print,
                    root: Optional[str | os.PathLike] = None, overrides: Optional[dict] = None) -> TrainResult:
    """``trmlab zoo train NAME``: build the data (checking its hash against the card), then train by the
    recipe into ``run`` (default ``runs/zoo-<name>``), resuming a run already there. ``steps`` > 0 stops
    early (a quick check); otherwise the card's steps, or the recipe's budget for a new model.
    ``overrides``: config keys on top of the recipe's, for a quick check (e.g. ``eval_supervision``)."""
    recipe = recipe_of(name)
    card = store.read_card(store.folder(name)) if name in store.names() else None
    run = resolve(run or f"runs/zoo-{name}", root)
    folder, h = ensure_zoo_data(recipe, card, progress, echo, root=root)
    echo(f"data {display_path(folder, root)}: hash {h}" + (" (the card's)" if card else ""))
    n_steps = steps or recipe.steps
    return train_run(recipe.preset, run, overrides={**train_overrides(recipe), **(overrides or {})}, data=str(folder),
                     steps=n_steps,
                     minutes=0.0 if n_steps else recipe.minutes, eval_every=recipe.eval_every,
                     threads=recipe.threads, wandb_mode="disabled", if_exists="resume", progress=progress, echo=echo)
