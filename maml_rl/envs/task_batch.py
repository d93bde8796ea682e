"""Task-batched environments: many copies of one task family stepped together.

Slot ``k`` of a batch of ``tasks × episodes`` slots runs task ``k // episodes``. The sampler only sees this
interface; the backends are

* :class:`GymnasiumTaskBatch` — the reference: one ``gymnasium.Env`` per slot, stepped one by one;
* batched array backends (registered with the family, :mod:`maml_rl.envs.registry`) that advance every slot
  in one call and are tested against the reference for identical observations, rewards and terminations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from maml_rl.envs.registry import batched_backend, batched_families, check_task_env, has_batched_backend
from maml_rl.envs.task import Task, TaskMixin


class TaskBatch:
    """Interface of a task-batched environment. Arrays are NumPy float64, one row per slot."""

    num_envs: int
    observation_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    family: TaskMixin
    last_reward_terms: dict[str, np.ndarray] = {}
    """The terms of the last step's rewards by name (``forward``, ``ctrl``, …), each ``(n,)`` and summing to the
    rewards; empty for families that do not split their reward."""

    def reset(self, tasks: Sequence[Task], seeds: Sequence[int]) -> np.ndarray:
        """Switches slot k to ``tasks[k]``, resets it with ``seeds[k]``; returns observations ``(n, obs_dim)``."""
        raise NotImplementedError

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Steps the ``active`` slots with ``actions`` ``(n, act_dim)`` (already within the action bounds).

        Returns observations ``(n, obs_dim)``, rewards ``(n,)`` and terminations ``(n,)``; inactive slots
        return zeros and are not advanced.
        """
        raise NotImplementedError

    def render(self, slot: int) -> np.ndarray:
        """An RGB frame ``(height, width, 3)`` of slot ``slot`` now (backends made to render only)."""
        raise NotImplementedError(f"{type(self).__name__} does not render; use the gymnasium backend")

    def close(self) -> None:
        """Releases the environments."""


class GymnasiumTaskBatch(TaskBatch):
    """The reference backend: ``num_envs`` gymnasium environments made by ``gymnasium.make(env_id)``."""

    def __init__(self, env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None) -> None:
        self.envs = [gym.make(env_id, **(env_kwargs or {})).unwrapped for _ in range(num_envs)]
        first = self.envs[0]
        check_task_env(first, env_id)
        self.family = first
        self.num_envs = num_envs
        self.observation_dim = int(np.prod(first.observation_space.shape))
        self.action_low = np.asarray(first.action_space.low, dtype=np.float64)
        self.action_high = np.asarray(first.action_space.high, dtype=np.float64)

    def reset(self, tasks: Sequence[Task], seeds: Sequence[int]) -> np.ndarray:
        check_len("tasks", tasks, self.num_envs)
        check_len("seeds", seeds, self.num_envs)
        obs = np.empty((self.num_envs, self.observation_dim))
        for k, (env, task, seed) in enumerate(zip(self.envs, tasks, seeds)):
            env.reset_task(task)
            obs[k] = env.reset(seed=int(seed))[0]
        return obs

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs = np.zeros((self.num_envs, self.observation_dim))
        reward = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        terms: dict[str, np.ndarray] = {}
        for k in np.flatnonzero(active):
            o, r, term, _, info = self.envs[k].step(actions[k])
            obs[k], reward[k], terminated[k] = o, r, term
            for key, value in info.items():
                if key.startswith("reward_"):
                    terms.setdefault(key.removeprefix("reward_"), np.zeros(self.num_envs))[k] = value
        self.last_reward_terms = terms
        return obs, reward, terminated

    def render(self, slot: int) -> np.ndarray:
        return self.envs[slot].render()

    def close(self) -> None:
        for env in self.envs:
            env.close()


BACKENDS = ("auto", "batched", "gymnasium")


def make_task_batch(
    env_id: str, num_envs: int, backend: str = "auto", env_kwargs: dict[str, Any] | None = None
) -> TaskBatch:
    """A :class:`TaskBatch` of ``num_envs`` slots; ``auto`` picks the batched backend where one exists."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown sampler backend {backend!r}; choose one of {BACKENDS}")
    if backend == "batched" and not has_batched_backend(env_id):
        raise ValueError(
            f"no batched backend for {env_id!r} (batched: {batched_families()}); use backend 'gymnasium' or 'auto'"
        )
    if backend in ("auto", "batched") and has_batched_backend(env_id):
        return batched_backend(env_id)(env_id, num_envs, env_kwargs)
    return GymnasiumTaskBatch(env_id, num_envs, env_kwargs)


def check_len(name: str, values: Sequence[Any], expected: int) -> None:
    """Raises ``ValueError`` unless ``values`` has one entry per slot."""
    if len(values) != expected:
        raise ValueError(f"{name} has {len(values)} entries, expected one per slot ({expected})")
