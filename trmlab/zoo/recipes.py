"""How each zoo model is made: its dataset, preset, overrides, budget and threads (:class:`Recipe`).

A :class:`Recipe` says how a zoo model is made: its dataset (a data folder of
:data:`trmlab.data.catalog.DATASETS`, built under ``data/``), the preset and overrides, the budget
(steps, or minutes for a first training), evaluation cadence and threads. A shipped model's card keeps
the recipe it was trained by, with the steps it really trained (:func:`recipe_of` reads it); ``trmlab
zoo train NAME`` (:mod:`trmlab.zoo.training`) follows it, and :func:`ensure_zoo_data` builds the same
dataset and checks its hash against the card.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Optional

from ..data.catalog import ensure_dataset
from ..data.format import dataset_hash
from ..paths import resolve
from . import store


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a zoo model is made. ``data``: a folder name of :data:`~trmlab.data.catalog.DATASETS`
    (built under ``data/``); ``steps``: optimiser steps (0: train for ``minutes`` and record the steps
    reached); ``eval_steps``: supervision steps the card's headline uses; ``by_step``: the card's
    accuracy-by-step table goes to this many steps; ``check_puzzles``: the first test puzzles kept in
    the zoo for the tests."""

    name: str
    task: str
    title: str
    data: str
    preset: str
    overrides: dict
    steps: int = 0
    minutes: float = 0.0
    eval_every: int = 200
    threads: int = 1
    eval_steps: int = 4
    by_step: int = 8
    check_puzzles: int = 64

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("sudoku4", "sudoku4", "TRM-Att (hidden 128, T=2, n=2) on generated 4x4 Sudoku: the demo's model",
           data="sudoku4", preset="cpu_sudoku4", overrides={}, steps=1600, eval_every=200, threads=1,
           eval_steps=4, by_step=8),
    Recipe("sudoku6", "sudoku6", "TRM-Att (hidden 128, T=2, n=2) on generated 6x6 Sudoku",
           data="sudoku6", preset="cpu_sudoku6", overrides={}, steps=2000, eval_every=250, threads=1,
           eval_steps=6, by_step=10),
    Recipe("sudoku9", "sudoku9", "TRM-MLP (hidden 128, T=2, n=3) on generated easy 9x9 Sudoku with 40 givens",
           data="sudoku9-easy40", preset="cpu_sudoku9",
           overrides={"hidden_size": 128, "mlp_t": True, "pos_encodings": "none", "global_batch_size": 64,
                      "lr": 1e-3, "puzzle_emb_lr": 1e-3, "lr_warmup_steps": 100, "n_supervision": 4,
                      "eval_supervision": 8, "eval_batch_size": 250, "dtype": "float32"},
           minutes=105, eval_every=600, threads=1, eval_steps=8, by_step=12),
    Recipe("maze10", "maze10", "TRM-MLP (hidden 128, T=2, n=3) on generated 10x10 mazes, shortest paths > 14 moves",
           data="maze10", preset="cpu_maze8",
           overrides={"n_latent_steps": 3, "global_batch_size": 64, "lr": 1e-3, "puzzle_emb_lr": 1e-3,
                      "lr_warmup_steps": 100, "n_supervision": 4, "eval_supervision": 8, "eval_batch_size": 250,
                      "dtype": "float32", "mlp_t": True, "pos_encodings": "none"},
           minutes=58, eval_every=400, threads=2, eval_steps=8, by_step=12),
)}


def recipe_of(name: str) -> Recipe:
    """The recipe zoo model ``name`` was (or will be) made with: its card's when it has one (the steps
    it really trained), else :data:`RECIPES`'."""
    if name in store.names():
        card = store.read_card(store.folder(name))
        try:
            return Recipe(**card["recipe"])
        except TypeError as e:
            raise store.ZooError(f"{store.folder(name) / 'card.json'}: 'recipe': {e}") from None
    if name not in RECIPES:
        raise store.ZooError(f"no zoo model or recipe {name!r}; known: {', '.join(sorted(set(RECIPES) | set(store.names())))}")
    return RECIPES[name]


def data_folder(recipe: Recipe) -> str:
    return f"data/{recipe.data}"


def train_overrides(recipe: Recipe) -> dict:
    """The recipe's overrides of its preset, eager unless the recipe says otherwise: the shipped models
    were trained without ``torch.compile``, and a reproduction should run the same arithmetic."""
    return {"compile": False, **recipe.overrides}


def train_command(recipe: Recipe, run: str) -> str:
    """The ``trmlab train`` command equivalent to ``trmlab zoo train`` for this recipe."""
    ov = [f"{k}={v}" for k, v in train_overrides(recipe).items()]
    budget = [f"max_steps={recipe.steps}"] if recipe.steps else [f"max_minutes={recipe.minutes:g}"]
    return (f"OMP_NUM_THREADS={recipe.threads} trmlab train --preset {recipe.preset} --data {data_folder(recipe)} "
            f"--out {run} {' '.join(ov + budget)}").replace("  ", " ")


def ensure_zoo_data(recipe: Recipe, card: Optional[dict] = None, progress: bool = True, echo: Callable = print,
                    root: Optional[str | os.PathLike] = None) -> tuple[Path, str]:
    """Build (if missing) the recipe's dataset under the project ``root`` and return it with its hash;
    with a ``card``, the hash must be the card's (the same data the shipped model trained on), else
    :class:`~trmlab.zoo.store.ZooError`."""
    folder = ensure_dataset(resolve(data_folder(recipe), root), progress=progress, echo=echo)
    h = dataset_hash(folder)
    if card is not None and card["data"]["hash"] != h:
        raise store.ZooError(
            f"{folder}: dataset hash {h[:16]}... differs from the card's {card['data']['hash'][:16]}... "
            f"({card['name']}'s card.json, data.hash): this is not the data the zoo model trained on. "
            f"Remove the folder so it is rebuilt with `{card['data']['command']}`")
    return folder, h
