"""What the testing notebook (``notebooks/Testing_Notebook.ipynb``) shows: the user's own runs when there are
any, else the comparisons committed under ``docs/results/``.

The notebook stays a thin page of cells over these functions, so that what it shows is tested like the rest.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from maml_rl.training.log import CONFIG

RUNS_VARIABLE = "BIO_MAML_RUNS"
"""Run folders for the notebook, separated by ``os.pathsep`` (how the tests, or a shell, point it at runs)."""
COMMITTED = Path("docs") / "results"
FIGURE_WIDTH, FIGURE_COLOURS = 440, 48
"""The committed figures are shown scaled to this width in pixels, in this many colours: the notebook ships with
them as outputs, which stay small (about 20 kB a figure instead of 100)."""


def repository_root(start: Path | None = None) -> Path:
    """The checkout the notebook runs in: the nearest folder at or above ``start`` (default: the working
    directory) that holds ``configs/`` and ``docs/results/``."""
    start = Path.cwd() if start is None else Path(start)
    for folder in (start, *start.parents):
        if (folder / "configs").is_dir() and (folder / COMMITTED).is_dir():
            return folder
    raise FileNotFoundError(f"{start} is not inside a bio-maml-rl checkout (no configs/ and docs/results/ above it)")


@dataclass(frozen=True)
class Selection:
    """The runs to analyse, or none (then the committed comparisons are shown), and why."""

    runs: list[Path]
    why: str


def select_runs(runs: list[str | Path] | None = None, root: Path | None = None) -> Selection:
    """``runs`` if given, else those named by ``$BIO_MAML_RUNS``, else every run folder under ``runs/`` of the
    checkout (``root``: found from the working directory). Relative paths are taken from the checkout's root (or
    the working directory outside one). A run named explicitly that does not exist, or is not a run folder,
    raises ``FileNotFoundError`` saying which and what to do."""
    if runs is None and os.environ.get(RUNS_VARIABLE):
        runs, why = os.environ[RUNS_VARIABLE].split(os.pathsep), f"the runs ${RUNS_VARIABLE} names"
    elif runs is not None:
        why = "the runs RUNS names"
    else:
        root = repository_root() if root is None else root
        found = sorted(p for p in (root / "runs").glob("*/") if (p / CONFIG).is_file())
        if not found:
            return Selection([], "no run folder under runs/ yet: showing the committed results")
        return Selection(found, "every run under runs/")
    if root is None:
        try:
            root = repository_root()
        except FileNotFoundError:
            root = Path.cwd()
    folders = [Path(r) if Path(r).is_absolute() else root / r for r in runs]
    missing = [str(f) for f in folders if not (f / CONFIG).is_file()]
    if missing:
        raise FileNotFoundError(
            f"not run folders written by train.py (no {CONFIG}): {', '.join(missing)}; train one with "
            "python train.py --config CONFIG --output-folder FOLDER, or set RUNS = None to see every run under "
            "runs/ (or the committed results when there is none)"
        )
    return Selection(folders, why)


def committed_comparisons(root: Path | None = None) -> list[Path]:
    """The folders under ``docs/results/`` that hold a ``comparison.md`` written by compare.py, sorted."""
    root = repository_root() if root is None else root
    return sorted(p.parent for p in (root / COMMITTED).rglob("comparison.md"))


def scaled_png(path: Path, width: int = FIGURE_WIDTH, colours: int = FIGURE_COLOURS) -> bytes:
    """A PNG figure scaled down to ``width`` pixels and ``colours`` colours (for small notebook outputs)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        buffer = io.BytesIO()
        image.quantize(colors=colours).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
