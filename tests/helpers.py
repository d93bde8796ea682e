"""Synthetic episodes and tiny policies for tests that need no simulator."""

from __future__ import annotations

import torch

from maml_rl.baseline import compute_advantages
from maml_rl.episodes import Episodes
from maml_rl.policies import GaussianMLPPolicy, GaussianRNNPolicy, gaussian_log_prob


def tiny_policy(kind: str, obs_dim: int = 3, act_dim: int = 2, seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    kwargs.setdefault("hidden_sizes", (5, 4))
    if kind == "mlp":
        return GaussianMLPPolicy(obs_dim, act_dim, **kwargs)
    return GaussianRNNPolicy(obs_dim, act_dim, **kwargs)


def synthetic_episodes(
    policy,
    tasks: int = 3,
    steps: int = 6,
    episodes: int = 4,
    seed: int = 0,
    dtype=torch.float64,
    lengths: torch.Tensor | None = None,
) -> Episodes:
    """Episodes with actions drawn from ``policy`` (so log-probs are consistent) and random rewards."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(tasks, steps, episodes, policy.obs_dim, generator=g, dtype=dtype)
    if lengths is None:
        lengths = torch.randint(steps // 2, steps + 1, (tasks, episodes), generator=g)
    mask = (torch.arange(steps).view(1, steps, 1) < lengths.unsqueeze(1)).to(dtype)
    obs = obs * mask.unsqueeze(-1)
    rewards = torch.randn(tasks, steps, episodes, generator=g, dtype=dtype) * mask
    with torch.no_grad():
        if policy.inputs.observation_only:
            mean, log_std = policy.sequence(obs, policy.task_params(tasks))
            actions = mean + log_std.exp() * torch.randn(mean.shape, generator=g, dtype=dtype)
        else:  # the inputs hold the actions themselves: draw them first, then score them under the policy
            actions = torch.randn(tasks, steps, episodes, policy.act_dim, generator=g, dtype=dtype)
            mean, log_std = policy.sequence(
                policy.inputs.of_sequences(obs, actions, rewards), policy.task_params(tasks)
            )
        log_probs = gaussian_log_prob(actions, mean, log_std)
    actions = actions * mask.unsqueeze(-1)
    episodes_ = Episodes(obs, actions, rewards, mask, log_probs * mask).validate()
    return compute_advantages(episodes_, gamma=0.9, gae_lambda=0.95)


def learner_config(**values):
    """A config with the given (hyphen- or underscore-keyed) inner-loop and TRPO values, validated."""
    from maml_rl.config import from_dict

    return from_dict({key.replace("_", "-"): value for key, value in values.items()})


def trpo_update(learner, train: Episodes, valid: Episodes, adaptation=None) -> dict:
    """One outer step on these episodes, as a meta-batch takes it: the terms of every task, :func:`trpo_step`,
    and the accepted parameters written into the policy; returns the step's metrics."""
    from maml_rl.optim import flatten, unflatten
    from maml_rl.trpo import trpo_step

    adaptation = learner.adapt(train) if adaptation is None else adaptation
    terms = learner.terms(train, valid, adaptation, train.num_tasks)
    theta = flatten(learner.policy.meta_params()).detach()
    metrics, accepted = trpo_step(terms, theta, learner.config)
    if accepted is not None:
        learner.write_params(unflatten(accepted, learner.policy.meta_params()))
    return metrics


def autograd_fisher_product(kl: torch.Tensor, theta: dict) -> callable:
    """v ↦ ∇²_θ KL v by double backward through the whole (second-order) adaptation: the plain reference
    that the learner's Jᵀ F J product is checked against."""
    from maml_rl.optim import flatten

    grad_kl = flatten(torch.autograd.grad(kl, list(theta.values()), create_graph=True))
    return lambda v: flatten(torch.autograd.grad(grad_kl.dot(v), list(theta.values()), retain_graph=True))
