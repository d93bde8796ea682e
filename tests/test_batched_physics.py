"""The batched MuJoCo backends equal the gymnasium reference: observations, rewards, terminations, episodes."""

import numpy as np
import pytest
import torch

from maml_rl.envs.batched_mujoco import AntTaskBatch, HalfCheetahTaskBatch
from maml_rl.envs.task_batch import GymnasiumTaskBatch, make_task_batch
from maml_rl.episodes import combine_sums
from maml_rl.policies import GaussianMLPPolicy
from maml_rl.sampler import Sampler

MUJOCO_ENVS = ["HalfCheetahDir-v0", "HalfCheetahVel-v0", "AntDir-v0", "AntVel-v0", "SwimmerDir-v0", "SwimmerVel-v0"]
TOL = 1e-6


def _actions(rng, low, high, n):
    """Random actions in the bounds; every other slot saturated (±bound), which flips Ants over quickly."""
    actions = rng.uniform(low, high, size=(n, len(low)))
    actions[::2] = np.where(rng.random((len(actions[::2]), len(low))) < 0.5, low, high)
    return actions


def _compare_episode(reference, batched, tasks, seeds, steps, rng, inactive=()):
    """Resets both, steps both with the same actions; returns the number of terminations seen."""
    n = len(tasks)
    np.testing.assert_allclose(batched.reset(tasks, seeds), reference.reset(tasks, seeds), rtol=0, atol=TOL)
    active = np.ones(n, dtype=bool)
    active[list(inactive)] = False
    terminations = 0
    for t in range(steps):
        actions = _actions(rng, reference.action_low, reference.action_high, n)
        obs_ref, rew_ref, term_ref = reference.step(actions, active)
        obs, rew, term = batched.step(actions, active)
        np.testing.assert_allclose(obs, obs_ref, rtol=0, atol=TOL, err_msg=f"observations at step {t}")
        np.testing.assert_allclose(rew, rew_ref, rtol=0, atol=TOL, err_msg=f"rewards at step {t}")
        np.testing.assert_array_equal(term, term_ref, err_msg=f"terminations at step {t}")
        assert list(batched.last_reward_terms) == list(reference.last_reward_terms)
        for name, value in batched.last_reward_terms.items():
            expected = reference.last_reward_terms[name]
            np.testing.assert_allclose(value, expected, rtol=0, atol=TOL, err_msg=f"reward term {name} at step {t}")
        np.testing.assert_array_equal(sum(batched.last_reward_terms.values()), rew)
        terminations += int(term_ref.sum())
        active &= ~term_ref
    return terminations


@pytest.mark.parametrize("env_id", MUJOCO_ENVS)
def test_batched_step_equals_gymnasium(env_id):
    n = 6
    reference = GymnasiumTaskBatch(env_id, n)
    batched = make_task_batch(env_id, n, "batched")
    rng = np.random.default_rng(0)
    try:
        tasks = reference.family.sample_tasks(n, rng)
        terminations = _compare_episode(reference, batched, tasks, list(range(10, 10 + n)), 60, rng, inactive=[1])
        # a second episode in the same batch: resets must overwrite every slot's state (warm start included)
        tasks = reference.family.sample_tasks(n, rng)
        terminations += _compare_episode(reference, batched, tasks, list(range(50, 50 + n)), 20, rng)
    finally:
        reference.close()
        batched.close()
    if env_id.startswith("Ant"):
        assert terminations > 0, "expected some Ant episodes to terminate (torso out of the healthy range)"


@pytest.mark.parametrize("env_id", ["HalfCheetahDir-v0", "AntVel-v0", "SwimmerDir-v0"])
def test_sampler_episodes_equal_across_backends(env_id):
    episodes = {}
    for backend in ("batched", "gymnasium"):
        sampler = Sampler(env_id, 3, 40, backend=backend)
        torch.manual_seed(0)
        # wide action noise: saturated actions make some Ant episodes end early (a padded mask to compare)
        policy = GaussianMLPPolicy(sampler.observation_dim, sampler.action_dim, (8,), init_std=30.0)
        rng = np.random.default_rng(4)
        tasks = sampler.sample_tasks(2, rng)
        episodes[backend] = sampler.sample(policy, policy.task_params(2), tasks, rng)
        sampler.close()
    for name in ("observations", "actions", "rewards", "mask", "log_probs"):
        torch.testing.assert_close(
            getattr(episodes["batched"], name), getattr(episodes["gymnasium"], name), rtol=0, atol=1e-5
        )
    if env_id.startswith("Ant"):
        assert (episodes["gymnasium"].mask == 0).any(), "expected some Ant episodes to terminate early"


def test_auto_backend_picks_the_batched_physics():
    assert isinstance(make_task_batch("HalfCheetahVel-v0", 2), HalfCheetahTaskBatch)
    assert isinstance(make_task_batch("AntDir-v0", 2, "auto"), AntTaskBatch)
    assert isinstance(make_task_batch("AntDir-v0", 2, "gymnasium"), GymnasiumTaskBatch)


def test_reset_rejects_malformed_tasks():
    batch = make_task_batch("AntDir-v0", 2, "batched")
    with pytest.raises(ValueError, match="direction"):
        batch.reset([{"direction": 1.0}, {"direction": 0.3}], [0, 1])
    with pytest.raises(ValueError, match="seeds"):
        batch.reset([{"direction": 1.0}] * 2, [0])
    batch.close()


def test_episode_statistics_of_falling_ants():
    """Terminated fraction, lengths and reward terms, as recorded by the sampler, agree with the episodes."""
    sampler = Sampler("AntDir-v0", 4, 40)
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(sampler.observation_dim, sampler.action_dim, (8,), init_std=30.0)
    rng = np.random.default_rng(4)
    episodes = sampler.sample(policy, policy.task_params(2), sampler.sample_tasks(2, rng), rng)
    sampler.close()
    stats = combine_sums([episodes.task_sums(normalization_scale=10.0)])
    fell = episodes.lengths < 40
    assert fell.any() and torch.equal(episodes.terminated, fell)  # no fall lands exactly on the last step here
    assert stats["terminated_fraction"] == pytest.approx(fell.float().mean().item())
    assert stats["episode_length"] == pytest.approx(episodes.lengths.mean().item())
    assert set(episodes.reward_terms) == {"forward", "survive", "ctrl", "contact"}
    torch.testing.assert_close(sum(episodes.reward_terms.values()), episodes.rewards, rtol=0, atol=1e-5)
    valid = episodes.mask.sum()
    assert stats["reward_survive"] == pytest.approx(
        0.05 * ((episodes.reward_terms["survive"] > 0).sum() / valid).item()
    )
    assert 0.5 < stats["action_saturation"] <= 1.0  # sigma = 30 against a scale of 10: most components clip
    valid_actions = episodes.actions[episodes.mask.bool()]
    assert stats["action_magnitude"] == pytest.approx((valid_actions.abs() / 10).mean().item(), rel=1e-5)
