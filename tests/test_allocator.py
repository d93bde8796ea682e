"""reuse_freed_memory makes glibc keep freed tensor memory for the next tensors instead of unmapping it."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import ctypes, sys, torch
from maml_rl.process import reuse_freed_memory
tuned = reuse_freed_memory() if sys.argv[1] == "tuned" else False
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
mallinfo2.restype = MallInfo2
tensors = [torch.ones(4 * 2**20) for _ in range(6)]  # 16 MB each, like a backward pass's activations
del tensors
print(tuned, mallinfo2().fordblks // 2**20)  # MB of freed memory the heap kept for reuse
"""


def _kept_mb(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "BIO_MAML_MALLOC"}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", SCRIPT, mode], env={**clean, **env}, capture_output=True, text=True)
    if "mallinfo2" in result.stderr:
        pytest.skip("not glibc >= 2.33: no mallinfo2 to inspect the heap")
    assert result.returncode == 0, result.stderr
    tuned, kept = result.stdout.split()
    return tuned, int(kept)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_reuse_freed_memory_keeps_large_blocks_in_the_heap():
    _, kept_by_default = _kept_mb("default")
    tuned, kept = _kept_mb("tuned")
    assert tuned == "True"
    assert kept_by_default < 16  # glibc's default hands 16 MB blocks back to the kernel (they page-fault in again)
    assert kept >= 6 * 16


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "131072"}, {"BIO_MAML_MALLOC": "default"}])
def test_user_malloc_settings_win(env):
    tuned, _ = _kept_mb("tuned", **env)
    assert tuned == "False"


THREAD_SCRIPT = """
import ctypes, sys, threading, torch
from maml_rl.process import reuse_freed_memory
tuned = reuse_freed_memory() if sys.argv[1] == "tuned" else False
kept = []
worker = threading.Thread(target=lambda: kept.append(torch.ones(2**20)))  # a tensor made on another thread
worker.start(), worker.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # per-arena statistics on stderr: "Arena 0:", "Arena 1:", ...
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_a_worker_thread_allocates_from_the_one_tuned_heap():
    """The learner's part threads share the main arena, whose freed blocks the thresholds keep; glibc would give
    each thread an arena of its own, made of 64 MB heaps that are unmapped as they empty."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "BIO_MAML_MALLOC"}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    arenas = {}
    for mode in ("default", "tuned"):
        result = subprocess.run([sys.executable, "-c", THREAD_SCRIPT, mode], env=clean, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        arenas[mode] = sum(line.startswith("Arena ") for line in result.stderr.splitlines())
    assert arenas["default"] >= 2, arenas  # the worker thread got an arena of its own
    assert arenas["tuned"] == 1, arenas
