"""Writing a trained run into the zoo as ``zoo/<name>/``: evaluated, with its weights, card, curves and
check set (``trmlab zoo export RUN NAME``, for maintainers).

>>> export("runs/zoo-sudoku4", "sudoku4")       # evaluate, write zoo/sudoku4/ (weights, card, curves)
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..data.catalog import DATASETS, build_command
from ..data.format import dataset_hash, open_split
from ..eval.batch_size import test_loader
from ..eval.evaluate import evaluate, save_evaluation
from ..io import atomic_write, current_umask, write_json_atomic
from ..machine import cpu_info
from ..paths import resolve
from ..train.checkpoint import load_model
from . import store
from .recipes import RECIPES, Recipe, data_folder, recipe_of, train_command


def _first_test_puzzles(data: Path, k: int) -> dict[str, torch.Tensor]:
    first = open_split(data, "test", mmap=False).first
    k = min(k, first.num_examples)
    inputs = np.asarray(first.inputs[:k])
    labels = np.asarray(first.labels[:k])
    ids = np.asarray(first.puzzle_identifiers[first.example_puzzle(np.arange(k))])
    return {"inputs": torch.from_numpy(inputs.astype(np.int32)), "labels": torch.from_numpy(labels.astype(np.int64)),
            "puzzle_identifiers": torch.from_numpy(ids.astype(np.int32))}


def check_accuracy(model, check: dict[str, torch.Tensor], n_supervision: int) -> dict:
    """Exact accuracy (and 95% Wilson interval) of ``model`` on a zoo check set at ``n_supervision`` steps."""
    labels = check["labels"].clone()
    labels[labels == 0] = -100  # the pad/ignore label of every family
    batch = {"inputs": check["inputs"], "labels": labels, "puzzle_identifiers": check["puzzle_identifiers"]}
    m = evaluate(model, [batch], n_supervision)
    return {"exact_accuracy": m["all/exact_accuracy"],
            "interval": [m["all/exact_accuracy_low"], m["all/exact_accuracy_high"]], "puzzles": int(m["all/count"])}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, metadata=metadata)
    atomic_write(path, lambda f: f.write(data))


def export(run: str | os.PathLike, name: str, recipe: Optional[Recipe] = None, wall_minutes: Optional[float] = None,
           zoo_root: Optional[str | os.PathLike] = None, root: Optional[str | os.PathLike] = None,
           notes: str = "", progress: bool = True, echo: Callable = print) -> Path:
    """Evaluate the last checkpoint of ``run`` and write it as zoo model ``name`` (``zoo/<name>/``):
    weights, card (JSON and Markdown), config, curves, evaluations and the check set. The folder is
    written beside the zoo and renamed into place, so a failed export leaves the old model intact.
    ``root``: the project root the run and the recipe's data folder are taken from; ``notes``: what the
    card should also say about the training (e.g. what else ran on the machine meanwhile). ``recipe``:
    default the one in :data:`RECIPES` (what the run was trained by), else the current card's."""
    recipe = recipe or RECIPES.get(name) or recipe_of(name)
    if recipe.name != name:
        raise store.ZooError(f"recipe {recipe.name!r} exported under another name {name!r}")
    run = resolve(run, root)
    model, cfg, choice = load_model(run, "last")
    data = resolve(data_folder(recipe), root)
    h = dataset_hash(data)
    root = Path(zoo_root) if zoo_root else store.zoo_dir()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's 0o700 would hide the model from other users
    try:
        N = recipe.eval_steps
        loader = test_loader(cfg, data, model=model)
        by = evaluate(model, loader, max(N, recipe.by_step), progress=progress)
        head = evaluate(model, loader, N, progress=progress)
        learned = evaluate(model, loader, N, progress=progress, halting="learned")
        for m, mode in ((head, "max"), (learned, "learned")):
            m.update(choice.as_dict())
            m["checkpoint"] = f"zoo/{name}/{store.WEIGHTS}"
            save_evaluation(tmp, m, "last", N, mode)
        by_step = [{"n_supervision": k, "exact_accuracy": by[f"step{k}/exact_accuracy"],
                    "interval": [by[f"step{k}/exact_accuracy_low"], by[f"step{k}/exact_accuracy_high"]],
                    "token_accuracy": by[f"step{k}/token_accuracy"]} for k in range(1, max(N, recipe.by_step) + 1)]
        check = _first_test_puzzles(data, recipe.check_puzzles)
        _save_safetensors(tmp / store.CHECK, check, {"source": f"the first {recipe.check_puzzles} puzzles of "
                                                             f"{data_folder(recipe)}/test", "dataset_hash": h})
        chk = check_accuracy(model, check, N)
        _save_safetensors(tmp / store.WEIGHTS, model.state_dict(), {"name": name, "format": store.CARD_FORMAT})
        cfg.data = data_folder(recipe)
        cfg_dict = cfg.to_dict()
        write_json_atomic(tmp / "config.json", cfg_dict, indent=2, sort_keys=True)
        if (run / "metrics.jsonl").is_file():
            shutil.copyfile(run / "metrics.jsonl", tmp / "metrics.jsonl")
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        minutes = (wall_minutes if wall_minutes is not None
                   else _train_minutes(run / "metrics.jsonl", int(choice.step or 0)))
        card = {
            "format": store.CARD_FORMAT, "name": name, "task": recipe.task, "title": recipe.title,
            "parameters": int(n_params), "config": cfg_dict,
            "data": {"path": data_folder(recipe), "builder": DATASETS[recipe.data][0],
                     "args": DATASETS[recipe.data][1], "command": build_command(recipe.data),
                     "seed": DATASETS[recipe.data][1].get("seed", 0), "hash": h,
                     "build": _build_summary(data)},
            "training": {"command": f"trmlab zoo train {name}",
                         "equivalent": train_command(dataclasses.replace(recipe, steps=choice.step or 0),
                                                     f"runs/zoo-{name}"),
                         "preset": recipe.preset, "overrides": recipe.overrides, "steps": int(choice.step or 0),
                         "wall_minutes": round(minutes, 2), "threads": recipe.threads, "machine": cpu_info(),
                         "torch": torch.__version__, "date": datetime.date.today().isoformat(), "notes": notes},
            "recipe": dataclasses.replace(recipe, steps=int(choice.step or 0)).as_dict(),
            "weights": {"file": store.WEIGHTS, "sha256": _sha256(tmp / store.WEIGHTS), "checkpoint": "last",
                        "step": int(choice.step or 0), "ema": cfg.train.ema, "dtype": "float32",
                        "bytes": (tmp / store.WEIGHTS).stat().st_size},
            "evaluation": {"split": "test", "puzzles": int(head["all/count"]), "halting": "max",
                           "eval_steps": N, "by_step": by_step,
                           "headline": {"n_supervision": N, "exact_accuracy": head["all/exact_accuracy"],
                                        "interval": [head["all/exact_accuracy_low"], head["all/exact_accuracy_high"]],
                                        "token_accuracy": head["all/token_accuracy"]},
                           "learned": {"exact_accuracy": learned["halt/exact_accuracy"],
                                       "interval": [learned["halt/exact_accuracy_low"],
                                                    learned["halt/exact_accuracy_high"]],
                                       "mean_steps": learned["halt/mean_steps"],
                                       "compute_saved": learned["halt/compute_saved"]}},
            "check": {"file": store.CHECK, "puzzles": chk["puzzles"], "n_supervision": N,
                      "source": f"the first {recipe.check_puzzles} puzzles of the test split",
                      "exact_accuracy": chk["exact_accuracy"], "interval": chk["interval"]},
        }
        write_json_atomic(tmp / "card.json", card, indent=2, sort_keys=False, default=float)
        (tmp / "card.md").write_text(card_markdown(card))
        dest = root / name
        old = None
        if dest.exists():
            old = root / f".{name}.old"
            if old.exists():
                shutil.rmtree(old)
            dest.rename(old)
        tmp.rename(dest)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    store.read_card(dest)
    echo(f"wrote {dest}: {card['evaluation']['headline']['exact_accuracy']:.1%} exact at {N} steps on "
         f"{card['evaluation']['puzzles']} held-out puzzles")
    return dest


