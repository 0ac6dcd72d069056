"""What the thinking notebook (06-thinking) does before drawing: a trained model, a set of puzzles
(harder than its training set), and test-time scaling measured on them (:mod:`trmlab.eval.thinking`).

>>> st = study(task="sudoku9", data="sudoku9-givens28")   # the 9x9 zoo model on 28-given puzzles
>>> st.tables["steps"], st.tables["k"], st.tables["augment"], st.frontier, st.examples

Four runs, each kept in ``<run outputs>/thinking/<data>-<split>-<what>.npz`` (resumable: a run already
there with the same settings is read back, not run again):

* ``depth``: one plain trajectory per puzzle for ``max_steps`` supervision steps: accuracy against steps,
  with learned halting and the fixed-point rule next to fixed steps;
* ``sigma``: on ``sigma_split`` (never the test split), K = ``sigma_k`` noisy trajectories at each noise
  scale of ``sigmas``; the best scale (by the halting head's choice) is used for the parallel run;
* ``parallel``: K = max(``k_values``) trajectories at that scale;
* ``augment``: max(``augment_values``) transforms of each puzzle (mazes: at most 8).

The parallel and augmentation runs stop each trajectory when its halting head says halt (learned
halting, as the papers on test-time compute for TRM do: the compute is really saved); their curves are
scored at ``steps`` supervision steps. A data folder that is missing and named in
:data:`trmlab.data.catalog.DATASETS` (``sudoku9-givens28``, ``sudoku9-hard``, ``maze10-long``...) is built
first: that is the one documented command for puzzles harder than the zoo's.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..data.catalog import build_command, ensure_dataset
from ..data.loader import split_arrays
from ..eval.thinking import (BASE_STEPS, SELECTORS, Trajectories, cheapest, curve, describe_setting,
                             load_trajectories, run_trajectories, save_trajectories, select)
from ..io import write_json_atomic
from ..paths import display_path, resolve
from ..runs import Run, cfg_dtype, open_run, resolve_run

#: the puzzles of the figures: one solved only by thinking longer, one only in parallel, one by nothing
EXAMPLES = ("longer", "parallel", "none")
HALTING_CURVES = ("max", "learned", "fixed_point")


@dataclass
class Study:
    """Test-time scaling of one model on one split (see the module docstring)."""

    run: Run
    data: Path
    split: str
    family: Optional[str]
    source: str  # the model, in words
    runs: dict  # "depth" | "parallel" | "augment" -> Trajectories
    sigma: float  # the noise scale chosen on the validation split
    sigma_rows: list  # the noise search, one row per scale
    steps: int  # the supervision steps the parallel and augmentation curves are scored at
    tables: dict = field(default_factory=dict)  # "steps" | "k" | "augment" -> rows (selector, value, accuracy...)
    frontier: list = field(default_factory=list)  # the cheapest setting reaching each accuracy
    examples: dict = field(default_factory=dict)  # EXAMPLES -> {"index", "inputs", "labels", "answers": {...}}
    files: dict = field(default_factory=dict)  # what was written or read: name -> path

    def headline(self) -> list[dict]:
        """The plain evaluation at 16 steps, and for each selector the best setting within 64 times its
        network calls (rule check labelled; the oracle is a ceiling)."""
        rows = []
        base = self.tables["steps"]
        plain = next((r for r in base if r["steps"] == min(BASE_STEPS, self.runs["depth"].steps)
                      and r["halting"] == "max" and r["selector"] == "halt"), None)
        if plain:
            rows.append(dict(plain, method=f"plain, {plain['steps']} steps"))
        every = [r for t in ("steps", "k", "augment") for r in self.tables[t]]
        for sel in SELECTORS:
            ok = [r for r in every if r["selector"] == sel and r["calls_ratio"] <= 64 + 1e-9]
            if ok:
                best = max(ok, key=lambda r: (r["exact_accuracy"], -r["calls_per_puzzle"]))
                rows.append(dict(best, method=describe_setting(best)))
        return rows


    def summary(self) -> dict:
        """What the report and the README quote: the model, the data, the noise search and the headline."""
        depth = self.runs["depth"]
        return {"source": self.source, "run": str(self.run.folder), "zoo": self.run.zoo_name,
                "data": display_path(self.data), "split": self.split, "puzzles": depth.n_puzzles,
                "family": self.family, "sigma": self.sigma, "sigma_search": self.sigma_rows, "steps": self.steps,
                "calls_per_step": depth.calls_per_step,
                "headline": [{k: v for k, v in r.items()} for r in self.headline()],
                "files": {k: display_path(v) for k, v in self.files.items()}}

    def save_summary(self, extra: Optional[dict] = None) -> Path:
        """``<outputs>/thinking/<data>-<split>-summary.json`` (atomic), with the entries of ``extra`` added
        (e.g. ``{"dynamics": ...}``)."""
        path = self.run.outputs / "thinking" / f"{self.data.name}-{self.split}-summary.json"
        write_json_atomic(path, {**self.summary(), **(extra or {})}, indent=1, default=float)
        self.files["summary"] = path
        return path


def _cached(path: Path, settings: dict, make, echo) -> Trajectories:
    """The run at ``path`` when it was made with ``settings``, else made (and saved) now."""
    side = path.with_suffix(".json")
    if path.is_file() and side.is_file() and json.loads(side.read_text()) == settings:
        echo(f"read {display_path(path)}")
        return load_trajectories(path)
    tr = make()
    save_trajectories(tr, path)
    write_json_atomic(side, settings, indent=1, sort_keys=True)
    echo(f"wrote {display_path(path)} ({tr.meta['wall_seconds']:.0f} s)")
    return tr


def study(run: str = "", task: str = "sudoku9", data: str = "", split: str = "test", max_puzzles: int = 200,
          max_steps: int = 64, steps: int = BASE_STEPS, k_values: Sequence[int] = (1, 2, 4, 8, 16, 32),
          augment_values: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), sigmas: Sequence[float] = (0.1, 0.3, 1.0),
          sigma_split: str = "val", sigma_k: int = 8, sigma_puzzles: int = 100, seed: int = 0, batch_size: int = 512,
          root: Optional[str | os.PathLike] = None, device: str = "auto", progress: bool = True,
          echo=print) -> Study:
    """Run (or read back) the four runs of the module docstring and score them. ``run``: a run folder or zoo
    name ("" = the zoo model of ``task``); ``data``: a dataset folder, or a name of
    :data:`trmlab.data.catalog.DATASETS` built under ``data/`` when missing ("" = the run's own dataset)."""
    if split == sigma_split:
        raise ValueError(f"the noise scale is chosen on {sigma_split!r}; score on another split (split={split!r})")
    ref = resolve_run(run, root, task=task).require()
    model, cfg, choice = open_run(ref, device=device, dtype=cfg_dtype(device))
    if data:
        folder = resolve(data if ("/" in str(data) or Path(str(data)).is_absolute()) else f"data/{data}", ref.root)
        folder = ensure_dataset(folder, progress=progress, echo=echo)
    else:
        folder = ref.dataset(progress=progress, cfg=cfg)
    x, y, pid = split_arrays(folder, split, max_puzzles)
    if x.shape[1] != cfg.model.seq_len:
        raise ValueError(f"data: {folder} holds puzzles of {x.shape[1]} cells; the model reads {cfg.model.seq_len}")
    out_dir = ref.outputs / "thinking"
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = f"{folder.name}-{split}"
    base = {"checkpoint": choice.as_dict()["checkpoint"], "data": str(folder), "split": split, "puzzles": int(len(x)),
            "seed": seed}
    family = None

    def make(name, xs, ys, ps, **kw):
        settings = {**base, **kw, "what": name, "puzzles": int(len(xs))}
        return _cached(out_dir / f"{tag}-{name}.npz", settings,
                       lambda: run_trajectories(model, xs, ys, ps, seed=seed, batch_size=batch_size,
                                                progress=progress, **kw), echo)

    runs = {"depth": make("depth", x, y, pid, steps=max_steps)}
    family = runs["depth"].family
    max_aug = max(augment_values) if family == "sudoku" else min(8, max(augment_values)) if family == "maze" else 1
    # the noise scale, on the validation split
    vx, vy, vp = split_arrays(folder, sigma_split, sigma_puzzles)
    sigma_rows = []
    for sg in sigmas:
        vtr = _cached(out_dir / f"{folder.name}-{sigma_split}-sigma{sg:g}.npz",
                      {**base, "split": sigma_split, "puzzles": int(len(vx)), "what": "sigma", "sigma": float(sg),
                       "k": sigma_k, "steps": steps},
                      lambda sg=sg: run_trajectories(model, vx, vy, vp, steps=steps, k=sigma_k, sigma=float(sg), seed=seed,
                                                     batch_size=batch_size, progress=progress, stop_when_halted=True),
                      echo)
        for sel in ("halt", "first", "vote"):
            r = select(vtr, sel, halting="learned")
            sigma_rows.append({"sigma": float(sg), "selector": sel, "exact_accuracy": r["exact_accuracy"],
                               "low": r["low"], "high": r["high"], "puzzles": r["puzzles"]})
    best = max((r for r in sigma_rows if r["selector"] == "halt"), key=lambda r: r["exact_accuracy"])
    sigma = best["sigma"]
    runs["parallel"] = make("parallel", x, y, pid, steps=steps, k=max(k_values), sigma=sigma, stop_when_halted=True)
    if max_aug > 1:
        runs["augment"] = make("augment", x, y, pid, steps=steps, augment=max_aug, stop_when_halted=True)
    source = (f"{'the zoo model ' + ref.zoo_name if ref.is_zoo else 'the run ' + display_path(ref.folder)} "
              f"({cfg.preset or cfg.name}, step {choice.step})")
    st = Study(ref, folder, split, family, source, runs, sigma, sigma_rows, steps)
    st.files = {name: out_dir / f"{tag}-{name}.npz" for name in runs}
    score(st, k_values, [a for a in augment_values if a <= max_aug])
    return st


def score(st: Study, k_values: Sequence[int], augment_values: Sequence[int]) -> Study:
    """The tables, the frontier and the examples of a study (from its runs; nothing is run)."""
    depth = st.runs["depth"]
    sels = [s for s in SELECTORS if s != "first" and (s != "rule" or depth.valid is not None)]
    steps_rows = []
    for h in HALTING_CURVES:
        steps_rows += [dict(r, halting=h) for r in curve(depth, "steps", range(1, depth.steps + 1), ("halt",),
                                                          halting=h)]
    steps_rows += curve(depth, "steps", range(1, depth.steps + 1), [s for s in sels if s in ("rule",)])
    k_rows = curve(st.runs["parallel"], "k", [k for k in k_values if k <= st.runs["parallel"].k],
                   sels + ["first"], steps=st.steps, halting="learned")
    for r in k_rows:
        r["sigma"] = st.sigma if r["k"] > 1 else 0.0
    aug_rows = (curve(st.runs["augment"], "augment", augment_values, sels + ["first"], steps=st.steps, halting="learned")
                if "augment" in st.runs else [])
    st.tables = {"steps": steps_rows, "k": k_rows, "augment": aug_rows}
    st.frontier = cheapest([r for t in st.tables.values() for r in t if not r["uses_labels"]])
    st.examples = _examples(st)
    return st


def _examples(st: Study) -> dict:
    """One puzzle solved only by thinking longer (right at the last step of the plain trajectory, wrong at
    16), one solved only in parallel (wrong by the plain trajectory at every depth, right by the halting
    head's choice among the parallel or transformed trajectories), one that no method solves."""
    depth = st.runs["depth"]
    base = min(BASE_STEPS, depth.steps)
    plain16 = select(depth, "halt", steps=base)["correct"]
    deep = select(depth, "halt")["correct"]
    ever = depth.correct[:, :, 0].any(0)
    wide = {name: select(st.runs[name], "halt", steps=st.steps, halting="learned") for name in ("parallel", "augment")
            if name in st.runs}
    wide_ok = np.zeros_like(deep)
    for r in wide.values():
        wide_ok |= r["correct"]
    oracle = ever.copy()
    for name in wide:
        oracle |= select(st.runs[name], "oracle", steps=st.steps, halting="learned")["correct"]
    picks = {"longer": np.nonzero(deep & ~plain16)[0], "parallel": np.nonzero(wide_ok & ~ever)[0],
             "none": np.nonzero(~oracle)[0]}
    out = {}
    for what, idx in picks.items():
        if not len(idx):
            continue
        b = int(idx[0])
        answers = {f"{depth.steps} steps": depth.last_answers[b, 0]}
        for name, r in wide.items():  # the halting head's choice among the candidates
            c = int(r["chosen"][b])
            answers[{"parallel": "K trajectories", "augment": "transforms"}[name]] = st.runs[name].last_answers[b, c]
        out[what] = {"index": b, "inputs": depth.inputs[b], "labels": depth.labels[b],
                     "answers": {k: v for k, v in answers.items() if v is not None}}
    return out


def command_for(data: str) -> str:
    """The documented command that builds a named data folder (``trmlab data ...``)."""
    return build_command(Path(data).name)
