"""The default path reproduces its recorded numbers bit for bit (see ``tests/data/reference_numbers.py``).

Restructuring the package, moving a function or rewriting a loop must leave every metric of a meta-batch and
every trained weight exactly as recorded. On a CPU of another kind than the recording's (torch picks other
vector kernels there), float32 rounding may differ, so the check there is to a tolerance.
"""

from __future__ import annotations

import json
import sys

import pytest

from conftest import REPO

DATA = REPO / "tests" / "data"
RECORDED = json.loads((DATA / "reference_numbers.json").read_text(encoding="utf-8"))


def _recorder():
    sys.path.insert(0, str(DATA))
    try:
        import reference_numbers
    finally:
        sys.path.remove(str(DATA))
    return reference_numbers


@pytest.mark.parametrize("case", sorted(RECORDED["cases"]))
def test_default_path_reproduces_the_recorded_numbers(case):
    recorder = _recorder()
    exact = recorder.cpu_capability() == RECORDED["cpu_capability"]
    got, want = recorder.run(case), RECORDED["cases"][case]
    assert len(got["metrics"]) == len(want["metrics"])
    for got_row, want_row in zip(got["metrics"], want["metrics"]):
        assert set(got_row) == set(want_row), f"{case}: metrics keys changed"
        for key, value in want_row.items():
            if isinstance(value, float) and not exact:
                value = pytest.approx(value, rel=1e-4, abs=1e-7)
            assert got_row[key] == value, f"{case} meta-batch {want_row['batch']}: {key}"
    assert set(got["state"]) == set(want["state"]), f"{case}: state-dict entries changed"
    for name, digest in want["state"].items():
        if exact:
            assert got["state"][name]["sha256"] == digest["sha256"], (
                f"{case}: {name} differs from the recorded bits (sum {got['state'][name]['sum']!r}, recorded "
                f"{digest['sum']!r})")
        else:
            assert got["state"][name]["sum"] == pytest.approx(digest["sum"], rel=1e-4, abs=1e-6), f"{case}: {name}"
    for name, digest in want["evaluation"].items():
        if exact:
            assert got["evaluation"][name]["sha256"] == digest["sha256"], (
                f"{case}: evaluation {name} differs (sum {got['evaluation'][name]['sum']!r}, recorded {digest['sum']!r})")
        else:
            assert got["evaluation"][name]["sum"] == pytest.approx(digest["sum"], rel=1e-4), f"{case}: evaluation {name}"
