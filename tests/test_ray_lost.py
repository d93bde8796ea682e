"""Scale-out on Ray: a cluster that goes away in the middle of a run (its own module: the test shuts its cluster
down). The run ends with one line and exit status 2, the checkpoint holds the last complete meta-batch, and
--resume continues it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ray.cluster_utils import Cluster

from maml_rl.training.log import CHECKPOINT, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
NODE = {"num_cpus": 1, "object_store_memory": 75 * 1024**2}


def test_a_lost_cluster_ends_with_one_line_and_the_run_resumes(tmp_path):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    run = [
        "--config",
        str(REPO / "configs" / "2d-navigation.yaml"),
        "--meta-batch-size",
        "2",
        "--fast-batch-size",
        "4",
        "--set",
        "horizon=20",
        "--output-folder",
        "run",
        "--no-progress",
        "--threads",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    train = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "train.py"),
            *run,
            "--num-batches",
            "100000",
            "--ray",
            cluster.address,
            "--shards",
            "2",
        ],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "run" / CHECKPOINT).exists():
            assert train.poll() is None and time.monotonic() < deadline, "the run never completed a meta-batch"
            time.sleep(0.1)
        time.sleep(1)
    finally:
        cluster.shutdown()
    stderr = train.communicate(timeout=240)[1]
    assert train.returncode == 2, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--resume" in errors[0], stderr[-2000:]
    done = int(load_checkpoint(tmp_path / "run" / CHECKPOINT)["batch"]) + 1
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) in (done, done + 1)  # a line may be ahead of the checkpoint; --resume drops it
    resumed = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *run, "--num-batches", str(done + 2), "--resume"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    batches = [json.loads(line)["batch"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert batches == list(range(done + 2))
