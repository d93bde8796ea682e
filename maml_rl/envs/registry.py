"""The one table of task families: each a gymnasium environment id, its entry point and, optionally, a batched
physics backend.

A task family is any registered ``gymnasium.Env`` whose class has ``sample_tasks(n, rng)`` and
``reset_task(task)`` (the interface of :class:`~maml_rl.envs.task.TaskMixin`). An id written
``package.module:EnvId-v0`` imports that module first, as ``gymnasium.make`` does, so a family registered on
import of your own module works from the scripts and inside Ray workers. :func:`register_task_family`
registers one with gymnasium (so ``gymnasium.make`` and every script of this library find it) and, when given,
its batched backend, a :class:`~maml_rl.envs.task_batch.TaskBatch` that steps every slot at once and must
produce the gymnasium environment's observations and rewards. An environment registered with gymnasium
directly is accepted too; it is sampled through the reference backend (one gymnasium env per slot).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

DEFAULT_HORIZON = 100
"""The time limit a task family is registered with unless it says otherwise (the config's ``horizon`` rules a run)."""

TASK_METHODS = ("sample_tasks", "reset_task")
"""What makes a gymnasium environment a task family."""

_FAMILIES: set[str] = set()
_BATCHED: dict[str, str | Callable[..., Any]] = {}


def register_task_family(
    env_id: str,
    entry_point: str | Callable[..., gym.Env],
    batched: str | Callable[..., Any] | None = None,
    max_episode_steps: int = DEFAULT_HORIZON,
    **kwargs: Any,
) -> None:
    """Registers a task family with gymnasium and, if given, its batched backend.

    Args:
        env_id: the id (``"MyTaskFamily-v0"``); registering an id again replaces it.
        entry_point: the environment class, or ``"module:Class"`` (imported when first made).
        batched: a :class:`~maml_rl.envs.task_batch.TaskBatch` class (or ``"module:Class"``) taking
            ``(env_id, num_envs, env_kwargs)``; ``None``: the reference backend only.
        max_episode_steps: the time limit ``gymnasium.make`` wraps the environment in.
        **kwargs: passed to ``gymnasium.register``.
    """
    if env_id in gym.registry:
        del gym.registry[env_id]
    gym.register(env_id, entry_point=entry_point, max_episode_steps=max_episode_steps, **kwargs)
    _FAMILIES.add(env_id)
    if batched is None:
        _BATCHED.pop(env_id, None)
    else:
        _BATCHED[env_id] = batched


def registered_name(env_id: str) -> str:
    """The registry's name of ``env_id``: ``module:EnvId-v0`` imports ``module`` and gives ``EnvId-v0``."""
    module, sep, name = env_id.rpartition(":")
    if sep:
        importlib.import_module(module)
    return name


def batched_backend(env_id: str) -> Callable[..., Any] | None:
    """The batched backend class registered for ``env_id``, or ``None``."""
    backend = _BATCHED.get(registered_name(env_id))
    return load_env_creator(backend) if isinstance(backend, str) else backend


def has_batched_backend(env_id: str) -> bool:
    return registered_name(env_id) in _BATCHED


def batched_families() -> list[str]:
    """The ids with a batched backend, sorted."""
    return sorted(_BATCHED)


def task_families() -> list[str]:
    """The ids registered with :func:`register_task_family`, sorted."""
    return sorted(env_id for env_id in _FAMILIES if env_id in gym.registry)


def task_family_problem(env_id: str) -> str | None:
    """Why ``env_id`` cannot be meta-trained on (not registered, or its class lacks the task interface), else
    ``None``. An entry point that is a factory function rather than a class is accepted here and checked when
    the environment is first made (:func:`check_task_env`)."""
    try:
        env_id = registered_name(env_id)
    except ImportError as e:
        return f"names a module that cannot be imported ({e})"
    if env_id not in gym.registry:
        guess = difflib.get_close_matches(env_id, task_families(), n=1)
        return "is not a registered gymnasium environment" + (f" (did you mean {guess[0]}?)" if guess else "")
    entry_point = gym.spec(env_id).entry_point
    if isinstance(entry_point, str):
        try:
            entry_point = load_env_creator(entry_point)
        except Exception as e:  # noqa: BLE001 - a broken entry point: whatever its import raises
            return f"cannot load its entry point {gym.spec(env_id).entry_point!r} ({type(e).__name__}: {e})"
    if isinstance(entry_point, type):
        missing = [m for m in TASK_METHODS if not callable(getattr(entry_point, m, None))]
        if missing:
            return (
                f"is not a task family: {entry_point.__name__} has no {' and no '.join(missing)} "
                "(subclass maml_rl.envs.TaskMixin)"
            )
    return None


def check_task_env(env: Any, env_id: str) -> None:
    """Raises ``TypeError`` unless the made environment ``env`` (unwrapped) has the task interface."""
    missing = [m for m in TASK_METHODS if not callable(getattr(env, m, None))]
    if missing:
        raise TypeError(
            f"{env_id} is not a task family: {type(env).__name__} has no {' and no '.join(missing)} "
            "(subclass maml_rl.envs.TaskMixin)"
        )
