"""HalfCheetahDir and HalfCheetahVel: gymnasium's HalfCheetah-v5 with a task-dependent forward reward.

Tasks as in Finn et al. 2017 (MAML), Sec. 5.3: run forward or backward (Dir), or at a goal velocity (Vel).
Observation, dynamics, frame skip (5, dt = 0.05) and reset noise are HalfCheetah-v5's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from maml_rl.envs import rewards
from maml_rl.envs.camera import with_tracking_camera
from maml_rl.envs.task import DirectionTasks, Task, VelocityTasks


class _HalfCheetahTaskEnv(HalfCheetahEnv):
    def __init__(self, task: Task | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("ctrl_cost_weight", rewards.HALF_CHEETAH_CTRL_COST)
        super().__init__(**with_tracking_camera(kwargs))
        self.reset_task(task if task is not None else self._default_task())

    def step(self, action: np.ndarray):
        return super().step(self.checked_action(action))

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, float]]:
        terms = rewards.half_cheetah_reward_terms(self._forward(x_velocity), action)
        return float(rewards.total(terms)), {f"reward_{name}": float(value) for name, value in terms.items()}


class HalfCheetahDirEnv(DirectionTasks, _HalfCheetahTaskEnv):
    """reward = direction × forward velocity − 0.05 Σa², direction ∈ {−1, +1} with probability ½ each."""


class HalfCheetahVelEnv(VelocityTasks, _HalfCheetahTaskEnv):
    """reward = −|forward velocity − goal| − 0.05 Σa², goal ~ U[0, 2]."""

    velocity_range = (0.0, 2.0)
