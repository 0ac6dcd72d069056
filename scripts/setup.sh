#!/usr/bin/env bash
# Create .venv with everything trmlab needs, install trmlab editable, register the Jupyter kernel `trmlab`,
# and fetch the two widget scripts the HTML reports embed. Idempotent.
#
# Usage: bash scripts/setup.sh [--torch default|cpu|cuda]      (or TRMLAB_TORCH=cpu bash scripts/setup.sh)
#   default  torch==2.13.0 as pip resolves it (PyPI: the CUDA build on Linux x86_64, CPU elsewhere; a local
#            wheel when pip is configured with one)
#   cpu      torch==2.13.0, CPU-only build, from PyTorch's CPU index (a ~200 MB download instead of ~5 GB)
#   cuda     torch==2.13.0 with CUDA; TRMLAB_TORCH_INDEX=https://download.pytorch.org/whl/cu126 (say) picks a
#            particular CUDA build, otherwise PyPI's Linux wheel (CUDA included) is used
# torch is installed first and pinned: an unpinned torch pulled in by another package would be a multi-GB build.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=${TRMLAB_TORCH:-default}
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) TORCH=${2:?--torch needs default, cpu or cuda}; shift 2 ;;
    --torch=*) TORCH=${1#--torch=}; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$TORCH" in default|cpu|cuda) ;; *) echo "setup.sh: --torch must be default, cpu or cuda (got $TORCH)" >&2; exit 2 ;; esac
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
case "$TORCH" in
  default) .venv/bin/pip install -q torch==2.13.0 ;;
  cpu)     .venv/bin/pip install -q torch==2.13.0 --index-url "${TRMLAB_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" ;;
  cuda)    if [ -n "${TRMLAB_TORCH_INDEX:-}" ]; then
             .venv/bin/pip install -q torch==2.13.0 --index-url "$TRMLAB_TORCH_INDEX"
           else
             .venv/bin/pip install -q torch==2.13.0
           fi ;;
esac
.venv/bin/pip install -q -c requirements.lock -r requirements.txt -r requirements-test.txt
.venv/bin/pip install -q --no-deps -e .
.venv/bin/python -m ipykernel install --sys-prefix --name trmlab --display-name "trmlab" >/dev/null

# Widget scripts for offline HTML reports (require.js, @jupyter-widgets/html-manager's embed-amd.js): fetched
# once with npm, checked against pinned SHA-256, kept in .venv/share/trmlab/widget-js. Without npm the
# reports still work; their widgets show as text (plotly figures are unaffected).
JS_DIR=.venv/share/trmlab/widget-js
if [ ! -f "$JS_DIR/require.js" ] || [ ! -f "$JS_DIR/embed-amd.js" ]; then
  if command -v npm >/dev/null 2>&1; then
    TMP=$(mktemp -d)
    if (cd "$TMP" && npm pack --silent requirejs@2.3.8 @jupyter-widgets/html-manager@1.0.15 >/dev/null 2>&1); then
      .venv/bin/python -c "import sys; from trmlab.workbench.reports import install_widget_js; install_widget_js(sys.argv[1], sys.argv[2])" "$TMP" "$JS_DIR"
    else
      echo "warning: npm could not fetch the widget scripts; reports will show widgets as text" >&2
    fi
    rm -rf "$TMP"
  else
    echo "note: npm not found; HTML reports will show widgets as text (install Node.js and rerun to embed them)" >&2
  fi
fi
echo "trmlab installed in .venv (activate with: source .venv/bin/activate)"
