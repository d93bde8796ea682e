"""2DNavigation: a point in the plane moves towards a hidden goal (Finn et al. 2017, Sec. 5.3).

Cheap to simulate, so it is what the learning tests run on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from maml_rl.envs import rewards
from maml_rl.envs.task import Task, TaskMixin, checked_actions
from maml_rl.envs.task_batch import TaskBatch, check_len


class Navigation2DEnv(TaskMixin, gym.Env):
    """Observation: the point's position. Action: a displacement in [−0.1, 0.1]² (clipped).

    reward = −‖position − goal‖ after the move; the episode terminates when both coordinates are within
    0.01 of the goal. The point starts at the origin; goals ~ U[−0.5, 0.5]².
    """

    metadata = {"render_modes": []}
    task_shapes = {"goal": (2,)}
    goal_range = (-0.5, 0.5)
    max_step = 0.1

    def __init__(self, task: Task | None = None, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-self.max_step, self.max_step, shape=(2,), dtype=np.float32)
        self.render_mode = render_mode
        self._position = np.zeros(2, dtype=np.float64)
        self.reset_task(task if task is not None else {"goal": [0.0, 0.0]})

    def _sample_task_values(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"goal": rng.uniform(*self.goal_range, size=(n, 2))}

    def _on_task(self, task: Task) -> None:
        self._goal = np.asarray(task["goal"], dtype=np.float64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._position = np.zeros(2, dtype=np.float64)
        return self._position.astype(np.float32), {"task": self.task}

    def step(self, action):
        action = checked_actions(action, self.action_space.low, self.action_space.high, type(self).__name__)
        self._position = self._position + action
        reward = float(rewards.navigation_reward(self._position, self._goal))
        terminated = bool(rewards.navigation_reached(self._position, self._goal))
        return self._position.astype(np.float32), reward, terminated, False, {"task": self.task}


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
        check_len("tasks", tasks, self.num_envs)
        check_len("seeds", seeds, self.num_envs)
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
