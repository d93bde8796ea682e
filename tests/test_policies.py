"""The RNN policy is really recurrent, its recurrent weights really frozen; sampling and loss agree."""

import numpy as np
import pytest
import torch
from helpers import tiny_policy

from maml_rl.config import from_dict
from maml_rl.experiment import Experiment
from maml_rl.policies import gaussian_log_prob
from maml_rl.policies.rnn import CELLS


@pytest.mark.parametrize(
    "cell,torch_cell", [("rnn", torch.nn.RNNCell), ("gru", torch.nn.GRUCell), ("lstm", torch.nn.LSTMCell)]
)
def test_cells_match_pytorch(cell, torch_cell):
    policy = tiny_policy("rnn", cell=cell, freeze_recurrent=False).double()
    layer = policy.cells[0]
    reference = torch_cell(policy.obs_dim, layer.hidden_size).double()
    reference.load_state_dict({k: getattr(layer, k) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    x = torch.randn(2, 7, policy.obs_dim, dtype=torch.float64)
    state = torch.randn(2, 7, layer.state_size, dtype=torch.float64)
    x_proj = torch.nn.functional.linear(x, layer.weight_ih, layer.bias_ih)
    ours = CELLS[cell](x_proj, state, layer.weight_hh, layer.bias_hh)
    if cell == "lstm":
        h, c = state.chunk(2, -1)
        ref_h, ref_c = reference(x.reshape(-1, policy.obs_dim), (h.reshape(14, -1), c.reshape(14, -1)))
        expected = torch.cat([ref_h, ref_c], -1).reshape(2, 7, -1)
    else:
        expected = reference(x.reshape(-1, policy.obs_dim), state.reshape(14, -1)).reshape(2, 7, -1)
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_changing_an_early_observation_changes_later_actions(cell):
    """Real recurrence: the mean at t = 5 depends on the observation at t = 0 (the old fork's did not)."""
    policy = tiny_policy("rnn", cell=cell)
    obs = torch.randn(1, 6, 2, policy.obs_dim)
    perturbed = obs.clone()
    perturbed[:, 0] += 1.0
    mean, _ = policy.sequence(obs)
    mean_p, _ = policy.sequence(perturbed)
    assert (mean[:, 5] - mean_p[:, 5]).abs().max() > 1e-4
    # and the step-by-step forward carries the same state: equal means at every step
    hidden, steps = None, []
    for t in range(6):
        m, _, hidden = policy(obs[:, t], hidden=hidden)
        steps.append(m)
    torch.testing.assert_close(torch.stack(steps, 1), mean, rtol=1e-5, atol=1e-6)


def test_mlp_has_no_memory():
    policy = tiny_policy("mlp")
    obs = torch.randn(1, 6, 2, policy.obs_dim)
    perturbed = obs.clone()
    perturbed[:, 0] += 1.0
    assert torch.equal(policy.sequence(obs)[0][:, 5], policy.sequence(perturbed)[0][:, 5])


def test_frozen_recurrent_weights_are_not_meta_parameters():
    frozen = tiny_policy("rnn")
    names = set(frozen.meta_params())
    assert not any("weight_hh" in n or "bias_hh" in n for n in names)
    assert {"cells.0.weight_ih", "cells.0.bias_ih", "mean.weight", "mean.bias", "log_std"} <= names
    assert "cells.0.weight_hh" in frozen.state_dict()  # still saved with the checkpoint
    trainable = tiny_policy("rnn", freeze_recurrent=False)
    assert "cells.0.weight_hh" in trainable.meta_params()


def _nav_experiment(policy: dict, **overrides) -> Experiment:
    cfg = from_dict(
        {
            "env-name": "2DNavigation-v0",
            "meta-batch-size": 4,
            "fast-batch-size": 3,
            "horizon": 15,
            "policy": {"hidden-sizes": [8, 8], **policy},
            **overrides,
        }
    )
    return Experiment.build(cfg)


def _rnn_state(exp: Experiment) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in exp.policy.state_dict().items()}


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_recurrent_weights_bitwise_frozen_during_meta_training(cell):
    exp = _nav_experiment({"type": "rnn", "cell": cell})
    before = _rnn_state(exp)
    accepted = sum(exp.meta_batch(b)["accepted"] for b in range(3))
    assert accepted >= 1
    after = _rnn_state(exp)
    for name in before:
        if "_hh" in name:
            assert torch.equal(before[name], after[name]), f"{name} changed although frozen"
        else:
            assert not torch.equal(before[name], after[name]), f"{name} did not learn"


def test_unfrozen_recurrent_weights_do_learn():
    exp = _nav_experiment({"type": "rnn", "freeze-recurrent": False})
    before = _rnn_state(exp)
    assert sum(exp.meta_batch(b)["accepted"] for b in range(3)) >= 1
    after = _rnn_state(exp)
    assert all(not torch.equal(before[n], after[n]) for n in before if "_hh" in n)


@pytest.mark.parametrize("policy", [{"type": "mlp"}, {"type": "rnn"}, {"type": "rnn", "cell": "lstm"}])
def test_sampling_log_probs_equal_loss_log_probs(policy):
    exp = _nav_experiment(policy, **{"horizon": 40})
    rng = np.random.default_rng(0)
    tasks = exp.sampler.sample_tasks(4, rng)
    params = exp.policy.task_params(4)
    episodes = exp.sampler.sample(exp.policy, params, tasks, rng)
    with torch.no_grad():
        mean, log_std = exp.policy.sequence(episodes.observations, params)
        recomputed = gaussian_log_prob(episodes.actions, mean, log_std) * episodes.mask
    torch.testing.assert_close(recomputed, episodes.log_probs, rtol=1e-5, atol=1e-4)


def test_hidden_state_starts_from_zero_at_every_episode():
    """An episode's first action depends only on its first observation, whatever was sampled before."""
    exp = _nav_experiment({"type": "rnn"})
    policy, sampler = exp.policy, exp.sampler
    tasks = sampler.sample_tasks(4, np.random.default_rng(0))
    params = policy.task_params(4)
    first = sampler.sample(policy, params, tasks, np.random.default_rng(1))
    sampler.sample(policy, params, tasks, np.random.default_rng(2))  # carries the state through a whole episode
    again = sampler.sample(policy, params, tasks, np.random.default_rng(1))
    torch.testing.assert_close(first.actions, again.actions)
    with torch.no_grad():
        fresh, _, _ = policy(first.observations[:, 0], params, policy.initial_hidden(4, 3))
        mean_seq, _ = policy.sequence(first.observations, params)
    torch.testing.assert_close(fresh, mean_seq[:, 0])
    assert all(torch.count_nonzero(h) == 0 for h in policy.initial_hidden(4, 3))
