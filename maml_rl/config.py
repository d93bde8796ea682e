"""The one typed, validated configuration of a meta-training run.

YAML keys are spelled with hyphens (``fast-batch-size``), as pytorch-maml-rl spells them; underscores are
accepted too. Unknown keys, wrong types and out-of-range values raise :class:`ConfigError`, whose message
names the file, the key, the bad value and what is allowed. A loaded config is frozen.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from maml_rl.envs.registry import task_families, task_family_problem
from maml_rl.envs.task_batch import BACKENDS
from maml_rl.policies.base import NONLINEARITIES
from maml_rl.policies.inputs import INPUT_NAMES, check_input_names
from maml_rl.policies.registry import policy_type_problem
from maml_rl.policies.rnn import CELLS, PLASTICITY

INNER_PARAMS = ("all", "readout")
INNER_LOSSES = ("reinforce", "lvc", "dice")
OUTER_STEPS = ("trpo", "ppo")
DEVICES = ("cpu", "cuda")


class ConfigError(ValueError):
    """A bad configuration; the message is one line meant for the user."""


def _opt(
    default: Any, help: str, check: Callable[[Any], str | None] | None = None, doc: str | None = None, **kw: Any
) -> Any:
    """A config field: its default, a one-line ``help`` (``--help``), a ``check`` of its value (the reason it is
    wrong, or ``None``) and, where one line is not enough, a longer ``doc`` for the documentation's table."""
    factory = kw.pop("default_factory", None)
    meta = {"help": help, "check": check, "doc": doc or help}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _allows(text: str) -> Callable[[Callable], Callable]:
    """Names the values a check allows (for the documentation's table)."""

    def mark(check: Callable) -> Callable:
        check.allowed = text
        return check

    return mark


@_allows("> 0")
def positive(x: float) -> str | None:
    return None if x > 0 else "must be > 0"


@_allows(">= 0")
def non_negative(x: float) -> str | None:
    return None if x >= 0 else "must be >= 0"


def one_of(choices: tuple[str, ...] | list[str]) -> Callable[[Any], str | None]:
    return lambda x: None if x in choices else f"must be one of {', '.join(map(str, choices))}"


@_allows("(0, 1]")
def unit_interval(x: float) -> str | None:
    return None if 0 < x <= 1 else "must be in (0, 1]"


@_allows("(0, 1)")
def open_unit_interval(x: float) -> str | None:
    return None if 0 < x < 1 else "must be in (0, 1)"


def between(low: int, high: int) -> Callable[[int], str | None]:
    """For iteration counts: beyond ``high`` a typo only makes a meta-batch run (nearly) forever."""
    return _allows(f"[{low}, {high}]")(lambda x: None if low <= x <= high else f"must be in [{low}, {high}]")


@_allows("[1e-6, 1e6]")
def action_scale_range(x: float) -> str | None:
    return None if 1e-6 <= x <= 1e6 else "must be in [1e-6, 1e6]"  # float32 actions: a / scale, a + scale stay finite


@_allows("[0, 2³² − 1]")
def seed_range(x: int) -> str | None:
    return None if 0 <= x < 2**32 else "must be in [0, 2**32 - 1]"  # what numpy's and torch's generators take


@_allows("[1, 1024], or null")
def optional_part_count(x: int | None) -> str | None:
    return None if x is None or 1 <= x <= 1024 else "must be in [1, 1024] (or null: one part per learner thread)"


def hidden_sizes_check(x: tuple[int, ...]) -> str | None:
    return None if len(x) >= 1 and all(v > 0 for v in x) else "must be a non-empty list of positive integers"


def task_family(x: str) -> str | None:
    problem = task_family_problem(x)
    return None if problem is None else f"{problem}; task families: {', '.join(task_families())}"


@_allows("> 0, or null")
def optional_positive(x: float | None) -> str | None:
    return None if x is None or x > 0 else "must be > 0 (or null for none)"


