"""The meta-gradient estimators against a task whose meta-gradient is known: a one-step Gaussian bandit.

π_θ = N(θ, σ²), reward r(a) = −(a − g)². One inner policy-gradient step from K pre-update samples,
θ' = θ + α·(1/K) Σ_k r(a_k) ∇_θ log π_θ(a_k), then J(θ) = E_{a_1..K ∼ π_θ} E_{a' ∼ π_θ'}[r(a')]
= E[−(θ' − g)² − σ²]. With a_k = θ + σ ε_k the expectation is over ε only, so ∇J follows by
reparameterisation, to high precision by Monte Carlo over 10⁷ draws.

Each library estimate is the negative gradient of the outer loss that :class:`maml_rl.metalearner.EpisodeTerms`
builds (the TRPO surrogate at θ, through the inner step, plus DiCE's term for ``dice``), averaged over a batch
of independent draws (one per "task"); many batches give its mean and a confidence interval.
"""

import math

import numpy as np
import pytest
import torch
from helpers import learner_config
from torch import nn

from maml_rl.episodes import Episodes
from maml_rl.metalearner import MetaLearner
from maml_rl.policies.base import Policy, gaussian_log_prob

THETA, GOAL, SIGMA, K, K_VALID, ALPHA = 0.0, 1.0, 1.0, 5, 20, 0.1
DRAWS_PER_BATCH, BATCHES = 50, 100


class BanditPolicy(Policy):
    """A Gaussian over one action with mean θ (the only meta-parameter) and a fixed standard deviation."""

    def __init__(self) -> None:
        super().__init__(obs_dim=1, act_dim=1)
        del self.log_std
        self.register_buffer("log_std", torch.full((1,), math.log(SIGMA), dtype=torch.float64))
        self.theta = nn.Parameter(torch.full((1,), THETA, dtype=torch.float64))

    def sequence(self, obs, params=None):
        params = self.task_params(obs.shape[0]) if params is None else params
        tasks, steps, episodes, _ = obs.shape
        mean = params["theta"][:, None, None, :]
        # the fixed log-std as an output of θ with derivative 0, since the outer step differentiates every output
        return mean.expand(tasks, steps, episodes, 1), self.log_std + 0 * mean


def _episodes(means: torch.Tensor, samples: int, rng: torch.Generator) -> Episodes:
    """One-step episodes: ``samples`` actions per task from N(mean, σ²); the advantage is the reward itself."""
    tasks = means.shape[0]
    actions = means.view(tasks, 1, 1, 1) + SIGMA * torch.randn(tasks, 1, samples, 1, generator=rng, dtype=torch.float64)
    rewards = -((actions[..., 0] - GOAL) ** 2)
    log_std = torch.full((1,), math.log(SIGMA), dtype=torch.float64)
    episodes = Episodes(
        torch.zeros(tasks, 1, samples, 1, dtype=torch.float64),
        actions,
        rewards,
        torch.ones(tasks, 1, samples, dtype=torch.float64),
        gaussian_log_prob(actions, means.view(tasks, 1, 1, 1), log_std),
    ).validate()
    episodes.advantages = rewards.clone()  # no baseline, no normalisation: the plain score-function estimator
    episodes.advantage_scale = torch.ones(tasks, dtype=torch.float64)
    return episodes


def library_estimates(inner_loss: str, seed: int = 0) -> np.ndarray:
    """``BATCHES`` estimates of ∇J, each the mean over ``DRAWS_PER_BATCH`` independent draws."""
    policy = BanditPolicy()
    learner = MetaLearner(policy, learner_config(fast_lr=ALPHA, gamma=1.0, inner_loss=inner_loss))
    rng = torch.Generator().manual_seed(seed)
    estimates = []
    for _ in range(BATCHES):
        train = _episodes(policy.theta.detach().expand(DRAWS_PER_BATCH), K, rng)
        adaptation = learner.adapt(train)
        valid = _episodes(adaptation.params["theta"].detach()[:, 0], K_VALID, rng)
        _, grad = learner.terms(train, valid, adaptation, DRAWS_PER_BATCH).gradient()
        estimates.append(-grad.item())  # the loss is −J
    return np.array(estimates)


def true_meta_gradient(draws: int = 10_000_000, seed: int = 1) -> tuple[float, float]:
    """∇J by reparameterisation (a_k = θ + σ ε_k), and its Monte Carlo standard error."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws // 1_000_000):
        eps = rng.standard_normal((1_000_000, K))
        a = THETA + SIGMA * eps
        r = -((a - GOAL) ** 2)
        theta_prime = THETA + ALPHA * (r * eps / SIGMA).mean(1)
        d_step = (-2 * (a - GOAL) * eps / SIGMA).mean(1)  # d/dθ of the inner step's gradient, ε held fixed
        values.append(-2 * (theta_prime - GOAL) * (1 + ALPHA * d_step))
    values = np.concatenate(values)
    return float(values.mean()), float(values.std() / math.sqrt(len(values)))


def interval(estimates: np.ndarray, z: float = 3.29) -> tuple[float, float]:
    """The mean's 99.9 % normal confidence interval over the batches."""
    half = z * estimates.std(ddof=1) / math.sqrt(len(estimates))
    return estimates.mean() - half, estimates.mean() + half


