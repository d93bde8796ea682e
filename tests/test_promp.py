"""ProMP's outer step (``outer-step: ppo``): its objective, its reuse of the pre-update episodes, its runs."""

import pytest
import torch
from helpers import learner_config, synthetic_episodes, tiny_policy
from test_scripts import metrics, tiny_config, train_main

from maml_rl.config import ConfigError, from_dict
from maml_rl.experiment import Experiment
from maml_rl.metalearner import REUSE_INNER_LOSS_FUNCTIONS, MetaLearner, adapt
from maml_rl.optim import flatten
from maml_rl.policies.base import gaussian_log_prob

TASKS = 3


def _terms(kind: str, inner_loss: str, **values):
    policy = tiny_policy(kind).double()
    train = synthetic_episodes(policy, tasks=TASKS, seed=1)
    valid = synthetic_episodes(policy, tasks=TASKS, seed=2)
    config = learner_config(fast_lr=0.5, inner_loss=inner_loss, outer_step="ppo", **values)
    learner = MetaLearner(policy, config)
    adaptation = learner.adapt(train)
    with torch.no_grad():  # as sampled: the valid episodes' log-probabilities are the adapted policy's
        mean, log_std = policy.sequence_of(valid, {k: v.detach() for k, v in adaptation.params.items()})
        valid.log_probs = gaussian_log_prob(valid.actions, mean, log_std) * valid.mask
    return policy, learner, learner.terms(train, valid, adaptation, TASKS)


@pytest.mark.parametrize("kind", ["mlp", "rnn"])
@pytest.mark.parametrize("inner_loss", ["lvc", "reinforce"])
def test_at_the_sampling_parameters_the_objective_is_the_trpo_surrogate(kind, inner_loss):
    """Ratios of 1 and a KL of 0 at θ_old: ProMP's loss and gradient are the TRPO surrogate's, same estimator."""
    policy, learner, terms = _terms(kind, inner_loss)
    theta = flatten(policy.meta_params()).detach()
    loss, grad = terms.proximal_objective(theta)
    _, fresh, trpo = _terms(kind, inner_loss)
    trpo_loss, trpo_grad = trpo.gradient()
    assert loss == pytest.approx(trpo_loss, abs=1e-9)
    torch.testing.assert_close(grad, trpo_grad, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("inner_loss", ["lvc", "reinforce"])
def test_the_reused_inner_losses_take_the_estimators_step_at_the_sampling_parameters(inner_loss):
    policy = tiny_policy("rnn").double()
    train = synthetic_episodes(policy, tasks=TASKS, seed=1)
    params = policy.task_params(TASKS)
    reused = adapt(policy, params, train, 0.5, 1, inner_loss=REUSE_INNER_LOSS_FUNCTIONS[inner_loss]).params
    plain = adapt(policy, params, train, 0.5, 1, inner_loss=inner_loss).params
    for name in plain:
        torch.testing.assert_close(reused[name], plain[name], rtol=1e-6, atol=1e-8)


def test_the_clip_and_the_kl_penalty_act_away_from_the_sampling_parameters():
    policy, _, terms = _terms("mlp", "lvc", ppo_clip=0.05, ppo_kl_penalty=0.0)
    theta = flatten(policy.meta_params()).detach()
    far = theta + 0.5 * torch.randn(theta.shape, generator=torch.Generator().manual_seed(0), dtype=theta.dtype)
    loss_clipped, clipped = terms.proximal_objective(far)
    _, _, unclipped_terms = _terms("mlp", "lvc", ppo_clip=0.99, ppo_kl_penalty=0.0)
    loss_unclipped, unclipped = unclipped_terms.proximal_objective(far)
    assert loss_clipped > loss_unclipped  # the clipped surrogate is a pessimistic bound of the plain one
    assert not torch.allclose(clipped, unclipped, rtol=1e-2)  # and clipped ratios contribute no gradient
    _, _, penalised_terms = _terms("mlp", "lvc", ppo_clip=0.05, ppo_kl_penalty=10.0)
    loss_penalised, _ = penalised_terms.proximal_objective(far)
    loss_plain, _ = terms.proximal_objective(far)
    assert loss_penalised > loss_plain + 1e-3  # KL(π_old ‖ π_θ) > 0 away from θ_old


def test_ppo_meta_batches_take_adam_steps_within_their_bound():
    cfg = from_dict(
        {
            "env-name": "2DNavigation-v0",
            "meta-batch-size": 4,
            "fast-batch-size": 5,
            "horizon": 20,
            "outer-step": "ppo",
            "inner-loss": "lvc",
            "policy": {"type": "rnn", "hidden-sizes": [8]},
        }
    )
    exp = Experiment.build(cfg)
    before = flatten(exp.policy.meta_params()).detach().clone()
    row = exp.meta_batch(0)
    moved = (flatten(exp.policy.meta_params()).detach() - before).abs().max().item()
    assert row["accepted"] and row["nonfinite"] is None
    # Adam moves each coordinate by about lr per step (exactly lr at its first step)
    assert cfg.ppo_lr * 0.99 <= moved <= 3 * cfg.ppo_steps * cfg.ppo_lr
    assert exp.outer_state() is not None


def test_a_resumed_ppo_run_equals_an_uninterrupted_one(tmp_path):
    """Adam's state travels in the checkpoint, so stopping between meta-batches changes nothing."""
    config = tiny_config(tmp_path, num_batches=3, **{"outer-step": "ppo", "inner-loss": "lvc"})
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert train_main(["--config", str(config), "--output-folder", str(whole), "--no-progress"]) == 0
    assert (
        train_main(["--config", str(config), "--output-folder", str(split), "--no-progress", "--num-batches", "2"]) == 0
    )
    assert train_main(["--output-folder", str(split), "--resume", "--no-progress", "--num-batches", "3"]) == 0
    assert metrics(split) == metrics(whole)
    a, b = (torch.load(r / "checkpoint.pt", weights_only=True) for r in (whole, split))
    assert all(torch.equal(a["policy"][k], b["policy"][k]) for k in a["policy"])
    assert "outer" in a and a["outer"]["state"][0]["step"] == 3 * 5


@pytest.mark.parametrize(
    "values,message",
    [
        ({"outer-step": "ppo", "inner-loss": "dice"}, "inner-loss dice needs outer-step trpo"),
        ({"outer-step": "sgd"}, "must be one of trpo, ppo"),
        ({"ppo-clip": 1.5}, "ppo-clip"),
        ({"ppo-steps": 0}, "ppo-steps"),
        ({"outer-step": "ppo", "fisher-subsample": 0.1}, "fisher-subsample 0.1 applies to the TRPO step"),
        ({"fisher-subsample": 0}, "fisher-subsample"),
        ({"fisher-subsample": 1.5}, "fisher-subsample"),
    ],
)
def test_bad_outer_step_settings_end_in_one_message(values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(values)