@dataclass(frozen=True)
class PolicyConfig:
    """The ``policy:`` section."""

    type: str = _opt(
        "mlp",
        "policy type: mlp (Gaussian MLP), rnn (frozen-recurrence RNN cells), or one registered "
        "with maml_rl.policies.register_policy",
        policy_type_problem,
        doc="`mlp` (the Gaussian MLP of MAML), `rnn` (recurrent cells whose state is carried within an episode), or "
        "a type registered with `maml_rl.policies.register_policy` (`module:name` imports `module` first)",
    )
    hidden_sizes: tuple[int, ...] = _opt(
        None, "sizes of the hidden layers", hidden_sizes_check, default_factory=lambda: (64, 64)
    )
    nonlinearity: str = _opt("tanh", "MLP hidden nonlinearity", one_of(sorted(NONLINEARITIES)))
    cell: str = _opt(
        "rnn",
        "recurrent cell of the rnn policy: rnn (Elman, tanh), gru or lstm",
        one_of(sorted(CELLS)),
        doc="`rnn` policy cell: `rnn` (h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)), `gru`, `lstm`",
    )
    freeze_recurrent: bool = _opt(
        True,
        "rnn policy: keep the recurrent weights W_hh, b_hh fixed at their seeded init",
        doc="keep W_hh, b_hh at their seeded initial values: buffers, not parameters, so neither the inner loop nor "
        "TRPO can change them (`false`: train them too, an ablation)",
    )
    init_std: float = _opt(1.0, "initial standard deviation of the Gaussian policy", positive)
    inputs: tuple[str, ...] = _opt(
        None,
        f"what the policy sees each step, observation first: {', '.join(INPUT_NAMES)}",
        check_input_names,
        default_factory=lambda: ("observation",),
        doc="what the policy sees at each step, `observation` first, then any of `previous-action` (its own sampled "
        "action, in the normalised space), `previous-reward` (the environment's), `episode-start` (1 at an episode's "
        "first step, else 0); the previous action and reward are 0 at the first step. Both policies accept them",
    )
    spectral_radius: float | None = _opt(
        None,
        "rnn cell: rescale the frozen W_hh to this spectral radius at initialisation (null: PyTorch's init)",
        optional_positive,
        doc="`rnn` cell only: rescale the frozen W_hh at initialisation so that its largest absolute eigenvalue is "
        "this value (null: PyTorch's initialisation, about 0.57–0.61 for 64 units)",
    )
    leak: float = _opt(
        1.0,
        "rnn policy: leaky integration h = (1 - leak) h + leak cell(x, h) (1: none)",
        unit_interval,
        doc="`rnn` policy: leaky integration h_t = (1 − leak)·h_{t−1} + leak·cell(x_t, h_{t−1}), in (0, 1] (1: none)",
    )
    recurrent_density: float = _opt(1.0, "rnn policy: fraction of W_hh entries kept non-zero (seeded)", unit_interval)
    plasticity: str = _opt(
        "none",
        "rnn cell: plastic recurrent synapses W_hh + alpha * Hebb: none, hebbian or neuromodulated",
        one_of(PLASTICITY),
        doc="`rnn` cell only: plastic recurrent synapses, W_hh + α ⊙ Hebb_t with a per-episode Hebbian trace: `none`, "
        "`hebbian` (Hebb_{t+1} = (1 − η)·Hebb_t + η·h_t h_{t−1}ᵀ; Miconi et al. 2018) or `neuromodulated` "
        "(Hebb_{t+1} = clip(Hebb_t + M_t·h_t h_{t−1}ᵀ, −1, 1), M_t = tanh(w_M·h_t + b_M); Miconi et al. 2019). α, η, "
        "w_M, b_M are meta-learned; W_hh stays frozen with `freeze-recurrent`",
    )

    def __post_init__(self) -> None:
        if self.plasticity != "none" and (self.type != "rnn" or self.cell != "rnn"):
            raise ConfigError(
                f"plasticity {self.plasticity} needs the rnn policy with the rnn cell (one W_hh per layer), got "
                f"type {self.type}"
                + (f", cell {self.cell}" if self.type == "rnn" else "")
                + "; set plasticity: none, or type: rnn and cell: rnn"
            )
        if self.spectral_radius is not None and self.cell != "rnn":
            raise ConfigError(
                f"spectral-radius applies to the rnn cell (a square W_hh), not {self.cell}; "
                "set it to null or use cell: rnn"
            )


@dataclass(frozen=True)
class SamplerConfig:
    """The ``sampler:`` section."""

    backend: str = _opt(
        "auto",
        "auto (batched where it exists) | batched | gymnasium (reference)",
        one_of(BACKENDS),
        doc="`auto` (the family's batched physics where it has one), `batched`, or `gymnasium` (one gymnasium "
        "environment per episode slot: the reference the batched physics is tested against)",
    )


