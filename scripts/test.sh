#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite. Usage: bash scripts/test.sh [pytest args]
# The tests run on one pytest-xdist worker per core (at most 4; TRMLAB_TEST_WORKERS=N sets it, 1 runs them in this
# process), a test file's tests on one worker (its module fixtures made once); the session fixtures that train
# or build are made once for all workers (tests/conftest.py: made_once). pytest prints the ten slowest
# (--durations=10). At the end it says how many browser tests (tests/browser: headless Chromium) were skipped
# and why, so a run without Chromium does not pass silently. The exit status is pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WANDB_MODE=disabled
workers=${TRMLAB_TEST_WORKERS:-$(.venv/bin/python -c 'import os; print(max(1, min(4, len(os.sched_getaffinity(0)))))')}
parallel=()
[ "$workers" -gt 1 ] && parallel=(-n "$workers" --dist loadfile)
report=$(mktemp "${TMPDIR:-/tmp}/trmlab-junit.XXXXXX")
trap 'rm -f "$report"' EXIT
status=0
.venv/bin/python -m pytest -q -ra --timeout=900 --durations=10 "${parallel[@]}" --junitxml="$report" "$@" || status=$?
.venv/bin/python - "$report" <<'PY' || true
import collections
import sys
import xml.etree.ElementTree as ET

try:
    cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
except (ET.ParseError, OSError):
    print("browser tests: no report (pytest stopped before writing one)")
    sys.exit(0)
ran, skipped = 0, collections.Counter()
for case in cases:
    if not case.get("classname", "").startswith("tests.browser."):
        continue
    skip = case.find("skipped")
    if skip is None:
        ran += 1
    else:
        skipped[skip.get("message", "")] += 1
total = ran + sum(skipped.values())
if not total:
    print("browser tests: none selected")
elif not skipped:
    print(f"browser tests: all {total} ran (0 skipped)")
else:
    print(f"browser tests: {sum(skipped.values())} of {total} SKIPPED (they did not run):")
    for reason, n in skipped.most_common():
        print(f"  {n} x {reason}")
    print("  They drive headless Chromium: install it (Debian/Ubuntu: sudo apt-get install -y chromium; "
          "elsewhere set TRMLAB_CHROMIUM=/path/to/chromium) and Playwright for Python (pip install playwright).")
PY
exit "$status"
