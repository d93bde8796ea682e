"""What a run folder holds and how it is written: metrics.jsonl, TensorBoard events, an atomic checkpoint.

Every write is crash-safe: a metrics line is appended whole and fsynced; the checkpoint is written to a
temporary file, fsynced and renamed over the old one, so a kill at any moment leaves a loadable file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import IO, Any, Callable

import torch

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"


class RunLog:
    """Appends one JSON object per meta-batch to ``metrics.jsonl`` and the same scalars to TensorBoard."""

    def __init__(self, folder: Path, tensorboard: bool = True) -> None:
        self.folder = folder
        self.path = folder / METRICS
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # slow import, only when logging

            self._tb = SummaryWriter(log_dir=str(folder))

    def write(self, metrics: dict[str, Any]) -> None:
        line = json.dumps(metrics, allow_nan=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        if self._tb is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "batch":
                    self._tb.add_scalar(key, value, metrics["batch"])
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    """The metrics of a run, one dict per meta-batch; a torn last line (a crash mid-write) is ignored."""
    path = Path(folder) / METRICS
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def truncate_metrics(folder: Path, next_batch: int) -> None:
    """Keeps the metrics of batches before ``next_batch`` (used when resuming), rewritten atomically."""
    rows = [r for r in read_metrics(folder) if r.get("batch", math.inf) < next_batch]
    atomic_write_text(Path(folder) / METRICS, "".join(json.dumps(r) + "\n" for r in rows))


def _atomic_write(path: Path, write: Callable[[IO[Any]], None], mode: str) -> None:
    """Writes a temporary file beside ``path``, fsyncs it and renames it over ``path`` (atomic on POSIX).

    A crash at any moment leaves either the old file or the new one; an exception removes the temporary file.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text), "w")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` of ``state``, written atomically."""
    _atomic_write(path, lambda f: torch.save(state, f), "wb")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=True)
