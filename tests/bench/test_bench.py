"""``trmlab bench`` on a tiny shape (seconds): the JSON it writes, the table, the peer, the command line.
Nothing here checks a speed; the figures are only checked to be there and positive."""
import json

import pytest

from trmlab import cli
from trmlab.bench import speed as B

TINY = {"tiny": B.Case("tiny", "cpu_tiny", "cpu_tiny at batch 2", 2, 2, 2, 2),
        "tiny_mlp": B.Case("tiny_mlp", "cpu_mlp_sudoku4", "TRM-MLP at batch 2", 2, 0, 2, 0, compile=False)}


def _settings(peer: bool) -> B.Settings:
    return B.Settings(quick=True, dtypes=("float32", "bfloat16"), modes=("eager",), repeats=2, repeat_seconds=0.0,
                      matmul_seconds=0.0, peer=peer, threads=1)


@pytest.fixture(scope="module")
def tiny_result():
    return B.run_bench(True, None, _settings(peer=True), cases=TINY, progress=False)


def test_json_schema_of_a_tiny_run(tiny_result, tmp_path):
    r = json.loads(json.dumps(tiny_result))  # JSON-ready
    assert r["format"] == B.FORMAT and r["machine_kind"] and r["machine"]["torch"] and r["machine"]["threads"] == 1
    assert {"model", "flags", "native_bf16", "cores"} <= set(r["machine"])
    assert [c["case"] for c in r["cases"]] == ["tiny", "tiny_mlp"]
    for case in r["cases"]:
        assert case["params"] > 0 and case["gflop_per_sample_step"] > 0
        assert case["auto_dtype"]["choice"] in ("float32", "bfloat16") and case["auto_dtype"]["why"]
        assert [(run["dtype"], run["mode"]) for run in case["runs"]] == [("float32", "eager"), ("bfloat16", "eager")]
        for run in case["runs"]:
            t = run["train"]
            assert t["sample_steps_per_s"] > 0 and len(t["rates"]) == 2 and t["spread"] >= 0
            assert t["gflops"] == pytest.approx(t["sample_steps_per_s"] * case["gflop_per_sample_step"])
            assert run["matmul_limit_gflops"] > 0
            assert t["fraction_of_matmul_limit"] == pytest.approx(t["gflops"] / run["matmul_limit_gflops"])
            mem = t["memory"]
            assert mem["activation_bytes"] > 0 and mem["peak_bytes"] == mem["activation_bytes"] + mem["state_bytes"]
        assert {p["name"] for p in case["matmul_products"]["float32"]} >= {"mlp.gate_up", "mlp.down.grad_w"}
    tiny, mlp = r["cases"]
    inf = tiny["runs"][0]["inference"]
    assert inf["puzzles_per_s"] > 0 and inf["learned_puzzles_per_s"] > 0 and 1 < inf["learned_mean_steps"] < 2  # half halt at 1
    th = tiny["runs"][0]["thinking"]  # K = 16 trajectories of one puzzle, against 16 plain puzzles
    assert th["k"] == 16 and th["puzzles"] == 1 and th["puzzles_per_s"] > 0 and th["plain_puzzles_per_s"] > 0
    assert th["rows_ratio"] == pytest.approx(th["puzzles_per_s"] * 16 / th["plain_puzzles_per_s"])
    assert "thinking K=16, tiny float32" in B.format_table(r)
    assert "inference" not in mlp["runs"][0]  # infer_batch 0
    assert "TRM-Att" in mlp["runs"][0]["peer"]["skipped"]  # no matched peer for TRM-MLP
    path = B.write_results(r, tmp_path / "x.json")
    assert json.loads(path.read_text())["cases"][0]["case"] == "tiny"
    assert B.results_path(r).as_posix() == f"bench/results/{r['machine_kind']}.json"


