"""The model zoo: trained models shipped with trmlab, found by name and loaded without pickle.

A zoo model is a folder ``zoo/<name>/`` in the repository (another root with ``TRMLAB_ZOO=DIR``). It is
a run folder cut down to what a reader needs, so every tool that reads a run folder reads it too:

* ``weights.safetensors``  the model's weights (the EMA weights of the chosen checkpoint), safetensors
                           format: plain tensors, nothing executed on load;
* ``card.json``            the model card: preset and full config, dataset build command, seed and hash,
                           training command, steps, wall time and machine, and the held-out accuracy by
                           supervision step with 95% Wilson intervals (:data:`CARD_KEYS`);
* ``card.md``              the same card as a page to read;
* ``config.json``          the training run's config (equal to ``card.json``'s ``config``);
* ``metrics.jsonl``        the training run's curves, as the trainer wrote them;
* ``eval_*.json``          the card's evaluations, as ``trmlab eval`` writes them;
* ``check.safetensors``    a small fixed set of held-out puzzles (the first of the test split) and the
                           card's accuracy on them, so a test can check the weights without building data.

Anything that takes a run folder takes a zoo name: ``load_run("sudoku9")``, ``trmlab eval sudoku9``,
the notebooks' ``run`` parameter (:func:`trmlab.runs.resolve_run` decides, once, what a reference
means: an existing path always wins over a zoo name; ``zoo:NAME`` names the zoo model even where a
folder of that name exists). This module is the store: finding a model by name, reading its card, its
weights and its check set. How models are made is :mod:`trmlab.zoo.recipes` (and ``zoo train``,
:mod:`trmlab.zoo.training`); writing one into the zoo is :mod:`trmlab.zoo.export`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import torch

from ..config import ConfigError, RunConfig
from ..paths import display_path
from ..train import checkpoint as ckpt

ZOO_ENV = "TRMLAB_ZOO"
CARD_FORMAT = "trmlab-zoo-card-1"
WEIGHTS = "weights.safetensors"
CHECK = "check.safetensors"
PREFIX = "zoo:"

#: card key -> (type, what it holds). Validated on every read.
CARD_KEYS: dict[str, tuple[type, str]] = {
    "format": (str, f"the card format, {CARD_FORMAT!r}"),
    "name": (str, "the model's zoo name (its folder name)"),
    "task": (str, "the task it solves, as notebooks name it: sudoku4, sudoku6, sudoku9, maze10, ..."),
    "title": (str, "one line saying what the model is"),
    "parameters": (int, "trainable parameters"),
    "config": (dict, "the full run config (RunConfig as JSON), preset and overrides applied"),
    "data": (dict, "the dataset: path, builder, args, command, hash (dataset_hash) and what it holds"),
    "training": (dict, "how it was trained: command, steps, wall_minutes, threads, machine, torch"),
    "recipe": (dict, "the recipe `trmlab zoo train NAME` follows (trmlab.zoo.recipes.Recipe), steps as trained"),
    "weights": (dict, "weights file, its sha256, which checkpoint and step, EMA or not"),
    "evaluation": (dict, "held-out accuracy: split, puzzles, by_step [{n_supervision, exact_accuracy, "
                         "interval}], headline, learned halting"),
    "check": (dict, "the fixed check set: file, puzzles, n_supervision, exact_accuracy, interval"),
}


class ZooError(ValueError):
    """A zoo name is unknown, or a zoo model's files are missing or malformed (the message says which)."""


def zoo_dir() -> Path:
    """The zoo's root: ``$TRMLAB_ZOO`` when set, else ``zoo/`` beside the ``trmlab`` package."""
    env = os.environ.get(ZOO_ENV)
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "zoo"


def names() -> list[str]:
    """The zoo models' names (folders with a ``card.json``), sorted."""
    root = zoo_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "card.json").is_file())


def folder(name: str) -> Path:
    """The folder of zoo model ``name`` (``zoo:`` prefix allowed); :class:`ZooError` if unknown."""
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    p = zoo_dir() / bare
    if not bare or "/" in bare or not (p / "card.json").is_file():
        known = names()
        raise ZooError(f"no zoo model {bare!r} in {zoo_dir()}; the zoo has: {', '.join(known) or 'nothing'}")
    return p


def is_zoo_folder(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / "card.json").is_file() and (p / WEIGHTS).is_file()


def for_task(task: str) -> str:
    """The zoo model of a task (``sudoku9`` -> its name); :class:`ZooError` listing the tasks if none."""
    found = [n for n in names() if read_card(folder(n))["task"] == task]
    if not found:
        tasks = sorted({read_card(folder(n))["task"] for n in names()})
        raise ZooError(f"no zoo model for task {task!r}; the zoo's tasks: {', '.join(tasks) or 'none'}")
    return found[0]


