"""AntDir and AntVel: gymnasium's Ant-v5 with a task-dependent forward reward.

Tasks as in Finn et al. 2017 (MAML), Sec. 5.3; cost weights and survive bonus as pytorch-maml-rl uses them.
The forward velocity is the torso's x velocity; the episode terminates when the torso's height leaves
Ant-v5's healthy range [0.2, 1.0] (or the state is not finite). Observation (105 values, clipped contact
forces included), dynamics, frame skip and reset noise are Ant-v5's.
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv

from maml_rl.envs import rewards
from maml_rl.envs.task import DirectionTasks, MujocoTaskEnv, VelocityTasks


class _AntTaskEnv(MujocoTaskEnv, AntEnv):
    default_weights = {
        "ctrl_cost_weight": rewards.ANT_CTRL_COST,
        "contact_cost_weight": rewards.ANT_CONTACT_COST,
        "healthy_reward": rewards.ANT_SURVIVE_REWARD,
    }

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, float]]:
        terms = rewards.ant_reward_terms(
            self._forward(x_velocity), action, self.contact_forces.ravel(), float(self.is_healthy)
        )
        return float(rewards.total(terms)), {f"reward_{name}": float(value) for name, value in terms.items()}


class AntDirEnv(DirectionTasks, _AntTaskEnv):
    """reward = direction × torso x-velocity + 0.05 − 0.005 Σa² − 5e-4 Σ clip(cfrc_ext, −1, 1)², direction ∈ {−1, +1}."""


class AntVelEnv(VelocityTasks, _AntTaskEnv):
    """reward = −|torso x-velocity − goal| + 1 + 0.05 − 0.005 Σa² − 5e-4 Σ clip(cfrc_ext, −1, 1)², goal ~ U[0, 3]."""

    velocity_range = (0.0, 3.0)
    forward_term = staticmethod(rewards.ant_velocity_forward)
