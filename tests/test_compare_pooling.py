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
    assert all(line.get_marker() == "o" for line in ax.get_lines() if line.get_label() != "_seed")
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert "one seed per group: no bands" in ax.get_title()
    two = {"g": [_run(tmp_path, "g-seed1", 1, 3), _run(tmp_path, "g-seed2", 2, 3)]}
    assert "thin lines: each seed" in plot_learning_curves(two).axes[0].get_title()


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


def test_each_group_has_an_iqm_with_a_bootstrap_ci_and_each_pair_a_probability_of_improvement(tmp_path):
    from scipy import stats

    rng = np.random.default_rng(3)
    runs = [_run(tmp_path, f"a-seed{s}", s, 4, returns=rng.normal(size=(6, 2, 3)) + 1.0) for s in range(1, 6)]
    runs += [_run(tmp_path, f"b-seed{s}", s, 4, returns=rng.normal(size=(6, 2, 3))) for s in range(1, 6)]
    for r in runs[5:]:
        r.config["fast-lr"] = 0.5
    comparison = Comparison.of(runs)
    a = np.array([r.before_after()[1] for r in runs[:5]])
    b = np.array([r.before_after()[1] for r in runs[5:]])
    g = comparison.per_group["a"]
    assert g["after_iqm"] == pytest.approx(stats.trim_mean(a, 0.25))
    low, high = g["after_iqm_ci95"]
    assert a.min() <= low <= g["after_iqm"] <= high <= a.max()
    (test,) = [t for t in comparison.tests if t["measure"] == "after"]
    assert test["probability_of_improvement"] == pytest.approx(np.mean(a[:, None] > b[None, :]))
    low, high = test["probability_of_improvement_ci95"]
    assert 0 <= low <= test["probability_of_improvement"] <= high <= 1
    assert test["detectable_g"] == pytest.approx(2.02, abs=0.01)  # 5 + 5 seeds, 80 % power, α = 0.05
    table = comparison.to_markdown()
    assert "Interquartile mean" in table and "P(A > B)" in table and "| 2.02 |" in table


def test_detectable_effect_matches_the_normal_approximation_for_many_seeds():
    from scipy import stats

    from maml_rl.analysis.statistics import detectable_effect

    approximation = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * np.sqrt(2 / 200)
    assert detectable_effect(200, 200) == pytest.approx(approximation, rel=0.01)
    assert detectable_effect(3, 3) > detectable_effect(5, 5) > detectable_effect(10, 10)


def test_spread_is_seeds_as_thin_lines_below_five_and_a_band_inside_the_data_from_five(tmp_path):
    three = {"g": [_run(tmp_path, f"g-seed{s}", s, 30) for s in (1, 2, 3)]}
    ax = plot_learning_curves(three).axes[0]
    assert sum(line.get_label() == "_seed" for line in ax.get_lines()) == 6  # before and after, per seed
    assert not ax.collections and "thin lines: each seed" in ax.get_title()
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # the legend is off the data
    five = {"g": [_run(tmp_path, f"g-seed{s}", s, 30) for s in range(1, 6)]}
    ax = plot_learning_curves(five).axes[0]
    assert not [line for line in ax.get_lines() if line.get_label() == "_seed"]
    curves = np.array([[row["returns_after"] for row in r.metrics] for r in five["g"]])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert curves.min() - 1e-9 <= band.min() and band.max() <= curves.max() + 1e-9
    assert "bands: 95% bootstrap CI of the mean over seeds" in ax.get_title()
