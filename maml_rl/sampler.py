"""Lockstep rollouts: every task × episode slot advanced together, one policy forward per time step.

Each task runs with its own parameters (a leading task axis on parameters and observations); the sampler
owns the recurrent hidden state and starts it afresh at each episode's first step. This is the one rollout
loop: training, evaluation and videos all sample through :meth:`Sampler.sample` (a video renders frames
from its ``on_step`` observer), so they share the policy's inputs, its action noise and the action mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from maml_rl.envs.task import Task
from maml_rl.envs.task_batch import TaskBatch, make_task_batch
from maml_rl.episodes import Episodes
from maml_rl.policies.base import Params, Policy, gaussian_log_prob


def normalized_to_bounds(actions: torch.Tensor, scale: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """pytorch-maml-rl's action normalisation: clip to [−scale, scale], map linearly onto [low, high]."""
    clipped = actions.clamp(-scale, scale)
    return low + (clipped + scale) * (high - low) / (2 * scale)


class Sampler:
    """Samples tasks and rolls out ``episodes_per_task`` episodes of each, all in lockstep.

    Args:
        env_id: a registered task environment (``HalfCheetahDir-v0``, …).
        episodes_per_task: episodes per task and call (``fast-batch-size``).
        horizon: maximum episode length.
        normalization_scale: the policy acts in [−scale, scale], mapped onto the action bounds.
        backend: ``auto`` | ``batched`` | ``gymnasium`` (see :func:`maml_rl.envs.task_batch.make_task_batch`).
        env_kwargs: keyword arguments for ``gymnasium.make``.
    """

    def __init__(
        self,
        env_id: str,
        episodes_per_task: int,
        horizon: int,
        normalization_scale: float = 10.0,
        backend: str = "auto",
        env_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.env_id, self.episodes_per_task, self.horizon = env_id, episodes_per_task, horizon
        self.normalization_scale, self.backend, self.env_kwargs = normalization_scale, backend, env_kwargs or {}
        self.family = gym.make(env_id, **self.env_kwargs).unwrapped
        """An environment of the task family: ``sample_tasks`` and the spaces."""
        self.observation_dim = int(np.prod(self.family.observation_space.shape))
        self.action_dim = int(np.prod(self.family.action_space.shape))
        self._batch: TaskBatch | None = None

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[Task]:
        return self.family.sample_tasks(num_tasks, rng)

    def _batch_for(self, num_slots: int) -> TaskBatch:
        """The task batch of ``num_slots`` slots, made on first use and remade only if the size changes."""
        if self._batch is None or self._batch.num_envs != num_slots:
            self.close()
            self._batch = make_task_batch(self.env_id, num_slots, self.backend, self.env_kwargs)
        return self._batch

    @torch.no_grad()
    def sample(
        self,
        policy: Policy,
        params: Params,
        tasks: Sequence[Task],
        rngs: Sequence[np.random.Generator] | np.random.Generator,
        on_step: Callable[[TaskBatch, np.ndarray], None] | None = None,
    ) -> Episodes:
        """Rolls out ``episodes_per_task`` episodes of each task with that task's ``params`` (task axis first).

        ``rngs`` holds one generator per task: task i's reset seeds and action noise come from ``rngs[i]`` alone,
        so a task's episodes do not depend on which other tasks are sampled with it (or where). One generator
        instead is split into one per task with ``Generator.spawn``. Equal generators give equal episodes.

        ``on_step(task_batch, stepped)``, if given, is called after the reset (every slot) and after each step
        with the slots that took it (slot k: task ``k // episodes_per_task``): an observer, e.g. a renderer.
        """
        num_tasks, per_task = len(tasks), self.episodes_per_task
        if isinstance(rngs, np.random.Generator):
            rngs = rngs.spawn(num_tasks)
        if len(rngs) != num_tasks:
            raise ValueError(f"got {len(rngs)} random generators for {num_tasks} tasks; pass one per task")
        for name, p in params.items():
            if p.shape[0] != num_tasks:
                raise ValueError(f"params[{name!r}] has {p.shape[0]} task rows for {num_tasks} tasks")
        device = next(iter(params.values())).device
        envs = self._batch_for(num_tasks * per_task)
        slot_tasks = [task for task in tasks for _ in range(per_task)]
        steps, act_dim = self.horizon, self.action_dim
        # per task: its episodes' reset seeds, then its action noise for every step
        seeds = np.concatenate([rng.integers(0, 2**31 - 1, size=per_task) for rng in rngs])
        noise = np.stack([rng.standard_normal((steps, per_task, act_dim), dtype=np.float32) for rng in rngs])
        noise = torch.from_numpy(noise).to(device)
        low = torch.as_tensor(envs.action_low, dtype=torch.float32, device=device)
        high = torch.as_tensor(envs.action_high, dtype=torch.float32, device=device)

        obs_dim = envs.observation_dim
        shape = (num_tasks, steps, per_task)
        observations = torch.zeros(*shape, obs_dim, device=device)
        actions = torch.zeros(*shape, act_dim, device=device)
        rewards = torch.zeros(shape, device=device)
        mask = torch.zeros(shape, device=device)
        log_probs = torch.zeros(shape, device=device)
        terminated_any = np.zeros(len(slot_tasks), dtype=bool)
        terms: dict[str, torch.Tensor] = {}

        obs = envs.reset(slot_tasks, seeds)
        active = np.ones(len(slot_tasks), dtype=bool)
        if on_step is not None:
            on_step(envs, active.copy())
        hidden = policy.initial_hidden(num_tasks, per_task)
        for t in range(steps):
            obs_t = torch.from_numpy(obs).to(device=device, dtype=torch.float32).view(num_tasks, per_task, obs_dim)
            if t == 0:
                inputs_t = policy.inputs.first_step(obs_t)
            else:  # the action and reward exactly as recorded, so the losses rebuild the same inputs
                inputs_t = policy.inputs.next_step(obs_t, actions[:, t - 1], rewards[:, t - 1])
            mean, log_std, hidden = policy(inputs_t, params, hidden)
            action = mean + log_std.exp() * noise[:, t]
            env_action = normalized_to_bounds(action, self.normalization_scale, low, high)
            active_t = torch.from_numpy(active).to(device).view(num_tasks, per_task)
            observations[:, t] = obs_t
            actions[:, t] = action
            log_probs[:, t] = gaussian_log_prob(action, mean, log_std)
            mask[:, t] = active_t.float()
            obs, reward, terminated = envs.step(env_action.reshape(-1, act_dim).double().cpu().numpy(), active)
            if on_step is not None:
                on_step(envs, active.copy())
            rewards[:, t] = torch.from_numpy(reward).to(device=device, dtype=torch.float32).view(num_tasks, per_task)
            for name, value in envs.last_reward_terms.items():
                if name not in terms:
                    terms[name] = torch.zeros(shape, device=device)
                terms[name][:, t] = (
                    torch.from_numpy(value).to(device=device, dtype=torch.float32).view(num_tasks, per_task)
                )
            terminated_any |= terminated
            active = active & ~terminated
            if not active.any():
                break
        valid = mask.unsqueeze(-1)
        episodes = Episodes(observations * valid, actions * valid, rewards * mask, mask, log_probs * mask)
        episodes.terminated = torch.from_numpy(terminated_any).to(device).view(num_tasks, per_task)
        episodes.reward_terms = {name: term * mask for name, term in terms.items()}
        return episodes.validate()

    def close(self) -> None:
        if self._batch is not None:
            self._batch.close()
            self._batch = None
