"""What a policy sees at each step: the observation, and optionally the previous action, reward and an episode start.

A recurrent policy that also receives its last action and reward can infer the task from its own experience
within an episode (Wang et al. 2018, "Prefrontal cortex as a meta-reinforcement learning system"; Duan et al.
2016, RL²). :class:`PolicyInputs` builds that input in one function, :meth:`PolicyInputs.build`: the sampler
calls it once per time step with what it just recorded, and the losses call it on whole recorded sequences
through :meth:`PolicyInputs.of_sequences`, so sampling and loss never disagree about what the policy saw.

Conventions: the previous action is the policy's own sampled action (in its normalised space, before clipping
onto the action bounds, as :class:`maml_rl.episodes.Episodes` stores it); the previous reward is the
environment's; both are zero at an episode's first step, where ``episode-start`` is 1 (0 elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

INPUT_NAMES = ("observation", "previous-action", "previous-reward", "episode-start")
"""The inputs a policy may receive, in the order they are concatenated."""


def check_input_names(names: tuple[str, ...] | list[str]) -> str | None:
    """Why ``names`` is not a valid ``inputs`` list, or ``None``."""
    unknown = [n for n in names if n not in INPUT_NAMES]
    if unknown:
        return f"unknown input {unknown[0]!r}; choose from {', '.join(INPUT_NAMES)}"
    if not names or names[0] != "observation":
        return "must start with observation"
    if len(set(names)) != len(names):
        return "lists an input twice"
    return None


@dataclass(frozen=True)
class PolicyInputs:
    """The input layout of a policy: which signals, concatenated in the order of ``names``."""

    obs_dim: int
    act_dim: int
    names: tuple[str, ...] = ("observation",)

    def __post_init__(self) -> None:
        problem = check_input_names(tuple(self.names))
        if problem:
            raise ValueError(f"policy inputs {list(self.names)}: {problem}")

    @property
    def dim(self) -> int:
        """Size of the built input vector."""
        sizes = {"observation": self.obs_dim, "previous-action": self.act_dim, "previous-reward": 1, "episode-start": 1}
        return sum(sizes[n] for n in self.names)

    @property
    def observation_only(self) -> bool:
        return self.names == ("observation",)

    def build(
        self,
        observation: Tensor,
        previous_action: Tensor | None,
        previous_reward: Tensor | None,
        episode_start: Tensor | None,
    ) -> Tensor:
        """The policy input from its parts, concatenated on the last axis in the order of ``names``.

        Shapes share a prefix (``(tasks, batch)`` for one step, ``(tasks, T, episodes)`` for sequences):
        ``observation (..., obs_dim)``, ``previous_action (..., act_dim)``, ``previous_reward (...)``,
        ``episode_start (...)``. Parts the layout does not use may be ``None``.
        """
        if self.observation_only:
            return observation
        parts = {
            "observation": observation,
            "previous-action": previous_action,
            "previous-reward": None if previous_reward is None else previous_reward.unsqueeze(-1),
            "episode-start": None if episode_start is None else episode_start.unsqueeze(-1),
        }
        return torch.cat([parts[n].to(observation.dtype) for n in self.names], -1)

    def first_step(self, observation: Tensor) -> Tensor:
        """The input at an episode's first step: no previous action or reward yet, ``episode-start`` = 1."""
        prefix = observation.shape[:-1]
        zeros = observation.new_zeros(prefix)
        return self.build(observation, observation.new_zeros(*prefix, self.act_dim), zeros, torch.ones_like(zeros))

    def next_step(self, observation: Tensor, action: Tensor, reward: Tensor) -> Tensor:
        """The input at a later step, given the action just taken and the reward it earned."""
        return self.build(observation, action, reward, observation.new_zeros(observation.shape[:-1]))

    def of_sequences(self, observations: Tensor, actions: Tensor, rewards: Tensor) -> Tensor:
        """Inputs of whole episodes ``(tasks, T, episodes, dim)`` from what the sampler recorded.

        ``observations (tasks, T, episodes, obs_dim)``, ``actions (tasks, T, episodes, act_dim)``,
        ``rewards (tasks, T, episodes)``; each episode starts at t = 0.
        """
        if self.observation_only:
            return observations
        previous_action = torch.cat([torch.zeros_like(actions[:, :1]), actions[:, :-1]], 1)
        previous_reward = torch.cat([torch.zeros_like(rewards[:, :1]), rewards[:, :-1]], 1)
        episode_start = torch.zeros_like(rewards)
        episode_start[:, 0] = 1.0
        return self.build(observations, previous_action, previous_reward, episode_start)