def check_estimators(estimates: dict[str, np.ndarray], truth: float) -> None:
    """What the estimators' theory says (Rothfuss et al. 2019, Sec. 4-5), as assertions."""
    low, high = interval(estimates["dice"])
    assert low <= truth <= high, f"dice is unbiased: {truth:.4f} should be inside [{low:.4f}, {high:.4f}]"
    low, high = interval(estimates["reinforce"])
    assert not low <= truth <= high, f"reinforce is biased: {truth:.4f} should be outside [{low:.4f}, {high:.4f}]"
    # reinforce misses exactly DiCE's term for the pre-update samples: truth − reinforce ≈ mean(dice − reinforce)
    missing = estimates["dice"] - estimates["reinforce"]
    low, high = interval(missing)
    gap = truth - estimates["reinforce"].mean()
    assert low - 0.05 <= gap <= high + 0.05, f"reinforce's bias {gap:.4f} vs the missing term [{low:.4f}, {high:.4f}]"
    # LVC keeps the curvature of the pre-update samples (to first order in α): a much smaller bias than
    # reinforce's, and a lower variance than the unbiased DiCE estimator
    lvc_bias, reinforce_bias = abs(estimates["lvc"].mean() - truth), abs(estimates["reinforce"].mean() - truth)
    assert lvc_bias < 0.5 * reinforce_bias, f"lvc's bias {lvc_bias:.4f} vs reinforce's {reinforce_bias:.4f}"
    assert estimates["lvc"].var() < estimates["dice"].var(), "lvc has the lower variance"


@pytest.fixture(scope="module")
def estimates() -> dict[str, np.ndarray]:
    return {name: library_estimates(name) for name in ("reinforce", "lvc", "dice")}


@pytest.fixture(scope="module")
def truth() -> float:
    value, error = true_meta_gradient()
    assert error < 1e-3
    return value


def test_the_estimators_bias_and_variance_are_those_the_theory_predicts(estimates, truth):
    check_estimators(estimates, truth)


@pytest.mark.parametrize("swap", [("dice", "reinforce"), ("dice", "lvc"), ("lvc", "reinforce")])
def test_the_check_fails_when_two_estimators_are_swapped(estimates, truth, swap):
    a, b = swap
    swapped = {**estimates, a: estimates[b], b: estimates[a]}
    with pytest.raises(AssertionError):
        check_estimators(swapped, truth)


def test_lvc_and_dice_take_the_same_inner_step_as_reinforce():
    """The estimators differ in the meta-gradient only: their inner losses have REINFORCE's gradient."""
    steps = {}
    for name in ("reinforce", "lvc", "dice"):
        policy = BanditPolicy()
        learner = MetaLearner(policy, learner_config(fast_lr=ALPHA, gamma=1.0, inner_loss=name))
        train = _episodes(policy.theta.detach().expand(8), K, torch.Generator().manual_seed(3))
        steps[name] = learner.adapt(train).params["theta"].detach()
    torch.testing.assert_close(steps["lvc"], steps["reinforce"])
    torch.testing.assert_close(steps["dice"], steps["reinforce"])


def test_on_a_real_task_the_estimators_share_the_episodes_and_inner_step_and_differ_in_the_meta_gradient():
    from maml_rl.config import from_dict
    from maml_rl.experiment import Experiment

    metrics = {}
    for name in ("reinforce", "lvc", "dice"):
        cfg = from_dict(
            {
                "env-name": "2DNavigation-v0",
                "meta-batch-size": 4,
                "fast-batch-size": 5,
                "horizon": 20,
                "inner-loss": name,
                "policy": {"type": "rnn", "hidden-sizes": [8]},
            }
        )
        metrics[name] = Experiment.build(cfg).meta_batch(0)
        assert math.isfinite(metrics[name]["grad_norm"]) and metrics[name]["accepted"]
    for name in ("lvc", "dice"):
        assert metrics[name]["returns_after"] == metrics["reinforce"]["returns_after"]  # the same θ' and episodes
        assert metrics[name]["loss_before"] == pytest.approx(metrics["reinforce"]["loss_before"], rel=1e-6)
        assert metrics[name]["grad_norm"] != pytest.approx(metrics["reinforce"]["grad_norm"], rel=1e-3)


if __name__ == "__main__":  # the table of docs/algorithm.md: python tests/test_meta_gradient_estimators.py
    true, error = true_meta_gradient()
    print(f"true gradient {true:.4f} (± {error:.4f})")
    for estimator in ("reinforce", "lvc", "dice"):
        values = library_estimates(estimator)
        low, high = interval(values)
        print(f"{estimator:10s} {values.mean():.4f} [{low:.4f}, {high:.4f}]  sd per batch {values.std(ddof=1):.3f}")
