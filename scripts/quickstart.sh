#!/usr/bin/env bash
# The same job as scripts/demo.sh with the plain command line instead of notebooks (no reports): set up,
# build 4x4 Sudoku, train a small TRM, evaluate it by number of supervision steps, solve one puzzle.
# Usage: bash scripts/quickstart.sh [STEPS]   (training steps, default 1600: ~99% test exact accuracy, docs/training.md)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-1600}
bash scripts/setup.sh
export WANDB_MODE=${WANDB_MODE:-offline}
T=.venv/bin/trmlab
[ -d data/sudoku4 ] || $T data sudoku --out data/sudoku4 --generate 500 --size 4 --num-aug 100 --test-generate 300 --seed 0
RUN=runs/quickstart-sudoku4-$(date +%Y%m%d-%H%M%S)
$T train --preset cpu_sudoku4 --data data/sudoku4 --out "$RUN" train.max_steps="$STEPS"
$T eval "$RUN" --steps 4
$T solve "$RUN" --sudoku "1..4..1..4..3..2"
echo "run folder: $RUN (config.json, metrics.jsonl, checkpoints/)"
