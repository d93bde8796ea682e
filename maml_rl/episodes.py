"""The trajectory container: lockstep rollouts of tasks × episodes, padded to the horizon.

Layout (task-leading, then time-major; checked by :meth:`Episodes.validate`):

=================  ==============================  ==========================================
field              shape                           meaning
=================  ==============================  ==========================================
``observations``   ``(tasks, T, episodes, obs)``   observation *before* the action at step t
``actions``        ``(tasks, T, episodes, act)``   the policy's raw action (before normalisation)
``rewards``        ``(tasks, T, episodes)``        reward of step t
``mask``           ``(tasks, T, episodes)``        1.0 where step t belongs to the episode
``log_probs``      ``(tasks, T, episodes)``        log π(a_t | history) at sampling time
``advantages``     ``(tasks, T, episodes)``        filled by :func:`maml_rl.baseline.compute_advantages`
``terminated``     ``(tasks, episodes)``           1.0 where the episode ended by termination (a fall),
                                                   not by the horizon (``None`` if not recorded)
``reward_terms``   name → ``(tasks, T, episodes)`` the reward's terms (``forward``, ``ctrl``, …) where the
                                                   environment splits it; they sum to ``rewards``
=================  ==============================  ==========================================

Every episode starts at t = 0; after its last step (termination or the horizon) it is zero padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Episodes:
    """Rollouts of ``tasks × episodes``, padded to ``T`` steps. See the module docstring for shapes."""

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor
    log_probs: Tensor
    advantages: Tensor | None = field(default=None)
    advantage_scale: Tensor | None = field(default=None)
    """``(tasks,)``: what each task's advantages were divided by when normalised (see ``compute_advantages``)."""
    terminated: Tensor | None = field(default=None)
    reward_terms: dict[str, Tensor] = field(default_factory=dict)

    def validate(self) -> Episodes:
        """Asserts the documented shapes; the message carries the actual ones."""
        tasks, steps, episodes = self.rewards.shape
        expected = {
            "observations": (tasks, steps, episodes),
            "actions": (tasks, steps, episodes),
            "mask": (tasks, steps, episodes),
            "log_probs": (tasks, steps, episodes),
        }
        for name, prefix in expected.items():
            shape = tuple(getattr(self, name).shape)
            if shape[:3] != prefix:
                raise ValueError(
                    f"Episodes.{name} has shape {shape}; expected leading (tasks, T, episodes) = {prefix} "
                    f"like rewards {tuple(self.rewards.shape)}"
                )
        return self

    def first_episodes(self, count: int) -> Episodes:
        """The first ``count`` episodes of every task (views, not copies), with the same per-task fields."""
        if not 1 <= count <= self.num_episodes:
            raise ValueError(f"count must be in [1, {self.num_episodes}] episodes, got {count}")
        return self._view(slice(None), slice(0, count))

    def select_tasks(self, tasks: range) -> Episodes:
        """The episodes of the tasks ``tasks`` (contiguous views along the task axis, not copies)."""
        if not (0 <= tasks.start <= tasks.stop <= self.num_tasks and tasks.step == 1 and len(tasks)):
            raise ValueError(f"tasks must be a non-empty step-1 range within [0, {self.num_tasks}), got {tasks}")
        return self._view(slice(tasks.start, tasks.stop), slice(None))

    def _view(self, tasks: slice, episodes: slice) -> Episodes:
        """Every field's view at these tasks and episodes."""
        steps = lambda x: x[tasks, :, episodes]  # noqa: E731  (tasks, T, episodes, ...)
        return Episodes(
            observations=steps(self.observations),
            actions=steps(self.actions),
            rewards=steps(self.rewards),
            mask=steps(self.mask),
            log_probs=steps(self.log_probs),
            advantages=None if self.advantages is None else steps(self.advantages),
            advantage_scale=None if self.advantage_scale is None else self.advantage_scale[tasks],
            terminated=None if self.terminated is None else self.terminated[tasks, episodes],
            reward_terms={name: steps(value) for name, value in self.reward_terms.items()},
        )

    def task_sums(self, normalization_scale: float | None = None) -> dict[str, tuple[Tensor, Tensor]]:
        """The per-batch diagnostics as per-task numerators and denominators, in float64: name → (sums
        ``(tasks,)``, counts ``(tasks,)``). Summed over any split of the tasks, they give the batch's means
        (:func:`combine_sums`), so a sharded meta-batch reports what one process would.

        The diagnostics: the mean return, the mean episode length, the fraction of episodes that terminated
        (fell) before the horizon, the mean of each reward term per valid step (``reward_<term>``) and, given the
        policy's ``normalization_scale``, the fraction of action components clipped to it
        (``action_saturation``) and the mean |action| / scale (``action_magnitude``: 1 is the action bound, 0.1
        a tenth of it)."""
        f64 = torch.float64
        steps = self.mask.to(f64).sum((1, 2))
        episodes = torch.full_like(steps, float(self.num_episodes))
        sums = {
            "returns": ((self.rewards * self.mask).to(f64).sum((1, 2)), episodes),
            "episode_length": (steps, episodes),
        }
        if self.terminated is not None:
            sums["terminated_fraction"] = (self.terminated.to(f64).sum(1), episodes)
        if normalization_scale is not None:
            clipped = (self.actions.abs() > normalization_scale).float().mean(-1)
            sums["action_saturation"] = ((clipped * self.mask).to(f64).sum((1, 2)), steps)
            magnitude = (self.actions.abs() / normalization_scale).mean(-1)
            sums["action_magnitude"] = ((magnitude * self.mask).to(f64).sum((1, 2)), steps)
        for name, term in self.reward_terms.items():
            sums[f"reward_{name}"] = ((term * self.mask).to(f64).sum((1, 2)), steps)
        return sums

    @property
    def num_tasks(self) -> int:
        return self.rewards.shape[0]

    @property
    def num_episodes(self) -> int:
        return self.rewards.shape[2]

    @property
    def lengths(self) -> Tensor:
        """Episode lengths, ``(tasks, episodes)``."""
        return self.mask.sum(1)

    @property
    def returns(self) -> Tensor:
        """Undiscounted episode returns, ``(tasks, episodes)``."""
        return (self.rewards * self.mask).sum(1)

    @property
    def env_steps(self) -> int:
        """Environment steps actually taken (valid steps)."""
        return int(self.mask.sum().item())


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` over valid steps, per task: reduces every axis after the first."""
    dims = tuple(range(1, x.dim()))
    return (x * mask).sum(dims) / mask.sum(dims).clamp_min(1.0)


def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """G_t = Σ_{k≥0} γ^k r_{t+k} within each episode, along axis 1 (time); zero on padding."""
    return discounted_cumsum(rewards * mask, gamma) * mask


def discounted_cumsum(x: Tensor, discount: float) -> Tensor:
    """y_t = Σ_{s≥t} discount^(s−t) x_s along axis 1, as one matrix product (no Python loop over time)."""
    steps = x.shape[1]
    t = torch.arange(steps, device=x.device, dtype=x.dtype)
    exponent = t[None, :] - t[:, None]  # exponent[t, s] = s − t
    weights = torch.where(
        exponent >= 0, discount ** exponent.clamp_min(0), torch.zeros((), dtype=x.dtype, device=x.device)
    )
    return torch.einsum("ts,ns...->nt...", weights, x)


def combine_sums(parts: list[dict[str, tuple[Tensor, Tensor]]]) -> dict[str, float]:
    """Means of the batch from the :meth:`Episodes.task_sums` of its slices, in task order."""
    out = {}
    for name in parts[0]:
        sums = torch.cat([part[name][0] for part in parts])
        counts = torch.cat([part[name][1] for part in parts])
        out[name] = (sums.sum() / counts.sum().clamp_min(1.0)).item()
    return out
