"""Threads per phase of a meta-batch: the one rule for the learner's threads.

Sampling runs torch on one thread while MuJoCo steps on every core. The learner phases (advantages, the inner
loop, the outer step) run on :func:`learner_threads` threads: on the CPU as that many parts of the tasks, side
by side, each on one torch thread (:class:`maml_rl.metabatch.TaskSlice`); a batch computed as a whole runs on
:func:`whole_batch_threads` torch threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from maml_rl.config import ConfigError
from maml_rl.process import usable_cores

MAX_THREADS_PER_CORE = 4
"""More threads than this times the usable cores only wait for each other."""


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Runs the block with ``threads`` torch intra-op threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def learner_threads(requested: int | None = None, cap: int | None = None) -> int:
    """The learner's threads: ``requested`` (``--threads``) if given, else every usable core; at most ``cap``
    (a Ray shard's CPUs)."""
    threads = requested or usable_cores()
    return threads if cap is None else min(threads, cap)


def whole_batch_threads(prefers_one_thread: bool, threads: int) -> int:
    """torch intra-op threads for a batch of tasks computed as one (evaluation's inner loop, a slice of one
    part, any device but the CPU): ``threads``, or one for a policy whose many small operations run faster on
    one (the RNN: see :attr:`maml_rl.policies.base.Policy.prefers_one_thread`)."""
    return 1 if prefers_one_thread else threads


def check_threads(threads: int | None) -> int | None:
    """``--threads`` checked: 1 … 4 × the usable cores, or ``None`` (the default); else :class:`ConfigError`."""
    most = MAX_THREADS_PER_CORE * usable_cores()
    if threads is not None and not 1 <= threads <= most:
        raise ConfigError(
            f"--threads must be between 1 and {most} ({MAX_THREADS_PER_CORE} x the {usable_cores()} "
            f"usable cores), got {threads}"
        )
    return threads
