#!/usr/bin/env bash
# Create .venv with everything trmlab needs (CPU torch 2.13.0, pinned first), install trmlab editable,
# register the Jupyter kernel. Idempotent. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -c requirements.lock -r requirements.txt -r requirements-test.txt
.venv/bin/pip install -q --no-deps -e .
.venv/bin/python -m ipykernel install --sys-prefix --name trmlab --display-name "trmlab" >/dev/null
echo "trmlab installed in .venv (activate with: source .venv/bin/activate)"
