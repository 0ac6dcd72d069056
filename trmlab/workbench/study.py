"""The paper's ablation study (Table 1, Sudoku-Extreme) as data: arms that are switches of the same code,
seeds per arm, the paper's figure per arm; turned into sweep cells and read back from the run folders.

>>> st = get_study("ablation", task="sudoku6", preset="cpu_sudoku6", steps=1500)
>>> [a.name for a in st.arms]                 # trm, one_step, no_ema, separate, ..., hrm, direct
>>> cells = study_cells(st, "runs/study-sudoku6")  # one cell per (arm, seed): what `trmlab sweep --study` runs
>>> data = read_study("runs/study-sudoku6")   # per run: arm, seed, selected test accuracy, wall time, FLOPs

Every arm trains the same preset for the same number of optimiser steps (``steps``), first with the
study's ``base`` overrides (TRM-MLP with the paper's T = 3, n = 6 by default, at the preset's width and 2
layers), then with the arm's switches. An arm may halve a base value (``halve``: "4 layers with n halved").
Each cell is run by ``notebooks/02-train`` with ``final_eval_steps`` (default twice the run's evaluation
steps), so each run folder ends with the test accuracy of the checkpoint chosen on the validation split at
every supervision step up to that many, with the halting table and the wrong puzzles
(:func:`trmlab.runs.evaluate_selected`). The sweep folder gets ``study.json`` (the study as run).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from ..config import DIRECT_SWITCHES, HRM_SWITCHES, ConfigError, RunConfig, get_preset, resolve_key
from ..io import write_json_atomic
from ..model.flops import train_flops
from ..paths import display_path, resolve
from ..train.logging import read_metrics
from .results import RunFolderError, read_json_object, read_notebooks, read_run


class StudyError(ValueError):
    """A bad study definition or study folder; the message names the arm, parameter or file."""


@dataclass(frozen=True)
class Arm:
    """One arm: a switch of the base configuration."""

    name: str  # folder-safe, e.g. "one_step"
    label: str  # as the paper's Table 1 row says it
    switches: dict  # config key -> value, applied after the study's base
    paper: Optional[float]  # the paper's Sudoku-Extreme exact accuracy for this arm (%), None if none
    paper_source: str  # where the paper's figure is
    seeds: int  # how many seeds (0, 1, ..., seeds-1)
    halve: tuple = ()  # config keys whose base value is halved (rounded down, at least 1)


#: the study's reference arm: every other arm is compared with it
BASELINE = "trm"

#: TRM-MLP with the paper's recursion (T = 3, n = 6) at the preset's width; the presets' own T = 2, n = 2
#: would make the "T = 2, n = 2" arm the baseline itself
ABLATION_BASE = {"model.mlp_t": True, "model.pos_encodings": "none", "model.n_recursions": 3,
                 "model.n_latent_steps": 6, "model.n_layers": 2}

_ATTENTION = {"model.mlp_t": False, "model.pos_encodings": "rope"}

ABLATION_ARMS: tuple[Arm, ...] = (
    Arm("trm", "TRM (T=3, n=6, MLP)", {}, 87.4, "Table 1", 3),
    Arm("one_step", "w/ 1-step gradient", {"model.gradient": "one_step"}, 56.5, "Table 1", 3),
    Arm("no_ema", "no EMA", {"train.ema": False}, 79.9, "Table 1", 2),
    Arm("separate", "w/ separate f_H, f_L", {"model.separate_networks": True}, 82.4, "Table 1", 2),
    Arm("four_layers", "w/ 4 layers, n halved", {"model.n_layers": 4}, 79.5, "Table 1 (4 layers, n=3)", 2,
        halve=("model.n_latent_steps",)),
    Arm("single_z", "single z", {"model.latent_mode": "single_z"}, 71.9,
        "Table 2 (decimal unreadable in the copy the reference notes used; the issue's 71.9)", 2),
    Arm("t2n2", "w/ T=2, n=2", {"model.n_recursions": 2, "model.n_latent_steps": 2}, 73.7, "Table 1", 2),
    Arm("attention", "w/ self-attention", dict(_ATTENTION), 74.7, "Table 1", 2),
    Arm("act_continue", "w/ ACT (continue loss)", {"model.act_continue": True}, 86.1, "Table 1", 2),
    Arm("hrm", "HRM", {**{f"model.{k}": v for k, v in HRM_SWITCHES.items()}, **_ATTENTION}, 55.0, "Table 1", 3),
    Arm("direct", "direct prediction",
        {**{f"model.{k}": v for k, v in DIRECT_SWITCHES.items() if k in ("arch", "n_layers", "act_continue")},
         **_ATTENTION}, 0.0, "Table 4 (from the HRM paper)", 3),
)

#: the comparisons the conclusion names first (baseline vs arm), with what they test
KEY_COMPARISONS = (("hrm", "TRM vs HRM"), ("direct", "TRM vs direct prediction"),
                   ("one_step", "full vs 1-step gradient"), ("no_ema", "EMA vs none"),
                   ("attention", "MLP vs self-attention"))


#: The study's default budget, chosen by measurement (docs/study.md, "Which task and how many steps"): the
#: TRM arm on ``sudoku4`` / ``cpu_sudoku4`` is at 0% exact on validation after 125 steps and at 84-92% after
#: 200 (seeds 0 and 1), 98% after 250: 200 steps puts the baseline inside the 60-90% band.
DEFAULT_STEPS, DEFAULT_EVAL_EVERY = 200, 25


@dataclass
class Study:
    """A study as run: the arms and the shared training parameters of 02-train."""

    name: str
    arms: list
    task: str = "sudoku4"
    preset: str = "cpu_sudoku4"
    steps: int = DEFAULT_STEPS
    eval_every: int = DEFAULT_EVAL_EVERY
    final_eval_steps: int = 0  # 0: twice the runs' evaluation steps
    base: dict = field(default_factory=dict)
    notebook_params: dict = field(default_factory=dict)  # more 02-train parameters for every cell

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise StudyError(f"study {self.name}: no arm '{name}' (arms: {', '.join(a.name for a in self.arms)})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["arms"] = [asdict(a) for a in self.arms]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "study") -> "Study":
        known = {f for f in cls.__dataclass_fields__}
        bad = set(d) - known
        if bad:
            raise StudyError(f"{where}: unknown key(s) {', '.join(sorted(bad))}; valid: {', '.join(sorted(known))}")
        arm_keys = set(Arm.__dataclass_fields__)
        arms = []
        for i, a in enumerate(d.get("arms") or []):
            if not isinstance(a, dict) or set(a) - arm_keys or not {"name", "switches", "seeds"} <= set(a):
                raise StudyError(f"{where}: arms[{i}] must be an object with name, switches, seeds (and label, paper, "
                                 f"paper_source, halve); got {a!r}")
            arms.append(Arm(**{"label": a["name"], "paper": None, "paper_source": "", **a,
                               "halve": tuple(a.get("halve") or ())}))
        return cls(**{**d, "arms": arms})


#: name -> the study's arms (parameters come from get_study's arguments)
STUDIES = {"ablation": ABLATION_ARMS}

#: 02-train parameters a study sets itself (the rest may be given with -p)
STUDY_PARAMS = ("task", "preset", "steps", "eval_every", "final_eval_steps")


def get_study(name: str, task: str = "sudoku4", preset: str = "cpu_sudoku4", steps: int = DEFAULT_STEPS,
              eval_every: int = DEFAULT_EVAL_EVERY, final_eval_steps: int = 0, base: Optional[Mapping] = None,
              notebook_params: Optional[Mapping] = None, arms: Optional[list[str]] = None,
              seeds: Optional[int] = None) -> Study:
    """The study ``name`` (:data:`STUDIES`) at a task, preset and step budget. ``base``: config overrides
    added to the study's base (:data:`ABLATION_BASE`); ``arms``: only these arms (the baseline always
    first); ``seeds``: the same number of seeds for every arm (a miniature study)."""
    if name not in STUDIES:
        raise StudyError(f"unknown study '{name}'; studies: {', '.join(STUDIES)}")
    chosen = list(STUDIES[name])
    if arms:
        names = [a.name for a in chosen]
        for a in arms:
            if a not in names:
                raise StudyError(f"study {name}: no arm '{a}' (arms: {', '.join(names)})")
        chosen = [a for a in chosen if a.name == BASELINE or a.name in arms]
    if seeds is not None:
        if seeds < 1:
            raise StudyError(f"seeds must be >= 1, got {seeds}")
        chosen = [Arm(**{**asdict(a), "seeds": seeds, "halve": a.halve}) for a in chosen]
    if steps < 1:
        raise StudyError(f"steps must be >= 1 (every arm gets the same optimiser steps), got {steps}")
    st = Study(name=name, arms=chosen, task=task, preset=preset, steps=int(steps), eval_every=int(eval_every),
               final_eval_steps=int(final_eval_steps), base={**ABLATION_BASE, **dict(base or {})},
               notebook_params=dict(notebook_params or {}))
    arm_configs(st)  # every arm must make a valid configuration that differs from the baseline
    return st


def _value(cfg: RunConfig, key: str):
    section, name, _ = resolve_key(key)
    return getattr(getattr(cfg, section) if section else cfg, name)


def arm_overrides(study: Study, arm: Arm) -> dict:
    """The config overrides of one arm: the study's base, then the arm's switches and halved values."""
    base_cfg = get_preset(study.preset, study.base)
    out = {**study.base, **arm.switches}
    for key in arm.halve:
        out[key] = max(1, int(_value(base_cfg, key)) // 2)
    return out


def arm_configs(study: Study) -> dict[str, RunConfig]:
    """arm name -> its configuration (checked: valid, and different from the baseline's)."""
    out = {}
    for arm in study.arms:
        try:
            out[arm.name] = get_preset(study.preset, arm_overrides(study, arm))
        except ConfigError as e:
            raise StudyError(f"study {study.name}, arm '{arm.name}': {e}") from None
    names = [a.name for a in study.arms]
    if BASELINE not in names:
        raise StudyError(f"study {study.name}: needs the baseline arm '{BASELINE}'")
    base = out[BASELINE].to_dict()
    for name, cfg in out.items():
        if name != BASELINE and cfg.to_dict() == base:
            raise StudyError(f"study {study.name}, arm '{name}': the same configuration as '{BASELINE}' with this "
                             f"base ({study.base}); change the base so the arm switches something")
    return out


def cell_name(arm: str, seed: int) -> str:
    return f"arm={arm}_seed={seed}"


def study_cells(study: Study, out: str | os.PathLike, params: Optional[Mapping] = None) -> list[dict]:
    """One cell per (arm, seed), arms in order: ``{"name", "arm", "seed", "params", "run_dir"}`` where
    ``params`` are 02-train's (the arm's config overrides, the W&B group and the arm in ``overrides``).
    ``params``: more 02-train parameters for every cell (not the study's own: task, preset, steps...)."""
    params = {**study.notebook_params, **dict(params or {})}
    clash = [k for k in params if k in STUDY_PARAMS or k in ("seed", "overrides", "run")]
    if clash:
        raise StudyError(f"study {study.name}: {', '.join(clash)} is set by the study (give it as a study parameter, "
                         f"e.g. --study-param steps=2000), not with -p")
    out_dir = resolve(out)
    group = out_dir.name
    cells = []
    for arm in study.arms:
        overrides = {**arm_overrides(study, arm), "arm": arm.name, "train.wandb_group": group}
        for seed in range(arm.seeds):
            p = {"task": study.task, "preset": study.preset, "steps": study.steps, "eval_every": study.eval_every,
                 "final_eval_steps": study.final_eval_steps or 0, "seed": seed, "if_exists": "resume",
                 **params, "overrides": overrides}
            name = cell_name(arm.name, seed)
            cells.append({"name": name, "arm": arm.name, "seed": seed, "params": p, "run_dir": out_dir / name})
    return cells


def finalise_eval_steps(study: Study) -> Study:
    """``final_eval_steps`` 0 -> twice the baseline's evaluation steps (the same for every arm)."""
    if study.final_eval_steps:
        return study
    cfg = arm_configs(study)[BASELINE]
    n = int(cfg.train.eval_supervision or cfg.model.n_supervision)
    study.final_eval_steps = 2 * n
    return study


def write_study(study: Study, out: str | os.PathLike) -> Path:
    """``<out>/study.json``: the study as run (arms, switches, paper figures, parameters)."""
    return write_json_atomic(resolve(out) / "study.json", study.to_dict(), indent=2, sort_keys=True)


def read_study_file(out: str | os.PathLike) -> Study:
    path = resolve(out) / "study.json"
    if not path.is_file():
        raise StudyError(f"{path}: missing (not a study folder: run `trmlab sweep 02-train --study NAME --out "
                         f"{display_path(resolve(out))}` first)")
    return Study.from_dict(read_json_object(path, "a JSON object", StudyError), where=str(path))


def is_study_folder(path: str | os.PathLike) -> bool:
    return (resolve(path) / "study.json").is_file()


# -- reading the runs back ---------------------------------------------------------------------------

@dataclass
class StudyRun:
    """One finished run of the study, with the numbers the report shows and where each comes from."""

    arm: str
    seed: int
    run_dir: Path
    accuracy: float  # test exact accuracy of the checkpoint chosen on validation, at the run's steps
    right: int
    puzzles: int
    source: str  # the file the accuracy comes from
    checkpoint_step: Optional[int]
    train_steps: int  # supervision steps of the accuracy
    by_step: list  # test exact accuracy after 1..K supervision steps (K >= train_steps)
    halt_table: list  # [(k, puzzles halted at k, right among them)]
    wrong: list  # test indices wrong at train_steps
    curve: list  # [(optimiser step, test exact accuracy)] of the evaluations during training
    wall_seconds: Optional[float]
    train_flops: float  # training FLOPs of the run: per sample-step x batch x optimiser steps
    steps: int
    n_params: Optional[int]


@dataclass
class StudyData:
    study: Study
    folder: Path
    runs: list  # StudyRun
    missing: list  # cell names without a finished run

    def by_arm(self) -> dict[str, list]:
        out: dict[str, list] = {a.name: [] for a in self.study.arms}
        for r in self.runs:
            out.setdefault(r.arm, []).append(r)
        return out


def _deep_eval(run_dir: Path) -> tuple[str, dict]:
    """The newest ``eval_best_N*_max.json`` / ``eval_last_N*_max.json`` with a halting table."""
    found = []
    for f in sorted(run_dir.glob("eval_*_N*_max.json")):
        try:
            d = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise StudyError(f"{f}: not valid JSON ({e})") from None
        if isinstance(d, dict) and "train_steps" in d and "wrong_indices" in d:
            found.append((f.name.startswith("eval_best_"), int(d.get("n_supervision", 0)), f.name, d))
    if not found:
        return "", {}
    found.sort(key=lambda t: (t[0], t[1]))
    return found[-1][2], found[-1][3]


def read_study_run(arm: str, seed: int, run_dir: Path) -> StudyRun:
    """The numbers of one finished study run (RunFolderError / StudyError naming the file when missing)."""
    s = read_run(run_dir)
    name, ev = _deep_eval(run_dir)
    if not ev:
        raise StudyError(f"{run_dir}: no eval_best_N*_max.json with a halting table (02-train with "
                         f"final_eval_steps writes it; run the cell again)")
    N, K = int(ev["train_steps"]), int(ev["n_supervision"])
    right, puzzles = int(ev.get(f"step{N}/exact", 0)), int(ev.get(f"step{N}/count", 0))
    curve = [(int(r["step"]), float(r["all/exact_accuracy"])) for r in s.evals if r.get("all/exact_accuracy") is not None]
    cfg = s.config
    try:
        model_cfg = RunConfig.from_dict(cfg).model
        per_sample = float(train_flops(model_cfg))
    except (ConfigError, TypeError) as e:
        raise StudyError(f"{run_dir / 'config.json'}: {e}") from None
    batch = int(cfg.get("train", {}).get("global_batch_size", 0))
    info = next((r for r in read_metrics(run_dir, "info")), {})
    return StudyRun(
        arm=arm, seed=seed, run_dir=run_dir, accuracy=float(ev[f"step{N}/exact_accuracy"]), right=right,
        puzzles=puzzles, source=display_path(run_dir / name), checkpoint_step=ev.get("checkpoint_step"),
        train_steps=N, by_step=[float(ev[f"step{k}/exact_accuracy"]) for k in range(1, K + 1)],
        halt_table=[(k, int(ev.get(f"halt_table/{k}/n", 0)), int(ev.get(f"halt_table/{k}/correct", 0)))
                    for k in range(1, K + 1)],
        wrong=[int(i) for i in ev.get("wrong_indices", [])], curve=curve, wall_seconds=s.wall_seconds,
        train_flops=per_sample * batch * s.steps, steps=s.steps, n_params=info.get("num_params", s.n_params))


def read_study(out: str | os.PathLike) -> StudyData:
    """Every finished run of the study folder ``out`` (cells whose 02-train notebook completed)."""
    folder = resolve(out)
    study = read_study_file(folder)
    runs, missing = [], []
    for arm in study.arms:
        for seed in range(arm.seeds):
            d = folder / cell_name(arm.name, seed)
            nb = read_notebooks(d).get("02-train") if d.is_dir() else None
            if nb is None or nb.status != "ok":
                missing.append(d.name)
                continue
            try:
                runs.append(read_study_run(arm.name, seed, d))
            except (RunFolderError, StudyError):
                missing.append(d.name)
    return StudyData(study=study, folder=folder, runs=runs, missing=missing)


__all__ = ["Arm", "Study", "StudyError", "StudyRun", "StudyData", "ABLATION_ARMS", "ABLATION_BASE", "BASELINE",
           "KEY_COMPARISONS", "STUDIES", "get_study", "arm_overrides", "arm_configs", "study_cells", "write_study",
           "read_study_file", "read_study", "read_study_run", "is_study_folder", "finalise_eval_steps", "cell_name"]
