"""Helpers shared by the command-line entry points."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

THREADS_HELP = ("torch threads of the learner phases (adaptation, TRPO; default: every usable core for the mlp "
                "policy, one for the rnn policy, whose many small recurrent operations run faster on one). Sampling "
                "always runs torch on one thread while MuJoCo steps on every core. Running several runs at once "
                "on a small machine? Give each --threads 1.")


def error_line(message: object) -> str:
    """``error: <message>``, kept to one line: line breaks and other control characters (in a path or a key
    taken from the input) are shown escaped."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))
    return f"error: {text}"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's form of bad input: one line ``error: ...`` on stderr and exit status 2.

    argparse's own form (a usage block, then ``prog: error: ...``) hides the problem in the middle of the
    output; the usage stays one ``--help`` away, and the line says so.
    """

    def error(self, message: str) -> NoReturn:
        command = self.prog if self.prog.startswith("python") else f"python {self.prog}"
        sys.stderr.write(error_line(f"{message} (see {command} --help)") + "\n")
        sys.exit(2)


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, help=THREADS_HELP)


def check_threads(threads: int | None) -> int | None:
    """Rejects ``--threads`` outside 1 … 4 × the usable cores; ``None`` means the default."""
    from maml_rl.config import ConfigError  # here: the rules lab uses this module without the MAML config
    from maml_rl.runs.trainer import usable_cores  # imports torch: only when a value is to be checked

    most = 4 * usable_cores()  # more threads than that only wait for each other
    if threads is not None and not 1 <= threads <= most:
        raise ConfigError(f"--threads must be between 1 and {most} (4 x the {usable_cores()} usable cores), got {threads}")
    return threads
