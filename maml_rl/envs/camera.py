"""The camera the MuJoCo task environments render through: the model's own tracking camera."""

from __future__ import annotations

from typing import Any

TRACKING_CAMERA = "track"
"""Camera of gymnasium's half_cheetah.xml and ant.xml, in ``trackcom`` mode: it follows the torso's subtree."""


def with_tracking_camera(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` for gymnasium's ``MujocoEnv``, rendering through :data:`TRACKING_CAMERA` unless a camera is given.

    With no camera named, gymnasium 1.x renders HalfCheetah-v5 and Ant-v5 through a free camera that stays
    where the agent started, so a running agent leaves the frame within seconds. ``camera_name=None``
    explicitly keeps gymnasium's default.
    """
    if "camera_id" not in kwargs:
        kwargs.setdefault("camera_name", TRACKING_CAMERA)
    return kwargs
