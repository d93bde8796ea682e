"""Task environments, registered with gymnasium.

``gymnasium.make("HalfCheetahDir-v0")`` etc. works once this package is imported. Every environment is
an ordinary ``gymnasium.Env`` with ``sample_tasks(n)`` and ``reset_task(task)`` (see :mod:`.task`).
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import mujoco

from maml_rl.envs.task import Task, TaskMixin

DEFAULT_HORIZON = 100

ENV_ENTRY_POINTS = {
    "HalfCheetahDir-v0": "maml_rl.envs.half_cheetah:HalfCheetahDirEnv",
    "HalfCheetahVel-v0": "maml_rl.envs.half_cheetah:HalfCheetahVelEnv",
    "AntDir-v0": "maml_rl.envs.ant:AntDirEnv",
    "AntVel-v0": "maml_rl.envs.ant:AntVelEnv",
    "2DNavigation-v0": "maml_rl.envs.navigation:Navigation2DEnv",
}


class MuJoCoWarning(RuntimeWarning):
    """A warning raised by the MuJoCo engine (e.g. an unstable simulation)."""


_IGNORED_MUJOCO_WARNINGS = ("compiler attribute 'settotalmass' is deprecated",)


def _mujoco_warning(message: str) -> None:
    if not message.startswith(_IGNORED_MUJOCO_WARNINGS):  # gymnasium's own XML, nothing a user can act on
        warnings.warn(f"MuJoCo: {message}", MuJoCoWarning, stacklevel=2)


def _route_mujoco_warnings() -> None:
    """MuJoCo prints warnings and appends them to ./MUJOCO_LOG.TXT; send them to Python's warnings instead."""
    mujoco.set_mju_user_warning(_mujoco_warning)


for _env_id, _entry_point in ENV_ENTRY_POINTS.items():
    if _env_id not in gym.registry:
        gym.register(_env_id, entry_point=_entry_point, max_episode_steps=DEFAULT_HORIZON)
_route_mujoco_warnings()

__all__ = ["ENV_ENTRY_POINTS", "DEFAULT_HORIZON", "MuJoCoWarning", "Task", "TaskMixin"]
