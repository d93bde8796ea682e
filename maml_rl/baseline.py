"""The linear feature baseline and generalised advantage estimation, batched over tasks.

Baseline (Duan et al. 2016, rllab; as in pytorch-maml-rl): per task, a ridge regression of the discounted
returns on the features [obs, obs², t/100, (t/100)², (t/100)³, 1] of the valid steps.
GAE (Schulman et al. 2016): A_t = Σ_k (γλ)^k δ_{t+k}, δ_t = r_t + γ V(s_{t+1}) − V(s_t), V = 0 past the end.
"""

from __future__ import annotations

import torch
from torch import Tensor

from maml_rl.episodes import Episodes, discounted_cumsum, discounted_returns

RIDGE = 1e-5
"""Initial ridge coefficient (pytorch-maml-rl's reg_coeff); multiplied by 10 while a fit is ill-conditioned."""

MAX_CONDITION = 1e10
RIDGE_ATTEMPTS = 6


def baseline_features(observations: Tensor, mask: Tensor) -> Tensor:
    """Features ``(tasks, T, episodes, 2·obs_dim + 4)`` of the linear baseline, zero on padding."""
    obs = observations.clamp(-10, 10)
    steps = obs.shape[1]
    t = torch.arange(steps, dtype=obs.dtype, device=obs.device).view(1, steps, 1, 1) / 100.0
    t = t.expand(*obs.shape[:3], 1)
    features = torch.cat([obs, obs.pow(2), t, t.pow(2), t.pow(3), torch.ones_like(t)], -1)
    return features * mask.unsqueeze(-1)


def fit_linear_baseline(features: Tensor, targets: Tensor) -> Tensor:
    """Per-task ridge regression: weights ``(tasks, F)`` with ``features (tasks, n, F)``, ``targets (tasks, n)``.

    Solves (XᵀX + ρI) w = Xᵀy in float64 with ``torch.linalg.lstsq``; tasks whose system is ill-conditioned
    (condition number above 1e10) or whose solution is not finite are refitted with ρ ×10, up to six times.
    The solver is LAPACK's ``gels`` (QR), not torch's CPU default ``gelsy`` (QR with column pivoting): torch
    hands ``gelsy`` an uninitialised pivot array, which it reads on entry (a non-zero entry pins that column),
    so its last bits depended on leftover heap contents and differed between calls and processes. The system
    is square and, with ρ > 0, of full rank, so pivoting buys nothing here.
    """
    x = features.double()
    gram = x.transpose(1, 2) @ x
    rhs = x.transpose(1, 2) @ targets.double().unsqueeze(-1)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    ridge = torch.full((gram.shape[0], 1, 1), RIDGE, dtype=gram.dtype, device=gram.device)
    for _ in range(RIDGE_ATTEMPTS):
        system = gram + ridge * eye
        weights = torch.linalg.lstsq(system, rhs, driver="gels").solution
        bad = ~torch.isfinite(weights).all(1).squeeze(-1) | (torch.linalg.cond(system) > MAX_CONDITION)
        if not bad.any():
            break
        ridge = torch.where(bad.view(-1, 1, 1), ridge * 10, ridge)
    return weights.squeeze(-1).to(features.dtype)


def linear_baseline_values(episodes: Episodes, gamma: float) -> Tensor:
    """Baseline values ``(tasks, T, episodes)`` fitted on the episodes' own discounted returns."""
    features = baseline_features(episodes.observations, episodes.mask)
    tasks, steps, count, dim = features.shape
    returns = discounted_returns(episodes.rewards, episodes.mask, gamma)
    weights = fit_linear_baseline(features.reshape(tasks, -1, dim), returns.reshape(tasks, -1))
    values = torch.einsum("ntef,nf->nte", features, weights)
    return values * episodes.mask


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, gae_lambda: float) -> Tensor:
    """Generalised advantage estimates along axis 1 (time); ``values`` is zero on padding."""
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], 1)
    deltas = (rewards + gamma * next_values - values) * mask
    return discounted_cumsum(deltas, gamma * gae_lambda) * mask


def advantage_moments(advantages: Tensor, mask: Tensor, eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    """Each task's mean and standard deviation (+ ``eps``) over its valid steps, shaped ``(tasks, 1, 1)``."""
    count = mask.sum((1, 2), keepdim=True).clamp_min(1.0)
    mean = (advantages * mask).sum((1, 2), keepdim=True) / count
    var = ((advantages - mean).pow(2) * mask).sum((1, 2), keepdim=True) / count
    return mean, var.sqrt() + eps


def normalize_advantages(advantages: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Zero mean, unit standard deviation over each task's valid steps; zero on padding."""
    mean, scale = advantage_moments(advantages, mask, eps)
    return (advantages - mean) / scale * mask


def compute_advantages(episodes: Episodes, gamma: float, gae_lambda: float, normalize: bool = True) -> Episodes:
    """Fits the baseline, fills ``episodes.advantages`` (normalised per task) and ``episodes.advantage_scale`` (the
    standard deviation each task's advantages were divided by; 1 without ``normalize``) and returns the episodes."""
    values = linear_baseline_values(episodes, gamma)
    advantages = gae(episodes.rewards, values, episodes.mask, gamma, gae_lambda)
    if normalize:
        episodes.advantages = normalize_advantages(advantages, episodes.mask)
        episodes.advantage_scale = advantage_moments(advantages, episodes.mask)[1].view(-1)
    else:
        episodes.advantages = advantages
        episodes.advantage_scale = torch.ones(advantages.shape[0], dtype=advantages.dtype, device=advantages.device)
    return episodes
