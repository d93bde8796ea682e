"""Run comparison: statistics equal scipy's, groups formed from configs, figures written."""

import json
import runpy
import shutil
import subprocess

import numpy as np
import pytest
from conftest import REPO
from scipy import stats
from test_scripts import evaluate_main, tiny_config, train_main

from maml_rl.analysis.compare import (
    Comparison,
    RunRecord,
    group_runs,
    plot_diagnostics,
    plot_learning_curves,
    plot_within_episode,
)
from maml_rl.analysis.statistics import brown_forsythe, fall_backs, first_above, hedges_g, welch

compare_main = runpy.run_path(str(REPO / "compare.py"))["main"]


def test_welch_and_hedges_g_match_hand_and_scipy():
    a, b = np.array([1.0, 2.0, 3.0, 4.5]), np.array([0.5, 0.7, 1.9])
    result = welch(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    assert result["t"] == pytest.approx(reference.statistic) and result["p"] == pytest.approx(reference.pvalue)
    pooled = np.sqrt((3 * a.var(ddof=1) + 2 * b.var(ddof=1)) / 5)
    d = (a.mean() - b.mean()) / pooled
    assert hedges_g(a, b) == pytest.approx(d * (1 - 3 / (4 * 7 - 9)))
    assert np.isnan(welch(a, b[:1])["p"])


def test_groups_pool_seeds_and_split_on_config_differences(tmp_path):
    def fake(name, seed, policy, fast_lr=0.1):
        run = RunRecord(tmp_path / name, {"seed": seed, "fast-lr": fast_lr, "policy": {"type": policy}}, [], None)
        return run

    runs = [
        fake("a", 1, "mlp"),
        fake("b", 2, "mlp"),
        fake("c", 1, "rnn"),
        fake("d", 2, "rnn"),
        fake("e", 1, "rnn", 0.0),
    ]
    groups = group_runs(runs)
    assert {k: [r.folder.name for r in v] for k, v in groups.items()} == {
        "fast-lr=0.1, type=mlp": ["a", "b"],
        "fast-lr=0.1, type=rnn": ["c", "d"],
        "fast-lr=0.0, type=rnn": ["e"],
    }


def test_groups_are_named_after_their_run_folders_without_the_seed(tmp_path):
    def fake(name, policy):
        return RunRecord(tmp_path / name, {"seed": int(name[-1]), "policy": {"type": policy}}, [], None)

    runs = [fake("nav-mlp-seed1", "mlp"), fake("nav-mlp-seed2", "mlp"), fake("nav-rnn-seed1", "rnn")]
    assert {k: len(v) for k, v in group_runs(runs).items()} == {"nav-mlp": 2, "nav-rnn": 1}
    # folder names that do not tell the groups apart fall back to the differing config keys
    runs = [fake("x-seed1", "mlp"), fake("x-seed2", "rnn")]
    assert set(group_runs(runs)) == {"type=mlp", "type=rnn"}


def _means(ax):
    """The groups' mean curves of a panel (each seed's own thin line is labelled _seed)."""
    return [line for line in ax.get_lines() if line.get_label() != "_seed"]


def test_within_episode_lines_are_the_mean_reward_per_step_over_tasks_and_seeds(tmp_path):
    rng = np.random.default_rng(0)
    runs = []
    for seed in (1, 2):
        rewards = rng.normal(size=(4, 2, 6))
        rewards[0, 0, 5] = np.nan  # every episode of that task had ended
        runs.append(RunRecord(tmp_path / f"g-seed{seed}", {"seed": seed}, [], None, rewards))
    fig = plot_within_episode({"g": runs})
    (line,) = _means(fig.axes[0])
    expected = np.mean([np.nanmean(r.step_rewards[:, 0], axis=0) for r in runs], axis=0)
    np.testing.assert_allclose(line.get_ydata(), expected)
    assert plot_within_episode({"g": [RunRecord(tmp_path / "x", {}, [], None)]}) is None


def test_diagnostics_panels_are_the_recorded_metrics_mean_over_seeds(tmp_path):
    rng = np.random.default_rng(1)

    def fake(name, keys):
        return RunRecord(tmp_path / name, {}, [{k: float(rng.normal()) for k in keys} for _ in range(5)], None)

    ant = ("terminated_fraction_before", "terminated_fraction_after", "reward_survive_before", "kl_after")
    groups = {"a": [fake("a-seed1", ant), fake("a-seed2", ant)], "b": [fake("b-seed1", ant[:1])]}
    fig = plot_diagnostics(groups)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["episodes terminated early", "survive reward / step", "KL of the outer step"]
    panel = fig.axes[0]
    a_before, a_after, b_before = _means(panel)
    assert [line.get_linestyle() for line in (a_before, a_after, b_before)] == ["--", "-", "--"]
    for line, group, key in (
        (a_before, "a", "terminated_fraction_before"),
        (a_after, "a", "terminated_fraction_after"),
        (b_before, "b", "terminated_fraction_before"),
    ):
        expected = np.mean([[row[key] for row in r.metrics] for r in groups[group]], axis=0)
        np.testing.assert_allclose(line.get_ydata(), expected)
        assert line.get_color() == ("C0" if group == "a" else "C1")
    assert len(_means(fig.axes[1])) == 1  # group b never recorded the survive term, group a only before
    assert fig.get_suptitle().startswith("dashed: before adaptation")
    assert "dashed" not in plot_diagnostics({"g": [fake("g-seed1", ("kl_after",))]}).get_suptitle()
    assert plot_diagnostics({"g": [fake("g-seed1", ("returns_before",))]}) is None


def test_compare_cli_on_real_runs(tmp_path):
    runs = []
    for policy in ("mlp", "rnn"):
        for seed in (1, 2):
            run = tmp_path / f"{policy}-{seed}"
            args = [
                "--config",
                str(tiny_config(tmp_path, num_batches=2)),
                "--policy",
                policy,
                "--seed",
                str(seed),
                "--output-folder",
                str(run),
                "--no-progress",
            ]
            assert train_main(args) == 0
            runs.append(run)
    assert evaluate_main(["--run", str(runs[0]), "--num-batches", "1", "--adapt-steps", "2", "--no-progress"]) == 0
    out = tmp_path / "cmp"
    assert compare_main([*map(str, runs), "--output-folder", str(out)]) == 0
    data = json.loads((out / "comparison.json").read_text())
    assert set(data["groups"]) == {"type=mlp", "type=rnn"}
    assert data["groups"]["type=mlp"]["seeds"] == [1, 2]
    (test,) = [t for t in data["tests"] if t["measure"] == "gain"]
    assert data["groups"]["type=mlp"]["config"]["policy.type"] == "mlp"
    gains = {}
    for label, members in (("type=mlp", runs[:2]), ("type=rnn", runs[2:])):
        gains[label] = np.array([np.subtract(*RunRecord.load(r).before_after()[::-1]) for r in members])
    assert test["p"] == pytest.approx(stats.ttest_ind(gains["type=mlp"], gains["type=rnn"], equal_var=False).pvalue)
    assert "| type=mlp | 2 |" in (out / "comparison.md").read_text()
    assert {t["measure"] for t in data["tests"]} == {"before", "after", "gain", "mean over meta-batches"}
    for png in ("learning_curves.png", "adaptation_curves.png", "within_episode.png", "diagnostics.png"):
        assert (out / png).stat().st_size > 5000


def test_one_run_per_group_gives_confidence_intervals_over_tasks(tmp_path):
    rng = np.random.default_rng(1)
    runs = [
        RunRecord(tmp_path / f"sweep-{name}", {"seed": 1, "leak": leak}, [], rng.normal(size=(30, 2, 4)))
        for name, leak in (("a", 1.0), ("b", 0.3))
    ]
    comparison = Comparison.of(runs)
    assert comparison.ci_over == "tasks" and comparison.tests == []
    per_task_before = runs[0].returns[:, 0].mean(1)
    group = comparison.per_group["sweep-a"]
    assert group["before_mean"] == pytest.approx(per_task_before.mean())
    assert group["before_ci95"] == pytest.approx(stats.t.ppf(0.975, 29) * stats.sem(per_task_before))
    assert "over tasks" in comparison.to_markdown()


def test_training_progress_is_the_first_and_last_tenth_of_the_post_adaptation_returns(tmp_path):
    rng = np.random.default_rng(2)

    def fake(name, seed, length):
        rows = [
            {"returns_before": float(rng.normal()), "returns_after": float(b + rng.normal())} for b in range(length)
        ]
        return RunRecord(tmp_path / name, {"seed": seed}, rows, None)

    runs = [fake("g-seed1", 1, 30), fake("g-seed2", 2, 30), fake("g-seed3", 3, 25)]
    runs[0].metrics[1]["nonfinite"] = "loss"  # a rejected meta-batch does not count
    comparison = Comparison.of(runs, allow_unequal=True)
    g = comparison.per_group["g"]
    finite = [[row["returns_after"] for row in r.metrics if not row.get("nonfinite")] for r in runs]
    first = np.array([np.mean(a[: len(a) // 10]) for a in finite])
    last = np.array([np.mean(a[-(len(a) // 10) :]) for a in finite])
    change = last - first
    assert g["training_meta_batches"] == 25
    assert g["training_first_mean"] == pytest.approx(first.mean()) and g["training_last_mean"] == pytest.approx(
        last.mean()
    )
    assert g["training_change_mean"] == pytest.approx(change.mean())
    assert g["training_change_ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * stats.sem(change))
    assert f"| g | 25 | {first.mean():.2f} ± " in comparison.to_markdown()
    # one seed: the mean alone, no interval; no metrics: no progress table
    single = Comparison.of([fake("h-seed1", 1, 10)]).to_markdown()
    assert "| h | 10 |" in single and "nan" not in single
    assert (
        "Meta-training progress"
        not in Comparison.of([RunRecord(tmp_path / "x", {}, [], np.zeros((2, 2, 3)))]).to_markdown()
    )


def test_first_above_and_fall_backs_on_curves_worked_by_hand():
    curve = [0, 50, 120, 90, 130, 60, 65, 140, 139]
    assert first_above(curve, 100) == 3 and first_above(curve, 120) == 5 and first_above(curve, 200) is None
    # best so far: 0 50 120 120 130 130 130 140 140; deficits 0 0 0 30 0 70 65 0 1
    assert fall_backs(curve, 50) == (1, 70.0)  # one fall-back (meta-batches 6-7), the deepest 70 below 130
    assert fall_backs(curve, 20) == (2, 70.0)  # 4, then 6-7
    assert fall_backs(curve, 80) == (0, 70.0)
    assert fall_backs([5, 1, 5, 1], 2) == (2, 4.0)
    assert fall_backs([], 1) == (0, 0.0)


def test_brown_forsythe_is_levenes_test_about_the_median():
    rng = np.random.default_rng(3)
    narrow, wide = rng.normal(0, 1, 20), rng.normal(0, 10, 20)
    result = brown_forsythe(narrow, wide)
    dev = [np.abs(x - np.median(x)) for x in (narrow, wide)]
    by_hand = stats.f_oneway(*dev)  # Brown & Forsythe 1974: the one-way ANOVA of the absolute deviations
    assert result["brown_forsythe"] == pytest.approx(by_hand.statistic)
    assert result["brown_forsythe_p"] == pytest.approx(by_hand.pvalue) and result["brown_forsythe_p"] < 0.05
    assert np.isnan(brown_forsythe(narrow[:1], wide)["brown_forsythe_p"])


def test_comparison_reports_learning_speed_and_stability_per_run(tmp_path):
    def fake(name, seed, curve, after):
        rows = [
            {"returns_before": 0.0, "returns_after": float(v), "seconds": 2.0 * seed, "time_trpo": 1.0} for v in curve
        ]
        returns = np.zeros((2, 2, 3))
        returns[:, 1] = after
        return RunRecord(
            tmp_path / name, {"seed": seed, "fast-lr": 0.1 if name.startswith("fast") else 0.0}, rows, returns
        )

    runs = [
        fake("fast-seed1", 1, [10, 120, 130, 20, 140], 100.0),
        fake("fast-seed2", 2, [110, 115, 118, 119, 121], 101.0),
        fake("fast-seed3", 3, [110, 115, 118, 119, 121], 99.0),
        fake("slow-seed1", 1, [0, 10, 20, 30, 40], 50.0),
        fake("slow-seed2", 2, [0, 10, 20, 30, 105], 150.0),
        fake("slow-seed3", 3, [0, 10, 20, 30, 105], 120.0),
    ]
    comparison = Comparison.of(runs, level=100, drop=50)
    fast, slow = comparison.per_group["fast"], comparison.per_group["slow"]
    assert fast["first_above"] == [2, 1, 1] and slow["first_above"] == [None, 5, 5]
    assert (
        fast["fall_backs"] == [1, 0, 0] and fast["deepest_fall"] == [110.0, 0.0, 0.0] and slow["fall_backs"] == [0] * 3
    )
    assert fast["curve_mean_mean"] == pytest.approx(np.mean([84.0, 116.6, 116.6]))
    md = comparison.to_markdown()
    assert "| 2, 1, 1 | 3 of 3 | 1, 0, 0 | 110.0, 0.0, 0.0 |" in md and "| —, 5, 5 | 2 of 3 |" in md
    assert f"| fast | {fast['curve_mean_mean']:.2f} ± " in md and " | 4.0 (1.0) | " in md  # seconds: 2, 4, 6
    assert fast["values"]["after"] == [100.0, 101.0, 99.0] and fast["values"]["gain"] == [100.0, 101.0, 99.0]
    (test,) = [t for t in comparison.tests if t["measure"] == "after"]
    expected = stats.levene([100.0, 101.0, 99.0], [50.0, 150.0, 120.0], center="median").pvalue
    assert test["brown_forsythe_p"] == pytest.approx(expected)
    (curve,) = [t for t in comparison.tests if t["measure"] == "mean over meta-batches"]
    assert fast["values"]["mean over meta-batches"] == pytest.approx([84.0, 116.6, 116.6])
    assert curve["t"] == pytest.approx(
        stats.ttest_ind([84.0, 116.6, 116.6], [20.0, 33.0, 33.0], equal_var=False).statistic
    )
    assert "| fast vs slow | mean over meta-batches | " in md
    assert json.loads(json.dumps(comparison.to_json()))["level"] == 100
    # without a level or a fall: the mean over meta-batches only; bad values are refused
    assert "first meta-batch above" not in Comparison.of(runs).to_markdown()
    with pytest.raises(ValueError, match="drop must be positive"):
        Comparison.of(runs, drop=0)


def test_learning_curves_against_environment_steps_put_the_steps_sampled_so_far_on_x(tmp_path):
    def fake(name, seed, per_batch, fast_lr):
        rows = [{"returns_before": 0.0, "returns_after": float(b), "env_steps": per_batch} for b in range(4)]
        return RunRecord(tmp_path / name, {"seed": seed, "fast-lr": fast_lr}, rows, None)

    groups = group_runs(
        [fake("big-seed1", 1, 1000, 0.1), fake("big-seed2", 2, 1000, 0.1), fake("small-seed1", 1, 250, 0.0)]
    )
    fig = plot_learning_curves(groups, against="env-steps")
    means = [line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in means] == ["big (after)", "big (before)", "small (after)", "small (before)"]
    np.testing.assert_allclose(means[0].get_xdata(), [1000, 2000, 3000, 4000])
    np.testing.assert_allclose(means[2].get_xdata(), [250, 500, 750, 1000])
    np.testing.assert_allclose(means[0].get_ydata(), [0, 1, 2, 3])
    np.testing.assert_allclose(plot_learning_curves(groups).axes[0].get_lines()[-1].get_xdata(), np.arange(4))
    with pytest.raises(ValueError, match="against"):
        plot_learning_curves(groups, against="seconds")


def _without_paths(value):
    """comparison.json with the run folders' paths left out (a record lies elsewhere than its run)."""
    if isinstance(value, dict):
        return {k: _without_paths(v) for k, v in value.items() if k not in ("runs", "unfinished")}
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    return value


def _assert_close(a, b, where="comparison.json"):
    """Equal structure and text, numbers equal to 1e-9 relative (a mean of per-task means rounds differently)."""
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}, where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), where
    else:
        assert a == b, where


def test_run_records_compare_as_their_runs_do(tmp_path, capsys):
    runs = []
    for policy in ("mlp", "rnn"):
        for seed in (1, 2):
            run = tmp_path / "runs" / f"{policy}-seed{seed}"
            config = tiny_config(tmp_path, num_batches=3)
            assert train_main(["--config", str(config), "--policy", policy, "--seed", str(seed),
                               "--output-folder", str(run), "--no-progress"]) == 0  # fmt: skip
            assert evaluate_main(["--run", str(run), "--num-batches", "1", "--adapt-steps", "2", "--no-progress"]) == 0
            runs.append(run)
    records = tmp_path / "records"
    assert compare_main([*map(str, runs), "--save-records", str(records), "--output-folder", str(tmp_path / "a")]) == 0
    assert sorted(p.name for p in (records / "runs").iterdir()) == ["mlp-seed1", "mlp-seed2", "rnn-seed1", "rnn-seed2"]
    for record in (records / "runs").iterdir():
        assert sorted(p.name for p in record.iterdir()) == [
            "config.yaml",
            "metrics.jsonl.gz",
            "record.json",
            "results.npz",
        ]
        assert sum(p.stat().st_size for p in record.iterdir()) < 20_000
    # two records beside two runs, the runs saved too: the same numbers as the four runs
    mixed = [*runs[:1], records / "runs" / "mlp-seed2", *runs[2:3], records / "runs" / "rnn-seed2"]
    assert compare_main([*map(str, mixed), "--save-records", str(records), "--output-folder", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / x / "comparison.json").read_text()) for x in "ab")
    _assert_close(_without_paths(a), _without_paths(b))
    first = RunRecord.load(runs[1])
    record = RunRecord.load(records / "runs" / "mlp-seed2")
    assert record.metrics == first.metrics and record.config == first.config
    assert record.before_after() == pytest.approx(first.before_after(), rel=1e-12)
    assert np.allclose(np.nanmean(record.step_rewards, 0), np.nanmean(first.step_rewards, 0), equal_nan=True)
    assert (
        compare_main([str(runs[0]), str(records / "runs" / "mlp-seed1"), "--output-folder", str(tmp_path / "d")]) == 2
    )
    assert "seed 1 more than once" in capsys.readouterr().err
    twin = tmp_path / "elsewhere" / "runs" / "mlp-seed1"
    shutil.copytree(runs[2], twin)  # another run (rnn, seed 1) under the same parent and run name
    assert (
        compare_main([str(runs[0]), str(twin), "--save-records", str(records), "--output-folder", str(tmp_path / "c")])
        == 2
    )
    assert "two runs would be saved as" in capsys.readouterr().err


def test_a_damaged_gzipped_metrics_file_is_one_clear_error(tmp_path):
    record = tmp_path / "r"
    RunRecord(tmp_path / "run", {"seed": 1}, [{"batch": 0, "returns_after": 1.0}], None).save(record)
    assert [row["batch"] for row in RunRecord.load(record).metrics] == [0]
    (record / "metrics.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="metrics.jsonl.gz: cannot read"):
        RunRecord.load(record)


def test_a_record_that_lost_its_evaluation_is_one_clear_error_not_a_silent_fallback(tmp_path, capsys):
    record = tmp_path / "records" / "runs" / "mlp-seed1"
    returns = np.arange(12, dtype=float).reshape(4, 3, 1)
    RunRecord(tmp_path / "runs" / "mlp-seed1", {"seed": 1}, [{"batch": 0, "returns_after": 1.0}], returns).save(record)
    assert RunRecord.load(record).source == "test.py (fresh tasks)"
    (record / "results.npz").unlink()  # as a commit that ignored *.npz left it
    with pytest.raises(ValueError, match="results.npz is missing, so its evaluation is lost"):
        RunRecord.load(record)
    assert compare_main([str(record), "--output-folder", str(tmp_path / "out")]) == 2
    assert "results.npz is missing" in capsys.readouterr().err
    unevaluated = tmp_path / "records" / "runs" / "mlp-seed2"  # a record of a run test.py never saw: its metrics
    RunRecord(tmp_path / "runs" / "mlp-seed2", {"seed": 2}, [{"batch": 0, "returns_after": 1.0}], None).save(
        unevaluated
    )
    assert RunRecord.load(unevaluated).source == "training metrics (last 10%)"


def test_the_repository_commits_every_file_a_run_record_holds(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the repository's git checkout")
    record = tmp_path / "record"
    RunRecord(tmp_path / "x-seed1", {"seed": 1}, [{"batch": 0}], np.zeros((2, 2, 1)), np.zeros((2, 2, 3))).save(record)
    for name in sorted(p.name for p in record.iterdir()):
        path = f"docs/results/records/plasticity/x-seed1/{name}"
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0
        assert not ignored, f".gitignore ignores {path}: a committed record would lose it"


def test_target_a_script_reads_committed_values_and_decides(tmp_path, capsys, monkeypatch):
    script = runpy.run_path(str(REPO / "docs" / "results" / "plasticity" / "targets.py"))
    memory = [210.0, 205.0, 220.0, 200.0, 215.0]
    maml = [190.0, 185.0, 200.0, 160.0, 195.0]
    control = [180.0, 175.0, 190.0, 185.0, 170.0]
    groups = {
        "mem": {"values": {"before": memory, "after": memory}},
        "maml": {"values": {"before": [0.0] * 5, "after": maml}},
        "ctl": {"values": {"before": control, "after": control}},
    }
    path = tmp_path / "comparison.json"
    path.write_text(json.dumps({"groups": groups}))
    low, high = script["iqm_difference_ci"](np.array(memory), np.array(maml))
    assert low <= np.mean([210, 205, 215]) - np.mean([185, 190, 195]) <= high and low > 0
    argv = ["targets.py", "--memory", f"{path}:mem", "--maml", f"{path}:maml", "--control", f"{path}:ctl"]
    monkeypatch.setattr("sys.argv", argv)
    assert script["main"]() == 0
    out = capsys.readouterr().out
    assert "IQM difference (memory − MAML): 20.00" in out and "first half: met" in out and "second half, met" in out
    monkeypatch.setattr("sys.argv", [*argv[:3], "--maml", f"{path}:mem"])  # MAML's values above: not met
    groups["mem"]["values"]["after"] = [v + 50 for v in memory]
    path.write_text(json.dumps({"groups": groups}))
    script["main"]()
    assert "target (a), first half: not met" in capsys.readouterr().out
    monkeypatch.setattr("sys.argv", [*argv[:5], "--target", "b"])
    script["main"]()
    assert "target (b), first half: met" in capsys.readouterr().out
