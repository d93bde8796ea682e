"""SwimmerDir and SwimmerVel: gymnasium's Swimmer-v5 with a task-dependent forward reward.

The swimmer robot the original fork meant its algorithm for: a three-link snake in a viscous fluid, two
actuated joints. SwimmerDir: swim forward or backward along x (reward = direction × x-velocity − 1e-4 Σa²);
SwimmerVel: swim at a goal x-velocity (reward = −|x-velocity − goal| − 1e-4 Σa²). Observation (8 values: the
body's angles and every velocity), dynamics, frame skip (4, dt = 0.04) and reset noise (uniform on positions
and velocities) are Swimmer-v5's; episodes never terminate.
"""

from __future__ import annotations

from gymnasium.envs.mujoco.swimmer_v5 import SwimmerEnv

from maml_rl.envs import rewards
from maml_rl.envs.task import DirectionTasks, MujocoTaskEnv, VelocityTasks

SWIMMER_VELOCITY_RANGE = (0.0, 0.3)
"""Goal velocities of SwimmerVel (m/s); see ``docs/environments.md`` for the measurements behind it."""


class _SwimmerTaskEnv(MujocoTaskEnv, SwimmerEnv):
    default_weights = {"ctrl_cost_weight": rewards.SWIMMER_CTRL_COST}
    reward_terms = staticmethod(rewards.swimmer_reward_terms)


class SwimmerDirEnv(DirectionTasks, _SwimmerTaskEnv):
    """reward = direction × x-velocity − 1e-4 Σa², direction ∈ {−1, +1} with probability ½ each."""


class SwimmerVelEnv(VelocityTasks, _SwimmerTaskEnv):
    """reward = −|x-velocity − goal| − 1e-4 Σa², goal ~ U[0, 0.3] m/s."""

    velocity_range = SWIMMER_VELOCITY_RANGE
