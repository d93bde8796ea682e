"""What the machine offers a run: memory it can still get, and an output folder it can write into.

Shared by both systems' pre-flight checks (the MAML scripts and the learning-rules lab).
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def available_memory() -> int | None:
    """Bytes this process can still get: the kernel's MemAvailable, lowered by a cgroup limit; None if unknown."""
    known = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    known.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    for limit_file, usage_file in CGROUP_FILES:
        try:
            limit = Path(limit_file).read_text().strip()
            if limit != "max" and int(limit) < 2**60:  # v1 writes a huge number for "no limit"
                known.append(max(0, int(limit) - int(Path(usage_file).read_text().strip())))
            break
        except (OSError, ValueError):
            continue
    return min(known) if known else None


def format_bytes(n: float) -> str:
    """``1.68 PB``, ``205 MB``: three significant digits and a decimal unit."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} ZB" if n < 1000 else f"{n * 1e21:.2e} B"


class FolderError(ValueError):
    """An output folder that cannot be created or written into; the message names it and says why."""


def check_output_folder(folder: Path, flag: str = "--output-folder") -> Path | None:
    """Creates ``folder`` (and its parents) if needed and writes and removes a probe file in it.

    Returns the outermost folder it created (for :func:`remove_created`), or None.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"{flag} {folder}: exists and is not a folder; choose another path")
    created = next((p for p in reversed([folder, *folder.parents]) if not p.exists()), None)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FolderError(
            f"{flag} {folder}: cannot create it ({_reason(e)}); choose a folder you can write to"
        ) from None
    probe = folder / f".write-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"probe")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        _unlink(probe)
        remove_created(folder, created)
        raise FolderError(
            f"{flag} {folder}: cannot write into it ({_reason(e)}); choose a folder you can write to"
        ) from None
    _unlink(probe)
    return created


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def remove_created(folder: Path, created: Path | None) -> None:
    """Removes the empty folders :func:`check_output_folder` made, from ``folder`` up to ``created``."""
    if created is None:
        return
    for path in [Path(folder), *Path(folder).parents]:
        try:
            path.rmdir()
        except OSError:
            return  # not empty (or gone): keep it and its parents
        if path == created:
            return


def _reason(e: OSError) -> str:
    where = f" at {e.filename}" if e.filename else ""
    return f"{e.strerror or type(e).__name__}{where}"
