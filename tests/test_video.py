"""Videos: the camera keeps a running agent in frame; clips put before and after side by side, captioned."""

from __future__ import annotations

import numpy as np
import pytest

MUJOCO_ENVS = ["HalfCheetahDir-v0", "HalfCheetahVel-v0", "AntDir-v0", "AntVel-v0"]
WIDTH, HEIGHT = 160, 120


def render_env(env_id: str, env_kwargs: dict | None = None):
    """A small rendering environment, or a skip where no headless GL backend works."""
    from maml_rl.analysis.video import RenderingUnavailable, make_render_env

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


def test_task_titles_say_the_task_in_words():
    from maml_rl.analysis.video import task_title

    assert task_title({"direction": -1.0}) == "direction -1 (backward)"
    assert task_title({"direction": 1.0}) == "direction +1 (forward)"
    assert task_title({"velocity": 1.2345}) == "goal velocity 1.23 m/s"
    assert task_title({"goal": [0.123, -0.4]}) == "goal [0.12, -0.4]"


def test_side_by_side_holds_the_shorter_episode_on_its_last_frame_dimmed():
    from maml_rl.analysis.video import CAPTION_LINE, captioned, side_by_side

    left = [np.full((16, 8, 3), 200 + i, np.uint8) for i in range(3)]
    right = [np.full((16, 6, 3), 100 + i, np.uint8) for i in range(5)]
    frames = side_by_side(captioned(left, ["a"]), captioned(right, ["b"]), "title")
    assert len(frames) == 5 and frames[0].shape == (2 * CAPTION_LINE + 16, 14, 3)
    body = [f[2 * CAPTION_LINE :] for f in frames]
    assert (body[1][:, 1:7] == 201).all() and (body[1][:, 9:] == 101).all()
    assert (body[4][:, 1:7] == 202 // 2).all() and (body[4][:, 9:] == 104).all()  # left ended after 3 frames
    assert (body[0][:, 7:9] != 200).any(axis=-1).all()  # a divider between the halves


def test_captions_show_text():
    from maml_rl.analysis.video import CAPTION_LINE, caption

    strip = caption(["before adaptation: return -12.3", "second line"], 320)
    assert strip.shape == (2 * CAPTION_LINE, 320, 3) and strip.dtype == np.uint8
    for line in (strip[:CAPTION_LINE], strip[CAPTION_LINE:]):
        assert (line.max(axis=-1) > 200).sum() > 50  # white glyphs on the dark background
    assert (caption([""], 320) == caption([""], 320)[0, 0]).all()


def test_record_videos_starts_both_halves_from_the_same_state(tmp_path, monkeypatch):
    """Before and after share the reset seed; every clip is captioned with the task and its half's return."""
    import maml_rl.analysis.video as video
    from maml_rl.config import from_dict
    from maml_rl.experiment import Experiment

    render_env("HalfCheetahVel-v0").close()  # skips without headless GL
    experiment = Experiment.build(
        from_dict(
            {
                "env-name": "HalfCheetahVel-v0",
                "meta-batch-size": 2,
                "fast-batch-size": 2,
                "horizon": 4,
                "policy": {"hidden-sizes": [8]},
            }
        )
    )
    clips, captions, returns = {}, [], []
    monkeypatch.setattr(video, "write_clip", lambda path, frames, fps: clips.update({path.name: (list(frames), fps)}))
    original_caption = video.caption
    monkeypatch.setattr(
        video, "caption", lambda lines, width: captions.append(list(lines)) or original_caption(lines, width)
    )

    class RecordingSampler(video.Sampler):  # the renderer's rollouts: what the captions must report
        def sample(self, *args, **kwargs):
            episodes = super().sample(*args, **kwargs)
            returns.append(float(episodes.returns[0, 0]))
            return episodes

    monkeypatch.setattr(video, "Sampler", RecordingSampler)
    paths = video.record_videos(experiment, tmp_path / "videos", 1, seed=3, video_format="gif")
    assert [p.name for p in paths] == ["task0_before.gif", "task0_after.gif", "task0_before_after.gif"]
    both, fps = clips["task0_before_after.gif"]
    assert fps == pytest.approx(20.0)  # real time: 1 / dt, dt = 0.05 s
    assert len(both) == 5 and both[0].shape == (2 * video.CAPTION_LINE + video.HEIGHT, 2 * video.WIDTH, 3)
    first = both[0][2 * video.CAPTION_LINE :]
    np.testing.assert_array_equal(first[:, 1 : video.WIDTH - 1], first[:, video.WIDTH + 1 : -1])
    # Each half is its clip alone, below the captions and beside the divider (the last and first columns).
    for name, own, in_both in (
        ("before", slice(0, -1), slice(0, video.WIDTH - 1)),
        ("after", slice(1, None), slice(video.WIDTH + 1, None)),
    ):
        alone, _ = clips[f"task0_{name}.gif"]
        assert len(alone) == 5 and alone[0].shape == (2 * video.CAPTION_LINE + video.HEIGHT, video.WIDTH, 3)
        for a, b in zip(alone, both):
            np.testing.assert_array_equal(a[2 * video.CAPTION_LINE :, own], b[2 * video.CAPTION_LINE :, in_both])
    goal = experiment.sampler.sample_tasks(1, video.batch_rng(3, video.VIDEO_STREAM, 0))[0]["velocity"]
    assert [f"HalfCheetahVel-v0, task 0: goal velocity {goal:.2f} m/s"] in captions
    before, after = (
        f"{label}: return {r:.1f}" for label, r in zip(("before adaptation", "after adaptation (1 step)"), returns)
    )
    assert [f"task 0: goal velocity {goal:.2f} m/s", before] in captions and [before] in captions
    assert [f"task 0: goal velocity {goal:.2f} m/s", after] in captions and [after] in captions


def test_the_recorded_episodes_are_the_samplers_own(tmp_path, monkeypatch):
    """One rollout path: the clip's episode before adaptation is the one the training sampler (batched physics)
    draws for the same parameters and random stream, so videos show what training sees."""
    import maml_rl.analysis.video as video
    from maml_rl.config import from_dict
    from maml_rl.experiment import Experiment
    from maml_rl.seeding import VIDEO_STREAM, batch_rng, task_rngs

    render_env("HalfCheetahDir-v0").close()  # skips without headless GL
    config = from_dict(
        {
            "env-name": "HalfCheetahDir-v0",
            "meta-batch-size": 2,
            "fast-batch-size": 1,
            "horizon": 6,
            "policy": {"type": "rnn", "hidden-sizes": [8], "inputs": ["observation", "previous-reward"]},
        }
    )
    experiment = Experiment.build(config)
    captions, original = [], video.captioned
    monkeypatch.setattr(video, "write_clip", lambda *args: None)
    monkeypatch.setattr(video, "captioned", lambda frames, lines: captions.append(lines[-1]) or original(frames, lines))
    video.record_videos(experiment, tmp_path, 2, seed=5, video_format="gif")
    tasks = experiment.sampler.sample_tasks(2, batch_rng(5, VIDEO_STREAM, 0))
    params = {k: v.detach() for k, v in experiment.policy.task_params(2).items()}
    own = experiment.sampler.sample(experiment.policy, params, tasks, task_rngs(5, VIDEO_STREAM, 0, range(2), 1))
    for task in range(2):
        assert f"before adaptation: return {float(own.returns[task, 0]):.1f}" in captions


def test_mp4_without_its_encoder_names_the_package_and_the_gif_option(monkeypatch):
    import importlib.util

    from maml_rl.analysis.video import RenderingUnavailable, check_format

    check_format("mp4")
    check_format("gif")
    with pytest.raises(ValueError, match="mp4, gif"):
        check_format("avi")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RenderingUnavailable, match="pip install imageio-ffmpeg.*--video-format gif"):
        check_format("mp4")
    check_format("gif")


def test_recorded_clips_are_the_side_by_side_ones_in_task_order(tmp_path):
    from maml_rl.analysis.video import recorded_clips

    (tmp_path / "videos").mkdir()
    for name in ("task10_before_after.mp4", "task2_before_after.gif", "task2_before.mp4", "task0_after.mp4", "x.txt"):
        (tmp_path / "videos" / name).touch()
    assert [p.name for p in recorded_clips(tmp_path)] == ["task2_before_after.gif", "task10_before_after.mp4"]
    assert recorded_clips(tmp_path / "no-such-run") == []
