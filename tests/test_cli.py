"""The command line: a thin layer; bad input gives one line and a non-zero exit, never a traceback."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run([sys.executable, "-m", "trmlab.cli", *args], capture_output=True, text=True,
                          env={"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin"}, cwd=REPO, timeout=300)


def test_presets_lists_reference_and_cpu_runs():
    r = run("presets")
    assert r.returncode == 0
    for name in ("pretrain_mlp_t_sudoku", "pretrain_att_sudoku", "pretrain_att_maze30x30",
                 "pretrain_att_maze30x30_1gpu", "pretrain_att_arc1concept_4", "pretrain_att_arc2concept_4",
                 "cpu_sudoku4", "cpu_sudoku6"):
        assert name in r.stdout


@pytest.mark.parametrize("preset,params", [("pretrain_att_sudoku", 6828034), ("pretrain_mlp_t_sudoku", 5028866),
                                           ("pretrain_att_maze30x30", 6822914)])
def test_model_prints_reference_param_counts(preset, params):
    r = run("model", "--preset", preset)
    assert r.returncode == 0, r.stderr
    assert f"params: {params}" in r.stdout.splitlines()


def test_model_accepts_reference_aliases_and_rejects_typos():
    r = run("model", "--preset", "pretrain_att_sudoku", "arch.L_layers=4")
    assert r.returncode == 0 and "params: 13643778" in r.stdout
    r = run("model", "--preset", "pretrain_att_sudoku", "arch.L_layer=4")
    assert r.returncode == 2 and "unknown config key" in r.stderr and "Traceback" not in r.stderr
    r = run("model", "--preset", "pretrain_att_sudok")
    assert r.returncode == 2 and "Did you mean pretrain_att_sudoku" in r.stderr


def test_every_subcommand_has_help():
    for cmd in ("presets", "model", "train", "eval", "solve", "data", "bench"):
        assert run(cmd, "--help").returncode == 0


def test_environment_yml_agrees_with_requirements():
    env = (REPO / "environment.yml").read_text()
    pip_section = [l.strip()[2:] for l in env.splitlines() if l.strip().startswith("- ") and "==" in l or
                   (l.startswith("      - "))]
    reqs = [l.strip() for f in ("requirements.txt", "requirements-test.txt")
            for l in (REPO / f).read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert sorted(pip_section) == sorted(reqs)
    assert "torch==2.13.0" in reqs
