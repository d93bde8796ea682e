"""The testing notebook: the user's runs when there are any, the committed results otherwise, a clear stop when
pointed at runs that do not exist; it ships executed on the committed results, small, and without warnings."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import REPO
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from test_scripts import evaluate_main, tiny_config, train_main

NOTEBOOK = REPO / "notebooks" / "Testing_Notebook.ipynb"
SHIPPED_AT_MOST = 200_000
"""Bytes of the notebook as committed, outputs included."""


def _execute(path: Path, cwd: Path, monkeypatch, runs: list[str] | None = None) -> list[dict]:
    """Executes the notebook at ``path`` in ``cwd``; returns its code cells' outputs."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    if runs is None:
        monkeypatch.delenv("BIO_MAML_RUNS", raising=False)
    else:
        monkeypatch.setenv("BIO_MAML_RUNS", os.pathsep.join(runs))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. nbformat's MissingIDFieldWarning for cells without ids
        notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    warned = [o["text"] for o in outputs if o.output_type == "stream" and o.get("name") == "stderr"]
    assert not warned, warned  # no warning (tqdm's "IProgress not found", matplotlib's, ...) reaches the reader
    return outputs


def _markdown(outputs) -> str:
    return "\n".join(o.get("data", {}).get("text/markdown", "") for o in outputs)


def test_the_notebook_shows_the_users_runs(tmp_path, monkeypatch):
    runs = []
    for policy in ("mlp", "rnn"):
        for seed in (1, 2):
            run = tmp_path / f"{policy}-seed{seed}"
            argv = ["--config", str(tiny_config(tmp_path, num_batches=2)), "--policy", policy, "--seed", str(seed)]
            assert train_main([*argv, "--output-folder", str(run), "--no-progress"]) == 0
            runs.append(str(run))
    assert evaluate_main(["--run", runs[0], "--num-batches", "1", "--adapt-steps", "2", "--no-progress"]) == 0
    from maml_rl.analysis.video import write_clip

    # A clip as test.py --record-video writes it (2D navigation renders none, so its frames are made up).
    (Path(runs[1]) / "videos").mkdir()
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(4)]
    write_clip(Path(runs[1]) / "videos" / "task0_before_after.mp4", frames, fps=20.0)
    outputs = _execute(NOTEBOOK, tmp_path, monkeypatch, runs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4  # learning curves, before/after, adaptation curves, within-episode rewards
    videos = [o for o in outputs if "<video" in o.get("data", {}).get("text/html", "")]
    assert len(videos) == 1 and 'src="data:video/mp4;base64,' in videos[0]["data"]["text/html"]
    markdown = _markdown(outputs)
    assert "What each group pools" in markdown and "Welch" in markdown
    assert "The committed results" not in markdown and "docs/results" not in markdown


def test_without_runs_the_notebook_shows_the_committed_results(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"  # the repository without a runs/ folder
    (checkout / "notebooks").mkdir(parents=True)
    for name in ("configs", "docs"):
        (checkout / name).symlink_to(REPO / name)
    outputs = _execute(NOTEBOOK, checkout / "notebooks", monkeypatch)
    markdown = _markdown(outputs)
    assert "No runs of your own yet" in markdown
    comparisons = sorted((REPO / "docs" / "results").rglob("comparison.md"))
    assert comparisons
    for path in comparisons:
        assert f"### `{path.parent.relative_to(REPO)}`" in markdown
    figures = [p for p in comparisons if (p.parent / "adaptation_curves.png").exists()]
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == len(figures)


def test_pointed_at_runs_that_do_not_exist_the_notebook_stops_and_says_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(CellExecutionError, match="not run folders written by train.py") as stopped:
        _execute(NOTEBOOK, tmp_path, monkeypatch, [str(tmp_path / "no-such-run")])
    assert str(tmp_path / "no-such-run") in str(stopped.value) and "python train.py" in str(stopped.value)


def test_the_notebook_ships_executed_on_the_committed_results_and_small():
    assert NOTEBOOK.stat().st_size <= SHIPPED_AT_MOST
    data = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [cell for cell in data["cells"] if cell["cell_type"] == "code"]
    assert all(cell["execution_count"] is not None for cell in code), "shipped unexecuted"
    outputs = [o for cell in code for o in cell["outputs"]]
    markdown = "\n".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "docs/results" in markdown and "Welch" in markdown
    assert not [o for o in outputs if o["output_type"] == "error" or o.get("name") == "stderr"]
    assert all("id" in cell for cell in data["cells"])
