"""Typed configuration of the learning-rules lab, loaded from YAML.

One dataclass per section; every field has a one-line doc in its comment. Unknown keys are rejected and
required keys reported with their dotted path, so a typo fails at load time with the fix in the message.
The object is frozen: command-line overrides go through :func:`dataclasses.replace` in one place
(:func:`with_overrides`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from maml_rl.exits import first_line

RULE_NAMES = ("sgd", "wp", "np", "meta")
TASK_NAMES = ("teacher-student", "mnist")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message says which and how to fix it."""


@dataclass(frozen=True)
class TaskConfig:
    """The data set and the base network that learns it."""

    name: Literal["teacher-student", "mnist"]  # which task: teacher-student regression or MNIST-PCA classification
    n_train: int = 512  # training samples N (the paper's 512)
    n_test: int = 512  # held-out test samples (MNIST: taken from the official test split)
    input_dim: int = 10  # L_x; for MNIST the number of principal components
    hidden_dim: int = 100  # L_h, hidden width of student (and teacher)
    output_dim: int = 10  # L_y; for MNIST the number of classes (10)
    target_noise_std: float = 0.01  # teacher-student: standard deviation of the label noise zeta
    mnist_dir: str | None = None  # MNIST: folder with the IDX files; else $MNIST_DIR; else sklearn's 8x8 digits
    whiten: bool = False  # MNIST: scale each principal component to unit variance (the paper does not)
    init_std: float | None = None  # student weights ~ N(0, init_std^2); None: 1/sqrt(fan_in) per layer


@dataclass(frozen=True)
class SGDConfig:
    """Backpropagation: dW = -lr dE/dW."""

    lr: float  # learning rate eta


@dataclass(frozen=True)
class PerturbationConfig:
    """Weight or node perturbation: dW = -(lr / sigma) (E_perturbed - E) * noise."""

    lr: float  # learning rate eta
    sigma: float = 1.0e-3  # noise VARIANCE (not std); the paper's 1/(L_y L_h)
    perturbations: int = 1  # k independent perturbations per step, batched, updates averaged


@dataclass(frozen=True)
class MetaConfig:
    """The PPO-learned rule: a policy that maps (weights, loss) to new weights or to a weight update."""

    action: Literal["weights", "update"] = "weights"  # the paper's 'next weights' or a bounded update
    action_scale: float = 1.0  # 'weights': W = action_scale * a; 'update': dW = action_scale * a; a in [-1, 1]
    episode_length: int = 32  # environment steps per episode (each episode restarts from fresh weights)
    total_timesteps: int = 20_000  # PPO environment steps
    n_steps: int = 512  # PPO rollout length
    batch_size: int = 128  # PPO minibatch size
    n_epochs: int = 10  # PPO optimisation epochs per rollout
    learning_rate: float = 3.0e-4  # PPO Adam step size; scale it ~1/P for P weights (the ratio sums P dims)
    gamma: float = 0.99  # discount
    net_arch: tuple[int, ...] = (64, 64)  # hidden widths of policy and value networks
    normalize_reward: bool = True  # divide rewards by a running return std (SB3 VecNormalize)
    heldout_seed_offset: int = 1000  # the held-out task is built with seed + this offset


