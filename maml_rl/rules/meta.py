"""The meta-learned rule: a PPO policy acting as Cai & Cheng's "dopamine system" that sets the base weights.

:class:`WeightEnv` is an ordinary ``gymnasium.Env``:

* observation: the base network's weights, flattened, followed by the current training loss;
* action ``a`` in ``[-1, 1]^P`` (P = number of weights), read as
  ``'weights'``: the next weights are ``action_scale * a`` (the paper's setting), or
  ``'update'``: the next weights are ``W + action_scale * a`` (a bounded learned learning rule);
* reward: minus the training loss after the action;
* an episode starts from freshly initialised weights and is truncated after ``episode_length`` steps.

After PPO training, :class:`PolicyRule` runs the deterministic policy as a learning rule, step by step, exactly
like SGD, WP and NP, so all four get the same number of steps and the same test evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from .config import MetaConfig
from .data import Dataset
from .network import Weights, flatten, forward, loss_fn, unflatten
from .updates import Rule


class TrainingError(RuntimeError):
    """Training of the meta-learned rule failed in a way a hyperparameter can fix; the message says which."""


class WeightEnv(gym.Env):
    """Training a base network as an MDP whose state is its weights (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        data: Dataset,
        init: Callable[[np.random.Generator], Weights],
        action: str = "weights",
        action_scale: float = 1.0,
        episode_length: int = 32,
    ):
        if action not in ("weights", "update"):
            raise ValueError(f"action must be 'weights' or 'update', got {action!r}")
        self.data, self.init, self.mode = data, init, action
        self.action_scale, self.episode_length = float(action_scale), int(episode_length)
        self._like = init(np.random.default_rng(0))
        p = sum(w.numel() for w in self._like)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(p,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(p + 1,), dtype=np.float32)
        self.weights: Weights = self._like
        self.t = 0

    def _loss(self, weights: Weights) -> float:
        d = self.data
        with torch.no_grad():
            return float(loss_fn(forward(weights, d.x_train, d.output_activation), d.y_train, d.loss))

    def _obs(self, loss: float) -> np.ndarray:
        return np.append(flatten(self.weights).numpy(), loss).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.weights, self.t = self.init(self.np_random), 0
        loss = self._loss(self.weights)
        return self._obs(loss), {"loss": loss}

    def next_weights(self, weights: Weights, action: np.ndarray) -> Weights:
        """The action's effect: ``action_scale * a`` as weights, or added to ``weights`` as an update."""
        a = torch.as_tensor(np.clip(action, -1.0, 1.0), dtype=self._like[0].dtype) * self.action_scale
        step = unflatten(a, self._like)
        if self.mode == "weights":
            return step
        return tuple(w + s for w, s in zip(weights, step))

    def step(self, action):
        self.weights = self.next_weights(self.weights, np.asarray(action))
        self.t += 1
        loss = self._loss(self.weights)
        finite = np.isfinite(loss)
        reward = -loss if finite else -1e6
        return (
            self._obs(loss if finite else 1e6),
            float(reward),
            not finite,
            self.t >= self.episode_length,
            {"loss": loss},
        )


class PolicyRule(Rule):
    """A trained policy used as a learning rule: each step feeds (weights, loss) and applies its action."""

    name = "meta"

    def __init__(self, policy: Any, env: WeightEnv):
        self.policy, self.env = policy, env

    def step(self, weights, data, generator):
        loss = float(loss_fn(forward(weights, data.x_train, data.output_activation), data.y_train, data.loss))
        obs = np.append(flatten(weights).numpy(), loss).astype(np.float32)
        action, _ = self.policy.predict(obs, deterministic=True)
        return self.env.next_weights(weights, action), loss


def train_ppo(
    data: Dataset,
    init: Callable[[np.random.Generator], Weights],
    cfg: MetaConfig,
    seed: int,
    progress: Callable[[int], None] | None = None,
):
    """Train PPO (stable-baselines3) on :class:`WeightEnv`; returns ``(model, env)``.

    ``progress(n)`` is called with the number of new environment steps after each rollout.
    """
    # the rules extra, imported on use: the rest of the lab runs without it
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    env = WeightEnv(data, init, cfg.action, cfg.action_scale, cfg.episode_length)
    venv = DummyVecEnv([lambda: WeightEnv(data, init, cfg.action, cfg.action_scale, cfg.episode_length)])
    if cfg.normalize_reward:
        venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=cfg.gamma)

    class _Progress(BaseCallback):
        def __init__(self):
            super().__init__()
            self.last = 0

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            if progress is not None:
                progress(self.num_timesteps - self.last)
            self.last = self.num_timesteps

    batch = min(cfg.batch_size, cfg.n_steps)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=cfg.n_steps,
        batch_size=batch,
        n_epochs=cfg.n_epochs,
        learning_rate=cfg.learning_rate,
        gamma=cfg.gamma,
        seed=seed,
        device="cpu",
        verbose=0,
        policy_kwargs={"net_arch": list(cfg.net_arch)},
    )
    try:
        model.learn(total_timesteps=cfg.total_timesteps, callback=_Progress())
    except ValueError as exc:
        if "invalid values" not in str(exc):
            raise
        # The PPO ratio exp(sum over P action dims of log-prob changes) overflows when Adam moves every output
        # weight by ~learning_rate at once; the sum grows with P, so large networks need a smaller step.
        raise TrainingError(
            f"PPO diverged (NaN in the policy) with {env.action_space.shape[0]} action dims; "
            f"lower meta.learning_rate (now {cfg.learning_rate:g}), e.g. to "
            f"{cfg.learning_rate / 10:g}"
        ) from None
    return model, env
