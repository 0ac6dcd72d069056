"""The ``trmlab`` command line: a thin layer of argparse over the package's functions.

Every subcommand has ``--help``; bad input exits non-zero with a one-line reason (no traceback);
each command prints where it wrote its results. See docs/cli.md.
"""
from __future__ import annotations

import argparse
import json
import sys


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _presets(args) -> int:
    from .config import PRESETS, get_preset

    print(f"{'name':30s} {'task data':34s} {'hidden':>6s} {'T':>2s} {'n':>2s} {'N_sup':>5s}  description")
    for name, (desc, _) in PRESETS.items():
        c = get_preset(name)
        m = c.model
        print(f"{name:30s} {c.data:34s} {m.hidden_size:6d} {m.n_recursions:2d} {m.n_latent_steps:2d} "
              f"{m.n_supervision:5d}  {desc}")
    return 0


def _model(args) -> int:
    from .config import get_preset
    from .model import build_model, count_parameters

    cfg = get_preset(args.preset, args.overrides)
    m = cfg.model
    if args.data:
        from .data.format import read_metadata

        meta = read_metadata(args.data, "train")
        m.vocab_size, m.seq_len, m.num_puzzle_identifiers = meta.vocab_size, meta.seq_len, meta.num_puzzle_identifiers
    model = build_model(m)
    print(model if args.verbose else _summary(model))
    print(f"vocab_size: {m.vocab_size}  seq_len: {m.seq_len}  puzzle positions: {m.puzzle_positions}")
    print(f"params: {count_parameters(model)}")
    return 0


def _summary(model) -> str:
    from .model import count_parameters

    core = model.core
    lines = [f"{type(core).__name__}  (deep supervision wrapper: {type(model).__name__})"]
    for name, child in core.named_children():
        n = count_parameters(child)
        if n or name in ("embed",):
            lines.append(f"  {name:12s} {type(child).__name__:18s} {n:>12,d} params")
    c = core.cfg
    lines.append(f"  recursion: T={c.n_recursions} (H_cycles) x [n={c.n_latent_steps} latent updates (L_cycles) + 1 "
                 f"answer update], N_sup={c.n_supervision} (halt_max_steps); "
                 f"mixer={'mlp_t' if c.mlp_t else 'attention'}, gradient={c.gradient}, latent={c.latent_mode}, "
                 f"separate_networks={c.separate_networks}")
    return "\n".join(lines)


def _train(args) -> int:
    from .config import get_preset
    from .train.trainer import resume, train

    if args.resume:
        run = args.resume if isinstance(args.resume, str) else args.out
        if not run:
            raise CliError("--resume needs the run folder (trmlab train --resume RUN_DIR)")
        metrics = resume(run, args.overrides or None)
        out = run
    else:
        if not args.preset:
            raise CliError("give --preset NAME (see `trmlab presets`) or --resume RUN_DIR")
        if not args.out:
            raise CliError("give --out RUN_DIR for the run folder")
        overrides = list(args.overrides)
        if args.data:
            overrides.append(f"data={args.data}")
        cfg = get_preset(args.preset, overrides)
        if not any(o.startswith(("name=", "run_name=", "+run_name=")) for o in overrides):
            from pathlib import Path

            cfg.name = Path(args.out).name
        metrics = train(cfg, args.out)
        out = args.out
    import os

    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 wrote the checkpoints and reports
        return 0
    from .train.checkpoint import choose_checkpoint

    last, state = choose_checkpoint(out, "last")
    print(f"test split, checkpoint {last.describe()} (reported; the test split chooses nothing):")
    _print_metrics(metrics)
    print(f"best.pt: {state.get('selection', {}).get('text', 'not recorded')}")
    print(f"wrote {out} (config.json, metrics.jsonl, checkpoints/)")
    return 0


def _print_metrics(metrics: dict) -> None:
    keys = [k for k in ("all/exact_accuracy", "all/exact_accuracy_low", "all/exact_accuracy_high",
                        "all/token_accuracy", "halt/exact_accuracy", "halt/mean_steps", "q_halt_accuracy",
                        "ARC/pass@1", "ARC/pass@2") if k in metrics]
    for k in keys:
        print(f"{k}: {metrics[k]:.4f}")


def _eval(args) -> int:
    from .train.inference import evaluate_run

    metrics = evaluate_run(args.run, n_supervision=args.steps, halting=args.halting, checkpoint=args.checkpoint,
                           data=args.data, batch_size=args.batch_size, ema=not args.no_ema,
                           arc_pool_votes=True if args.arc_pool_votes else None)
    used = (f"checkpoint {metrics['checkpoint']} (step {metrics['checkpoint_step']}), "
            f"chosen as: {metrics['checkpoint_choice']}")
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    else:
        print(used)
        steps = sorted(int(k[4:].split("/")[0]) for k in metrics if k.startswith("step") and k.endswith("/exact_accuracy"))
        if steps:
            print("exact accuracy by supervision step: " + ", ".join(
                f"{s}: {metrics[f'step{s}/exact_accuracy']:.3f}" for s in steps))
        _print_metrics(metrics)
        _print_halting(metrics)
    return 0