@dataclass(frozen=True)
class RulesConfig:
    """One experiment: a task, the rules to compare and their hyperparameters."""

    task: TaskConfig  # the data and architecture
    epochs: int  # learning steps per rule (one full-batch step on the N training samples each)
    rules: tuple[str, ...] = ("sgd", "wp", "np", "meta")  # which rules to run, in this order
    seed: int = 0  # seeds the data, the initial weights and all noise
    log_every: int = 100  # record train/test loss every this many epochs (and at 0 and the end)
    standardize_weights: bool = False  # the paper's MNIST stabiliser: re-standardise each matrix after a step
    dtype: Literal["float32", "float64"] = "float32"  # tensor precision
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    sgd: SGDConfig | None = None  # required when rules include sgd
    wp: PerturbationConfig | None = None  # required when rules include wp
    np: PerturbationConfig | None = None  # required when rules include np
    meta: MetaConfig | None = None  # required when rules include meta

    def __post_init__(self) -> None:
        validate(self)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check and convert one YAML value to the annotated type, with the dotted path in errors."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(value, inner, path)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not allowed; choose one of {', '.join(map(str, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return tuple(_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads '1e-3' (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {_type_name(tp)} at {path}")  # a bug in this module, not user input


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in {path}" if path else ""
        raise ConfigError(f"unknown key(s) {', '.join(map(repr, unknown))}{where}; allowed: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            raise ConfigError(f"missing required key {key!r}")
    return cls(**kwargs)


def _positive(value: float, path: str, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok or not math.isfinite(value):
        raise ConfigError(f"{path} must be {'non-negative' if allow_zero else 'positive'} and finite, got {value}")


def validate(cfg: RulesConfig) -> None:
    """Range and consistency checks that a type alone cannot express."""
    if not cfg.rules:
        raise ConfigError("rules is empty; choose some of " + ", ".join(RULE_NAMES))
    bad = [r for r in cfg.rules if r not in RULE_NAMES]
    if bad:
        raise ConfigError(f"unknown rule(s) {', '.join(map(repr, bad))}; choose from {', '.join(RULE_NAMES)}")
    if len(set(cfg.rules)) != len(cfg.rules):
        raise ConfigError(f"rules lists a rule twice: {', '.join(cfg.rules)}")
    for rule in cfg.rules:
        if getattr(cfg, rule) is None:
            example = "meta: {}" if rule == "meta" else f"{rule}: {{lr: 0.01}}"
            raise ConfigError(f"rules include {rule!r} but the config has no '{rule}:' section (e.g. '{example}')")
    _positive(cfg.epochs, "epochs")
    _positive(cfg.log_every, "log_every")
    _positive(cfg.threads, "threads", allow_zero=True)
    most = 4 * (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    if cfg.threads > most:  # more only wait for each other (and a million crash OpenMP)
        raise ConfigError(f"threads must be at most {most} (4 x the usable cores), got {cfg.threads}")
    if not 0 <= cfg.seed < 2**32:  # what numpy's and torch's generators take
        raise ConfigError(f"seed must be in [0, 2**32 - 1], got {cfg.seed}")
    t = cfg.task
    for name in ("n_train", "n_test", "input_dim", "hidden_dim", "output_dim"):
        _positive(getattr(t, name), f"task.{name}")
    _positive(t.target_noise_std, "task.target_noise_std", allow_zero=True)
    if t.init_std is not None:
        _positive(t.init_std, "task.init_std")
    if t.name == "mnist" and t.output_dim != 10:
        raise ConfigError(f"task.output_dim must be 10 for mnist (ten digit classes), got {t.output_dim}")
    if cfg.sgd is not None:
        _positive(cfg.sgd.lr, "sgd.lr")
    for name in ("wp", "np"):
        p = getattr(cfg, name)
        if p is not None:
            _positive(p.lr, f"{name}.lr")
            _positive(p.sigma, f"{name}.sigma")
            _positive(p.perturbations, f"{name}.perturbations")
    m = cfg.meta
    if m is not None:
        for name in (
            "action_scale",
            "episode_length",
            "total_timesteps",
            "n_steps",
            "batch_size",
            "n_epochs",
            "learning_rate",
        ):
            _positive(getattr(m, name), f"meta.{name}")
        if not 0 < m.gamma <= 1:
            raise ConfigError(f"meta.gamma must lie in (0, 1], got {m.gamma}")
        if m.n_steps < 2:
            raise ConfigError(f"meta.n_steps must be at least 2 (PPO normalises advantages), got {m.n_steps}")


def config_from_dict(data: Any) -> RulesConfig:
    """Build a validated :class:`RulesConfig` from a parsed YAML mapping."""
    return _build(RulesConfig, data, "")


def load_config(path: str | Path) -> RulesConfig:
    """Read a YAML file into a :class:`RulesConfig`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({first_line(exc)})") from None
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def with_overrides(cfg: RulesConfig, **overrides: Any) -> RulesConfig:
    """Apply command-line overrides (None means 'keep'); the result is validated again."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "rules" in changes:
        changes["rules"] = _convert(changes["rules"], tuple[str, ...], "--rules")
    return dataclasses.replace(cfg, **changes)


def config_to_dict(cfg: RulesConfig) -> dict:
    """Plain-data form for results.json (tuples become lists)."""
    return dataclasses.asdict(cfg)
