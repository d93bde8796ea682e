"""Clips of adapted policies: one episode per task, before and after adaptation, rendered headless.

MuJoCo renders off-screen through EGL or OSMesa; ``MUJOCO_GL`` picks one (default here: ``egl``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from maml_rl.baseline import compute_advantages
from maml_rl.trainer import EVAL_STREAM, Experiment, batch_rng, torch_threads
from maml_rl.sampler import normalized_to_bounds

VIDEO_STREAM = EVAL_STREAM + 1


class RenderingUnavailable(RuntimeError):
    """No headless OpenGL backend could render a frame."""


def make_render_env(env_id: str, env_kwargs: dict[str, Any], width: int = 320, height: int = 240) -> gym.Env:
    """A task environment that renders RGB frames off-screen, or :class:`RenderingUnavailable`."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        env = gym.make(env_id, render_mode="rgb_array", width=width, height=height, **env_kwargs).unwrapped
        env.reset(seed=0)
        frame = env.render()
    except Exception as e:  # GL failures surface as many exception types, from several libraries
        raise RenderingUnavailable(
            f"cannot render {env_id} headless with MUJOCO_GL={os.environ['MUJOCO_GL']} ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'no message'}); install EGL (libegl1) or OSMesa "
            "(libosmesa6) and set MUJOCO_GL=egl or MUJOCO_GL=osmesa") from None
    if frame is None or np.asarray(frame).ndim != 3:
        raise RenderingUnavailable(f"{env_id} rendered no RGB frame with MUJOCO_GL={os.environ['MUJOCO_GL']}")
    return env


@torch.no_grad()
def _episode_frames(experiment: Experiment, env: gym.Env, params: dict[str, torch.Tensor], seed: int) -> list[np.ndarray]:
    """One episode of the policy with one task's parameters (a task axis of size 1), rendered each step."""
    policy, cfg = experiment.policy, experiment.config
    device = next(iter(params.values())).device
    low = torch.as_tensor(env.action_space.low, dtype=torch.float32, device=device)
    high = torch.as_tensor(env.action_space.high, dtype=torch.float32, device=device)
    obs, _ = env.reset(seed=seed)
    hidden = policy.initial_hidden(1, 1)
    generator = torch.Generator(device=device).manual_seed(seed)
    frames = [env.render()]
    action = reward = None
    for _ in range(cfg.horizon):
        obs_t = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=device).view(1, 1, -1)
        if action is None:
            inputs_t = policy.inputs.first_step(obs_t)
        else:
            inputs_t = policy.inputs.next_step(obs_t, action, torch.tensor([[reward]], dtype=torch.float32, device=device))
        mean, log_std, hidden = policy(inputs_t, params, hidden)
        action = mean + log_std.exp() * torch.randn(mean.shape, generator=generator, device=device)
        env_action = normalized_to_bounds(action, cfg.normalization_scale, low, high).view(-1).double().cpu().numpy()
        obs, reward, terminated, _, _ = env.step(env_action)
        frames.append(env.render())
        if terminated:
            break
    return frames


def record_videos(experiment: Experiment, folder: Path, num_tasks: int, seed: int, fps: int = 20) -> list[Path]:
    """Writes ``task{i}_before.gif`` and ``task{i}_after.gif`` for ``num_tasks`` fresh tasks into ``folder``."""
    import imageio.v2 as imageio

    cfg, policy, sampler = experiment.config, experiment.policy, experiment.sampler
    env = make_render_env(cfg.env_name, cfg.env_kwargs)
    rng = batch_rng(seed, VIDEO_STREAM, 0)
    tasks = sampler.sample_tasks(num_tasks, rng)
    before = {k: v.detach() for k, v in policy.task_params(num_tasks).items()}
    with torch_threads(1):
        train = sampler.sample(policy, before, tasks, rng)
    with torch_threads(experiment.learner_threads):
        compute_advantages(train, cfg.gamma, cfg.gae_lambda)
        after = {k: v.detach() for k, v in experiment.learner.adapt(train, create_graph=False).params.items()}
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, task in enumerate(tasks):
        env.reset_task(task)
        for name, params in (("before", before), ("after", after)):
            frames = _episode_frames(experiment, env, {k: v[i : i + 1] for k, v in params.items()}, seed + i)
            path = folder / f"task{i}_{name}.gif"
            imageio.mimsave(path, frames, duration=1000 / fps, loop=0)
            written.append(path)
    env.close()
    return written
