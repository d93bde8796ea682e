"""Clips of adapted policies: one episode per task, before and after adaptation, rendered headless.

The episodes are rolled out by the sampler itself (:meth:`maml_rl.sampler.Sampler.sample`, on gymnasium
environments made to render), which hands each step to a frame recorder: the clips show exactly what
training and evaluation would sample, inputs, action noise and action mapping included.

MuJoCo renders off-screen through EGL or OSMesa; ``MUJOCO_GL`` picks one (default here: ``egl``). The task
environments render through the model's tracking camera (:mod:`maml_rl.envs.camera`), so the agent stays in
frame however far it runs. Clips play in real time (one frame per environment step, ``1/dt`` frames per
second) as H.264 MP4, written by imageio's ffmpeg plugin (the ``imageio-ffmpeg`` wheel ships the encoder), or
as GIF.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

from maml_rl.baseline import compute_advantages
from maml_rl.envs.task_batch import TaskBatch
from maml_rl.exits import first_line
from maml_rl.experiment import Experiment
from maml_rl.sampler import Sampler
from maml_rl.seeding import VIDEO_STREAM, batch_rng, task_rngs
from maml_rl.threads import torch_threads

VIDEO_FORMATS = ("mp4", "gif")
SIDE_BY_SIDE = "before_after"
WIDTH, HEIGHT = 320, 240  # multiples of 16 (H.264's macroblock), as are the caption heights: no rescaling
CAPTION_LINE = 24
_BACKGROUND, _TEXT = (32, 32, 32), (255, 255, 255)


class RenderingUnavailable(RuntimeError):
    """No headless OpenGL backend could render a frame, or no encoder can write the chosen format."""


def render_kwargs(env_kwargs: dict[str, Any], width: int = WIDTH, height: int = HEIGHT) -> dict[str, Any]:
    """``env_kwargs`` for a task environment that renders RGB frames off-screen."""
    return {**env_kwargs, "render_mode": "rgb_array", "width": width, "height": height}


def make_render_env(env_id: str, env_kwargs: dict[str, Any], width: int = WIDTH, height: int = HEIGHT) -> gym.Env:
    """A task environment that renders RGB frames off-screen (one frame rendered to prove it), or
    :class:`RenderingUnavailable`."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    creator = load_env_creator(gym.spec(env_id).entry_point)
    if "rgb_array" not in getattr(creator, "metadata", {}).get("render_modes", ()):
        raise RenderingUnavailable(f"{env_id} has no renderer; videos are recorded for the MuJoCo task environments")
    try:
        env = gym.make(env_id, **render_kwargs(env_kwargs, width, height)).unwrapped
        env.reset(seed=0)
        frame = env.render()
    except Exception as e:  # GL failures surface as many exception types, from several libraries
        raise RenderingUnavailable(
            f"cannot render {env_id} headless with MUJOCO_GL={os.environ['MUJOCO_GL']} ({type(e).__name__}: "
            f"{first_line(e)}); install EGL (libegl1) or OSMesa "
            "(libosmesa6) and set MUJOCO_GL=egl or MUJOCO_GL=osmesa"
        ) from None
    if frame is None or np.asarray(frame).ndim != 3:
        raise RenderingUnavailable(f"{env_id} rendered no RGB frame with MUJOCO_GL={os.environ['MUJOCO_GL']}")
    return env


class FrameRecorder:
    """An ``on_step`` observer of :meth:`~maml_rl.sampler.Sampler.sample`: each slot's frame after the reset and
    after every step it takes (``len(frames[k])`` = its episode's steps + 1)."""

    def __init__(self) -> None:
        self.frames: list[list[np.ndarray]] = []

    def __call__(self, batch: TaskBatch, stepped: np.ndarray) -> None:
        if not self.frames:
            self.frames = [[] for _ in range(batch.num_envs)]
        for slot in np.flatnonzero(stepped):
            self.frames[slot].append(batch.render(int(slot)))


def task_title(task: Mapping[str, Any]) -> str:
    """The task in words: ``direction +1 (forward)``, ``goal velocity 1.30 m/s``, else ``key value, ...``."""
    if set(task) == {"direction"}:
        direction = float(task["direction"])
        return f"direction {direction:+.0f} ({'forward' if direction > 0 else 'backward'})"
    if set(task) == {"velocity"}:
        return f"goal velocity {float(task['velocity']):.2f} m/s"
    return ", ".join(f"{key} {np.round(np.asarray(value, dtype=float), 2).tolist()}" for key, value in task.items())


