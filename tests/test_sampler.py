"""Lockstep sampling: shapes, masks, reproducibility, and batched backends equal to the gymnasium reference."""

import numpy as np
import pytest
import torch

from maml_rl.envs.navigation import Navigation2DBatch
from maml_rl.envs.task_batch import GymnasiumTaskBatch, make_task_batch
from maml_rl.policies import GaussianMLPPolicy
from maml_rl.sampler import Sampler, normalized_to_bounds


def _sample(env_id, seed, tasks=3, per_task=4, horizon=30, backend="auto"):
    sampler = Sampler(env_id, per_task, horizon, backend=backend)
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(sampler.observation_dim, sampler.action_dim, (8,))
    rng = np.random.default_rng(seed)
    task_list = sampler.sample_tasks(tasks, rng)
    return sampler.sample(policy, policy.task_params(tasks), task_list, rng), task_list


def test_shapes_and_returns():
    episodes, _ = _sample("HalfCheetahDir-v0", 0, horizon=12)
    assert episodes.observations.shape == (3, 12, 4, 17)
    assert episodes.actions.shape == (3, 12, 4, 6)
    assert episodes.rewards.shape == episodes.mask.shape == episodes.log_probs.shape == (3, 12, 4)
    assert torch.all(episodes.mask == 1)  # HalfCheetah never terminates
    torch.testing.assert_close(episodes.returns, episodes.rewards.sum(1))
    assert episodes.env_steps == 3 * 12 * 4


def test_terminated_episodes_are_padded():
    """Episodes that end early (goal reached) have a prefix mask, and everything after it is zero."""
    sampler = Sampler("2DNavigation-v0", 3, 20)
    policy = GaussianMLPPolicy(2, 2, (8,), init_std=1e-4)
    with torch.no_grad():
        policy.mean.weight.zero_()
        policy.mean.bias.fill_(10.0)  # +0.1 per step along both axes
    tasks = [{"goal": [0.3, 0.3]}, {"goal": [-0.5, 0.5]}]  # reached at step 3; never reached
    episodes = sampler.sample(policy, policy.task_params(2), tasks, np.random.default_rng(0))
    lengths = episodes.lengths
    torch.testing.assert_close(lengths, torch.tensor([[3.0, 3.0, 3.0], [20.0, 20.0, 20.0]]))
    steps = torch.arange(20).view(1, 20, 1)
    torch.testing.assert_close(episodes.mask, (steps < lengths.unsqueeze(1)).float())
    for name in ("rewards", "log_probs"):
        assert torch.all(getattr(episodes, name)[episodes.mask == 0] == 0)
    assert torch.all(episodes.observations[0, 3:] == 0)


def test_same_generator_same_episodes_and_different_otherwise():
    a, tasks_a = _sample("HalfCheetahVel-v0", 7, horizon=10)
    b, tasks_b = _sample("HalfCheetahVel-v0", 7, horizon=10)
    c, _ = _sample("HalfCheetahVel-v0", 8, horizon=10)
    assert tasks_a == tasks_b
    for name in ("observations", "actions", "rewards", "log_probs"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.rewards, c.rewards)


def test_each_task_runs_with_its_own_parameters():
    sampler = Sampler("2DNavigation-v0", 2, 10)
    policy = GaussianMLPPolicy(2, 2, (8,), init_std=1e-3)
    params = policy.task_params(2)
    params = {k: v.clone() for k, v in params.items()}
    params["mean.bias"][0] = torch.tensor([10.0, 10.0])  # task 0 goes up-right
    params["mean.bias"][1] = torch.tensor([-10.0, -10.0])  # task 1 goes down-left
    params["mean.weight"].zero_()
    rng = np.random.default_rng(0)
    episodes = sampler.sample(policy, params, [{"goal": [0.5, -0.5]}, {"goal": [0.5, -0.5]}], rng)
    final = episodes.observations[:, -1].mean(1)
    assert torch.all(final[0] > 0.5) and torch.all(final[1] < -0.5)


def test_action_normalisation_maps_scale_onto_bounds():
    low, high = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 4.0])
    a = torch.tensor([[-10.0, -10.0], [0.0, 0.0], [10.0, 10.0], [50.0, -50.0]])
    out = normalized_to_bounds(a, 10.0, low, high)
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0.0], [0.0, 2.0], [1.0, 4.0], [1.0, 0.0]]))


def test_navigation_batched_backend_equals_gymnasium():
    rng = np.random.default_rng(0)
    reference = GymnasiumTaskBatch("2DNavigation-v0", 6)
    batched = Navigation2DBatch("2DNavigation-v0", 6)
    tasks = reference.family.sample_tasks(6, rng)
    seeds = list(range(6))
    obs = reference.reset(tasks, seeds)
    np.testing.assert_allclose(batched.reset(tasks, seeds), obs)
    goals = reference.family.task_array(tasks)
    active = np.ones(6, dtype=bool)
    for t in range(40):
        # head for the goal, overshooting the bounds at first (both paths must clip) plus a little noise
        actions = 1.5 * (goals - obs) + rng.normal(0, 1e-3, size=(6, 2))
        o1, r1, d1 = reference.step(actions, active)
        obs = np.where(active[:, None], o1, obs)
        o2, r2, d2 = batched.step(actions, active)
        np.testing.assert_allclose(o2, o1, atol=1e-6)
        np.testing.assert_allclose(r2, r1, atol=1e-6)
        np.testing.assert_array_equal(d2, d1)
        active &= ~d1
    assert not active.all(), "expected some episodes to reach their goal"


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend"):
        make_task_batch("2DNavigation-v0", 2, "fast")


def test_a_tasks_episodes_do_not_depend_on_the_other_tasks_sampled_with_it():
    """Per-task random streams: task 1 sampled alone, or as the middle of three, gives the same episodes.

    The same up to float32 rounding, not bit for bit: MKL's batched matrix products round differently for
    different numbers of tasks (measured: 6e-8 in an action mean for identical observations)."""
    from maml_rl.seeding import task_rngs

    sampler = Sampler("HalfCheetahVel-v0", 2, 15)
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(sampler.observation_dim, sampler.action_dim, (8,))
    tasks = sampler.sample_tasks(3, np.random.default_rng(0))
    together = sampler.sample(policy, policy.task_params(3), tasks, task_rngs(7, 0, 4, range(3), 0))
    alone = sampler.sample(policy, policy.task_params(1), tasks[1:2], task_rngs(7, 0, 4, [1], 0))
    sampler.close()
    for name in ("observations", "actions", "rewards", "mask", "log_probs"):
        torch.testing.assert_close(getattr(alone, name)[0], getattr(together, name)[1], rtol=1e-5, atol=1e-5)
    assert not torch.equal(together.actions[0], together.actions[1])
