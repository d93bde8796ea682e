"""Checks that run before anything heavy starts, so that bad input ends in one line instead of a traceback
minutes (or 640 GB) later.

* :func:`check_environment` makes the task environment once with ``env-kwargs`` (one simulation, reset and
  stepped), so a keyword the environment does not take is reported with the keywords it does take;
* :func:`check_memory` compares the memory one meta-batch will need (:func:`estimate_memory`) with what the
  machine has available;
* :func:`maml_rl.training.resources.check_output_folder` (used beside them) creates the output folder and writes a
  probe file into it.

Each failure raises :class:`~maml_rl.config.ConfigError` (one line, exit status 2 in the scripts).
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from maml_rl.config import Config, ConfigError
from maml_rl.envs.task_batch import make_task_batch
from maml_rl.exits import first_line
from maml_rl.policies.rnn import CELL_GATES
from maml_rl.training.resources import available_memory, format_bytes

# Bytes per time step of one meta-batch (train and valid episodes, the learner's activations and graphs),
# fitted from the peak resident size of one meta-batch (maml_rl.benchmarks.throughput's kind of run, 2DNavigation,
# HalfCheetahDir and AntDir, MLP and RNN, hidden sizes 8 to 256x2, 1 to 3 inner steps) and rounded up: the
# estimate was 1.0-4.2 x the measured peak (e.g. HalfCheetahDir MLP 64x64: 20.9 kB estimated, 11.3 kB measured;
# RNN LSTM 64x64: 57 kB estimated, 50 kB measured).
FLOATS_PER_STEP = 2000
"""Episodes, masks, advantages, losses: what does not grow with the policy."""
FLOATS_PER_UNIT_STEP = 24
"""Activations and their graphs, per hidden unit (times the cell's gates) and time step."""
FLOATS_PER_IO_STEP = 8
"""Per observation or action dimension and time step."""
FLOATS_PER_TRACE_STEP = 20
"""Per entry of a plastic layer's Hebbian trace (H × H per episode slot) and time step: the trace and the
intermediates its backward and Fisher products keep, as the resident size counts them (measured 18.1 on
HalfCheetahDir, 64x64 units, 8 tasks x 10 episodes, neuromodulated, with an inner step; about a third of that
is live at the peak, the rest freed memory that glibc's heap, with this library's malloc thresholds, keeps)."""
FLOATS_PER_TRACE_STEP_NO_INNER_STEP = 12
"""The same with ``fast-lr: 0``, where no inner gradient's graph is kept (measured 9.8 neuromodulated, 5.6 Hebbian)."""
PARAM_COPIES = 16
"""Per-task parameter copies alive at once: adapted parameters, gradients, their graphs, CG vectors."""
SLOT_BYTES = {"GymnasiumTaskBatch": 1_500_000, "Navigation2DBatch": 4_000}
"""Physics memory per simulated episode slot (measured 1.1 MB per gymnasium MuJoCo env, 2 kB for 2D
navigation); the batched MuJoCo backend gets :data:`DEFAULT_SLOT_BYTES` (measured 20 kB HalfCheetah, 220 kB Ant)."""
DEFAULT_SLOT_BYTES = 256_000


@dataclass(frozen=True)
class EnvironmentInfo:
    """What the memory estimate needs to know about the task environment."""

    observation_dim: int
    action_dim: int
    slot_bytes: int


def environment_keywords(env_name: str) -> list[str]:
    """The keyword arguments the environment's constructors accept (for the error message)."""
    try:
        cls = gym.envs.registration.load_env_creator(gym.spec(env_name).entry_point)
    except Exception:  # noqa: BLE001 - only a hint for a message
        return []
    names: list[str] = []
    for klass in getattr(cls, "__mro__", [cls]):
        if "__init__" not in vars(klass):
            continue
        for p in inspect.signature(vars(klass)["__init__"]).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self" and p.name not in names:
                names.append(p.name)
    return names


def check_environment(config: Config, source: str, env_kwargs_source: str | None = None) -> EnvironmentInfo:
    """Makes one simulation of the config's environment with its ``env-kwargs``, resets and steps it.

    ``source`` names where the config came from in messages; ``env_kwargs_source``, where its ``env-kwargs``
    came from when that was elsewhere (``--set env-kwargs=...``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batch = make_task_batch(config.env_name, 1, config.sampler.backend, config.env_kwargs)
            try:
                tasks = batch.family.sample_tasks(1, np.random.default_rng(0))
                batch.reset(tasks, [0])
                batch.step(((batch.action_low + batch.action_high) / 2)[None], np.ones(1, dtype=bool))
                info = EnvironmentInfo(
                    batch.observation_dim,
                    len(batch.action_low),
                    SLOT_BYTES.get(type(batch).__name__, DEFAULT_SLOT_BYTES),
                )
            finally:
                batch.close()
    except Exception as e:  # noqa: BLE001 - whatever the environment raises, the cause is the input
        reason = first_line(e)
        if not config.env_kwargs:
            raise ConfigError(f"{source}: cannot make {config.env_name}: {type(e).__name__}: {reason}") from None
        known = environment_keywords(config.env_name)
        hint = f"; {config.env_name} takes: {', '.join(known)}" if known else ""
        where = f"{env_kwargs_source}:" if env_kwargs_source else f"{source}: key 'env-kwargs'"
        raise ConfigError(
            f"{where} {config.env_kwargs!r} is rejected by {config.env_name} ({type(e).__name__}: {reason}){hint}"
        ) from None
    return info


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one meta-batch needs, by part, and the config values behind each part."""

    learner: int
    """episode tensors and the learner's activations, over every time step"""
    parameters: int
    """per-task copies of the policy's parameters"""
    physics: int
    """the simulations of one sample"""
    steps: int
    slots: int
    traces: int = 0
    """of ``learner``: the plastic layers' Hebbian traces"""

    @property
    def total(self) -> int:
        return self.learner + self.parameters + self.physics


def policy_sizes(config: Config, obs_dim: int, act_dim: int) -> tuple[int, int]:
    """Hidden units (times the cell's gates) and parameters (recurrent ones included) of the config's policy."""
    gates = CELL_GATES.get(config.policy.cell, 4) if config.policy.type == "rnn" else 1
    sizes = [obs_dim, *config.policy.hidden_sizes]
    params = 0
    for fan_in, units in zip(sizes[:-1], sizes[1:]):
        params += gates * units * (fan_in + 1)
        if config.policy.type == "rnn":
            params += gates * units * (units + 1)
    params += (sizes[-1] + 1) * act_dim + act_dim
    return gates * sum(config.policy.hidden_sizes), params


def estimate_memory(config: Config, env: EnvironmentInfo) -> MemoryEstimate:
    """About how many bytes one meta-batch of ``config`` needs at its peak (see the constants above)."""
    units, params = policy_sizes(config, env.observation_dim, env.action_dim)
    slots = config.meta_batch_size * config.fast_batch_size
    steps = slots * config.horizon
    per_step = 4 * (
        FLOATS_PER_STEP + FLOATS_PER_UNIT_STEP * units + FLOATS_PER_IO_STEP * (env.observation_dim + env.action_dim)
    )
    trace_per_step = 0
    if config.policy.plasticity != "none":
        floats = FLOATS_PER_TRACE_STEP if config.fast_lr else FLOATS_PER_TRACE_STEP_NO_INNER_STEP
        trace_per_step = 4 * floats * sum(units * units for units in config.policy.hidden_sizes)
    inner_steps = max(1.0, (config.num_steps + 1) / 2)  # each further inner step keeps another graph
    return MemoryEstimate(
        learner=math.ceil(steps * (per_step + trace_per_step) * inner_steps),
        traces=math.ceil(steps * trace_per_step * inner_steps),
        parameters=config.meta_batch_size * params * 4 * PARAM_COPIES,
        physics=slots * env.slot_bytes,
        steps=steps,
        slots=slots,
    )


def _largest(config: Config, estimate: MemoryEstimate, units: int) -> str:
    """The key to lower: of those behind the largest part, the one furthest above its default."""
    defaults = Config()
    candidates = {
        "meta-batch-size": config.meta_batch_size / defaults.meta_batch_size,
        "fast-batch-size": config.fast_batch_size / defaults.fast_batch_size,
        "policy.hidden-sizes": units / sum(defaults.policy.hidden_sizes),
    }
    if estimate.learner >= max(estimate.parameters, estimate.physics):
        candidates.update(
            {"horizon": config.horizon / defaults.horizon, "num-steps": config.num_steps / defaults.num_steps}
        )
    elif estimate.physics > estimate.parameters:
        candidates.pop("policy.hidden-sizes")
    else:
        candidates.pop("fast-batch-size")
    key = max(candidates, key=candidates.__getitem__)
    value = list(config.policy.hidden_sizes) if key == "policy.hidden-sizes" else getattr(config, key.replace("-", "_"))
    return f"{key} (now {value})"


def check_memory(config: Config, source: str, env: EnvironmentInfo, available: int | None = None) -> MemoryEstimate:
    """Raises if one meta-batch would need more memory than is available; returns the estimate."""
    estimate = estimate_memory(config, env)
    available = available_memory() if available is None else available
    if available is not None and estimate.total > available:
        units, _ = policy_sizes(config, env.observation_dim, env.action_dim)
        traces = (
            f" (of which {format_bytes(estimate.traces)} for the Hebbian traces of policy.plasticity "
            f"{config.policy.plasticity}: hidden-size² values per episode and time step)"
            if estimate.traces
            else ""
        )
        raise ConfigError(
            f"{source}: one meta-batch needs about {format_bytes(estimate.total)} of memory "
            f"({format_bytes(estimate.learner)} for {estimate.steps:,} time steps = meta-batch-size "
            f"{config.meta_batch_size} x fast-batch-size {config.fast_batch_size} x horizon {config.horizon}{traces}, "
            f"{format_bytes(estimate.parameters)} for the per-task parameters, {format_bytes(estimate.physics)} for "
            f"{estimate.slots:,} simulations), but {format_bytes(available)} is available; lower {_largest(config, estimate, units)}"
        )
    return estimate


def check_config(config: Config, source: str, env_kwargs_source: str | None = None) -> MemoryEstimate:
    """The environment and memory checks of a config, in that order (see :func:`check_environment`)."""
    return check_memory(config, source, check_environment(config, source, env_kwargs_source))