def caption(lines: Sequence[str], width: int) -> np.ndarray:
    """A ``(CAPTION_LINE × len(lines), width, 3)`` strip with ``lines`` centred, white on dark grey."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=14)  # Pillow's bundled TrueType font: no system fonts needed
    image = Image.new("RGB", (width, CAPTION_LINE * len(lines)), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((width / 2, CAPTION_LINE * (i + 0.5)), line, fill=_TEXT, font=font, anchor="mm")
    return np.asarray(image)


def captioned(frames: Sequence[np.ndarray], lines: Sequence[str]) -> list[np.ndarray]:
    """``frames`` below a caption of ``lines``."""
    strip = caption(lines, frames[0].shape[1])
    return [np.concatenate([strip, frame], axis=0) for frame in frames]


def side_by_side(left: list[np.ndarray], right: list[np.ndarray], title: str) -> list[np.ndarray]:
    """Two clips next to each other under ``title``; the shorter one holds its last frame, dimmed."""
    length = max(len(left), len(right))
    left, right = (clip + [clip[-1] // 2] * (length - len(clip)) for clip in (left, right))
    strip = caption([title], left[0].shape[1] + right[0].shape[1])
    frames = []
    for a, b in zip(left, right):
        frame = np.concatenate([strip, np.concatenate([a, b], axis=1)], axis=0)
        frame[:, a.shape[1] - 1 : a.shape[1] + 1] = _BACKGROUND  # a divider between the halves
        frames.append(frame)
    return frames


def check_format(video_format: str) -> None:
    """Raises :class:`RenderingUnavailable` (or ``ValueError``) if clips of ``video_format`` cannot be written."""
    if video_format not in VIDEO_FORMATS:
        raise ValueError(f"video format must be one of {', '.join(VIDEO_FORMATS)}, got {video_format!r}")
    if video_format == "mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise RenderingUnavailable(
            "MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); or write GIFs with --video-format gif"
        )


def write_clip(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """Writes ``frames`` (RGB, equal sizes) to ``path``: H.264 MP4 or GIF, by its suffix."""
    import imageio.v2 as imageio

    if path.suffix == ".gif":
        imageio.mimsave(path, list(frames), duration=1000 / fps, loop=0)
        return
    # yuv420p: the pixel format every player decodes (libx264 would otherwise keep full-resolution colour).
    with imageio.get_writer(
        path,
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=16,
        ffmpeg_log_level="error",
    ) as writer:
        for frame in frames:
            writer.append_data(frame)


def record_videos(
    experiment: Experiment, folder: Path, num_tasks: int, seed: int, video_format: str = "mp4"
) -> list[Path]:
    """Records ``num_tasks`` fresh tasks into ``folder``, per task ``i``: ``task{i}_before_after.{video_format}``
    (both episodes side by side under the task, each captioned with its return), and ``task{i}_before`` and
    ``task{i}_after`` alone. Both episodes of a task start from the same reset seed and action noise.
    """
    check_format(video_format)
    cfg, policy, learner = experiment.config, experiment.policy, experiment.learner
    make_render_env(cfg.env_name, cfg.env_kwargs).close()  # fails here, before any sampling, without a GL backend
    renderer = Sampler(
        cfg.env_name, 1, cfg.horizon, cfg.normalization_scale, "gymnasium", render_kwargs(cfg.env_kwargs)
    )
    try:
        fps = 1.0 / renderer.family.dt  # real time: one frame per environment step
        tasks = experiment.sampler.sample_tasks(num_tasks, batch_rng(seed, VIDEO_STREAM, 0))
        before = {k: v.detach() for k, v in policy.task_params(num_tasks).items()}
        with torch_threads(1):
            train = experiment.sampler.sample(
                policy, before, tasks, task_rngs(seed, VIDEO_STREAM, 0, range(num_tasks), 0)
            )
        with torch_threads(experiment.whole_batch_threads):
            compute_advantages(train, cfg.gamma, cfg.gae_lambda)
            after = {k: v.detach() for k, v in learner.adapt(train, create_graph=False).params.items()}
        clips = {}
        for name, params in (("before", before), ("after", after)):
            recorder = FrameRecorder()
            with torch_threads(1):  # the same reset seeds and action noise before and after
                episodes = renderer.sample(
                    policy, params, tasks, task_rngs(seed, VIDEO_STREAM, 0, range(num_tasks), 1), on_step=recorder
                )
            clips[name] = list(zip(recorder.frames, episodes.returns[:, 0].tolist()))
    finally:
        renderer.close()
    steps = f"{cfg.num_steps} step{'s' if cfg.num_steps > 1 else ''}"
    labels = {"before": "before adaptation", "after": f"after adaptation ({steps})"}
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, task in enumerate(tasks):
        title = f"task {i}: {task_title(task)}"
        halves = {}
        for name in ("before", "after"):
            frames, episode_return = clips[name][i]
            label = f"{labels[name]}: return {episode_return:.1f}"
            halves[name] = captioned(frames, [label])
            written.append(folder / f"task{i}_{name}.{video_format}")
            write_clip(written[-1], captioned(frames, [title, label]), fps)
        written.append(folder / f"task{i}_{SIDE_BY_SIDE}.{video_format}")
        write_clip(written[-1], side_by_side(halves["before"], halves["after"], f"{cfg.env_name}, {title}"), fps)
    return written


def recorded_clips(run: str | os.PathLike[str]) -> list[Path]:
    """The side-by-side clips that ``test.py --record-video`` wrote into a run folder, task 0 first."""
    clips = [p for p in Path(run, "videos").glob(f"task*_{SIDE_BY_SIDE}.*") if p.suffix[1:] in VIDEO_FORMATS]
    return sorted(clips, key=lambda p: (int(p.name[4:].split("_")[0]), p.suffix))
