"""The reference's ARC protocol (votes pooled across evaluations) from training and from `trmlab eval`."""
import json

import numpy as np
import pytest

from trmlab.config import get_preset
from trmlab.train.logging import read_metrics
from trmlab.train.trainer import Trainer


def _tiny_arc(tmp_path):
    """A hand-made ARC dataset in the Kaggle layout: 6 training and 3 evaluation tasks of small grids."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw"
    raw.mkdir()

    def task():
        def pair():
            g = rng.integers(0, 10, size=(int(rng.integers(2, 4)), int(rng.integers(2, 4))))
            return {"input": g.tolist(), "output": np.flip(g, 1).tolist()}
        return {"train": [pair(), pair()], "test": [pair()]}

    for subset, n in (("training", 6), ("evaluation", 3)):
        tasks = {f"{subset[:2]}{i:06d}": task() for i in range(n)}
        (raw / f"arc-agi_{subset}_challenges.json").write_text(json.dumps(
            {k: {"train": t["train"], "test": [{"input": p["input"]} for p in t["test"]]} for k, t in tasks.items()}))
        (raw / f"arc-agi_{subset}_solutions.json").write_text(json.dumps(
            {k: [p["output"] for p in t["test"]] for k, t in tasks.items()}))
    from trmlab.data.arc import build_arc

    data = tmp_path / "arc"
    build_arc(data, family="arc1", arc_dir=raw, subsets=["training", "evaluation"], test_set="evaluation",
              num_aug=3, seed=0, progress=False, echo=lambda *a, **k: None)
    return data


def test_training_and_eval_report_pooled_and_per_checkpoint_pass_at_k(tmp_path, capsys):
    from trmlab.cli import main
    from trmlab.runs import evaluate_run

    data = _tiny_arc(tmp_path)
    cfg = get_preset("cpu_tiny", ["data=" + str(data), "evaluators=arc", "arc_pool_votes=true",
                                  "global_batch_size=8", "eval_batch_size=16", "eval_supervision=1",
                                  "dtype=float32", "wandb_mode=disabled", "epochs=2", "eval_interval=1",
                                  "n_recursions=1", "n_latent_steps=1", "hidden_size=32", "num_heads=2",
                                  "lr_warmup_steps=1", "lr=0.01"])
    run = tmp_path / "run"
    trainer = Trainer(cfg, run, progress=False)
    trainer.run()
    evals = read_metrics(run, "eval")
    assert len(evals) == 2
    for e in evals:
        assert 0.0 <= e["ARC/pass@2"] <= 1.0 and 0.0 <= e["ARC_pooled/pass@2"] <= 1.0
    res = trainer.arc_evaluator().result()
    # first evaluation: nothing earlier to pool with
    assert evals[0]["ARC_pooled/pass@2"] == evals[0]["ARC/pass@2"]
    # the evaluator persisted across the trainer's evaluations: the pool holds both
    assert res["pooled_summary"]["evaluations"] == 2
    assert res["pooled_summary"]["rows"] == 2 * res["summary"]["rows"] > 0
    assert res["ARC/pass@2"] == evals[1]["ARC/pass@2"]
    assert res["ARC_pooled/pass@2"] == evals[1]["ARC_pooled/pass@2"]

    # trmlab eval: the run's step checkpoints up to the evaluated one, pooled, as training saw them
    steps = sorted(int(p.stem[5:]) for p in (run / "checkpoints").glob("step_*.pt"))
    assert len(steps) == 2
    m = evaluate_run(run, checkpoint="last", arc_pool_votes=True, progress=False)
    assert m["arc_pooled_checkpoints"] == [f"step_{steps[0]}", "last"]
    for k in (1, 2, 5):
        assert m[f"ARC/pass@{k}"] == pytest.approx(evals[1][f"ARC/pass@{k}"])
        assert m[f"ARC_pooled/pass@{k}"] == pytest.approx(evals[1][f"ARC_pooled/pass@{k}"])
    # the first checkpoint has no earlier one: pooled == its own
    first = evaluate_run(run, checkpoint=f"step_{steps[0]}", arc_pool_votes=True, progress=False)
    assert first["arc_pooled_checkpoints"] == [f"step_{steps[0]}"]
    assert first["ARC_pooled/pass@2"] == first["ARC/pass@2"]
    # without the switch only the checkpoint's own numbers
    assert not any(k.startswith("ARC_pooled/") for k in
                   evaluate_run(run, checkpoint="last", arc_pool_votes=False, progress=False))
    assert main(["eval", str(run), "--checkpoint", "last", "--arc-pool-votes"]) == 0
    out = capsys.readouterr().out
    assert "ARC_pooled/pass@2" in out and f"step_{steps[0]}, last" in out
