"""A run on Ray, watched from a parent process: when the cluster goes away, Ray ends the driver process itself
(an ``exit`` inside Ray's core worker, without a Python exception), so only a parent can still say what
happened, in the project's one line with exit status 2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable

from maml_rl.exits import BAD_INPUT, FAILED, OWN_STATUSES, SOFTWARE_ERROR

CHILD = "MAML_RL_RAY_DRIVER"
"""Set in the child's environment: the child trains, the parent watches."""


def is_child() -> bool:
    return os.environ.get(CHILD) == "1"


def as_child(main: Callable[[], int]) -> int:
    """``main()``, with an unexpected exception ending in :data:`~maml_rl.exits.SOFTWARE_ERROR` (after its
    traceback) rather than Python's status 1, which the parent reads as Ray having ended the process."""
    try:
        return main()
    except Exception:  # noqa: BLE001 - reported in full, then told apart from Ray's exit
        traceback.print_exc()
        return SOFTWARE_ERROR


def run_watched(command: list[str], lost_message: Callable[[int], str]) -> int:
    """Runs ``command`` with :data:`CHILD` set; returns its status, or 2 after printing ``lost_message(status)``
    when it ended in a way train.py never ends by itself.

    The terminal's Ctrl-C reaches the child directly (same process group): the parent ignores it. SIGTERM sent
    to the parent alone (a scheduler) is passed on.
    """
    child = subprocess.Popen(command, env={**os.environ, CHILD: "1"})
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum)),
    }
    try:
        status = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if status in OWN_STATUSES - {FAILED}:  # train.py never ends with 1 itself; Ray ends the driver with it
        return status
    print(lost_message(status), file=sys.stderr)
    return BAD_INPUT
