"""Videos: the camera keeps a running agent in frame."""

from __future__ import annotations

import numpy as np
import pytest

MUJOCO_ENVS = ["HalfCheetahDir-v0", "HalfCheetahVel-v0", "AntDir-v0", "AntVel-v0"]
WIDTH, HEIGHT = 160, 120


def render_env(env_id: str, env_kwargs: dict | None = None):
    """A small rendering environment, or a skip where no headless GL backend works."""
    from maml_rl.video import RenderingUnavailable, make_render_env

    try:
        return make_render_env(env_id, env_kwargs or {}, WIDTH, HEIGHT)
    except RenderingUnavailable as e:
        pytest.skip(f"no headless rendering here: {e}")


def project(env, point: np.ndarray) -> np.ndarray:
    """Pixel (column, row) of a world ``point`` in the last rendered frame, from the scene's OpenGL camera."""
    viewer = env.mujoco_renderer.viewer
    cam = viewer.scn.camera[0]
    forward, up = np.asarray(cam.forward), np.asarray(cam.up)
    relative = np.asarray(point) - np.asarray(cam.pos)
    depth = relative @ forward
    assert depth > 0, f"{point} is behind the camera"
    x = relative @ np.cross(forward, up) * cam.frustum_near / depth
    y = relative @ up * cam.frustum_near / depth
    height = cam.frustum_top - cam.frustum_bottom
    half_width = 0.5 * height * WIDTH / HEIGHT  # MuJoCo sets left and right to match the viewport's aspect
    column = (x - cam.frustum_center + half_width) / (2 * half_width) * WIDTH
    row = (1 - (y - cam.frustum_bottom) / height) * HEIGHT
    return np.array([column, row])


def agent_pixels(frame: np.ndarray) -> np.ndarray:
    """(row, column) of the pixels showing the agent's tan body: red well above blue, unlike floor and sky."""
    rgb = frame.astype(int)
    return np.argwhere(rgb[..., 0] - rgb[..., 2] > 50)


def torso_in_view(env, frame: np.ndarray) -> bool:
    """Whether the torso projects inside ``frame`` and agent-coloured pixels lie around that point."""
    column, row = project(env, env.data.xpos[env.model.body("torso").id])
    if not (0 <= column < WIDTH and 0 <= row < HEIGHT):
        return False
    near = np.abs(agent_pixels(frame) - [row, column]).max(axis=1) <= 5
    return bool(near.any())


@pytest.mark.parametrize("env_id", MUJOCO_ENVS)
@pytest.mark.parametrize("camera", ["tracking", "gymnasium default"])
def test_camera_keeps_a_running_agent_in_frame(env_id, camera):
    # "gymnasium default" is the free camera these environments rendered through before they named one.
    env = render_env(env_id, {} if camera == "tracking" else {"camera_name": None})
    env.reset(seed=0)
    torso = env.model.body("torso").id
    start = env.data.xpos[torso].copy()
    first = env.render()
    assert torso_in_view(env, first) and len(agent_pixels(first)) > 50
    velocity = -3.0 if env_id.endswith("Dir-v0") else 3.0  # one episode of running backward or forward
    for _ in range(100):
        env.data.qvel[0] = velocity
        env.step(np.zeros(env.action_space.shape))
    assert abs(env.data.xpos[torso][0] - start[0]) > 5.0  # the torso moved several metres
    last = env.render()
    if camera == "tracking":
        assert torso_in_view(env, last) and len(agent_pixels(last)) > 50
    else:
        assert not torso_in_view(env, last) and len(agent_pixels(last)) == 0  # what the old videos showed
    env.close()
