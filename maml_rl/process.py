"""Process-wide settings that the entry points apply before any work starts, and the cores a process may use.

Nothing here runs on import: ``train.py``, ``test.py``, ``sweep.py`` and the benchmarks call
:func:`prepare_process` first thing, before torch is imported. A program of your own that drives the library
from Python should do the same (see the docs' "Use it from Python" page); without it everything works, only
slower on a busy machine.

* **OpenMP waiting.** torch's OpenMP threads busy-wait between parallel regions by default. When another
  process holds one of a small machine's cores, that spinning stalls every parallel region (measured: a
  2D-navigation meta-batch took 5.7 s with 2 threads instead of 0.14 s with 1). Passive waiting removes the
  stall. OpenMP reads the setting when torch loads it, hence before torch is imported; an explicit
  ``OMP_WAIT_POLICY`` in the environment wins.
* **Freed memory stays in the process.** The learner allocates and frees tensors of ~20 MB thousands of
  times per meta-batch (the activations and their gradients over 40 tasks × 2,000 steps × 64 units).
  glibc's malloc serves blocks of that size with fresh ``mmap`` pages unless told otherwise, so each new
  tensor page-faults in and the kernel zeroes it. Measured with ``python -m maml_rl.benchmarks.throughput``
  on the halfcheetah-dir MLP: 270,695 minor page faults per meta-batch with ``BIO_MAML_MALLOC=default``,
  66,104 and 69,887 with :func:`reuse_freed_memory`, and a TRPO step of 3.07 s against 2.77 and 2.65 s.
  The price: up to :data:`TRIM_THRESHOLD` of freed memory stays mapped to the process. The learner's part
  threads (see :mod:`maml_rl.threads`) allocate from that same heap: glibc would give each thread an arena of
  its own, made of 64 MB heaps that are unmapped as soon as they empty (HalfCheetahDir MLP, 20 tasks, two
  parts: 61,315 page faults per meta-batch with a thread arena, 2,521 with one arena).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # mallopt parameters of glibc's malloc.h
MMAP_THRESHOLD = 32 * 2**20
"""Blocks up to this size come from the heap (glibc's largest allowed value on 64-bit systems)."""
TRIM_THRESHOLD = 512 * 2**20
"""Free memory at the top of the heap beyond this is returned to the kernel."""
ENV_OVERRIDES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX")
OPT_OUT = "BIO_MAML_MALLOC"
"""Set to ``default`` to leave glibc's malloc as it is (e.g. to measure the difference)."""


def prepare_process() -> None:
    """Passive OpenMP waiting and malloc thresholds that keep freed memory; call it before importing torch."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    reuse_freed_memory()


def reuse_freed_memory() -> bool:
    """Raises glibc's mmap and trim thresholds for this process and makes its threads share one arena; returns
    whether it did.

    Does nothing off glibc (other platforms, musl), with ``BIO_MAML_MALLOC=default``, or when the user set
    ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_ARENA_MAX``, whose values then stand.
    """
    if not sys.platform.startswith("linux") or any(name in os.environ for name in ENV_OVERRIDES):
        return False
    if os.environ.get(OPT_OUT, "").lower() == "default":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(
        mallopt(param, value)
        for param, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, 1))
    )


def usable_cores() -> int:
    """CPUs this process may run on (in a container, fewer than the machine's logical CPUs)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
