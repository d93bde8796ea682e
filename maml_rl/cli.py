"""Helpers shared by the command-line entry points."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from maml_rl.config import ConfigError

THREADS_HELP = ("torch threads of the learner phases (adaptation, TRPO; default: every usable core for the mlp "
                "policy, one for the rnn policy, whose many small recurrent operations run faster on one). Sampling "
                "always runs torch on one thread while MuJoCo steps on every core. Running several runs at once "
                "on a small machine? Give each --threads 1.")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's form of bad input: one line ``error: ...`` on stderr and exit status 2.

    argparse's own form (a usage block, then ``prog: error: ...``) hides the problem in the middle of the
    output; the usage stays one ``--help`` away, and the line says so.
    """

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see python {self.prog} --help)\n")
        sys.exit(2)


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, help=THREADS_HELP)


def check_threads(threads: int | None) -> int | None:
    """Rejects ``--threads`` outside 1 … 4 × the usable cores; ``None`` means the default."""
    from maml_rl.trainer import usable_cores  # imports torch: only when a value is to be checked

    most = 4 * usable_cores()  # more threads than that only wait for each other
    if threads is not None and not 1 <= threads <= most:
        raise ConfigError(f"--threads must be between 1 and {most} (4 x the {usable_cores()} usable cores), got {threads}")
    return threads
