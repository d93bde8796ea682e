"""What the command-line programs share: the argument parser's form of bad input and the ``--threads`` flag.

Light on purpose (no torch, no environments): the rules lab's ``--help`` and its config errors stay instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from maml_rl.exits import BAD_INPUT, error_line
from maml_rl.policies.registry import check_policy_type, policy_types

THREADS_HELP = (
    "threads of the learner phases (adaptation, TRPO; default: every usable core). On the CPU the meta-batch's "
    "tasks run as parts side by side, each thread on one torch thread; the sums over tasks round differently "
    "for each part count (by default one part per thread; the config key learner-parts fixes it, and the run "
    "folder records the count used, so a resume keeps its numbers on any threads). Sampling always runs torch on "
    "one thread while MuJoCo steps on every core. Running several runs at once on a small machine? Give each "
    "--threads 1."
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's form of bad input: one line ``error: ...`` on stderr and exit status 2.

    argparse's own form (a usage block, then ``prog: error: ...``) hides the problem in the middle of the
    output; the usage stays one ``--help`` away, and the line says so.
    """

    def error(self, message: str) -> NoReturn:
        command = self.prog if self.prog.startswith("python") else f"python {self.prog}"
        sys.stderr.write(error_line(f"{message} (see {command} --help)") + "\n")
        sys.exit(BAD_INPUT)


def checked(check: Callable[[str], Any], metavar: str) -> Callable[[str], Any]:
    """An argparse ``type`` from a check that returns the value or raises ``ValueError`` with the reason: the
    reason becomes the one-line error (argparse's own line for a ``ValueError`` only names the function)."""

    def convert(text: str) -> Any:
        try:
            return check(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = metavar
    return convert


def add_set_flag(parser: argparse.ArgumentParser, what: str = "") -> None:
    """``--set KEY=VALUE`` (repeatable; into ``args.assignments``): any config key, nested keys with dots."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="assignments",
        help="override any config key, nested keys with dots (e.g. --set policy.leak=0.3 --set fast-lr=0); "
        f"repeatable{what}",
    )


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, help=THREADS_HELP)


def add_policy_flag(parser: argparse.ArgumentParser, help: str = "override the config's policy type") -> None:
    """``--policy``: a registered policy type, checked as it is parsed."""
    parser.add_argument(
        "--policy",
        type=checked(check_policy_type, "policy"),
        metavar="{" + ",".join(policy_types()) + "}",
        help=help,
    )


def add_size_flags(parser: argparse.ArgumentParser) -> None:
    """``--meta-batch-size``, ``--fast-batch-size`` and ``--horizon``, overriding the config's (the benchmarks')."""
    parser.add_argument("--meta-batch-size", type=int, help="override tasks per meta-batch (default: the config's)")
    parser.add_argument("--fast-batch-size", type=int, help="override episodes per task (default: the config's)")
    parser.add_argument("--horizon", type=int, help="override the episode length (default: the config's)")


def benchmark_parser(name: str, doc: str | None, config_help: str) -> ArgumentParser:
    """The parser of ``python -m maml_rl.benchmarks NAME``: ``doc`` as its description, ``--config`` (required) and
    ``--policy``."""
    parser = ArgumentParser(
        prog=f"python -m maml_rl.benchmarks {name}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help=config_help)
    add_policy_flag(parser)
    return parser