@dataclass(frozen=True)
class Config:
    """Everything a meta-training run needs; defaults are pytorch-maml-rl's HalfCheetahDir values."""

    env_name: str = _opt(
        "HalfCheetahDir-v0",
        "registered task family (gymnasium id, or module:id to import it first)",
        task_family,
        doc="task family: `HalfCheetahDir-v0`, `HalfCheetahVel-v0`, `AntDir-v0`, `AntVel-v0`, `2DNavigation-v0`, or "
        "one registered with `maml_rl.envs.register_task_family` (`module:Id-v0` imports `module` first)",
    )
    env_kwargs: dict = _opt(None, "keyword arguments for gymnasium.make", default_factory=dict)
    seed: int = _opt(1, "seed of every random draw (tasks, resets, action noise, initial weights)", seed_range)
    gamma: float = _opt(0.99, "discount factor", unit_interval)
    gae_lambda: float = _opt(1.0, "GAE lambda", unit_interval)
    first_order: bool = _opt(False, "drop the second-order term of the meta-gradient (FOMAML)")
    fast_batch_size: int = _opt(20, "episodes per task for the inner update (and for validation)", positive)
    num_steps: int = _opt(1, "inner-loop gradient steps", positive)
    fast_lr: float = _opt(
        0.1,
        "inner-loop step size alpha (0 = no adaptation, a control)",
        non_negative,
        doc="inner-loop step size α (0 is allowed: no adaptation, a control; with a reward-aware RNN, adaptation by "
        "memory alone, RL²)",
    )
    inner_params: str = _opt(
        "all",
        "parameters the inner loop adapts: all, or readout (the Gaussian head's mean layer and log-std; "
        "ANIL); the outer step trains all",
        one_of(INNER_PARAMS),
        doc="what the inner loop adapts: `all`, or `readout` (only the Gaussian head's mean layer and log-std; ANIL, "
        "Raghu et al. 2020); the outer TRPO step always trains every learnable parameter",
    )
    inner_loss: str = _opt(
        "reinforce",
        "meta-gradient estimator: reinforce (MAML's), lvc (ProMP's low-variance curvature) or dice (unbiased)",
        one_of(INNER_LOSSES),
        doc="how the meta-gradient credits the pre-update policy: `reinforce` (the inner loss −mean(log π · A), as "
        "pytorch-maml-rl: no credit for the pre-update sampling distribution), `lvc` (−mean(π/⊥π · A): the same "
        "inner step, its Hessian adds the ∇log π ∇log πᵀ term; Rothfuss et al. 2019), `dice` (the REINFORCE inner "
        "step plus DiCE's term for the pre-update episodes' distribution, with a baseline: unbiased; Foerster et al. "
        "2018, Mao et al. 2019)",
    )
    outer_step: str = _opt(
        "trpo",
        "outer step: trpo (conjugate gradient + line search) or ppo (ProMP's clipped objective, Adam)",
        one_of(OUTER_STEPS),
        doc="`trpo` (MAML-TRPO: conjugate gradient on Jᵀ F J, KL line search) or `ppo` (ProMP, Rothfuss et al. 2019: "
        "the clipped likelihood-ratio surrogate of the adapted policy plus `ppo-kl-penalty` · KL(π_θ_old ‖ π_θ) of the "
        "pre-update policy, `ppo-steps` Adam steps on the same episodes, the inner step recomputed at each with the "
        "likelihood-ratio inner objective)",
    )
    ppo_steps: int = _opt(5, "ppo outer step: Adam steps per meta-batch (ProMP's 5)", between(1, 1000))
    ppo_clip: float = _opt(0.3, "ppo outer step: clip range of the likelihood ratio (ProMP's 0.3)", open_unit_interval)
    ppo_kl_penalty: float = _opt(
        5e-4, "ppo outer step: weight of KL(pre-update old || new) (ProMP's 5e-4)", non_negative
    )
    ppo_lr: float = _opt(1e-3, "ppo outer step: Adam learning rate (ProMP's 1e-3)", positive)
    num_batches: int = _opt(500, "meta-batches (outer steps) to train", positive)
    meta_batch_size: int = _opt(40, "tasks per meta-batch", positive)
    max_kl: float = _opt(1e-2, "TRPO trust region: maximum mean KL of a step", positive)
    cg_iters: int = _opt(10, "conjugate-gradient iterations", between(1, 1000))
    cg_damping: float = _opt(1e-5, "damping added to the Fisher-vector product", non_negative)
    fisher_subsample: float = _opt(
        1.0,
        "fraction of each task's valid episodes the Fisher-vector products use (1: all, the exact product)",
        unit_interval,
        doc="the fraction of each task's valid episodes (the first ⌈fraction × fast-batch-size⌉, which are as random "
        "as any) whose KL the Fisher-vector products of the TRPO step use; the gradient and the line search always "
        "use every episode. 1 (the default) is the exact product; Schulman et al. 2015 used 0.1. An approximation "
        "that makes each conjugate-gradient iteration cheaper, opt-in",
    )
    ls_max_steps: int = _opt(15, "line-search backtracking steps", between(1, 1000))
    ls_backtrack_ratio: float = _opt(0.8, "line-search step shrink factor", open_unit_interval)
    horizon: int = _opt(100, "maximum episode length", positive)
    normalization_scale: float = _opt(
        10.0,
        "the policy acts in [-scale, scale], mapped onto the action bounds",
        action_scale_range,
        doc="the policy acts in [−scale, scale], clipped and mapped linearly onto the action bounds "
        "(pytorch-maml-rl's normalisation)",
    )
    device: str = _opt("cpu", "device of the policy and learner (physics stays on the CPU)", one_of(DEVICES))
    learner_parts: int | None = _opt(
        None,
        "parts the learner splits a meta-batch's tasks into on the CPU (null: one per learner thread); the run "
        "folder records the count used",
        optional_part_count,
        doc="how many parts the learner phases split a meta-batch's tasks into on the CPU: contiguous groups of "
        "tasks whose gradients, Fisher-vector products and losses are computed separately and added up in part "
        "order, spread over the learner's threads (a thread with several parts computes them one after another). "
        "Each count rounds the sums over tasks its own way (about 1e-7 relative), so the count fixes the numbers, "
        "whatever the threads. null (the default): one part per learner thread (`--threads`), and the run folder's "
        "config.yaml records the count used, so a resume or a rerun of that file gives the same numbers on any "
        "machine. On a GPU the tasks are one part unless this is set",
    )
    max_nonfinite_batches: int = _opt(
        5,
        "consecutive meta-batches rejected for NaN or inf (in observations, rewards, losses, gradients or the "
        "search direction) before training stops",
        positive,
    )
    policy: PolicyConfig = _opt(None, "policy section", default_factory=PolicyConfig)
    sampler: SamplerConfig = _opt(None, "sampler section", default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        if self.outer_step == "ppo" and self.inner_loss == "dice":
            raise ConfigError(
                "inner-loss dice needs outer-step trpo (its credit for the pre-update episodes is not importance-"
                "weighted for ppo's reuse of them); use inner-loss lvc or reinforce with ppo"
            )
        if self.outer_step == "ppo" and self.fisher_subsample != 1:
            raise ConfigError(
                f"fisher-subsample {self.fisher_subsample} applies to the TRPO step's Fisher-vector products; "
                "outer-step ppo makes none (leave fisher-subsample at 1)"
            )

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` (same spellings as the fields; ``policy_type`` sets ``policy.type``), validated."""
        data = to_dict(self)
        for key, value in changes.items():
            if value is None:
                continue
            if key == "policy_type":
                data["policy"]["type"] = value
            else:
                data[key.replace("_", "-")] = value
        return from_dict(data, source="command line")


def with_overrides(config: Config, assignments: list[str] | tuple[str, ...]) -> Config:
    """``config`` with ``KEY=VALUE`` assignments applied (nested keys with dots, e.g. ``policy.leak=0.3``; values
    read as YAML scalars or lists), validated like a config file."""
    data = to_dict(config)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. --set policy.leak=0.3")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--set {assignment!r}: the value is not valid YAML") from None
        *path, last = key.strip().split(".")
        section = data
        for part in path:
            section = section.get(part) if isinstance(section, dict) else None
            if not isinstance(section, dict):
                raise ConfigError(f"--set {assignment!r}: '{part}' is not a section of the config")
        section[last] = value
    return from_dict(data, source="--set")


# --- loading and saving ------------------------------------------------------------------------------------


def load_config(path: str | os.PathLike[str]) -> Config:
    """Reads and validates a YAML config; every problem becomes a one-line :class:`ConfigError`."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not a UTF-8 text file (byte {e.start} is {e.object[e.start : e.start + 1]!r}); "
            "a config is a YAML text file"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: malformed YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level, got {type(data).__name__}")
    return from_dict(data, source=path)


def from_dict(data: Mapping[str, Any], source: str = "config") -> Config:
    """Builds a validated :class:`Config` from a (hyphen- or underscore-keyed) mapping."""
    return _build(Config, data, source, prefix="")


def to_dict(config: Any) -> dict[str, Any]:
    """The config as a plain, hyphen-keyed dict (what ``config.yaml`` in a run folder holds)."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        out[f.name.replace("_", "-")] = value
    return out


def flatten_keys(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A hyphen-keyed config dict with its sections flattened into dotted keys (``policy.type``); the value of
    ``env-kwargs`` stays one mapping."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and key != "env-kwargs":
            out.update(flatten_keys(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def save_config(config: Config, path: str | os.PathLike[str]) -> None:
    """Writes the config as YAML (hyphenated keys, sections nested), as a run folder's ``config.yaml``."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(config), f, sort_keys=False)


@dataclass(frozen=True)
class KeyReference:
    """One config key as the documentation shows it."""

    key: str
    """dotted and hyphenated, as YAML and ``--set`` spell it (``policy.hidden-sizes``)"""
    default: str
    help: str
    doc: str
    allowed: str = ""
    """the values its check allows, where that is a range (``(0, 1]``); empty otherwise"""


def config_reference() -> list[KeyReference]:
    """Every config key with its default and meaning, in the order of the dataclasses: the one source of
    ``train.py --help``'s key list and of the documentation's configuration table."""
    rows = []
    for cls, prefix in ((Config, ""), (PolicyConfig, "policy."), (SamplerConfig, "sampler.")):
        for f in fields(cls):
            if dataclasses.is_dataclass(_default(f)):
                continue
            allowed = getattr(f.metadata["check"], "allowed", "")
            key = f"{prefix}{f.name.replace('_', '-')}"
            rows.append(KeyReference(key, _format(_default(f)), f.metadata["help"], f.metadata["doc"], allowed))
    return rows


def config_help() -> str:
    """Every config key with its default and meaning, for ``--help``."""
    return "\n".join(f"  {row.key}: {row.default}  -- {row.help}" for row in config_reference())


def _finite_number(value: Any, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)  # YAML reads 1e-5 (no dot) as a string
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]


def _format(value: Any) -> str:
    return str(list(value)) if isinstance(value, tuple) else str(value)


def _build(cls: type, data: Mapping[str, Any], source: str, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: '{prefix.rstrip('.')}' must be a mapping, got {data!r}")
    by_key = {f.name.replace("_", "-"): f for f in fields(cls)}
    values: dict[str, Any] = {}
    for raw_key, raw_value in data.items():
        key = str(raw_key).replace("_", "-")
        if key not in by_key:
            nested = [
                f"{name}.{key}"
                for name, f in by_key.items()
                if dataclasses.is_dataclass(_default(f))
                and key in {g.name.replace("_", "-") for g in fields(type(_default(f)))}
            ]
            guess = nested or [prefix + g for g in difflib.get_close_matches(key, list(by_key), n=1)]
            hint = f"; did you mean '{guess[0]}'?" if guess else f"; allowed: {', '.join(sorted(by_key))}"
            raise ConfigError(f"{source}: unknown key '{prefix}{raw_key}'{hint}")
        f = by_key[key]
        values[f.name] = _coerce(f, raw_value, source, prefix + key)
    try:
        return cls(**values)
    except ConfigError as e:  # a rule between keys (__post_init__)
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: {e}") from None
    except TypeError as e:  # pragma: no cover - fields and values come from the same table
        raise ConfigError(f"{source}: {e}") from None


def _coerce(f: dataclasses.Field, value: Any, source: str, key: str) -> Any:
    default = _default(f)
    where = f"{source}: key '{key}'"
    if dataclasses.is_dataclass(default):
        return _build(type(default), value or {}, source, key + ".")
    if default is None and f.type == "float | None":
        if value is not None:
            value = _finite_number(value, where)
    elif default is None and f.type == "int | None":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{where}: expected an integer or null, got {value!r}")
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
    elif isinstance(default, float):
        value = _finite_number(value, where)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
    elif isinstance(default, tuple) and all(isinstance(v, str) for v in default):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        value = tuple(value)
    elif isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{where}: expected a list of integers, got {value!r}")
        value = tuple(value)
    elif isinstance(default, dict):
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        value = dict(value)
    check = f.metadata.get("check")
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{where}: {problem}, got {value!r}")
    return value
