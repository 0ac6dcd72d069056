"""train.compile=auto: compile the recursion only when the run is long enough to repay compiling."""
import pytest

from trmlab.config import ConfigError, TrainConfig, get_preset
from trmlab.train.trainer import COMPILE_AUTO_MIN_MINUTES, COMPILE_AUTO_MIN_STEPS, compile_choice


def test_auto_compiles_long_runs_only():
    assert compile_choice("auto", COMPILE_AUTO_MIN_STEPS)[0] is True
    assert compile_choice("auto", COMPILE_AUTO_MIN_STEPS - 1)[0] is False
    # a short wall-clock budget stays eager however many steps the schedule has
    on, why = compile_choice("auto", 10**6, max_minutes=COMPILE_AUTO_MIN_MINUTES / 2)
    assert on is False and "budget" in why
    assert compile_choice("auto", 10**6, max_minutes=COMPILE_AUTO_MIN_MINUTES)[0] is True


def test_explicit_setting_wins_over_the_run_length():
    assert compile_choice("true", 1) == (True, "train.compile=true")
    assert compile_choice("false", 10**6) == (False, "train.compile=false")


@pytest.mark.parametrize("value,expected", [(True, "true"), (False, "false"), ("on", "true"), ("0", "false"),
                                            ("AUTO", "auto")])
def test_config_accepts_bools_of_older_configs(value, expected):
    assert TrainConfig(compile=value).compile == expected


def test_config_rejects_other_values_naming_the_field():
    with pytest.raises(ConfigError, match="train.compile expects auto, true or false, got 'sometimes'"):
        TrainConfig(compile="sometimes")


def test_presets_default_to_auto_and_overrides_parse():
    assert get_preset("cpu_sudoku4").train.compile == "auto"
    assert get_preset("cpu_sudoku4", ["compile=false"]).train.compile == "false"
    assert get_preset("cpu_sudoku4", {"compile": True}).train.compile == "true"
