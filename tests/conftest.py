"""Shared fixtures: tiny configs and synthetic episodes, so most tests need no simulator."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as maml_rl sets it, but torch is imported first here

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Every test runs in its own empty working directory, so stray files (MUJOCO_LOG.TXT, runs/) show up."""
    monkeypatch.chdir(tmp_path)
    yield
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in _EXPECTED)
    assert "MUJOCO_LOG.TXT" not in leftovers, "MuJoCo wrote MUJOCO_LOG.TXT into the working directory"


_EXPECTED: set[str] = set()