def _print_halting(metrics: dict) -> None:
    """The halting summary of an evaluation: what was run, accuracy of the answers given, steps used."""
    N = metrics["n_supervision"]
    learned = metrics.get("halting") == "learned"
    key = "halt" if learned else "all"
    print(f"{metrics.get('halting', 'max')} halting: exact_accuracy {metrics[f'{key}/exact_accuracy']:.4f} "
          f"[95% CI {metrics[f'{key}/exact_accuracy_low']:.4f}, {metrics[f'{key}/exact_accuracy_high']:.4f}] "
          f"token_accuracy {metrics[f'{key}/token_accuracy']:.4f} over {metrics[f'{key}/count']} puzzles"
          + (f"; step {metrics['checkpoint_step']} ({metrics['checkpoint_choice']})" if "checkpoint_choice" in metrics
             else ""))
    hist = [int(metrics.get(f"halt/steps_hist/{k}", 0)) for k in range(1, N + 1)]
    if learned:
        print(f"steps used: mean {metrics['halt/mean_steps']:.2f} of max {N}; compute saved vs all {N} steps: "
              f"{metrics['halt/compute_saved']:.1%} ({metrics['steps_run']} supervision steps run)")
    else:
        print(f"learned halting would answer: exact_accuracy {metrics['halt/exact_accuracy']:.4f} with mean "
              f"{metrics['halt/mean_steps']:.2f} of {N} steps (would save {metrics['halt/compute_saved']:.1%}); "
              f"run with --halting learned to stop each puzzle at its own step")
    print("puzzles halted at step: " + ", ".join(f"{k}: {n}" for k, n in enumerate(hist, start=1)))
    for k in sorted(metrics):
        if k.startswith("ARC_pooled/"):
            print(f"{k}: {metrics[k]:.4f} (votes pooled over checkpoints "
                  f"{', '.join(metrics.get('arc_pooled_checkpoints', []))}; ARC/... is this checkpoint alone)")


def _solve(args) -> int:
    from .train.inference import solve_text

    given = [x for x in (args.sudoku, args.maze, args.arc) if x is not None]
    if len(given) != 1:
        raise CliError("give exactly one of --sudoku STRING, --maze FILE, --arc FILE")
    kind = "sudoku" if args.sudoku is not None else "maze" if args.maze is not None else "arc"
    result = solve_text(args.run, kind, given[0], n_supervision=args.steps, halting=args.halting,
                        checkpoint=args.checkpoint)
    print(result["text"])
    print(f"steps used: {result['steps']}  halting probability: {result['halt_prob']:.3f}  "
          f"(checkpoint step {result['checkpoint_step']}: {result['checkpoint_choice']})")
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

    from .data.commands import add_data_commands

    add_data_commands(sub)

    s = sub.add_parser("train", help="train a model (works under torchrun unchanged)")
    s.add_argument("--preset")
    s.add_argument("--data", help="dataset folder (overrides the preset's)")
    s.add_argument("--out", help="run folder")
    s.add_argument("--resume", nargs="?", const=True, default=None,
                   help="continue the run in RUN_DIR (or --out) from its last checkpoint")
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
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA")
    s.add_argument("--json", action="store_true", help="print every metric as JSON")
    s.add_argument("--arc-pool-votes", action="store_true",
                   help="ARC: also report ARC_pooled/pass@K, the votes of the run's step checkpoints up to this "
                        "one pooled (the reference's protocol; default: the run's train.arc_pool_votes)")
    s.set_defaults(func=_eval)

    s = sub.add_parser("solve", help="answer one puzzle with a trained run")
    s.add_argument("run")
    s.add_argument("--sudoku", help="the puzzle as a string, '.' or '0' for blanks")
    s.add_argument("--maze", help="a text file with the maze ('#' wall, ' ' free, 'S', 'G')")
    s.add_argument("--arc", help="an ARC task JSON file (the test input of the first test pair is solved)")
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--halting", choices=("max", "learned"), default="max")
    s.add_argument("--checkpoint", default="last",
                   help="last (default) | best (chosen on the validation split) | step_N")
    s.set_defaults(func=_solve)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .config import ConfigError
    from .data.format import DatasetError
    from .train.checkpoint import CheckpointError
    from .train.trainer import TrainingError

    try:
        return int(args.func(args) or 0)
    except (CliError, ConfigError, DatasetError, CheckpointError, TrainingError, FileNotFoundError, ValueError) as e:
        print(f"trmlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"trmlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
