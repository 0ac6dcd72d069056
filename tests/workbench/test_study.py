"""The ablation study: its definition, the statistics and conclusion made from numbers, cell states,
the launchers, and a miniature of the whole study (papermill, sweep, submitit's local executor, report)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trmlab.eval.comparison import compare, summarise, t975
from trmlab.workbench.study import (ABLATION_ARMS, StudyError, arm_configs, get_study, read_study, study_cells)
from trmlab.workbench.study_report import conclusions

REPO = Path(__file__).resolve().parents[2]


# -- the definition -------------------------------------------------------------------------------

def test_the_ablation_study_has_every_arm_of_the_issue_with_its_seeds_and_paper_figure():
    st = get_study("ablation")
    names = [a.name for a in st.arms]
    assert names == ["trm", "one_step", "no_ema", "separate", "four_layers", "single_z", "t2n2", "attention",
                     "act_continue", "hrm", "direct"]
    seeds = {a.name: a.seeds for a in st.arms}
    assert all(seeds[a] >= 3 for a in ("trm", "hrm", "direct", "one_step"))
    assert all(n >= 2 for n in seeds.values())
    paper = {a.name: a.paper for a in ABLATION_ARMS}
    assert paper["trm"] == 87.4 and paper["hrm"] == 55.0 and paper["one_step"] == 56.5 and paper["attention"] == 74.7
    cfgs = arm_configs(st)
    assert cfgs["four_layers"].model.n_layers == 4 and cfgs["four_layers"].model.n_latent_steps == 3  # n halved
    assert cfgs["t2n2"].model.n_recursions == 2 and cfgs["t2n2"].model.n_latent_steps == 2
    assert cfgs["trm"].model.mlp_t and not cfgs["attention"].model.mlp_t
    assert not cfgs["no_ema"].train.ema and cfgs["trm"].train.ema
    assert cfgs["one_step"].model.gradient == "one_step" and cfgs["direct"].model.arch == "direct"
    # the same optimiser steps for every arm
    cells = study_cells(st, "runs/x")
    assert {c["params"]["steps"] for c in cells} == {st.steps} and len(cells) == sum(seeds.values())
    assert cells[0]["params"]["overrides"]["train.wandb_group"] == "x"
    assert cells[0]["params"]["overrides"]["arm"] == "trm"


def test_an_arm_equal_to_the_baseline_is_an_error_naming_it():
    with pytest.raises(StudyError, match="t2n2"):
        get_study("ablation", base={"model.n_recursions": 2, "model.n_latent_steps": 2})
    with pytest.raises(StudyError, match="no arm 'nope'"):
        get_study("ablation", arms=["nope"])


# -- statistics and the conclusion, on synthetic numbers ------------------------------------------

def test_intervals():
    assert t975(2) == pytest.approx(4.303) and t975(1000) == pytest.approx(1.962, abs=1e-3)
    sp = summarise([0.8, 0.82, 0.84])
    assert sp.low < 0.82 < sp.high and sp.n == 3
    one = summarise([0.5], counts=(50, 100))
    assert one.low == pytest.approx(0.4038, abs=1e-3)
    wide = summarise([0.89, 0.957])  # 2 seeds: t(1) = 12.7 would reach past 100%
    assert wide.high == 1.0 and wide.low > 0 and "clipped" in wide.method
    zeros = summarise([0.0, 0.0, 0.0], counts=(0, 900))  # every seed at 0%: not an interval of no width
    assert zeros.low == 0 and zeros.high == pytest.approx(0.00425, abs=1e-4) and "pooled 900" in zeros.method
    assert summarise([0.0, 0.0]).high == 0.0  # no counts: nothing better to say
    d = compare({0: .96, 1: .10}, {0: .0, 1: .0})
    assert d.low >= -1 and d.high <= 1


def test_paired_comparison_settles_a_clear_gap_and_not_an_overlap():
    clear = compare({0: .85, 1: .87, 2: .86}, {0: .55, 1: .58, 2: .54})
    assert clear.paired and clear.verdict == "holds" and clear.low > 0
    close = compare({0: .85, 1: .80, 2: .86}, {0: .84, 1: .83, 2: .82})
    assert close.verdict == "unresolved"
    rev = compare({0: .50, 1: .52, 2: .51}, {0: .80, 1: .83, 2: .82})
    assert rev.verdict == "reversed"
    single = compare({0: .9}, {0: .5}, counts_a=(270, 300), counts_b=(150, 300))
    assert single.verdict == "holds" and "Newcombe" in single.method


def test_conclusion_is_made_from_the_numbers():
    paper = {a.name: a.paper for a in ABLATION_ARMS}
    counts = {}
    values = {"trm": {0: .86, 1: .87, 2: .85}, "hrm": {0: .55, 1: .52, 2: .57},
              "direct": {0: .10, 1: .12, 2: .11}, "one_step": {0: .84, 1: .88, 2: .86},
              "no_ema": {0: .70, 1: .74}, "attention": {0: .90, 1: .91}}
    lines = conclusions(values, counts, paper)
    text = " ".join(lines)
    for label in ("TRM vs HRM", "TRM vs direct prediction", "full vs 1-step gradient", "EMA vs none",
                  "MLP vs self-attention"):
        assert label in text
    hrm = next(ln for ln in lines if "TRM vs HRM" in ln)
    assert "holds" in hrm and "do not overlap" in hrm and "87.4 vs 55" in hrm
    one = next(ln for ln in lines if "1-step" in ln)
    assert "do not settle" in one and "overlap" in one
    att = next(ln for ln in lines if "self-attention" in ln)
    assert "reversed" in att
    # other numbers, other words: nothing is hard-coded
    values["hrm"] = {0: .86, 1: .88, 2: .85}
    assert "do not settle" in next(ln for ln in conclusions(values, counts, paper) if "TRM vs HRM" in ln)


def test_arms_that_never_solved_a_puzzle_are_named():
    from trmlab.workbench.study_report import first_solved, learning_sentence

    assert first_solved([(25, 0.0), (50, 0.0), (75, 0.1), (100, 0.5)]) == 75
    curves = {"trm": [[(25, 0.0), (50, 0.2)], [(25, 0.0), (50, 0.0), (75, 0.3)]],
              "attention": [[(25, 0.0), (50, 0.0), (75, 0.0)]]}
    text = learning_sentence(curves, 75, {"attention": "w/ self-attention"})
    assert "in 75 optimiser steps: w/ self-attention." in text and "trm 50, 75" in text
    curves["attention"] = [[(25, 0.0), (50, 0.01)]]
    assert learning_sentence(curves, 75) == ""  # every arm solved something: nothing to say


# -- cells: finished, failed, interrupted ---------------------------------------------------------

def _nb(folder: Path, end_time, exception=None):
    folder.mkdir(parents=True, exist_ok=True)
    nb = {"cells": [], "metadata": {"papermill": {"end_time": end_time, "exception": exception, "parameters": {}}},
          "nbformat": 4, "nbformat_minor": 5}
    (folder / "02-train.ipynb").write_text(json.dumps(nb))


def test_a_killed_cell_with_a_checkpoint_is_interrupted_and_resumed(tmp_path):
    from trmlab.workbench.sweep import Cell, cell_status

    c = Cell("arm=trm_seed=0", {}, {}, tmp_path / "c")
    assert cell_status(c, "02-train") == "pending"
    _nb(c.run_dir, None)
    assert cell_status(c, "02-train") == "failed"  # killed before any checkpoint: start over
    (c.run_dir / "checkpoints").mkdir()
    (c.run_dir / "checkpoints" / "step_4.pt").write_bytes(b"x")
    assert cell_status(c, "02-train") == "interrupted"
    _nb(c.run_dir, "2025-01-01T00:00:00")
    assert cell_status(c, "02-train") == "finished"


def test_the_sweep_resumes_an_interrupted_cell_in_place(tmp_path, monkeypatch):
    from trmlab.workbench import sweep as sw

    seen = []

    def fake_run(path, params, out, **kw):
        seen.append((Path(out).name, params.get("if_exists"), (Path(out) / "checkpoints").is_dir()))
        _nb(Path(out), "2025-01-01T00:00:00")

    monkeypatch.setattr(sw, "run_notebook", fake_run)
    st = get_study("ablation", preset="cpu_tiny", steps=4, arms=["direct"], seeds=1, final_eval_steps=8)
    out = tmp_path / "st"
    killed = out / "arm=trm_seed=0"
    _nb(killed, None)
    (killed / "checkpoints").mkdir()
    (killed / "checkpoints" / "step_2.pt").write_bytes(b"x")
    rows = sw.sweep("02-train", {}, [], str(out), study=st, echo=lambda *a: None)
    assert seen == [("arm=trm_seed=0", "resume", True), ("arm=direct_seed=0", "resume", False)]
    assert [r["status"] for r in rows] == ["finished", "finished"]
    assert json.loads((out / "study.json").read_text())["final_eval_steps"] == 8
    seen.clear()
    sw.sweep("02-train", {}, [], str(out), study=st, echo=lambda *a: None)
    assert seen == []  # finished cells are skipped


def test_torchrun_command_of_a_cell(tmp_path):
    from trmlab.workbench.launchers import LauncherError, SlurmOptions, torchrun_command
    from trmlab.workbench.sweep import Cell

    c = Cell("arm=trm_seed=1", {"preset": "cpu_tiny", "task": "sudoku4", "steps": 100, "seed": 1, "eval_every": 50,
                                "overrides": {"model.mlp_t": True}}, {}, tmp_path / "arm=trm_seed=1")
    cmd = torchrun_command(c, 4, python="py")
    assert cmd[:6] == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "-m"]
    assert "--eval-every=50" in cmd and "train.max_steps=100" in cmd and "train.seed=1" in cmd
    assert "model.mlp_t=True" in cmd and cmd[cmd.index("--data") + 1] == "data/sudoku4"
    (c.run_dir / "checkpoints").mkdir(parents=True)
    (c.run_dir / "checkpoints" / "last.pt").write_bytes(b"x")
    assert "--resume" in torchrun_command(c, 4)
    with pytest.raises(LauncherError, match="gpus-per-node"):
        SlurmOptions(torchrun=True, gpus_per_node=1)
    p = SlurmOptions(partition="gpu", gpus_per_node=4, time_minutes=600).submitit_parameters("j")
    assert p["slurm_partition"] == "gpu" and p["gpus_per_node"] == 4 and p["timeout_min"] == 600


class FakeJob:
    """A Slurm job as submitit shows it, with a state the test sets."""

    def __init__(self, job_id, state):
        self.job_id, self.state, self.waited = job_id, state, False

    def get_info(self, mode="force"):
        return {"State": self.state}

    def result(self):
        self.waited = True
        return "finished"


def test_a_slurm_sweep_records_its_jobs_and_never_submits_a_queued_cell_twice(tmp_path, monkeypatch):
    from trmlab.workbench import sweep as sw
    from trmlab.workbench.launchers import LauncherError, SlurmLauncher, SlurmOptions

    jobs, submitted = {}, []

    class FakeExecutor:
        def update_parameters(self, **kw):
            assert kw["slurm_partition"] == "gpu"

        def submit(self, fn, notebook, name, *args):
            job_id = str(100 + len(submitted))
            submitted.append(name)
            jobs[job_id] = FakeJob(job_id, "PENDING")
            return jobs[job_id]

    st = get_study("ablation", preset="cpu_tiny", steps=4, arms=["direct"], seeds=1)
    out = tmp_path / "st"
    launcher = SlurmLauncher(SlurmOptions(partition="gpu"), out / ".submitit", wait=False)
    monkeypatch.setattr(launcher, "executor", FakeExecutor)
    monkeypatch.setattr(launcher, "attach", jobs.__getitem__)
    said = []
    rows = sw.sweep("02-train", {}, [], str(out), study=st, echo=said.append, launcher=launcher)
    assert submitted == ["arm=trm_seed=0", "arm=direct_seed=0"]
    assert json.loads((out / ".submitit" / "jobs.json").read_text()) == {"arm=trm_seed=0": "100",
                                                                         "arm=direct_seed=0": "101"}
    assert [r["status"] for r in rows] == ["pending", "pending"] and any("not waiting" in line for line in said)
    assert not any(j.waited for j in jobs.values())
    # later: job 100 runs, job 101 was cancelled; the second sweep waits for 100 and submits the cancelled cell
    jobs["100"].state, jobs["101"].state = "RUNNING", "CANCELLED by 4242"
    launcher.wait = True
    said.clear()
    sw.sweep("02-train", {}, [], str(out), study=st, echo=said.append, launcher=launcher)
    assert submitted == ["arm=trm_seed=0", "arm=direct_seed=0", "arm=direct_seed=0"]
    assert any("arm=trm_seed=0: job 100 is running; not submitted again" in line for line in said)
    assert jobs["100"].waited and jobs["102"].waited and not jobs["101"].waited
    assert json.loads((out / ".submitit" / "jobs.json").read_text())["arm=direct_seed=0"] == "102"
    (out / ".submitit" / "jobs.json").write_text("[1, 2]")
    with pytest.raises(LauncherError, match="jobs.json: expected an object of cell name -> job id"):
        sw.sweep("02-train", {}, [], str(out), study=st, echo=said.append, launcher=launcher)
    with pytest.raises(LauncherError, match="--no-wait needs a Slurm cluster"):
        SlurmLauncher(SlurmOptions(cluster="local"), out / ".submitit", wait=False)


def test_a_job_leaves_a_cell_another_holds_and_skips_a_finished_one(tmp_path, monkeypatch):
    from trmlab.workbench import sweep as sw
    from trmlab.workbench.launchers import cell_job

    monkeypatch.chdir(tmp_path)  # cell_job moves to the project root; this puts the test's directory back
    ran = []
    monkeypatch.setattr(sw, "run_notebook", lambda path, params, out, **kw: ran.append(out))
    cell = sw.Cell("arm=trm_seed=0", {}, {}, tmp_path / "st" / "arm=trm_seed=0")
    other = sw.CellLocks(tmp_path / "st")  # a first job of this cell, still running
    assert other.acquire(cell)
    status = cell_job("02-train", cell.name, {}, str(cell.run_dir), str(REPO))
    assert status.startswith("left to ") and f"pid {os.getpid()}" in status and ran == []
    other.release()
    assert cell_job("02-train", cell.name, {}, str(cell.run_dir), str(REPO)) == "finished" and len(ran) == 1
    _nb(cell.run_dir, "2025-01-01T00:00:00")
    assert cell_job("02-train", cell.name, {}, str(cell.run_dir), str(REPO)) == "finished" and len(ran) == 1


# -- the miniature study, end to end --------------------------------------------------------------

@pytest.mark.slow
def test_miniature_study_end_to_end(tiny_sudoku4, tmp_path, monkeypatch):
    """Two arms (TRM, direct), one seed, a few steps: the sweep runs 02-train with papermill here, then the
    same study through submitit's local executor; `trmlab report` builds the study page from the runs."""
    from trmlab.workbench.launchers import SlurmLauncher, SlurmOptions
    from trmlab.workbench.study_report import write_study_report
    from trmlab.workbench.sweep import sweep

    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    st = get_study("ablation", preset="cpu_tiny", steps=4, eval_every=2, arms=["direct"], seeds=1,
                   base={"model.n_latent_steps": 2, "model.n_recursions": 2, "model.n_supervision": 2},
                   notebook_params={"data": str(tiny_sudoku4), "wandb_mode": "disabled", "threads": 1})
    local = tmp_path / "local"
    rows = sweep("02-train", {}, [], str(local), study=st, echo=lambda *a: None, progress=False)
    assert [r["status"] for r in rows] == ["finished", "finished"], rows
    data = read_study(local)
    assert {r.arm for r in data.runs} == {"trm", "direct"} and not data.missing
    r = data.runs[0]
    assert len(r.by_step) == 8 and r.train_steps == 4 and sum(n for _, n, _ in r.halt_table) == r.puzzles
    cfg = json.loads((local / "arm=direct_seed=0" / "config.json").read_text())
    assert cfg["arm"] == "direct" and cfg["train"]["wandb_group"] == "local" and cfg["model"]["arch"] == "direct"

    via = tmp_path / "submitit"
    launcher = SlurmLauncher(SlurmOptions(cluster="local", time_minutes=20, cpus_per_task=1), via / ".submitit")
    rows = sweep("02-train", {}, [], str(via), study=st, echo=lambda *a: None, progress=False, launcher=launcher)
    assert [r["status"] for r in rows] == ["finished", "finished"], rows
    # same seed, same code: the submitit run ends where the local one did
    a = json.loads((local / "arm=trm_seed=0" / "eval_best_N8_max.json").read_text())
    b = json.loads((via / "arm=trm_seed=0" / "eval_best_N8_max.json").read_text())
    assert a["step4/exact_accuracy"] == b["step4/exact_accuracy"]

    reports = tmp_path / "reports"
    r = subprocess.run([sys.executable, "-m", "trmlab.cli", "report", str(local), "--out", str(reports)],
                       env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    page = (reports / "study-sudoku4.html").read_text()
    for what in ("Conclusion", "TRM vs direct prediction", "paper, Table 1", "arm=trm_seed=0", "study-depth",
                 "study-halting", "study-curves", "Ablation table"):
        assert what in page, what
    assert "http://" not in page.split("<body>")[0].replace("http://www.w3.org", "")
    assert "study-sudoku4.html" in (reports / "index.html").read_text()
