#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite. Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WANDB_MODE=disabled
exec .venv/bin/python -m pytest -q -ra --timeout=900 "$@"
