"""A task family of your own: a point on a line must reach a hidden goal position. Registered, then meta-trained
with MAML-TRPO for two tiny meta-batches.

    python docs/examples/custom_task_family.py [RUN_FOLDER]

Without RUN_FOLDER the run goes into a temporary folder, removed at the end. Importing this module registers the
family, so the scripts find it too:

    PYTHONPATH=docs/examples python train.py --config configs/2d-navigation.yaml \
        --set env-name=custom_task_family:PointGoal1D-v0 --num-batches 2 --output-folder /tmp/point-goal
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from maml_rl.process import prepare_process

prepare_process()  # before torch is imported (passive OpenMP waiting, malloc thresholds), as train.py does

import gymnasium as gym  # noqa: E402 - after prepare_process, on purpose
import numpy as np  # noqa: E402

from maml_rl.config import from_dict  # noqa: E402
from maml_rl.envs import TaskMixin, register_task_family  # noqa: E402
from maml_rl.training.log import read_metrics  # noqa: E402
from maml_rl.training.trainer import train  # noqa: E402


class PointGoal1DEnv(TaskMixin, gym.Env):
    """A point starts at 0 and moves by its action, clipped to [−0.1, 0.1], at each step.

    Task: a goal position g ~ U[−1, 1]. Reward: −|position − g| after the move. The observation is the position
    only, so the goal can be learnt only from the rewards: by the inner gradient step, or by a memory.
    """

    metadata = {"render_modes": []}
    task_shapes = {"goal": ()}  # every task key and the shape of its value: a task is {"goal": g}

    def __init__(self, task: dict | None = None, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-0.1, 0.1, shape=(1,), dtype=np.float32)
        self.render_mode = render_mode
        self._position = 0.0
        self.reset_task(task if task is not None else {"goal": 0.0})

    # --- the task interface (TaskMixin calls these from sample_tasks and reset_task) ---
    def _sample_task_values(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"goal": rng.uniform(-1.0, 1.0, size=n)}

    def _check_task_value(self, key: str, value: np.ndarray) -> None:
        if abs(float(value)) > 1.0:
            raise ValueError(f"{type(self).__name__}: goal must be in [-1, 1], got {float(value)}")

    def _on_task(self, task: dict) -> None:
        self._goal = task["goal"]

    # --- an ordinary gymnasium environment ---
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._position = 0.0
        return np.array([self._position], dtype=np.float32), {"task": self.task}

    def step(self, action):
        self._position += float(self.checked_action(action)[0])  # clipped into the action space; NaN is an error
        reward = -abs(self._position - self._goal)
        return np.array([self._position], dtype=np.float32), reward, False, False, {"task": self.task}


# On import: gymnasium.make("PointGoal1D-v0") works, and so does env-name: PointGoal1D-v0 in a config. No batched
# physics backend is given, so the sampler steps one gymnasium environment per episode slot (the reference path).
register_task_family("PointGoal1D-v0", PointGoal1DEnv, max_episode_steps=20)


def main(argv: list[str]) -> int:
    config = from_dict(
        {
            "env-name": "PointGoal1D-v0",
            "num-batches": 2,
            "meta-batch-size": 4,  # tasks per meta-batch
            "fast-batch-size": 4,  # episodes per task
            "horizon": 20,
            "policy": {"type": "mlp", "hidden-sizes": [16, 16]},
        }
    )
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(argv[0]) if argv else Path(scratch) / "point-goal"
        train(config, folder, progress=False)
        for row in read_metrics(folder):
            before, after = row["returns_before"], row["returns_after"]
            print(f"meta-batch {row['batch']}: return {before:.2f} before adaptation, {after:.2f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
