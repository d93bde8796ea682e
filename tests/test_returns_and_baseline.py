import numpy as np
import pytest
import torch

from maml_rl.baseline import baseline_features, fit_linear_baseline, gae, normalize_advantages
from maml_rl.episodes import discounted_returns, masked_mean


def _hand_returns(rewards, gamma):
    out, running = np.zeros_like(rewards), 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def _hand_gae(rewards, values, gamma, lam):
    """The textbook backward recursion (Schulman et al. 2016, eq. 16) with V = 0 past the end."""
    adv, running = np.zeros_like(rewards), 0.0
    for t in reversed(range(len(rewards))):
        next_v = values[t + 1] if t + 1 < len(rewards) else 0.0
        delta = rewards[t] + gamma * next_v - values[t]
        running = delta + gamma * lam * running
        adv[t] = running
    return adv


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_gae_matches_backward_recursion_with_padding(gamma, lam):
    rng = np.random.default_rng(0)
    steps, lengths = 7, [7, 4, 1]
    rewards = rng.normal(size=(1, steps, len(lengths)))
    values = rng.normal(size=(1, steps, len(lengths)))
    mask = np.zeros_like(rewards)
    for e, n in enumerate(lengths):
        mask[0, :n, e] = 1
    rewards, values = rewards * mask, values * mask
    got = gae(*(torch.as_tensor(x) for x in (rewards, values, mask)), gamma, lam).numpy()
    for e, n in enumerate(lengths):
        expected = _hand_gae(rewards[0, :n, e], values[0, :n, e], gamma, lam)
        np.testing.assert_allclose(got[0, :n, e], expected, rtol=1e-10, atol=1e-12)
        assert np.all(got[0, n:, e] == 0)


@pytest.mark.parametrize("gamma", [0.0, 0.7, 1.0])
def test_discounted_returns_by_hand(gamma):
    rewards = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]], dtype=torch.float64)
    mask = torch.tensor([[[1.0], [1.0], [1.0], [0.0]]], dtype=torch.float64)
    got = discounted_returns(rewards, mask, gamma)[0, :, 0].numpy()
    expected = np.append(_hand_returns(np.array([1.0, 2.0, 3.0]), gamma), 0.0)
    np.testing.assert_allclose(got, expected)
    # gamma = 0.5 written out: G_0 = 1 + 0.5·2 + 0.25·3
    assert discounted_returns(rewards, mask, 0.5)[0, 0, 0].item() == pytest.approx(2.75)


def test_lambda_one_advantage_is_return_minus_value():
    rng = np.random.default_rng(1)
    rewards, values = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 3))
    mask = np.ones_like(rewards)
    t = lambda x: torch.as_tensor(x)  # noqa: E731
    adv = gae(t(rewards), t(values), t(mask), 0.9, 1.0)
    expected = discounted_returns(t(rewards), t(mask), 0.9) - t(values)
    torch.testing.assert_close(adv, expected)


def test_baseline_fit_recovers_linear_target():
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 30, 8, 3, generator=g, dtype=torch.float64)
    mask = torch.ones(2, 30, 8, dtype=torch.float64)
    mask[1, 20:, :4] = 0  # padding must not disturb the fit
    features = baseline_features(obs, mask)
    true_w = torch.randn(2, features.shape[-1], generator=g, dtype=torch.float64)
    target = torch.einsum("ntef,nf->nte", features, true_w)
    w = fit_linear_baseline(features.reshape(2, -1, features.shape[-1]), target.reshape(2, -1))
    fitted = torch.einsum("ntef,nf->nte", features, w)
    torch.testing.assert_close(fitted * mask, target * mask, atol=1e-3, rtol=1e-3)


def test_baseline_fit_survives_degenerate_features():
    """All-zero features (e.g. a task whose episodes are all padding) give a finite fit, not NaN."""
    features = torch.zeros(1, 10, 6, dtype=torch.float64)
    w = fit_linear_baseline(features, torch.zeros(1, 10, dtype=torch.float64))
    assert torch.isfinite(w).all()


def test_normalized_advantages_have_unit_moments_over_valid_steps():
    g = torch.Generator().manual_seed(0)
    adv = torch.randn(3, 9, 4, generator=g, dtype=torch.float64) * 5 + 2
    mask = (torch.rand(3, 9, 4, generator=g) > 0.3).double()
    out = normalize_advantages(adv, mask)
    torch.testing.assert_close(masked_mean(out, mask), torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(masked_mean(out**2, mask), torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0)
    assert torch.all(out[mask == 0] == 0)
