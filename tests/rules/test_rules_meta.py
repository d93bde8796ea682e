"""The PPO-learned rule: the weight environment passes check_env, PPO trains, the policy runs as a rule."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from maml_rl.rules.config import MetaConfig, TaskConfig
from maml_rl.rules.data import teacher_student
from maml_rl.rules.experiment import _init_fn, evaluate, run_rule
from maml_rl.rules.meta import PolicyRule, WeightEnv, train_ppo
from maml_rl.rules.network import flatten

SIZES = (3, 4, 2)


def tiny_data(seed=0):
    task = TaskConfig(name="teacher-student", n_train=32, n_test=32, input_dim=3, hidden_dim=4, output_dim=2)
    return teacher_student(task, seed)


@pytest.mark.parametrize("action", ["weights", "update"])
def test_weight_env_passes_check_env(action):
    env = WeightEnv(
        tiny_data(), _init_fn(SIZES, None, torch.float32), action=action, action_scale=0.5, episode_length=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded observation space: weights and loss have no natural bound
        check_env(env, skip_render_check=True)


def test_weight_env_semantics():
    data = tiny_data()
    env = WeightEnv(data, _init_fn(SIZES, None, torch.float32), action="update", action_scale=0.1, episode_length=3)
    obs, info = env.reset(seed=0)
    p = 3 * 4 + 4 * 2
    assert obs.shape == (p + 1,) and obs[-1] == pytest.approx(info["loss"])
    w_before = flatten(env.weights).clone()
    a = np.linspace(-1, 1, p).astype(np.float32)
    obs, reward, terminated, truncated, info = env.step(a)
    np.testing.assert_allclose(flatten(env.weights).numpy(), (w_before + 0.1 * torch.as_tensor(a)).numpy(), rtol=1e-6)
    assert reward == pytest.approx(-evaluate(env.weights, data)["train_loss"], rel=1e-5)
    assert not terminated and not truncated
    env.step(a)
    assert env.step(a)[3]  # truncated after episode_length steps
    env_w = WeightEnv(data, _init_fn(SIZES, None, torch.float32), action="weights", action_scale=2.0)
    env_w.reset(seed=1)
    env_w.step(a)
    np.testing.assert_allclose(flatten(env_w.weights).numpy(), 2.0 * a, rtol=1e-6)


def test_ppo_trains_and_the_policy_runs_as_a_learning_rule():
    """In 'update' mode an untrained policy (mean action ~ 0) leaves the weights where they are; after a short PPO
    run the deterministic policy, used as a learning rule, lowers the training loss (reward = -loss)."""
    from stable_baselines3 import PPO

    data = tiny_data()
    init = _init_fn(SIZES, None, torch.float32)
    cfg = MetaConfig(
        action="update",
        action_scale=0.1,
        episode_length=8,
        total_timesteps=2048,
        n_steps=256,
        batch_size=64,
        n_epochs=10,
        learning_rate=3e-3,
        net_arch=(32,),
    )
    seen = []
    model, env = train_ppo(data, init, cfg, seed=0, progress=seen.append)
    assert sum(seen) == model.num_timesteps >= cfg.total_timesteps
    w0 = init(np.random.default_rng(123))
    res, _ = run_rule(
        PolicyRule(model, env), w0, data, epochs=8, log_every=4, generator=torch.Generator(), progress=False
    )
    assert res["epochs_run"] == 8 and res["curves"]["epoch"] == [0, 1, 2, 4, 8]
    untrained = PPO("MlpPolicy", env, seed=0, policy_kwargs={"net_arch": [32]})
    ref, _ = run_rule(
        PolicyRule(untrained, env), w0, data, epochs=8, log_every=4, generator=torch.Generator(), progress=False
    )
    start_loss = res["curves"]["train_loss"][0]
    assert ref["final"]["train_loss"] > 0.95 * start_loss
    assert res["final"]["train_loss"] < 0.85 * start_loss, res["curves"]["train_loss"]


def test_ppo_divergence_is_reported_with_the_fix():
    from maml_rl.rules.meta import TrainingError

    cfg = MetaConfig(total_timesteps=512, n_steps=256, batch_size=64, learning_rate=100.0)
    with pytest.raises(TrainingError, match="lower meta.learning_rate"):
        train_ppo(tiny_data(), _init_fn(SIZES, None, torch.float32), cfg, seed=0)
