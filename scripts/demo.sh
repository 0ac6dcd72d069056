#!/usr/bin/env bash
# The main job on a fresh machine, CPU only: set up (scripts/setup.sh), then `trmlab demo`: build generated
# 4x4 Sudoku (data/sudoku4), train cpu_sudoku4 through notebooks/02-train.ipynb with papermill into
# runs/demo-sudoku4, evaluate it (03-evaluate), trace the recursion on test puzzles (04-recursion), and write
# reports/index.html linking the three HTML reports. About 10-12 minutes on 2 idle cores, set-up included.
# Usage: bash scripts/demo.sh [trmlab demo options, e.g. --steps 1600]       (options: .venv/bin/trmlab demo --help)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/trmlab demo "$@"
