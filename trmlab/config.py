"""Typed configuration: dataclasses, validation, presets and the reference's key names.

Three sections, each a dataclass:

* :class:`ModelConfig`  -- the network and its recursion (the reference's ``arch.*`` keys),
* :class:`TrainConfig`  -- optimisers, schedule, batch, evaluation cadence (``cfg_pretrain.yaml``),
* :class:`RunConfig`    -- both, plus the dataset path and run name.

Names say what things are; the reference's names are accepted as aliases:

============================  ===========================  =====================
trmlab                        reference (TinyRecursive...)  paper
============================  ===========================  =====================
``n_recursions``              ``H_cycles``                  T
``n_latent_steps``            ``L_cycles``                  n
``n_layers``                  ``L_layers``                  layers of f
``high_layers``               ``H_layers``                  (HRM's H network)
``n_supervision``             ``halt_max_steps``            N_sup
``act_continue``              ``not no_ACT_continue``       ACT continue loss
``answer`` (carry)            ``z_H``                       y
``latent`` (carry)            ``z_L``                       z
============================  ===========================  =====================

An unknown or misspelled key raises :class:`ConfigError` listing the valid keys.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field, fields
from typing import Any, Mapping


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message says which and what is valid."""


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    """The model. Defaults are the reference's ``config/arch/trm.yaml``."""

    arch: str = "trm"  # trm | direct (HRM is TRM with switches: see model/baselines.py)
    hidden_size: int = 512
    num_heads: int = 8
    expansion: float = 4.0
    n_layers: int = 2  # L_layers: blocks of the shared network f
    high_layers: int = 0  # H_layers: depth of the answer network f_H with separate_networks (0 = n_layers)
    n_recursions: int = 3  # T (H_cycles)
    n_latent_steps: int = 6  # n (L_cycles)
    n_supervision: int = 16  # N_sup (halt_max_steps)
    halt_exploration_prob: float = 0.1
    puzzle_emb_ndim: int = -1  # -1: equal to hidden_size
    puzzle_emb_len: int = 16  # 0: ceil(puzzle_emb_ndim / hidden_size), as HRM
    pos_encodings: str = "rope"  # rope | learned | none
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    mlp_t: bool = False  # TRM-MLP: SwiGLU across the sequence axis instead of attention
    # Ablation switches (paper Tables 1-2), all on the same code path.
    latent_mode: str = "yz"  # yz | single_z
    separate_networks: bool = False  # separate f_L (latent) and f_H (answer) networks
    gradient: str = "full"  # full (TRM) | one_step (HRM-style 1-step gradient)
    act_continue: bool = False  # Q-learning continue loss (reference: no_ACT_continue=True)
    eval_halting: str = "max"  # max: always N_sup steps (reference) | learned: halt head decides
    # Task shape: presets give their task's; training always takes them from the dataset's metadata.
    vocab_size: int = 0
    seq_len: int = 0
    num_puzzle_identifiers: int = 1

    def __post_init__(self) -> None:
        _check_choice(self, "arch", ("trm", "direct"))
        _check_choice(self, "pos_encodings", ("rope", "learned", "none"))
        _check_choice(self, "latent_mode", ("yz", "single_z"))
        _check_choice(self, "gradient", ("full", "one_step"))
        _check_choice(self, "eval_halting", ("max", "learned"))
        for name in ("hidden_size", "num_heads", "n_layers", "n_recursions", "n_latent_steps", "n_supervision"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        head_dim = self.hidden_size // self.num_heads
        if head_dim < 2 or head_dim % 2:
            raise ConfigError(
                f"model.hidden_size // model.num_heads must be an even head width >= 2 (RoPE rotates pairs); "
                f"got {self.hidden_size} // {self.num_heads} = {head_dim}"
            )
        if not 0.0 <= self.halt_exploration_prob <= 1.0:
            raise ConfigError(f"model.halt_exploration_prob must be in [0, 1], got {self.halt_exploration_prob}")

    @property
    def puzzle_emb_dim(self) -> int:
        return self.hidden_size if self.puzzle_emb_ndim < 0 else self.puzzle_emb_ndim

    @property
    def puzzle_positions(self) -> int:
        """Number of sequence positions prepended for the puzzle embedding (0 if it has no width)."""
        if self.puzzle_emb_dim == 0:
            return 0
        if self.puzzle_emb_len > 0:
            return self.puzzle_emb_len
        return -(-self.puzzle_emb_dim // self.hidden_size)


@dataclass
class TrainConfig:
    """Training. Defaults are the reference's ``config/cfg_pretrain.yaml``."""

    global_batch_size: int = 768
    epochs: int = 100000
    eval_interval: int = 10000  # epochs between evaluations (and checkpoints)
    lr: float = 1e-4
    puzzle_emb_lr: float = 1e-2
    weight_decay: float = 0.1
    puzzle_emb_weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    lr_warmup_steps: int = 2000
    lr_min_ratio: float = 1.0  # 1.0 = constant after warm-up (the reference)
    optimizer: str = "adam_atan2"  # adam_atan2 (reference) | adamw (paper text)
    ema: bool = False
    ema_rate: float = 0.999
    loss_type: str = "stablemax"  # stablemax (reference, fp64) | softmax
    halt_loss_weight: float = 0.5
    eval_supervision: int = 0  # supervision steps at evaluation; 0 = model.n_supervision
    max_steps: int = 0  # stop after this many optimiser steps (0 = as many as the epochs give)
    max_minutes: float = 0.0  # stop (and evaluate) after this wall-clock budget (0 = none)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto (bf16 where supported) | bfloat16 | float32
    # auto: compile (TinyRecursiveModel.compile_recursion) when the run is long enough to repay the
    # compile time (train.trainer.compile_choice), else eager | true | false
    compile: str = "auto"
    activation_checkpointing: bool = False  # recompute network calls in the backward: less memory, ~20% more work
    evaluators: tuple = ()  # () or ("arc",)
    # ARC: also pool votes across evaluations (the reference's protocol): reports ARC_pooled/pass@K
    # (all evaluations so far) next to ARC/pass@K (this checkpoint alone)
    arc_pool_votes: bool = False
    wandb_mode: str = "offline"  # online | offline | disabled (env WANDB_MODE=disabled always wins)
    wandb_project: str = ""
    wandb_group: str = ""  # W&B group of the run (a sweep sets its name, so its runs show together)
    log_every: int = 1
    eval_batch_size: int = 0  # 0 = auto: the global batch on a GPU, measured on a CPU (eval/batch_size.py)

    def __post_init__(self) -> None:
        _check_choice(self, "optimizer", ("adam_atan2", "adamw"))
        _check_choice(self, "loss_type", ("stablemax", "softmax"))
        _check_choice(self, "dtype", ("auto", "bfloat16", "float32"))
        _check_choice(self, "wandb_mode", ("online", "offline", "disabled"))
        self.compile = _compile_setting(self.compile)
        if isinstance(self.evaluators, (list, str)):
            self.evaluators = tuple([self.evaluators] if isinstance(self.evaluators, str) else self.evaluators)
        for name in ("global_batch_size", "epochs", "eval_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_batch_size < 0:
            raise ConfigError(f"train.eval_batch_size must be >= 0 (0 = auto), got {self.eval_batch_size}")
        if self.epochs % self.eval_interval:
            raise ConfigError(
                f"train.epochs ({self.epochs}) must be divisible by train.eval_interval ({self.eval_interval})"
            )


@dataclass
class RunConfig:
    """A whole run: model + training + where the data is."""

    name: str = "run"
    preset: str = ""  # the named preset this run started from ("" = built by hand)
    arm: str = ""  # the study arm or sweep cell this run belongs to ("" = none); W&B gets it with the config
    data: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["train"]["evaluators"] = list(d["train"]["evaluators"])
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
        d = dict(d)
        model = ModelConfig(**_checked_keys(ModelConfig, d.pop("model", {}) or {}, "model"))
        train = TrainConfig(**_checked_keys(TrainConfig, d.pop("train", {}) or {}, "train"))
        top = _checked_keys(RunConfig, d, "")
        return cls(model=model, train=train, **top)


# ---------------------------------------------------------------------------------------------
# Aliases and overrides
# ---------------------------------------------------------------------------------------------

#: the reference's names (and a few paper names) -> (section, trmlab name, value transform)
ALIASES: dict[str, tuple[str, str, Any]] = {
    "H_cycles": ("model", "n_recursions", None),
    "L_cycles": ("model", "n_latent_steps", None),
    "L_layers": ("model", "n_layers", None),
    "H_layers": ("model", "high_layers", None),
    "halt_max_steps": ("model", "n_supervision", None),
    "no_ACT_continue": ("model", "act_continue", lambda v: not v),
    "T": ("model", "n_recursions", None),
    "n": ("model", "n_latent_steps", None),
    "N_sup": ("model", "n_supervision", None),
    "loss.loss_type": ("train", "loss_type", lambda v: "stablemax" if "stablemax" in str(v) else "softmax"),
    "data_paths": ("", "data", lambda v: v[0] if isinstance(v, (list, tuple)) else v),
    "run_name": ("", "name", None),
}


def _section_fields(section: str) -> dict[str, dataclasses.Field]:
    cls = {"model": ModelConfig, "train": TrainConfig, "": RunConfig}[section]
    return {f.name: f for f in fields(cls) if f.name not in ("model", "train")}


def valid_keys() -> list[str]:
    keys = [f"model.{k}" for k in _section_fields("model")]
    keys += [f"train.{k}" for k in _section_fields("train")]
    keys += list(_section_fields(""))
    return keys


def _checked_keys(cls, d: Mapping[str, Any], section: str) -> dict:
    valid = {f.name for f in fields(cls)}
    for k in d:
        if k not in valid:
            raise _unknown_key(f"{section}.{k}" if section else k)
    return dict(d)


def _unknown_key(key: str) -> ConfigError:
    keys = valid_keys() + sorted(ALIASES)
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown config key '{key}'.{hint} Valid keys: {', '.join(keys)}")


def resolve_key(key: str) -> tuple[str, str, Any]:
    """Map a user key ('lr', 'train.lr', 'arch.L_cycles', 'H_cycles') to (section, name, transform)."""
    bare = key
    for prefix in ("arch.", "model."):
        if key.startswith(prefix):
            bare = key[len(prefix):]
    if key.startswith("train."):
        bare = key[len("train."):]
    if key in ALIASES:
        return ALIASES[key]
    if bare in ALIASES:
        return ALIASES[bare]
    explicit = key.split(".", 1)[0] if "." in key else None
    if explicit in ("arch", "model"):
        if bare in _section_fields("model"):
            return ("model", bare, None)
        raise _unknown_key(key)
    if explicit == "train":
        if bare in _section_fields("train"):
            return ("train", bare, None)
        raise _unknown_key(key)
    if explicit is not None:
        raise _unknown_key(key)
    for section in ("", "train", "model"):
        if bare in _section_fields(section):
            return (section, bare, None)
    raise _unknown_key(key)


def _compile_setting(value: Any) -> str:
    """train.compile as one of auto/true/false (configs written before "auto" hold a bool)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    low = str(value).strip().lower()
    low = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false", "off": "false"}.get(low, low)
    if low not in ("auto", "true", "false"):
        raise ConfigError(f"train.compile expects auto, true or false, got {value!r}")
    return low


def _coerce(section: str, name: str, value: Any) -> Any:
    f = _section_fields(section)[name]
    default = f.default if f.default is not dataclasses.MISSING else None
    typ = type(default) if default is not None else str
    where = f"{section + '.' if section else ''}{name}"
    if isinstance(value, str):
        if typ is bool:
            low = value.strip().lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ConfigError(f"{where} expects true/false, got '{value}'")
        if typ is tuple:
            value = value.strip()
            if value in ("", "[]", "()"):
                return ()
            return tuple(v.strip().strip("'\"") for v in value.strip("[]()").split(",") if v.strip())
        try:
            if typ is int:
                return int(float(value)) if float(value).is_integer() else int(value)
            if typ is float:
                return float(value)
        except ValueError:
            raise ConfigError(f"{where} expects a {typ.__name__}, got '{value}'") from None
        return value
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is tuple and isinstance(value, list):
        return tuple(value)
    if typ in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{where} expects a {typ.__name__}, got {value!r}")
    if typ is int and isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(f"{where} expects an int, got {value!r}")
        return int(value)
    return value


def apply_overrides(cfg: RunConfig, overrides: Mapping[str, Any] | list[str] | None) -> RunConfig:
    """Return a new config with ``overrides`` applied.

    ``overrides`` is a mapping ``{key: value}`` or a list of ``"key=value"`` strings. Keys may be bare
    (``lr``), sectioned (``train.lr``, ``model.hidden_size``), hydra-style (``arch.L_cycles``) or the
    reference's names (``H_cycles``). Values are validated by re-building the dataclasses.
    """
    if overrides is None:
        return cfg
    if isinstance(overrides, (list, tuple)):
        pairs = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override '{item}' is not of the form key=value")
            k, v = item.split("=", 1)
            pairs[k.strip().lstrip("+")] = v
        overrides = pairs
    d = cfg.to_dict()
    for key, value in overrides.items():
        section, name, transform = resolve_key(key)
        if transform is not None:
            if isinstance(value, str) and name == "act_continue":
                value = _coerce("model", "act_continue", value)
            value = transform(value)
        value = _coerce(section, name, value)
        (d[section] if section else d)[name] = value
    return RunConfig.from_dict(d)


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------


def _ref_sudoku(**model) -> dict:
    return dict(
        data="data/sudoku-extreme-1k-aug-1000",
        model=dict(n_layers=2, n_recursions=3, n_latent_steps=6, vocab_size=11, seq_len=81, **model),
        train=dict(
            epochs=50000, eval_interval=5000, lr=1e-4, puzzle_emb_lr=1e-4, weight_decay=1.0,
            puzzle_emb_weight_decay=1.0, ema=True, evaluators=(),
        ),
    )


def _ref_maze(batch: int) -> dict:
    return dict(
        data="data/maze-30x30-hard-1k",
        model=dict(n_layers=2, n_recursions=3, n_latent_steps=4, vocab_size=6, seq_len=900),
        train=dict(
            global_batch_size=batch, epochs=50000, eval_interval=5000, lr=1e-4, puzzle_emb_lr=1e-4,
            weight_decay=1.0, puzzle_emb_weight_decay=1.0, ema=True, evaluators=(),
        ),
    )


def _ref_arc(data: str) -> dict:
    return dict(
        data=data,
        model=dict(n_layers=2, n_recursions=3, n_latent_steps=4, vocab_size=12, seq_len=900),
        train=dict(ema=True, evaluators=("arc",)),
    )


#: (vocab_size, seq_len) of the CPU tasks, so `trmlab model --preset` needs no dataset; training
#: always takes both from the dataset's metadata.
_CPU_SHAPES = {"data/sudoku4": (6, 16), "data/sudoku6": (8, 36), "data/sudoku9": (11, 81), "data/maze8": (6, 64)}


def _cpu(data: str, hidden: int, batch: int, eval_supervision: int = 4, **extra_model) -> dict:
    """Sizes that learn on 2 CPU cores in minutes (docs/training.md, "Measured on this machine")."""
    vocab, seq = _CPU_SHAPES[data]
    model = dict(
        hidden_size=hidden, num_heads=4, n_layers=2, n_recursions=2, n_latent_steps=2, n_supervision=2,
        puzzle_emb_len=1, pos_encodings="rope", vocab_size=vocab, seq_len=seq,
    )
    model.update(extra_model)
    return dict(
        data=data,
        model=model,
        train=dict(
            global_batch_size=batch, epochs=1000, eval_interval=100, lr=2e-3, puzzle_emb_lr=2e-3,
            weight_decay=0.1, puzzle_emb_weight_decay=0.1, lr_warmup_steps=50, ema=True, ema_rate=0.99,
            eval_supervision=eval_supervision, evaluators=(),
        ),
    )


#: HRM (27M) as switches of the TRM code: two 4-layer networks, H/L cycles 2/2, 1-step gradient,
#: Q-learning continue target, one puzzle position (see trmlab/model/baselines.py).
HRM_SWITCHES = dict(separate_networks=True, gradient="one_step", act_continue=True, n_layers=4, high_layers=4,
                    n_recursions=2, n_latent_steps=2, puzzle_emb_len=1)
#: The reference's direct-prediction baseline (``transformers_baseline``): one 8-layer transformer with
#: 12 heads applied once per supervision step to the carried answer, ACT over 16 steps halting on
#: halt > continue with the continue loss, one puzzle-embedding position (see trmlab/model/baselines.py).
DIRECT_SWITCHES = dict(arch="direct", n_layers=8, num_heads=12, n_supervision=16, act_continue=True,
                       puzzle_emb_len=1)


def _with_model(d: dict, **model) -> dict:
    d = {**d, "model": {**d["model"], **model}}
    return d


#: name -> (description, overrides of the defaults)
PRESETS: dict[str, tuple[str, dict]] = {
    "pretrain_mlp_t_sudoku": (
        "reference: TRM-MLP on Sudoku-Extreme 1k x 1000 aug, 1 GPU (paper 87.4%)",
        _ref_sudoku(mlp_t=True, pos_encodings="none"),
    ),
    "pretrain_att_sudoku": (
        "reference: TRM-Att on Sudoku-Extreme 1k x 1000 aug, 1 GPU (paper 74.7%)",
        _ref_sudoku(),
    ),
    "pretrain_att_maze30x30": (
        "reference: TRM-Att on Maze-Hard 30x30, 4 GPUs via torchrun (paper 85.3%)",
        _ref_maze(768),
    ),
    "pretrain_att_maze30x30_1gpu": (
        "reference: TRM-Att on Maze-Hard 30x30, 1 GPU, global batch 128",
        _ref_maze(128),
    ),
    "pretrain_att_arc1concept_4": (
        "reference: TRM-Att on ARC-AGI-1 + ConceptARC, 4 GPUs (paper 44.6% pass@2)",
        _ref_arc("data/arc1concept-aug-1000"),
    ),
    "pretrain_att_arc2concept_4": (
        "reference: TRM-Att on ARC-AGI-2 + ConceptARC, 4 GPUs (paper 7.8% pass@2)",
        _ref_arc("data/arc2concept-aug-1000"),
    ),
    "hrm_sudoku": (
        "baseline: HRM (27M) on Sudoku-Extreme with the reference's Sudoku training (paper 55.0%)",
        _with_model(_ref_sudoku(), **HRM_SWITCHES),
    ),
    "hrm_arc": (
        "baseline: HRM (27M) on ARC-AGI-1 + ConceptARC (paper 40.3%)",
        _with_model(_ref_arc("data/arc1concept-aug-1000"), **HRM_SWITCHES),
    ),
    "direct_sudoku": (
        "baseline: direct prediction (transformers_baseline): one 8-layer transformer per step, ACT 16 (paper 0.0%)",
        _with_model(_ref_sudoku(), **DIRECT_SWITCHES),
    ),
    "cpu_sudoku4": (
        "CPU: TRM-Att hidden 128 on generated 4x4 Sudoku; >=95% exact in minutes on 2 cores",
        _cpu("data/sudoku4", 128, 64),
    ),
    "cpu_sudoku6": (
        "CPU: TRM-Att hidden 128 on generated 6x6 Sudoku",
        _cpu("data/sudoku6", 128, 64, eval_supervision=6),
    ),
    "cpu_sudoku9": (
        "CPU: TRM-Att hidden 256 on generated 9x9 Sudoku (hours, not minutes, on 2 cores)",
        _cpu("data/sudoku9", 256, 32, n_latent_steps=3),
    ),
    "cpu_mlp_sudoku4": (
        "CPU: TRM-MLP hidden 128 on generated 4x4 Sudoku",
        _cpu("data/sudoku4", 128, 64, mlp_t=True, pos_encodings="none"),
    ),
    "cpu_maze8": (
        "CPU: TRM-Att hidden 128 on generated 8x8 mazes",
        _cpu("data/maze8", 128, 32),
    ),
    "cpu_hrm_sudoku4": (
        "CPU: HRM-style baseline (two 2-layer networks, 1-step gradient, continue loss) on 4x4 Sudoku",
        _cpu("data/sudoku4", 128, 64, **{**HRM_SWITCHES, "n_layers": 2, "high_layers": 2}),
    ),
    "cpu_tiny": (
        "CPU: a 64-wide TRM for tests and smoke runs (4x4 Sudoku)",
        _cpu("data/sudoku4", 64, 32),
    ),
}


def presets_table() -> str:
    """The named configurations as ``trmlab presets`` prints them: data, width, T, n, N_sup, description."""
    lines = [f"{'name':30s} {'task data':34s} {'hidden':>6s} {'T':>2s} {'n':>2s} {'N_sup':>5s}  description"]
    for name, (desc, _) in PRESETS.items():
        c = get_preset(name)
        m = c.model
        lines.append(f"{name:30s} {c.data:34s} {m.hidden_size:6d} {m.n_recursions:2d} {m.n_latent_steps:2d} "
                     f"{m.n_supervision:5d}  {desc}")
    return "\n".join(lines)


def get_preset(name: str, overrides: Mapping[str, Any] | list[str] | None = None) -> RunConfig:
    """A named preset as a :class:`RunConfig`, with optional overrides applied."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown preset '{name}'.{hint} Valid presets: {', '.join(PRESETS)}")
    _, d = PRESETS[name]
    cfg = RunConfig.from_dict({"name": name, "preset": name, **d})
    return apply_overrides(cfg, overrides)


def load_config(path: str) -> RunConfig:
    """Read a config saved as JSON (``config.json`` in a run folder), validating every key."""
    try:
        with open(path) as f:
            d = json.load(f)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a JSON object with keys name, data, model, train")
    try:
        return RunConfig.from_dict(d)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except TypeError as e:
        raise ConfigError(f"{path}: {e}") from None


def _check_choice(obj: Any, name: str, choices: tuple) -> None:
    value = getattr(obj, name)
    if value not in choices:
        section = "model" if isinstance(obj, ModelConfig) else "train"
        raise ConfigError(f"{section}.{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
