"""Policy inputs beyond the observation: built the same way while sampling and in the losses."""

import itertools

import numpy as np
import pytest
import torch

from maml_rl.config import ConfigError, from_dict
from maml_rl.experiment import Experiment
from maml_rl.policies import GaussianMLPPolicy, PolicyInputs, gaussian_log_prob

OPTIONAL = ("previous-action", "previous-reward", "episode-start")
ALL_INPUTS = [
    ("observation", *combo) for r in range(len(OPTIONAL) + 1) for combo in itertools.combinations(OPTIONAL, r)
]


def _experiment(policy: dict, env: str = "2DNavigation-v0", **overrides) -> Experiment:
    cfg = from_dict(
        {
            "env-name": env,
            "meta-batch-size": 3,
            "fast-batch-size": 4,
            "horizon": 30,
            "seed": 2,
            "policy": {"hidden-sizes": [8, 8], **policy},
            **overrides,
        }
    )
    return Experiment.build(cfg)


@pytest.mark.parametrize("kind", ["mlp", "rnn"])
@pytest.mark.parametrize("inputs", ALL_INPUTS, ids=lambda names: "+".join(n.split("-")[-1][:4] for n in names))
def test_sampling_log_probs_equal_loss_log_probs_for_every_input_combination(kind, inputs):
    exp = _experiment({"type": kind, "inputs": list(inputs)})
    rng = np.random.default_rng(0)
    tasks = exp.sampler.sample_tasks(3, rng)
    params = exp.policy.task_params(3)
    episodes = exp.sampler.sample(exp.policy, params, tasks, rng)
    with torch.no_grad():
        mean, log_std = exp.policy.sequence_of(episodes, params)
        recomputed = gaussian_log_prob(episodes.actions, mean, log_std) * episodes.mask
    torch.testing.assert_close(recomputed, episodes.log_probs, rtol=1e-5, atol=1e-4)


def test_sampling_and_losses_agree_when_episodes_end_early():
    """Ant episodes terminate at different steps: the inputs after a fall are padding on both sides."""
    exp = _experiment(
        {"type": "rnn", "inputs": list(ALL_INPUTS[-1]), "hidden-sizes": [8]},
        env="AntDir-v0",
        horizon=60,
        **{"normalization-scale": 1.0},
    )
    rng = np.random.default_rng(5)
    tasks = exp.sampler.sample_tasks(3, rng)
    params = exp.policy.task_params(3)
    episodes = exp.sampler.sample(exp.policy, params, tasks, rng)
    lengths = episodes.lengths
    assert (lengths < 60).any() and (lengths > 1).all(), f"expected some falls after the first step: {lengths}"
    with torch.no_grad():
        mean, log_std = exp.policy.sequence_of(episodes, params)
        recomputed = gaussian_log_prob(episodes.actions, mean, log_std) * episodes.mask
    torch.testing.assert_close(recomputed, episodes.log_probs, rtol=1e-5, atol=1e-4)


def test_sequence_inputs_hold_the_previous_action_and_reward():
    layout = PolicyInputs(obs_dim=2, act_dim=3, names=("observation", *OPTIONAL))
    assert layout.dim == 2 + 3 + 1 + 1
    g = torch.Generator().manual_seed(0)
    obs, actions, rewards = (
        torch.randn(2, 5, 4, 2, generator=g),
        torch.randn(2, 5, 4, 3, generator=g),
        torch.randn(2, 5, 4, generator=g),
    )
    x = layout.of_sequences(obs, actions, rewards)
    assert x.shape == (2, 5, 4, 7)
    torch.testing.assert_close(x[..., :2], obs)
    assert torch.count_nonzero(x[:, 0, :, 2:6]) == 0  # no previous action or reward at the first step
    torch.testing.assert_close(x[:, 1:, :, 2:5], actions[:, :-1])
    torch.testing.assert_close(x[:, 1:, :, 5], rewards[:, :-1])
    assert torch.equal(x[..., 6], (torch.arange(5) == 0).float().view(1, 5, 1).expand(2, 5, 4))
    # the step-by-step builders give the same vectors
    torch.testing.assert_close(layout.first_step(obs[:, 0]), x[:, 0])
    torch.testing.assert_close(layout.next_step(obs[:, 3], actions[:, 2], rewards[:, 2]), x[:, 3])


def test_default_inputs_are_the_observation_itself():
    layout = PolicyInputs(obs_dim=2, act_dim=3)
    obs = torch.randn(2, 5, 4, 2)
    assert layout.of_sequences(obs, torch.randn(2, 5, 4, 3), torch.randn(2, 5, 4)) is obs


def test_a_memoryless_policy_sees_only_the_last_reward():
    """The MLP with reward input reacts to r_{t-1} at step t, and to nothing earlier: the memoryless control."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(2, 1, (6,), inputs=("observation", "previous-reward"))
    obs, actions, rewards = torch.zeros(1, 6, 1, 2), torch.zeros(1, 6, 1, 1), torch.zeros(1, 6, 1)
    bumped = rewards.clone()
    bumped[:, 2] = 1.0
    with torch.no_grad():
        mean = policy.sequence(policy.inputs.of_sequences(obs, actions, rewards))[0]
        mean_b = policy.sequence(policy.inputs.of_sequences(obs, actions, bumped))[0]
    changed = (mean - mean_b).abs()[0, :, 0, 0]
    assert changed[3] > 1e-3 and torch.count_nonzero(changed[[0, 1, 2, 4, 5]]) == 0


@pytest.mark.parametrize(
    "inputs,message",
    [
        (["previous-reward"], "must start with observation"),
        (["observation", "reward"], "unknown input 'reward'"),
        (["observation", "previous-action", "previous-action"], "lists an input twice"),
        ("observation", "expected a list of strings"),
    ],
)
def test_bad_inputs_are_rejected_with_the_key(inputs, message):
    with pytest.raises(ConfigError, match=message) as e:
        from_dict({"policy": {"inputs": inputs}})
    assert "policy.inputs" in str(e.value)