def test_peer_is_timed_or_said_to_be_missing(tiny_result):
    peer = tiny_result["peer"]
    run32, run16 = tiny_result["cases"][0]["runs"]
    if not B.peer_available():
        assert not peer["available"] and "trmlab[bench]" in peer["note"]
        assert "not installed" in run32["peer"]["skipped"]
        return
    assert peer["available"] and peer["version"] == "0.0.15"
    assert run32["peer"]["params"] > 0 and run32["peer"]["train_ratio"] > 0 and run32["peer"]["infer_ratio"] > 0
    assert "fp32 only" in run16["peer"]["skipped"]


def test_table_has_a_row_per_run_and_the_peer_line(tiny_result):
    table = B.format_table(tiny_result)
    assert "peer:" in table and table.count("\ntiny ") == 2 and "GFLOP/sample-step" in table


def test_without_the_peer_the_run_says_so():
    r = B.run_bench(True, ["tiny"], B.Settings(quick=True, dtypes=("float32",), modes=("eager",), repeats=1,
                                               repeat_seconds=0.0, matmul_seconds=0.0, peer=False, threads=1),
                    cases=TINY, progress=False)
    assert r["peer"]["note"] == "skipped: --no-peer"
    assert r["cases"][0]["runs"][0]["peer"] == {"skipped": "--no-peer"}


def test_peer_spec_matches_the_model():
    cfg = B.case_config(B.CASES["att_sudoku"])
    spec = B.peer_spec(cfg, 32, 8, "float32", B.Settings(), steps=0)
    assert (spec["dim"], spec["depth"], spec["heads"], spec["ff_inner"]) == (512, 2, 8, 1536)
    assert (spec["seq_len"], spec["registers"], spec["T"], spec["n"], spec["num_tokens"]) == (81, 16, 3, 6, 11)


def test_unknown_case_is_a_clear_error(capsys):
    assert cli.main(["bench", "--only", "att_sudok", "--no-peer"]) == 2
    err = capsys.readouterr().err
    assert "unknown bench case(s) att_sudok" in err and "att_sudoku" in err


def test_cli_parses_bench_options():
    args = cli.build_parser().parse_args(["bench", "--quick", "--out", "r.json", "--only", "att_sudoku", "cpu_sudoku4",
                                          "--threads", "1", "--no-peer"])
    assert args.quick and args.out == "r.json" and args.only == ["att_sudoku", "cpu_sudoku4"]
    assert args.threads == 1 and args.no_peer and args.func is cli._bench
    assert cli.build_parser().parse_args(["bench"]).only is None


def test_compile_payoff_is_worked_out_from_the_eager_and_compiled_runs():
    runs = [{"mode": "eager", "train": {"sample_steps_per_s": 10.0, "first_step_s": 0.5}},
            {"mode": "compile", "train": {"sample_steps_per_s": 20.0, "first_step_s": 30.1}}]
    B._compile_payoff(runs, batch=10)  # eager 1 s/step, compiled 0.5 s/step, 30 s of compiling
    comp = runs[1]["train"]
    assert comp["compile_overhead_s"] == pytest.approx(29.6) and comp["speedup_over_eager"] == pytest.approx(2.0)
    assert comp["pays_off_after_steps"] == 60
    runs[1]["train"]["sample_steps_per_s"] = 5.0
    B._compile_payoff(runs, batch=10)
    assert runs[1]["train"]["pays_off_after_steps"] is None


def test_activation_checkpointing_keeps_the_numbers_and_saves_memory():
    import torch

    from trmlab.config import get_preset

    params, memory = [], []
    for on in ("false", "true"):
        step = B.TrainStep(get_preset("cpu_tiny", [f"activation_checkpointing={on}"]), 2, "float32")
        assert step.model.core.checkpoint_activations == (on == "true")
        memory.append(B.saved_activation_bytes(step))  # one full step: forward, backward, optimiser
        params.append([p.detach().clone() for p in step.params])
    assert memory[1] < memory[0] / 2
    for plain, ckpt in zip(*params):
        torch.testing.assert_close(ckpt, plain, rtol=0, atol=0)
