"""SwimmerDir and SwimmerVel: gymnasium's Swimmer-v5 with a task-dependent forward reward.

The swimmer robot the original fork meant its algorithm for: a three-link snake in a viscous fluid, two
actuated joints. SwimmerDir: swim forward or backward along x (reward = direction × x-velocity − 1e-4 Σa²);
SwimmerVel: swim at a goal x-velocity (reward = −|x-velocity − goal| − 1e-4 Σa²). Observation (8 values: the
body's angles and every velocity), dynamics, frame skip (4, dt = 0.04) and reset noise (uniform on positions
and velocities) are Swimmer-v5's; episodes never terminate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.envs.mujoco.swimmer_v5 import SwimmerEnv

from maml_rl.envs import rewards
from maml_rl.envs.camera import with_tracking_camera
from maml_rl.envs.task import DirectionTasks, Task, VelocityTasks

SWIMMER_VELOCITY_RANGE = (0.0, 0.3)
"""Goal velocities of SwimmerVel (m/s); see ``docs/environments.md`` for the measurements behind it."""


class _SwimmerTaskEnv(SwimmerEnv):
    def __init__(self, task: Task | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("ctrl_cost_weight", rewards.SWIMMER_CTRL_COST)
        super().__init__(**with_tracking_camera(kwargs))
        self.reset_task(task if task is not None else self._default_task())

    def step(self, action: np.ndarray):
        return super().step(self.checked_action(action))

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, float]]:
        terms = rewards.swimmer_reward_terms(self._forward(x_velocity), action)
        return float(rewards.total(terms)), {f"reward_{name}": float(value) for name, value in terms.items()}


class SwimmerDirEnv(DirectionTasks, _SwimmerTaskEnv):
    """reward = direction × x-velocity − 1e-4 Σa², direction ∈ {−1, +1} with probability ½ each."""


class SwimmerVelEnv(VelocityTasks, _SwimmerTaskEnv):
    """reward = −|x-velocity − goal| − 1e-4 Σa², goal ~ U[0, 0.3] m/s."""

    velocity_range = SWIMMER_VELOCITY_RANGE
