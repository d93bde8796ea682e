"""Scale-out on Ray: the same run on 2 shards of a local 2-node cluster, a shard that dies, an unreachable
cluster. One cluster for the module (1 CPU per node, no dashboard, the smallest object store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray
import torch
from ray.cluster_utils import Cluster

from maml_rl.config import from_dict
from maml_rl.experiment import Experiment
from maml_rl.scale.ray_session import connect, disconnect, ray_session
from maml_rl.scale.ray_shards import RayShards
from maml_rl.training.log import CHECKPOINT, load_checkpoint
from maml_rl.training.trainer import train

REPO = Path(__file__).resolve().parents[1]
CONFIG = {
    "env-name": "HalfCheetahVel-v0",
    "meta-batch-size": 4,
    "fast-batch-size": 2,
    "horizon": 10,
    "num-batches": 2,
    "policy": {"type": "mlp", "hidden-sizes": [8]},
}
NAVIGATION = {"env-name": "2DNavigation-v0", "num-batches": 3, "fast-batch-size": 4, "cg-damping": 0.1}
"""Smooth dynamics: MuJoCo's amplify a θ that differs by float32 rounding into episodes that differ by more after
a few steps, which says nothing about where the tasks ran."""
NODE = {"num_cpus": 1, "object_store_memory": 75 * 1024**2}  # Ray's minimum object store
TIMES = ("seconds", "env_steps_per_s", "time_sample_before", "time_adapt", "time_sample_after", "time_trpo")
RAY_ONLY = ("shard_bytes_sent", "shard_bytes_received", "shard_restarts")


@pytest.fixture(scope="module")
def cluster():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    c = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    c.add_node(**NODE)
    c.wait_for_nodes()
    yield c
    disconnect()
    c.shutdown()


def _metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _close(a: float, b: float, rel: float, atol: float = 1e-7) -> bool:
    """Within ``rel`` relatively, or ``atol`` absolutely (the surrogate loss at θ is zero up to rounding)."""
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b)) + atol


@pytest.mark.parametrize("outer", [{}, {"outer-step": "ppo", "inner-loss": "lvc"}], ids=["trpo", "ppo"])
def test_two_shards_give_the_in_process_run(cluster, tmp_path, outer):
    """Episodes: the train returns and diagnostics of the first meta-batch (a function of its episodes alone)
    agree to 1e-6 relative (on the machine this was written on they are bit-identical). Learner: float32
    summation order differs (the driver adds two shards' sums; batched products may round differently for 2
    and 4 tasks), so metrics agree to 1e-5 relative (losses also within 1e-7 absolutely, as the surrogate loss
    at θ is zero up to rounding) and the final parameters differ by at most 1e-4 of the distance training moved
    them. Measured: metrics 1e-8 to 1e-7 relative, parameters 1.3e-6 of the distance moved.

    cg-damping is raised to 0.1: with the default 1e-5, ten CG iterations on a nearly singular Fisher turn a
    1e-7 difference in the products into a 1 % different step, which then shows in every later meta-batch."""
    config = from_dict({**CONFIG, **NAVIGATION, **outer})
    here = train(config, tmp_path / "here", progress=False, threads=1)
    with ray_session(cluster.address):
        there = train(
            config,
            tmp_path / "there",
            progress=False,
            threads=1,
            shards=lambda experiment: RayShards(config, experiment.policy.state_dict(), 2),
        )
    rows_here, rows_there = _metrics(here), _metrics(there)
    assert all(r["shard_restarts"] == 0 for r in rows_there)
    first = [k for k in rows_here[0] if k.endswith("_before") and k not in ("loss_before",) + TIMES]
    for key in first:
        assert _close(rows_here[0][key], rows_there[0][key], 1e-6), key
    for a, b in zip(rows_here, rows_there, strict=True):
        assert set(b) - set(a) == set(RAY_ONLY)
        for key, value in a.items():
            if key in TIMES or not isinstance(value, float):
                assert key in TIMES or value == b[key], key
                continue
            assert _close(value, b[key], 1e-5), (a["batch"], key, value, b[key])
    p = load_checkpoint(here / CHECKPOINT)["policy"]
    q = load_checkpoint(there / CHECKPOINT)["policy"]
    initial = Experiment.build(config).policy.state_dict()
    flat = {name: torch.cat([s[k].reshape(-1) for k in sorted(s)]) for name, s in (("p", p), ("q", q), ("0", initial))}
    # the difference, against how far training moved the parameters (what the shards could have got wrong)
    assert (flat["p"] - flat["q"]).norm() <= 1e-4 * (flat["p"] - flat["0"]).norm()
    assert (flat["p"] - flat["0"]).norm() > 0, "the runs did not learn: nothing was compared"


def test_a_dead_shard_is_restarted_and_the_meta_batch_gives_the_same_numbers(cluster):
    config = from_dict(CONFIG)
    connect(cluster.address)
    try:
        runs = []
        for kill in (False, True):
            experiment = Experiment.build(config)
            experiment.learner_threads = 1
            experiment.shards = RayShards(config, experiment.policy.state_dict(), 2)
            if kill:  # the second shard dies in the middle of conjugate gradient
                shards, product, calls = experiment.shards, experiment.shards.fisher_product, []

                def dying(vector):
                    calls.append(1)
                    if len(calls) == 3:
                        ray.kill(shards.actors[1], no_restart=True)
                    return product(vector)

                shards.fisher_product = dying
            row = experiment.meta_batch(0)
            experiment.shards.close()
            runs.append((row, [p.detach().clone() for p in experiment.policy.parameters()]))
        (row, params), (row_killed, params_killed) = runs
        assert row["shard_restarts"] == 0 and row_killed["shard_restarts"] == 1
        for key, value in row.items():
            if key not in TIMES + RAY_ONLY:
                assert row_killed[key] == value, key
        assert all(torch.equal(p, q) for p, q in zip(params, params_killed))
        assert row["accepted"]
    finally:
        disconnect()


def _train_py(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_an_unreachable_cluster_ends_with_one_line_and_the_run_resumes(tmp_path):
    tiny = [
        "--config",
        str(REPO / "configs" / "2d-navigation.yaml"),
        "--meta-batch-size",
        "2",
        "--fast-batch-size",
        "2",
        "--set",
        "horizon=5",
        "--output-folder",
        "run",
        "--no-progress",
        "--threads",
        "1",
    ]
    assert _train_py(*tiny, "--num-batches", "1", cwd=tmp_path).returncode == 0
    before = (tmp_path / "run" / CHECKPOINT).read_bytes()
    lost = _train_py(*tiny, "--num-batches", "2", "--resume", "--ray", "127.0.0.1:1", cwd=tmp_path)
    assert lost.returncode == 2, lost.stderr
    errors = [line for line in lost.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot reach the Ray cluster" in errors[0], lost.stderr
    assert "--resume" in errors[0]
    assert (tmp_path / "run" / CHECKPOINT).read_bytes() == before
    resumed = _train_py(*tiny, "--num-batches", "2", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert [r["batch"] for r in _metrics(tmp_path / "run")] == [0, 1]
    bad = _train_py(*tiny, "--shards", "2", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --shards needs --ray")


def test_bytes_moved_stay_within_the_bound_whatever_the_number_of_episodes(cluster):
    """Per shard and meta-batch: at most 2 × (CG iterations + line-search steps + 4) × θ bytes, and the same
    per call for 2 and 8 episodes per task (episodes never travel)."""
    from maml_rl.benchmarks.scaling import measure

    per_call = []
    for episodes in (2, 8):
        config = from_dict({**CONFIG, "fast-batch-size": episodes, "num-batches": 1})
        result = measure(config, 2, 1, threads=1, address=cluster.address)
        moved = result["bytes_per_shard_per_meta_batch"][0]
        assert 0 < moved <= result["bound_bytes"], result
        assert result["theta_bytes"] > 0
        per_call.append(moved / result["calls_per_meta_batch"])
    assert per_call[0] == pytest.approx(per_call[1], rel=0.02)


def test_a_removed_node_moves_its_shard_and_the_meta_batch_gives_the_same_numbers(cluster):
    """The node of a shard leaves the cluster in the middle of conjugate gradient (a new node joins,
    so that there is room): the shard starts again there, replays its slice and the numbers do not change.
    Runs last in this module: it changes the cluster."""
    config = from_dict(CONFIG)
    connect(cluster.address)
    try:
        runs = []
        for remove in (False, True):
            experiment = Experiment.build(config)
            experiment.learner_threads = 1
            shards = experiment.shards = RayShards(config, experiment.policy.state_dict(), 2)
            if remove:
                product, calls = shards.fisher_product, []
                # the shard that is not on the head node (the driver is connected there)
                on = [p["NodeID"] for p in shards.placement]
                gone = next(n for n in cluster.list_all_nodes() if n.node_id in on and n is not cluster.head_node)

                def losing_a_node(vector):
                    calls.append(1)
                    if len(calls) == 3:
                        cluster.add_node(**NODE)
                        cluster.remove_node(gone)
                    return product(vector)

                shards.fisher_product = losing_a_node
            row = experiment.meta_batch(0)
            shards.close()
            runs.append((row, [p.detach().clone() for p in experiment.policy.parameters()]))
        (row, params), (row_moved, params_moved) = runs
        assert row_moved["shard_restarts"] >= 1
        for key, value in row.items():
            if key not in TIMES + RAY_ONLY:
                assert row_moved[key] == value, key
        assert all(torch.equal(p, q) for p, q in zip(params, params_moved))
    finally:
        disconnect()
