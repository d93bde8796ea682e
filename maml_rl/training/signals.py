"""SIGTERM handled like Ctrl-C, and the moments when neither may cut in.

Cluster schedulers and Ray stop a job with SIGTERM (and SIGKILL after a grace period); Python's default is to
die on it at once, without the message and the clean stop that Ctrl-C gets. Inside
:func:`stop_signals_as_exceptions`, SIGINT raises ``KeyboardInterrupt`` and SIGTERM raises :class:`Terminated`
(a ``KeyboardInterrupt`` too, so one handler serves both); inside :func:`deferred` both wait until the block is
done, so that a meta-batch's metrics line and its checkpoint are written together.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from maml_rl.exits import INTERRUPTED, TERMINATED

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_pending: list[int] = []
_deferring = 0


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; the process should stop as on Ctrl-C, with exit status 128 + 15."""

    exit_status = TERMINATED


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """143 after SIGTERM, 130 after Ctrl-C (the shells' 128 + signal number)."""
    return getattr(interrupt, "exit_status", INTERRUPTED)


def _raise_for(signum: int) -> None:
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


def _handler(signum: int, frame: object) -> None:
    if _deferring:
        _pending.append(signum)
    else:
        _raise_for(signum)


@contextmanager
def stop_signals_as_exceptions() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise; the previous handlers come back afterwards.

    Only the main thread can own signal handlers; elsewhere the block runs with whatever is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        _pending.clear()


@contextmanager
def deferred() -> Iterator[None]:
    """Holds back SIGINT and SIGTERM (when :func:`stop_signals_as_exceptions` handles them) until the block ends."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring and _pending:  # the block completed: now stop
        signum = _pending[0]
        _pending.clear()
        _raise_for(signum)
