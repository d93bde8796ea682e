import json
import subprocess
import sys

import pytest
from conftest import REPO

from maml_rl.benchmarks import profile
from maml_rl.benchmarks.throughput import main


@pytest.mark.parametrize("config", ["halfcheetah-dir", "swimmer-dir"])
def test_benchmark_prints_valid_json_on_a_tiny_setting(capsys, config):
    args = [
        "--config",
        str(REPO / f"configs/{config}.yaml"),
        "--batches",
        "2",
        "--meta-batch-size",
        "2",
        "--fast-batch-size",
        "2",
        "--horizon",
        "5",
        "--json",
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    for key in (
        "raw_steps_per_s",
        "sampler_steps_per_s",
        "meta_batch_seconds",
        "env_steps_per_meta_batch",
        "peak_rss_mb",
        "breakdown_seconds",
        "page_faults_per_meta_batch",
    ):
        assert key in result
    assert result["env_steps_per_meta_batch"] == 2 * 2 * 2 * 5
    assert result["raw_steps_per_s"] > 0 and result["sampler_steps_per_s"] > 0
    assert isinstance(result["page_faults_per_meta_batch"], int) and result["page_faults_per_meta_batch"] >= 0
    assert set(result["breakdown_seconds"]) == {"sample_before", "adapt", "sample_after", "trpo"}


def test_benchmark_rejects_a_task_without_mujoco():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "maml_rl.benchmarks",
            "throughput",
            "--config",
            str(REPO / "configs/2d-navigation.yaml"),
            "--batches",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2 and "not a MuJoCo task" in done.stderr and "Traceback" not in done.stderr


TINY = ["--meta-batch-size", "3", "--fast-batch-size", "2", "--horizon", "8"]


@pytest.mark.parametrize("policy,threads", [("mlp", "1"), ("rnn", "2")])
def test_profile_times_the_outer_steps_parts_and_lists_its_operations(capsys, policy, threads):
    config = str(REPO / "configs/halfcheetah-dir.yaml")
    assert (
        profile.main(["--config", config, "--policy", policy, "--threads", threads, "--rows", "5", *TINY, "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["policy"] == policy and result["learner_threads"] == int(threads)
    assert all(seconds > 0 for seconds in result["seconds"].values())
    operations = result["operations"]
    assert len(operations) == 5 and all(op["calls"] >= 1 for op in operations)
    shares = [op["self_seconds"] for op in operations]
    assert shares == sorted(shares, reverse=True) and 0 < sum(op["self_fraction"] for op in operations) <= 1
    assert any(op["name"].startswith("aten::") for op in operations)
    products = result["matrix_products"]
    assert 0 < products["self_fraction"] < 1 and products["gflop"] > 0
    assert products["gflop_per_second"] > 0 and products["large_product_gflop_per_second"] > 0
    assert profile.main(["--config", config, "--policy", policy, *TINY]) == 0
    out = capsys.readouterr().out
    assert "one Fisher-vector product" in out and "matrix products:" in out


def test_profile_refuses_an_outer_step_it_does_not_cover(capsys, tmp_path):
    config = tmp_path / "ppo.yaml"
    config.write_text((REPO / "configs/halfcheetah-dir.yaml").read_text() + "outer-step: ppo\n")
    assert profile.main(["--config", str(config), *TINY]) == 2
    assert "covers the TRPO outer step" in capsys.readouterr().err
