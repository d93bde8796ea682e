"""Task environments: registered, check_env-clean, rewards equal to their formulas from the MuJoCo state."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import maml_rl.envs  # noqa: F401

ALL_ENVS = [
    "HalfCheetahDir-v0",
    "HalfCheetahVel-v0",
    "AntDir-v0",
    "AntVel-v0",
    "SwimmerDir-v0",
    "SwimmerVel-v0",
    "2DNavigation-v0",
]


@pytest.mark.parametrize("env_id", ALL_ENVS)
def test_check_env_passes(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any other checker warning fails the test
        warnings.filterwarnings("ignore", message=".*Box observation space (minimum|maximum) value is.*infinity")
        check_env(env.unwrapped, skip_render_check=True)  # headless: no window for render_mode="human"
    assert env.spec.max_episode_steps == 100


def _expected_reward(env_id, env, task, before, action):
    """Each reward formula written out from the MuJoCo state, independently of maml_rl.envs.rewards."""
    action = action.astype(np.float64)
    if env_id.startswith("2DNavigation"):
        return -np.linalg.norm(env.unwrapped._position - np.asarray(task["goal"]))
    data = env.unwrapped.data
    dt = env.unwrapped.dt
    if env_id.startswith(("HalfCheetah", "Swimmer")):
        velocity = (data.qpos[0] - before) / dt
        forward = task["direction"] * velocity if "direction" in task else -abs(velocity - task["velocity"])
        return forward - (0.05 if env_id.startswith("HalfCheetah") else 1e-4) * np.sum(action**2)
    if env_id.startswith("Ant"):
        velocity = (data.body(1).xpos[0] - before) / dt
        forward = task["direction"] * velocity if "direction" in task else -abs(velocity - task["velocity"]) + 1.0
        healthy = float(0.2 <= data.qpos[2] <= 1.0)
        contact = np.clip(data.cfrc_ext, -1, 1)
        return forward + 0.05 * healthy - 0.005 * np.sum(action**2) - 5e-4 * np.sum(contact**2)
    raise ValueError(env_id)


def _position(env_id, env):
    data = getattr(env.unwrapped, "data", None)
    if env_id.startswith(("HalfCheetah", "Swimmer")):
        return data.qpos[0]
    if env_id.startswith("Ant"):
        return data.body(1).xpos[0]
    return None


@pytest.mark.parametrize("env_id", ALL_ENVS)
def test_reward_equals_formula_from_state(env_id):
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(0)
    for task in env.sample_tasks(3, rng):
        env.reset_task(task)
        env.reset(seed=1)
        for _ in range(15):
            action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
            before = _position(env_id, env)
            _, reward, terminated, _, _ = env.step(action)
            assert reward == pytest.approx(_expected_reward(env_id, env, task, before, action), rel=1e-9, abs=1e-9)
            if terminated:
                break


def _rollout(env, task, seed, actions):
    env.reset_task(task)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    rewards = []
    for a in actions:
        obs, r, *_ = env.step(a)
        out.append(obs)
        rewards.append(r)
    return np.array(out), np.array(rewards)


@pytest.mark.parametrize(
    "env_id,task_a,task_b",
    [
        ("HalfCheetahDir-v0", {"direction": 1.0}, {"direction": -1.0}),
        ("HalfCheetahVel-v0", {"velocity": 0.2}, {"velocity": 1.8}),
        ("AntDir-v0", {"direction": 1.0}, {"direction": -1.0}),
        ("AntVel-v0", {"velocity": 0.5}, {"velocity": 2.5}),
        ("SwimmerDir-v0", {"direction": 1.0}, {"direction": -1.0}),
        ("SwimmerVel-v0", {"velocity": 0.05}, {"velocity": 0.25}),
        ("2DNavigation-v0", {"goal": [0.4, 0.4]}, {"goal": [-0.4, 0.1]}),
    ],
)
def test_reset_task_changes_reward_and_seeding_is_reproducible(env_id, task_a, task_b):
    env = gym.make(env_id).unwrapped
    actions = np.random.default_rng(0).uniform(
        env.action_space.low, env.action_space.high, (10, env.action_space.shape[0])
    )
    obs_a, rew_a = _rollout(env, task_a, 3, actions)
    obs_a2, rew_a2 = _rollout(env, task_a, 3, actions)
    obs_b, rew_b = _rollout(env, task_b, 3, actions)
    np.testing.assert_array_equal(obs_a, obs_a2)
    np.testing.assert_array_equal(rew_a, rew_a2)
    np.testing.assert_array_equal(obs_a, obs_b)  # the task changes the reward, not the dynamics
    assert np.abs(rew_a - rew_b).max() > 1e-3
    assert env.task == task_b


@pytest.mark.parametrize("env_id", ALL_ENVS)
def test_sample_tasks_is_seeded_and_in_range(env_id):
    env = gym.make(env_id).unwrapped
    a = env.sample_tasks(50, np.random.default_rng(5))
    assert a == env.sample_tasks(50, np.random.default_rng(5))
    values = type(env).task_array(a)
    if "direction" in a[0]:
        assert set(values[:, 0]) == {-1.0, 1.0}
    elif "velocity" in a[0]:
        high = 3.0 if env_id.startswith("Ant") else 2.0
        assert values.min() >= 0 and values.max() <= high
    else:
        assert values.shape == (50, 2) and np.abs(values).max() <= 0.5


@pytest.mark.parametrize(
    "bad", [{"direction": 0.5}, {"dir": 1.0}, {"direction": float("nan")}, {"direction": [1, 1]}, "left"]
)
def test_reset_task_rejects_malformed_tasks(bad):
    env = gym.make("HalfCheetahDir-v0").unwrapped
    with pytest.raises(ValueError, match="HalfCheetahDir"):
        env.reset_task(bad)


def test_ant_terminates_when_the_torso_leaves_the_healthy_range():
    env = gym.make("AntDir-v0").unwrapped
    env.reset(seed=0)
    qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
    qpos[2] = 1.5  # torso far above the healthy range
    env.set_state(qpos, qvel)
    _, _, terminated, _, _ = env.step(np.zeros(8, dtype=np.float32))
    assert terminated


def test_unstable_simulation_warns_instead_of_writing_a_log_file(tmp_path):
    env = gym.make("HalfCheetahDir-v0").unwrapped
    env.reset(seed=0)
    env.data.qvel[:] = 1e30
    with pytest.warns(maml_rl.envs.MuJoCoWarning, match="unstable"):
        env.step(np.zeros(6, dtype=np.float32))
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


@pytest.mark.parametrize("env_id", ALL_ENVS)
def test_nan_actions_are_rejected_and_out_of_range_ones_clipped(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    nan = np.full(env.action_space.shape, np.nan, dtype=np.float32)
    with pytest.raises(ValueError, match="finite"):
        env.step(nan)
    env.reset(seed=0)
    _, r_big, *_ = env.step(np.full(env.action_space.shape, 50.0, dtype=np.float32))
    env.reset(seed=0)
    _, r_max, *_ = env.step(env.action_space.high)
    assert r_big == r_max  # clipped to the bound, as gymnasium's ClipAction does


def test_task_batches_reject_nan_actions():
    from maml_rl.envs.task_batch import make_task_batch

    for env_id in ("2DNavigation-v0", "HalfCheetahDir-v0"):
        batch = make_task_batch(env_id, 2)
        batch.reset(batch.family.sample_tasks(2, np.random.default_rng(0)), [0, 1])
        actions = np.zeros((2, batch.family.action_space.shape[0]))
        actions[1, 0] = np.nan
        with pytest.raises(ValueError, match="finite"):
            batch.step(actions, np.ones(2, dtype=bool))
