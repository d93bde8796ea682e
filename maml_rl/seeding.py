"""Keyed random streams: every random draw of a run comes from a generator named by what it is for.

Randomness is derived per meta-batch from ``(seed, stream, batch)`` (its tasks) and per task from
``(seed, stream, batch, task, rollout)`` (the task's resets and action noise). So a run resumed at meta-batch k
draws exactly what an uninterrupted run draws there (a checkpoint needs only the parameters and the batch
index), and a task's numbers do not depend on which process, or beside which other tasks, it is sampled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TRAIN_STREAM = 0
"""Meta-training's tasks and rollouts."""
EVAL_STREAM = 1
"""``test.py``'s fresh tasks: they never coincide with the training tasks of the same seed."""
VIDEO_STREAM = 2
"""The tasks ``test.py --record-video`` records."""


def batch_rng(seed: int, stream: int, batch: int) -> np.random.Generator:
    """The generator of one meta-batch's tasks."""
    return np.random.default_rng([seed, stream, batch])


def task_rngs(
    seed: int, stream: int, batch: int, tasks: range | Sequence[int], rollout: int
) -> list[np.random.Generator]:
    """One generator per task for one of its rollouts (0: before adaptation, k: after k adaptation steps)."""
    return [np.random.default_rng([seed, stream, batch, task, rollout]) for task in tasks]
