#!/usr/bin/env bash
# The main job on a fresh machine, CPU only: set up, build a 4x4 Sudoku dataset, train a small TRM,
# evaluate it by number of supervision steps, and solve one puzzle. About 10 minutes on 2 idle cores
# (1600 optimiser steps: ~99% test exact accuracy, docs/training.md).
# Usage: bash scripts/quickstart.sh [STEPS]   (training steps, default 1600)
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
