"""How fast a swimmer can swim in 100 steps: the measurements behind SwimmerVel's goal range.

Two policies on gymnasium's Swimmer-v5 (the dynamics of SwimmerDir/SwimmerVel), 100-step episodes from
Swimmer-v5's reset:

* a random policy: actions uniform in the bounds;
* a trained single-task policy: a linear policy a = clip(M·obs) trained by basic random search (Mania et al.
  2018, "Simple random search provides a competitive approach to reinforcement learning", ARS V1: which
  solves Swimmer with linear policies), to swim forward (reward: x velocity).

Prints each policy's per-episode mean x velocity (m/s) over ``--episodes`` fresh episodes. Run from the
repository root: ``python docs/results/swimmer/measure_speeds.py`` (about a minute on one core).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np


def episode_velocity(env: gym.Env, policy, seed: int, steps: int = 100) -> float:
    obs, _ = env.reset(seed=seed)
    velocities = []
    for _ in range(steps):
        obs, _, _, _, info = env.step(policy(obs))
        velocities.append(info["x_velocity"])
    return float(np.mean(velocities))


def random_search(env: gym.Env, iterations: int, directions: int, step: float, noise: float, rng) -> np.ndarray:
    """ARS V1: M ← M + step/(b σ_R) Σ (R(M + νδ) − R(M − νδ)) δ over the directions δ."""
    low, high = env.action_space.low, env.action_space.high
    weights = np.zeros((env.action_space.shape[0], env.observation_space.shape[0]))
    for it in range(iterations):
        deltas = rng.standard_normal((directions, *weights.shape))
        returns = np.empty((directions, 2))
        for k, delta in enumerate(deltas):
            for j, sign in enumerate((1.0, -1.0)):
                candidate = weights + sign * noise * delta
                policy = lambda o, m=candidate: np.clip(m @ o, low, high)  # noqa: E731
                returns[k, j] = episode_velocity(env, policy, seed=1000 * it + k)
        spread = returns.std() + 1e-8
        weights += step / (directions * spread) * np.einsum("k,kij->ij", returns[:, 0] - returns[:, 1], deltas)
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=40, help="evaluation episodes per policy (default 40)")
    parser.add_argument("--iterations", type=int, default=150, help="random-search iterations (default 150)")
    args = parser.parse_args()
    env = gym.make("Swimmer-v5")
    rng = np.random.default_rng(0)
    low, high = env.action_space.low, env.action_space.high
    random_policy = lambda obs: rng.uniform(low, high)  # noqa: E731
    weights = random_search(env, args.iterations, directions=8, step=0.02, noise=0.03, rng=np.random.default_rng(1))
    trained = lambda obs: np.clip(weights @ obs, low, high)  # noqa: E731
    for name, policy in (("random", random_policy), ("trained (random search, linear)", trained)):
        v = np.array([episode_velocity(env, policy, seed=10_000 + e) for e in range(args.episodes)])
        print(
            f"{name:32s} per-episode mean x velocity {v.mean():.3f} ± {v.std():.3f} m/s (range {v.min():.3f} to {v.max():.3f})"
        )


if __name__ == "__main__":
    main()
