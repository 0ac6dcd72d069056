"""`trmlab data sudoku|maze --hub`: the reference's CSV files through huggingface_hub, offline against a
Hub cache the test prepares (HF_HUB_OFFLINE=1: the network is never asked)."""
import os
import subprocess
import sys
from pathlib import Path

from trmlab.data.sudoku import board_to_text, generate_puzzles

REPO = Path(__file__).resolve().parents[2]


def fake_hub_cache(cache: Path, repo: str, files: dict) -> None:
    """huggingface_hub's cache layout: datasets--OWNER--NAME/{refs/main, snapshots/<commit>/<file>}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = cache / f"datasets--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, text in files.items():
        (snap / name).write_text(text)


def _csv(puzzles) -> str:
    return "source,question,answer,rating\n" + "".join(
        f"t,{board_to_text(q)},{board_to_text(a)},{g}\n" for q, a, g in puzzles)


def test_hub_fetch_builds_from_the_cached_csvs_offline(tmp_path):
    cache = tmp_path / "hub-cache"
    fake_hub_cache(cache, "sapientinc/sudoku-extreme",
                   {"train.csv": _csv(generate_puzzles(12, 4, seed=1)), "test.csv": _csv(generate_puzzles(5, 4, seed=2))})
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "hf-home"),
           "PYTHONPATH": str(REPO)}  # cwd: the project root (data/hub/ goes there)
    r = subprocess.run([sys.executable, "-m", "trmlab.cli", "data", "sudoku", "--hub", "--out", str(project / "data" / "s"),
                        "--num-aug", "1", "--quiet"], env=env, capture_output=True, text=True, timeout=300, cwd=project)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (project / "data" / "hub" / "sudoku-extreme" / "train.csv").is_file(), r.stdout
    assert (project / "data" / "s" / "test" / "dataset.json").is_file()


def test_hub_without_cache_offline_is_a_clear_error(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty"),
           "HF_HOME": str(tmp_path / "hf-home"), "PYTHONPATH": str(REPO)}
    code = ("import sys; from trmlab.data.hub import fetch_csvs\n"
            "try:\n    fetch_csvs('maze', dest=sys.argv[1], echo=print)\n"
            "except ValueError as e:\n    print('ERR', e); sys.exit(3)\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 3, r.stderr[-2000:]
    assert "sapientinc/maze-30x30-hard-1k/train.csv" in r.stdout and "HF_HUB_OFFLINE" in r.stdout
