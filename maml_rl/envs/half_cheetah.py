"""HalfCheetahDir and HalfCheetahVel: gymnasium's HalfCheetah-v5 with a task-dependent forward reward.

Tasks as in Finn et al. 2017 (MAML), Sec. 5.3: run forward or backward (Dir), or at a goal velocity (Vel).
Observation, dynamics, frame skip (5, dt = 0.05) and reset noise are HalfCheetah-v5's.
"""

from __future__ import annotations

from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from maml_rl.envs import rewards
from maml_rl.envs.task import DirectionTasks, MujocoTaskEnv, VelocityTasks


class _HalfCheetahTaskEnv(MujocoTaskEnv, HalfCheetahEnv):
    default_weights = {"ctrl_cost_weight": rewards.HALF_CHEETAH_CTRL_COST}
    reward_terms = staticmethod(rewards.half_cheetah_reward_terms)


class HalfCheetahDirEnv(DirectionTasks, _HalfCheetahTaskEnv):
    """reward = direction × forward velocity − 0.05 Σa², direction ∈ {−1, +1} with probability ½ each."""


class HalfCheetahVelEnv(VelocityTasks, _HalfCheetahTaskEnv):
    """reward = −|forward velocity − goal| − 0.05 Σa², goal ~ U[0, 2]."""

    velocity_range = (0.0, 2.0)
