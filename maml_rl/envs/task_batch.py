"""Task-batched environments: many copies of one task family stepped together.

Slot ``k`` of a batch of ``tasks × episodes`` slots runs task ``k // episodes``. The sampler only sees this
interface; the backends are

* :class:`GymnasiumTaskBatch` — the reference: one ``gymnasium.Env`` per slot, stepped one by one;
* batched array backends (e.g. :class:`Navigation2DBatch`) that advance every slot in one call and are
  tested against the reference for identical observations, rewards and terminations.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np

import maml_rl.envs  # noqa: F401  (registers the task environments)
from maml_rl.envs import rewards
from maml_rl.envs.task import Task, TaskMixin, checked_actions


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

    def close(self) -> None:
        """Releases the environments."""


class GymnasiumTaskBatch(TaskBatch):
    """The reference backend: ``num_envs`` gymnasium environments made by ``gymnasium.make(env_id)``."""

    def __init__(self, env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None) -> None:
        self.envs = [gym.make(env_id, **(env_kwargs or {})).unwrapped for _ in range(num_envs)]
        first = self.envs[0]
        self.family = first
        self.num_envs = num_envs
        self.observation_dim = int(np.prod(first.observation_space.shape))
        self.action_low = np.asarray(first.action_space.low, dtype=np.float64)
        self.action_high = np.asarray(first.action_space.high, dtype=np.float64)

    def reset(self, tasks: Sequence[Task], seeds: Sequence[int]) -> np.ndarray:
        _check_len("tasks", tasks, self.num_envs)
        _check_len("seeds", seeds, self.num_envs)
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

    def close(self) -> None:
        for env in self.envs:
            env.close()


class Navigation2DBatch(TaskBatch):
    """2DNavigation for every slot at once, as array operations."""

    def __init__(self, env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None) -> None:
        self.family = gym.make(env_id, **(env_kwargs or {})).unwrapped
        self.num_envs = num_envs
        self.observation_dim = 2
        self.action_low = np.asarray(self.family.action_space.low, dtype=np.float64)
        self.action_high = np.asarray(self.family.action_space.high, dtype=np.float64)
        self.position = np.zeros((num_envs, 2))
        self.goal = np.zeros((num_envs, 2))

    def reset(self, tasks: Sequence[Task], seeds: Sequence[int]) -> np.ndarray:
        _check_len("tasks", tasks, self.num_envs)
        _check_len("seeds", seeds, self.num_envs)
        for task in tasks:
            self.family.reset_task(task)  # validates the task's form
        self.goal = self.family.task_array(tasks)
        self.position = np.zeros((self.num_envs, 2))
        return self.position.astype(np.float32).astype(np.float64)

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        step = checked_actions(actions, self.action_low, self.action_high, type(self).__name__)
        self.position = np.where(active[:, None], self.position + step, self.position)
        reward = np.where(active, rewards.navigation_reward(self.position, self.goal), 0.0)
        terminated = active & rewards.navigation_reached(self.position, self.goal)
        obs = np.where(active[:, None], self.position.astype(np.float32), 0.0).astype(np.float64)
        return obs, reward, terminated


def _mujoco_batch(env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None) -> TaskBatch:
    from maml_rl.envs.batched_mujoco import make_mujoco_batch  # imported on use: it builds on this module

    return make_mujoco_batch(env_id, num_envs, env_kwargs)


BATCHED_BACKENDS: dict[str, Callable[..., TaskBatch]] = {
    "2DNavigation-v0": Navigation2DBatch,
    "HalfCheetahDir-v0": _mujoco_batch,
    "HalfCheetahVel-v0": _mujoco_batch,
    "AntDir-v0": _mujoco_batch,
    "AntVel-v0": _mujoco_batch,
}
"""Environments with a batched array backend; the others use :class:`GymnasiumTaskBatch`."""

BACKENDS = ("auto", "batched", "gymnasium")


def make_task_batch(env_id: str, num_envs: int, backend: str = "auto", env_kwargs: dict[str, Any] | None = None) -> TaskBatch:
    """A :class:`TaskBatch` of ``num_envs`` slots; ``auto`` picks the batched backend where one exists."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown sampler backend {backend!r}; choose one of {BACKENDS}")
    if backend == "batched" and env_id not in BATCHED_BACKENDS:
        raise ValueError(
            f"no batched backend for {env_id!r} (batched: {sorted(BATCHED_BACKENDS)}); use backend 'gymnasium' or 'auto'"
        )
    if backend in ("auto", "batched") and env_id in BATCHED_BACKENDS:
        return BATCHED_BACKENDS[env_id](env_id, num_envs, env_kwargs)
    return GymnasiumTaskBatch(env_id, num_envs, env_kwargs)


def _check_len(name: str, values: Sequence[Any], expected: int) -> None:
    if len(values) != expected:
        raise ValueError(f"{name} has {len(values)} entries, expected one per slot ({expected})")
