"""What a run folder holds and how it is written: metrics.jsonl, TensorBoard events, an atomic checkpoint.

Every write is crash-safe: a metrics line is appended whole and fsynced; the checkpoint is written to a
temporary file, fsynced and renamed over the old one, so a kill at any moment leaves a loadable file. A write
that fails (a full disk, a quota, a file-size limit) leaves the previous state: a partly appended metrics line
is cut off again, a partly written checkpoint is removed; the failure is a :class:`RunWriteError`.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from maml_rl.config import save_config

CHECKPOINT = "checkpoint.pt"
"""The policy's state after the last complete meta-batch, that batch's index and the config."""
METRICS = "metrics.jsonl"
"""One JSON object per meta-batch."""
RECORD = "record.json"
"""Marks a run record (``compare.py --save-records``): where it came from and what it keeps."""
METRICS_GZ = METRICS + ".gz"
""":data:`METRICS` gzipped, as a run record (``compare.py --save-records``) holds it."""
CONFIG = "config.yaml"
"""The run's resolved config."""
RESULTS = "results.npz"
"""``test.py``'s evaluation on fresh tasks: the returns after 0, 1, …, K adaptation steps."""
SUMMARY = "results.json"
"""The evaluation's per-step means and CIs; written after :data:`RESULTS`, so it marks a whole evaluation."""
MOVABLE = (CONFIG, CHECKPOINT, METRICS)
"""The files an unfinished run needs to be resumed in another folder or on another machine (``train.py
--output-folder NEW --resume`` continues it exactly as it would have gone on where it was)."""


class RunWriteError(OSError):
    """A file of the run folder could not be written; what was written before is intact."""


class MetricsError(ValueError):
    """``metrics.jsonl`` is damaged beyond a torn last line."""


def _write_failure(path: Path, e: OSError) -> RunWriteError:
    return RunWriteError(f"cannot write {path} ({e.strerror or type(e).__name__})")


def _quiet_tensorboard_writer_errors() -> None:
    """TensorBoard writes from a thread that prints its exception's traceback before the writer re-raises it in
    the main thread (where :class:`RunLog` turns it into a :class:`RunWriteError`); keep that thread quiet."""
    previous = threading.excepthook
    if getattr(previous, "_maml_rl_quiet", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if not (type(args.thread).__name__ == "_AsyncWriterThread" and issubclass(args.exc_type, OSError)):
            previous(args)

    hook._maml_rl_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook


class RunLog:
    """Appends one JSON object per meta-batch to ``metrics.jsonl`` and the same scalars to TensorBoard."""

    def __init__(self, folder: Path, tensorboard: bool = True) -> None:
        self.folder = folder
        self.path = folder / METRICS
        self._tb = None
        self._tb_failed = False
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # slow import, only when logging

            _quiet_tensorboard_writer_errors()
            try:
                self._tb = SummaryWriter(log_dir=str(folder))
            except OSError as e:
                raise _write_failure(folder / "events.out.tfevents.*", e) from None

    def write(self, metrics: dict[str, Any]) -> None:
        """Appends one line (all of it or, if the write fails, none of it) and the TensorBoard scalars."""
        line = memoryview((json.dumps(metrics, allow_nan=True) + "\n").encode("utf-8"))
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise _write_failure(self.path, e) from None
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
            try:
                while line:  # unbuffered: a short write is retried, and its error comes here, not at close
                    line = line[os.write(fd, line) :]
                os.fsync(fd)
            except OSError as e:
                try:
                    os.ftruncate(fd, size)  # shrinking needs no space: the file ends as before the write
                except OSError:
                    pass  # then a torn last line, which readers ignore
                raise _write_failure(self.path, e) from None
        finally:
            os.close(fd)
        if self._tb is not None:
            try:
                for key, value in metrics.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "batch":
                        self._tb.add_scalar(key, value, metrics["batch"])
                self._tb.flush()
            except OSError as e:
                self._tb_failed = True
                raise _write_failure(Path(self._tb.get_logdir()) / "events.out.tfevents.*", e) from None

    def close(self) -> None:
        if self._tb is not None:
            try:
                self._tb.close()
            except OSError as e:
                if not self._tb_failed:  # already reported
                    raise _write_failure(Path(self._tb.get_logdir()) / "events.out.tfevents.*", e) from None


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    """The metrics of a run, one dict per meta-batch; a torn last line (a crash mid-write) is ignored.

    Any other line that is not a JSON object with an integer ``batch`` raises :class:`MetricsError` naming
    the file and the line.
    """
    path = Path(folder) / METRICS
    if not path.exists() and (Path(folder) / METRICS_GZ).exists():
        path = Path(folder) / METRICS_GZ
    if not path.exists():
        return []
    try:
        data = gzip.decompress(path.read_bytes()) if path.name == METRICS_GZ else path.read_bytes()
        lines = data.decode("utf-8", errors="replace").splitlines()
    except (OSError, EOFError) as e:  # gzip's BadGzipFile is an OSError
        raise MetricsError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except ValueError:  # json.JSONDecodeError is one
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("batch"), int):
            if number == len(lines):
                break  # torn by a crash while it was written
            raise MetricsError(
                f"{path}: line {number} of {len(lines)} is damaged ({line[:40]!r} is not a JSON "
                "object with an integer 'batch'); repair or delete that line (or it and the ones "
                "after it, to continue from there), then try again"
            )
        rows.append(row)
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
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _write_failure(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text), "w")


def save_config_atomically(config: Any, path: Path) -> None:
    """:func:`maml_rl.config.save_config`, through a temporary file: a failed write keeps the old config."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        save_config(config, tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _write_failure(path, e) from None


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` of ``state``, written atomically.

    Serialised in memory first: torch's file writer turns a failed write into an opaque RuntimeError, a plain
    write gives the OSError that says why (no space left, file too large).
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _atomic_write(path, lambda f: f.write(buffer.getbuffer()), "wb")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=True)
