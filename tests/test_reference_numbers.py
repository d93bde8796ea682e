"""The default path reproduces its recorded numbers bit for bit (see ``tests/data/reference_numbers.py``).

Restructuring the package, moving a function or rewriting a loop must leave every metric of a meta-batch,
every trained weight and every evaluation return exactly as recorded. On a CPU of another kind than the
recording's, torch runs other float32 kernels, so there the check is to the differences those make (measured
with ``ATEN_CPU_CAPABILITY=default``: metrics 5e-6 relative, weights 7e-5 of their norm, evaluation 2e-6).
"""

from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO

DATA = REPO / "tests" / "data"
RECORDED = json.loads((DATA / "reference_numbers.json").read_text(encoding="utf-8"))
METRICS_REL, METRICS_ABS = 1e-4, 1e-6
"""Elsewhere: metrics within 1e-4 relatively or 1e-6 absolutely (the surrogate loss at θ is zero up to rounding)."""
WEIGHTS_REL, EVALUATION_REL = 1e-3, 1e-4
"""Elsewhere: a tensor's sum within these fractions of its norm."""


def _recorder():
    sys.path.insert(0, str(DATA))
    try:
        import reference_numbers
    finally:
        sys.path.remove(str(DATA))
    return reference_numbers


def _assert_digest(got: dict, want: dict, exact: bool, rel: float, what: str) -> None:
    if exact:
        assert got["sha256"] == want["sha256"], (
            f"{what} differs from the recorded bits (sum {got['sum']!r}, recorded {want['sum']!r})"
        )
    else:
        assert abs(got["sum"] - want["sum"]) <= rel * want["norm"] + 1e-12, (
            f"{what}: sum {got['sum']!r}, recorded {want['sum']!r}"
        )


@pytest.mark.parametrize("case", sorted(RECORDED["cases"]))
def test_default_path_reproduces_the_recorded_numbers(case):
    recorder = _recorder()
    exact = recorder.cpu_kind() == RECORDED["cpu"]
    got, want = recorder.run(case), RECORDED["cases"][case]
    assert len(got["metrics"]) == len(want["metrics"])
    for got_row, want_row in zip(got["metrics"], want["metrics"]):
        assert set(got_row) == set(want_row), f"{case}: metrics keys changed"
        for key, value in want_row.items():
            if isinstance(value, float) and not exact:
                value = pytest.approx(value, rel=METRICS_REL, abs=METRICS_ABS, nan_ok=True)
            assert got_row[key] == value, f"{case} meta-batch {want_row['batch']}: {key}"
    assert set(got["state"]) == set(want["state"]), f"{case}: state-dict entries changed"
    for name, digest in want["state"].items():
        _assert_digest(got["state"][name], digest, exact, WEIGHTS_REL, f"{case}: {name}")
    for name, digest in want["evaluation"].items():
        _assert_digest(got["evaluation"][name], digest, exact, EVALUATION_REL, f"{case}: evaluation {name}")