def read_card(path: str | os.PathLike) -> dict:
    """``card.json`` of a zoo folder (or the file itself), every key of :data:`CARD_KEYS` checked."""
    p = Path(path)
    file = p if p.suffix == ".json" else p / "card.json"
    try:
        card = json.loads(file.read_text())
    except FileNotFoundError:
        raise ZooError(f"{file}: no model card") from None
    except json.JSONDecodeError as e:
        raise ZooError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(card, dict):
        raise ZooError(f"{file}: expected a JSON object with keys {', '.join(CARD_KEYS)}")
    for key, (typ, what) in CARD_KEYS.items():
        if key not in card:
            raise ZooError(f"{file}: missing key {key!r} ({what})")
        if not isinstance(card[key], typ) or (typ is int and isinstance(card[key], bool)):
            raise ZooError(f"{file}: {key!r} must be a {typ.__name__} ({what}), got {type(card[key]).__name__}")
    if card["format"] != CARD_FORMAT:
        raise ZooError(f"{file}: format {card['format']!r}; this trmlab reads {CARD_FORMAT!r}")
    if card["name"] != file.parent.name:
        raise ZooError(f"{file}: name {card['name']!r} differs from its folder {file.parent.name!r}")
    try:
        RunConfig.from_dict(card["config"])
    except (ConfigError, TypeError) as e:
        raise ZooError(f"{file}: 'config': {e}") from None
    for section, keys in (("evaluation", ("split", "puzzles", "by_step", "headline")),
                          ("check", ("puzzles", "n_supervision", "exact_accuracy", "interval")),
                          ("data", ("path", "builder", "args", "command", "hash")),
                          ("training", ("command", "steps", "wall_minutes", "threads", "machine")),
                          ("weights", ("file", "sha256", "step"))):
        for k in keys:
            if k not in card[section]:
                raise ZooError(f"{file}: '{section}' lacks {k!r}")
    for i, row in enumerate(card["evaluation"]["by_step"]):
        if not {"n_supervision", "exact_accuracy", "interval"} <= set(row):
            raise ZooError(f"{file}: evaluation.by_step[{i}] needs n_supervision, exact_accuracy and interval")
    return card


def _load_safetensors(file: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not file.is_file():
        raise ZooError(f"{file}: missing")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError) as e:
        raise ZooError(f"{file}: not a readable safetensors file ({e})") from None


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The model weights of a zoo folder (``weights.safetensors``), as a state dict."""
    return _load_safetensors(Path(path) / WEIGHTS)


def load_check_set(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The card's fixed held-out check puzzles: ``inputs``, ``labels``, ``puzzle_identifiers``."""
    tensors = _load_safetensors(Path(path) / CHECK)
    missing = {"inputs", "labels", "puzzle_identifiers"} - set(tensors)
    if missing:
        raise ZooError(f"{Path(path) / CHECK}: lacks {', '.join(sorted(missing))}")
    return tensors


def choose(path: str | os.PathLike) -> tuple[ckpt.CheckpointChoice, dict]:
    """A zoo folder as :func:`trmlab.train.checkpoint.choose_checkpoint` gives a run's checkpoint:
    the choice (weights file, training step, how it was chosen) and a state with ``config``, ``model``."""
    p = Path(path)
    card = read_card(p)
    w = card["weights"]
    how = (f"zoo model {card['name']}: {w.get('checkpoint', 'last')} checkpoint of its training run"
           f"{', EMA weights' if w.get('ema') else ''} (card: {display_path(p / 'card.md')})")
    state = {"config": card["config"], "model": load_weights(p), "ema": None, "step": w["step"]}
    return ckpt.CheckpointChoice(p / WEIGHTS, int(w["step"]), how), state


def list_models() -> list[dict]:
    """``trmlab zoo list``: one row per zoo model."""
    rows = []
    for n in names():
        c = read_card(folder(n))
        h = c["evaluation"]["headline"]
        rows.append({"name": n, "task": c["task"], "parameters": c["parameters"],
                     "accuracy": h["exact_accuracy"], "interval": h["interval"], "steps": h["n_supervision"],
                     "puzzles": c["evaluation"]["puzzles"], "title": c["title"]})
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows of :func:`list_models` as the table ``trmlab zoo list`` prints."""
    if not rows:
        return f"the zoo ({zoo_dir()}) is empty"
    lines = [f"{'name':<10} {'task':<10} {'parameters':>10}  {'exact accuracy (95% interval)':<32} title"]
    for r in rows:
        acc = f"{r['accuracy']:.1%} [{r['interval'][0]:.1%}, {r['interval'][1]:.1%}] N={r['steps']}"
        lines.append(f"{r['name']:<10} {r['task']:<10} {r['parameters']:>10,}  {acc:<32} {r['title']}")
    return "\n".join(lines)