def _build_summary(data: Path) -> dict:
    info = json.loads((data / "build.json").read_text()) if (data / "build.json").is_file() else {}
    return {k: info[k] for k in ("source", "counts") if k in info}


def _train_minutes(metrics: Path, upto_step: int = 0) -> float:
    """Training wall time from metrics.jsonl up to the record of step ``upto_step`` (0: all): the sum of
    the gaps between consecutive records (pauses between a stop and a resume longer than 10 minutes are
    left out), evaluations included."""
    if not metrics.is_file():
        return 0.0
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    times = [r["time"] for r in records if not upto_step or r.get("step", 0) <= upto_step]
    gaps = [b - a for a, b in zip(times, times[1:]) if 0 <= b - a < 600]
    return sum(gaps) / 60.0


def card_markdown(card: dict) -> str:
    """The card as a Markdown page (``card.md``)."""
    e, t, d = card["evaluation"], card["training"], card["data"]
    h = e["headline"]
    lines = [
        f"# Zoo model `{card['name']}`: {card['title']}", "",
        f"- task: **{card['task']}**; {card['parameters']:,} parameters; preset `{t['preset']}`"
        + (f" with {', '.join(f'{k}={v}' for k, v in t['overrides'].items())}" if t["overrides"] else ""),
        f"- held-out accuracy: **{h['exact_accuracy']:.1%}** exact [{h['interval'][0]:.1%}, {h['interval'][1]:.1%}] "
        f"(95% Wilson) at {h['n_supervision']} supervision steps on {e['puzzles']} test puzzles; learned halting "
        f"{e['learned']['exact_accuracy']:.1%} at {e['learned']['mean_steps']:.2f} steps on average",
        f"- trained {t['steps']} steps in {t['wall_minutes']:.1f} min with {t['threads']} thread(s) on "
        f"{t['machine']['model']} ({t['machine']['cores']} cores; {', '.join(t['machine']['flags'])}), "
        f"torch {t['torch']}, {t['date']}" + (f". {t['notes']}" if t.get("notes") else ""),
        "", "## Reproduce", "", "```bash", d["command"], t["command"] + f"    # = {t['equivalent']}", "```", "",
        f"The dataset is `{d['path']}` (seed {d['seed']}), SHA-256 `{d['hash']}` over its files; "
        f"`trmlab zoo train {card['name']}` rebuilds it, checks that hash, then trains.", "",
        "## Accuracy by supervision step", "",
        "| steps | exact | 95% interval | token accuracy |", "|---:|---:|---|---:|",
    ]
    for row in e["by_step"]:
        lines.append(f"| {row['n_supervision']} | {row['exact_accuracy']:.1%} | "
                     f"[{row['interval'][0]:.1%}, {row['interval'][1]:.1%}] | {row['token_accuracy']:.1%} |")
    c = card["check"]
    lines += ["", f"Check set (`{c['file']}`, {c['source']}): {c['exact_accuracy']:.1%} exact "
                  f"[{c['interval'][0]:.1%}, {c['interval'][1]:.1%}] at {c['n_supervision']} steps; the tests "
                  f"re-evaluate it.", "",
              f"Weights: `{card['weights']['file']}` (safetensors, {card['weights']['dtype']}, "
              f"{'EMA, ' if card['weights']['ema'] else ''}step {card['weights']['step']}, sha256 "
              f"`{card['weights']['sha256'][:16]}...`). Training curves: `metrics.jsonl`; full config: `config.json`.",
              ""]
    return "\n".join(lines)
