"""Helpers shared by the command-line entry points."""

from __future__ import annotations

import argparse

from maml_rl.config import ConfigError

THREADS_HELP = ("torch threads of the learner phases (adaptation, TRPO; default: every usable core for the mlp "
                "policy, one for the rnn policy, whose many small recurrent operations run faster on one). Sampling "
                "always runs torch on one thread while MuJoCo steps on every core. Running several runs at once "
                "on a small machine? Give each --threads 1.")


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, help=THREADS_HELP)


def check_threads(threads: int | None) -> int | None:
    """Rejects a non-positive ``--threads``; ``None`` means every usable core."""
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    return threads
