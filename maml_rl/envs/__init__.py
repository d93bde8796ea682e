"""Task environments, registered with gymnasium on import.

``gymnasium.make("HalfCheetahDir-v0")`` etc. works once this package is imported. Every environment is
an ordinary ``gymnasium.Env`` with ``sample_tasks(n)`` and ``reset_task(task)`` (see :mod:`.task`); the
families and their batched physics backends are registered in one table, here, through
:func:`~maml_rl.envs.registry.register_task_family` (which is also how a family of your own is added).
MuJoCo's warnings (e.g. an unstable simulation) become Python :class:`MuJoCoWarning` warnings instead of a
``MUJOCO_LOG.TXT`` file in the working directory.
"""

from __future__ import annotations

import warnings

import mujoco

from maml_rl.envs.registry import DEFAULT_HORIZON, register_task_family
from maml_rl.envs.task import Task, TaskMixin

_MUJOCO_BATCH = "maml_rl.envs.batched_mujoco"
for _env_id, _entry_point, _batched in (
    ("HalfCheetahDir-v0", "maml_rl.envs.half_cheetah:HalfCheetahDirEnv", f"{_MUJOCO_BATCH}:HalfCheetahTaskBatch"),
    ("HalfCheetahVel-v0", "maml_rl.envs.half_cheetah:HalfCheetahVelEnv", f"{_MUJOCO_BATCH}:HalfCheetahTaskBatch"),
    ("AntDir-v0", "maml_rl.envs.ant:AntDirEnv", f"{_MUJOCO_BATCH}:AntTaskBatch"),
    ("AntVel-v0", "maml_rl.envs.ant:AntVelEnv", f"{_MUJOCO_BATCH}:AntTaskBatch"),
    ("SwimmerDir-v0", "maml_rl.envs.swimmer:SwimmerDirEnv", f"{_MUJOCO_BATCH}:SwimmerTaskBatch"),
    ("SwimmerVel-v0", "maml_rl.envs.swimmer:SwimmerVelEnv", f"{_MUJOCO_BATCH}:SwimmerTaskBatch"),
    ("2DNavigation-v0", "maml_rl.envs.navigation:Navigation2DEnv", "maml_rl.envs.navigation:Navigation2DBatch"),
):
    register_task_family(_env_id, _entry_point, batched=_batched)


class MuJoCoWarning(RuntimeWarning):
    """A warning raised by the MuJoCo engine (e.g. an unstable simulation)."""


_IGNORED_MUJOCO_WARNINGS = ("compiler attribute 'settotalmass' is deprecated",)


def _mujoco_warning(message: str) -> None:
    if not message.startswith(_IGNORED_MUJOCO_WARNINGS):  # gymnasium's own XML, nothing a user can act on
        warnings.warn(f"MuJoCo: {message}", MuJoCoWarning, stacklevel=2)


# MuJoCo prints warnings and appends them to ./MUJOCO_LOG.TXT; send them to Python's warnings instead.
mujoco.set_mju_user_warning(_mujoco_warning)

__all__ = ["DEFAULT_HORIZON", "MuJoCoWarning", "Task", "TaskMixin", "register_task_family"]
