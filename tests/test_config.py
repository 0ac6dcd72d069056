import json

import pytest

from trmlab.config import ConfigError, PRESETS, apply_overrides, get_preset, load_config


def test_reference_presets_carry_the_readme_hyperparameters():
    mlp = get_preset("pretrain_mlp_t_sudoku")
    assert mlp.model.mlp_t and mlp.model.pos_encodings == "none"
    assert (mlp.model.n_recursions, mlp.model.n_latent_steps, mlp.model.n_layers) == (3, 6, 2)
    t = mlp.train
    assert (t.epochs, t.eval_interval, t.lr, t.puzzle_emb_lr, t.weight_decay, t.puzzle_emb_weight_decay) == (
        50000, 5000, 1e-4, 1e-4, 1.0, 1.0)
    assert t.ema and t.global_batch_size == 768 and t.evaluators == ()
    maze = get_preset("pretrain_att_maze30x30_1gpu")
    assert maze.train.global_batch_size == 128 and maze.model.n_latent_steps == 4
    arc = get_preset("pretrain_att_arc2concept_4")
    assert arc.data == "data/arc2concept-aug-1000" and arc.train.evaluators == ("arc",)
    assert (arc.train.epochs, arc.train.eval_interval, arc.train.puzzle_emb_lr, arc.train.weight_decay) == (
        100000, 10000, 1e-2, 0.1)


def test_reference_aliases_map_to_trmlab_names():
    cfg = apply_overrides(get_preset("cpu_tiny"), ["arch.H_cycles=4", "L_cycles=5", "halt_max_steps=8",
                                                    "arch.no_ACT_continue=False", "lr=3e-4", "+run_name=x"])
    assert (cfg.model.n_recursions, cfg.model.n_latent_steps, cfg.model.n_supervision) == (4, 5, 8)
    assert cfg.model.act_continue is True and cfg.train.lr == 3e-4 and cfg.name == "x"


def test_unknown_key_lists_valid_ones():
    with pytest.raises(ConfigError) as e:
        apply_overrides(get_preset("cpu_tiny"), {"hiden_size": 3})
    assert "hidden_size" in str(e.value) and "Valid keys" in str(e.value)
    with pytest.raises(ConfigError):
        get_preset("nope")


def test_bad_values_are_rejected():
    with pytest.raises(ConfigError, match="pos_encodings"):
        apply_overrides(get_preset("cpu_tiny"), {"model.pos_encodings": "sinus"})
    with pytest.raises(ConfigError, match="expects a int|expects an int"):
        apply_overrides(get_preset("cpu_tiny"), ["hidden_size=abc"])
    with pytest.raises(ConfigError, match="divisible"):
        apply_overrides(get_preset("cpu_tiny"), ["epochs=10", "eval_interval=3"])


def test_roundtrip_and_load_errors(tmp_path):
    for name in PRESETS:
        cfg = get_preset(name)
        p = tmp_path / f"{name}.json"
        p.write_text(cfg.to_json())
        assert load_config(str(p)) == cfg
    bad = tmp_path / "bad.json"
    d = json.loads(get_preset("cpu_tiny").to_json())
    d["train"]["learning_rate"] = 1
    bad.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="bad.json.*train.learning_rate"):
        load_config(str(bad))
