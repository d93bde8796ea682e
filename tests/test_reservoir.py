"""Reservoir settings of the frozen recurrent circuit: spectral radius, leak and density do what they say."""

import pytest
import torch

from maml_rl.config import ConfigError, from_dict
from maml_rl.policies import GaussianRNNPolicy
from maml_rl.policies.rnn import spectral_radius


def _policy(seed=0, hidden=(64,), obs_dim=4, **kwargs) -> GaussianRNNPolicy:
    torch.manual_seed(seed)
    return GaussianRNNPolicy(obs_dim, 2, hidden, **kwargs).double()


@pytest.mark.parametrize("radius", [0.2, 0.9, 1.0, 1.2])
@pytest.mark.parametrize("density", [1.0, 0.2])
def test_measured_spectral_radius_equals_the_setting(radius, density):
    policy = _policy(hidden=(64, 32), spectral_radius=radius, recurrent_density=density)
    for layer in policy.cells:
        assert spectral_radius(layer.weight_hh) == pytest.approx(radius, rel=1e-6)  # float32 weights


def test_default_init_has_pytorchs_spectral_radius_and_is_untouched_by_default_settings():
    plain = _policy()
    explicit = _policy(spectral_radius=None, leak=1.0, recurrent_density=1.0)
    for name, value in plain.state_dict().items():
        assert torch.equal(value, explicit.state_dict()[name]), name
    assert 0.4 < spectral_radius(plain.cells[0].weight_hh) < 0.8  # the fast-forgetting circuit of PyTorch's init


def test_density_keeps_that_fraction_of_the_recurrent_weights():
    policy = _policy(hidden=(100,), recurrent_density=0.1)
    kept = torch.count_nonzero(policy.cells[0].weight_hh).item() / 100**2
    assert 0.08 < kept < 0.12  # 10,000 Bernoulli(0.1) draws: the standard deviation is 0.003
    dense = _policy(hidden=(100,))
    assert torch.count_nonzero(dense.cells[0].weight_hh).item() == 100**2


def _early_input_effect(policy: GaussianRNNPolicy, step: int) -> float:
    """How far a unit change of the input at t = 0 moves the action mean at ``step``."""
    x = 0.3 * torch.randn(
        1, step + 1, 8, policy.input_dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    y = x.clone()
    y[:, 0] += 1.0
    with torch.no_grad():
        return (policy.sequence(x)[0][:, step] - policy.sequence(y)[0][:, step]).abs().max().item()


def test_a_longer_memory_keeps_an_early_input_longer():
    """Radius close to 1 with a small leak (slow, near-critical dynamics) vs radius 0.2 (fast forgetting)."""
    long_memory = _early_input_effect(_policy(spectral_radius=0.99, leak=0.2), step=25)
    short_memory = _early_input_effect(_policy(spectral_radius=0.2), step=25)
    default = _early_input_effect(_policy(), step=25)
    assert long_memory > 1e-3, long_memory
    assert short_memory < 1e-9, short_memory  # float64: gone to rounding within 25 steps
    assert long_memory > 1e3 * default, (long_memory, default)


def test_leak_interpolates_between_the_old_state_and_the_cell():
    policy = _policy(hidden=(5,), obs_dim=3, leak=0.25)
    plain = _policy(hidden=(5,), obs_dim=3)
    x = torch.randn(1, 2, 1, 3, dtype=torch.float64)
    layer = plain.cells[0]
    with torch.no_grad():
        h1 = torch.tanh(x[0, 0, 0] @ layer.weight_ih.T + layer.bias_ih + layer.bias_hh)  # from h0 = 0
        h1_leaky = 0.25 * h1
        mean = policy.sequence(x)[0][0, 0, 0]
    torch.testing.assert_close(mean, h1_leaky @ policy.mean.weight.T + policy.mean.bias)


@pytest.mark.parametrize(
    "policy,message",
    [
        ({"spectral-radius": 0}, "must be > 0"),
        ({"spectral-radius": "big"}, "expected a finite number"),
        ({"spectral-radius": 0.9, "cell": "gru"}, "applies to the rnn cell"),
        ({"leak": 0}, r"must be in \(0, 1\]"),
        ({"leak": 1.5}, r"must be in \(0, 1\]"),
        ({"recurrent-density": 0}, r"must be in \(0, 1\]"),
    ],
)
def test_bad_reservoir_settings_are_one_line_errors(policy, message):
    with pytest.raises(ConfigError, match=message) as e:
        from_dict({"policy": {"type": "rnn", **policy}})
    assert "\n" not in str(e.value)


def test_inner_params_is_validated():
    assert from_dict({"inner-params": "readout"}).inner_params == "readout"
    with pytest.raises(ConfigError, match="must be one of all, readout"):
        from_dict({"inner-params": "head"})
