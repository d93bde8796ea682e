"""How the command-line programs end: their exit statuses and their one-line error messages, in one place."""

from __future__ import annotations

OK = 0
FAILED = 1
"""A run of a sweep failed, or the rules lab's PPO diverged (the message says what to change)."""
BAD_INPUT = 2
"""Bad input (a flag, a config key, a file, a run folder), said in one ``error:`` line; also a lost Ray cluster."""
DIVERGED = 3
"""Training stopped after too many consecutive meta-batches with non-finite numbers."""
WRITE_FAILED = 4
"""A file could not be written (a full disk, a quota); what was written before is intact."""
SOFTWARE_ERROR = 70
"""An unexpected Python error in a ``--ray`` run's driver, after its traceback (BSD's EX_SOFTWARE)."""
INTERRUPTED = 130
"""Ctrl-C (SIGINT): 128 + 2, as shells report it."""
TERMINATED = 143
"""SIGTERM (a scheduler, Ray): 128 + 15."""

OWN_STATUSES = frozenset({OK, FAILED, BAD_INPUT, DIVERGED, WRITE_FAILED, SOFTWARE_ERROR, INTERRUPTED, TERMINATED})
"""Statuses with which the programs end by themselves, having said why."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, else the exception's type name."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else type(error).__name__


def error_line(message: object) -> str:
    """``error: <message>``, kept to one line: line breaks and other control characters (in a path or a key
    taken from the input) are shown escaped."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))
    return f"error: {text}"
