"""compare.py says what each group pooled (run lengths, result sources, environments), refuses to pool runs of
unequal lengths unless asked, and its figures stay readable for tiny and constant data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import REPO

from maml_rl.analysis.compare import Comparison, RunRecord, plot_diagnostics, plot_learning_curves


def _rows(length, rng, **extra):
    return [
        {"batch": b, "returns_before": float(rng.normal()), "returns_after": float(rng.normal() + b), **extra}
        for b in range(length)
    ]


def _run(tmp_path, name, seed, length, planned=None, env="HalfCheetahDir-v0", returns=None, rng=None):
    rng = rng or np.random.default_rng(seed)
    config = {"env-name": env, "seed": seed, "num-batches": planned or length}
    return RunRecord(tmp_path / name, config, _rows(length, rng), returns)


def _write_run(folder, seed, length, planned):
    """A run folder as train.py leaves it (config.yaml and metrics.jsonl)."""
    folder.mkdir(parents=True)
    config = {"env-name": "2DNavigation-v0", "seed": seed, "num-batches": planned, "policy": {"type": "mlp"}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    rng = np.random.default_rng(seed)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in _rows(length, rng)))


def test_unequal_or_unfinished_runs_are_not_pooled_unless_asked(tmp_path):
    for name, seed, length, planned in (("a-seed1", 1, 2, 2), ("a-seed2", 2, 33, 33), ("a-seed3", 3, 21, 50)):
        _write_run(tmp_path / name, seed, length, planned)
    runs = [str(tmp_path / n) for n in ("a-seed1", "a-seed2", "a-seed3")]
    out = tmp_path / "cmp"
    done = subprocess.run(
        [sys.executable, str(REPO / "compare.py"), *runs, "--output-folder", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: group a would pool runs of unequal lengths")
    assert "a-seed1: 2, a-seed2: 33, a-seed3: 21 of 50 (unfinished)" in lines[0] and "--allow-unequal" in lines[0]
    assert not out.exists()
    done = subprocess.run(
        [sys.executable, str(REPO / "compare.py"), *runs, "--output-folder", str(out), "--allow-unequal"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    table = (out / "comparison.md").read_text()
    assert (
        "| a | 3 (1, 2, 3) | 2DNavigation-v0 | 2, 33, 21 of 50 (unfinished) | training metrics (last 10%): 3 |" in table
    )
    assert table.splitlines()[0] in done.stdout  # the printed comparison says it too


def test_the_table_names_mixed_result_sources_and_environments_and_explains_missing_tests(tmp_path):
    rng = np.random.default_rng(0)
    returns = rng.normal(size=(4, 2, 3))
    runs = [
        _run(tmp_path, "cheetah-seed1", 1, 5, returns=returns),
        _run(tmp_path, "cheetah-seed2", 2, 5),
        _run(tmp_path, "nav-seed1", 1, 5, env="2DNavigation-v0"),
    ]
    for r in runs[2:]:
        r.config["fast-lr"] = 0.5  # another group
    comparison = Comparison.of(runs)
    table = comparison.to_markdown()
    assert "test.py (fresh tasks): 1; training metrics (last 10%): 1 (mixed)" in table
    assert "| HalfCheetahDir-v0 |" in table and "| 2DNavigation-v0 |" in table
    assert "different environments; no test compares groups of different environments" in table
    assert not comparison.tests  # the only pair is of different environments
    assert "nav: one seed, so no confidence interval over seeds and no Welch's test" in table
    assert "nan" not in table


def test_a_one_meta_batch_curve_is_drawn_with_markers_and_integer_ticks(tmp_path):
    groups = {"g": [_run(tmp_path, "g-seed1", 1, 1)], "h": [_run(tmp_path, "h-seed1", 1, 2)]}
    fig = plot_learning_curves(groups)
    ax = fig.axes[0]
    assert all(line.get_marker() == "o" for line in ax.get_lines())
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert "one seed per group: no bands" in ax.get_title()
    two = {"g": [_run(tmp_path, "g-seed1", 1, 3), _run(tmp_path, "g-seed2", 2, 3)]}
    assert "bands: 95% CI over seeds" in plot_learning_curves(two).axes[0].get_title()


def test_a_constant_diagnostic_says_so_instead_of_drawing_a_flat_line(tmp_path):
    rng = np.random.default_rng(1)
    run = RunRecord(
        tmp_path / "g-seed1",
        {"seed": 1},
        _rows(6, rng, action_saturation_before=0.0, action_saturation_after=0.0, kl_after=0.0),
        None,
    )
    for i, row in enumerate(run.metrics):
        row["kl_after"] = 0.001 * (i + 1)
    fig = plot_diagnostics({"g": [run]})
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    clipped = panels["action components clipped (constant)"]
    assert not clipped.get_lines() and "0 in every meta-batch" in clipped.texts[0].get_text()
    assert panels["KL of the outer step"].get_lines()


@pytest.mark.parametrize("length", [1, 2])
def test_tiny_runs_still_compare(tmp_path, length):
    runs = [_run(tmp_path, f"g-seed{s}", s, length) for s in (1, 2)]
    assert "| g | 2 (1, 2) | HalfCheetahDir-v0 |" in Comparison.of(runs).to_markdown()
