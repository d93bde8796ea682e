"""sweep.py: every (policy, seed) a train.py run folder, trained as Ray Tune trials; a killed sweep run again
ends where an uninterrupted one ends, and --evaluate tests and compares the runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from maml_rl.scale.sweep import plan
from maml_rl.training.folder import completed_batches
from maml_rl.training.log import CHECKPOINT, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
BATCHES = 40
TIMES = ("seconds", "env_steps_per_s", "time_sample_before", "time_adapt", "time_sample_after", "time_trpo")


def _command(output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "sweep.py"),
        "--config",
        str(REPO / "configs" / "2d-navigation.yaml"),
        "--policies",
        "mlp",
        "--seeds",
        "1,2",
        "--set",
        f"num-batches={BATCHES}",
        "--set",
        "meta-batch-size=2",
        "--set",
        "fast-batch-size=4",
        "--set",
        "horizon=20",
        "--output-folder",
        str(output),
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _kill_trials(folder: Path) -> None:
    """SIGKILL every train.py writing under folder: Ray may start trial processes outside the sweep's process
    group, and on an idle machine a tiny run ends within a second of its worker's death."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if proc.name.isdigit() and any(b"train.py" in a for a in argv) and any(str(folder).encode() in a for a in argv):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _outcome(output: Path) -> dict[str, tuple[list[dict], dict[str, torch.Tensor]]]:
    runs = sorted(p for p in output.iterdir() if p.name.startswith("2d-navigation-"))
    out = {}
    for run in runs:
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        out[run.name] = (
            [{k: v for k, v in line.items() if k not in TIMES} for line in lines],
            load_checkpoint(run / CHECKPOINT)["policy"],
        )
    return out


def test_a_killed_sweep_run_again_ends_as_an_uninterrupted_one(tmp_path):
    # uninterrupted: the trials' own train.py command lines, run straight through (what a sweep runs, minus Tune)
    sets = [f"num-batches={BATCHES}", "meta-batch-size=2", "fast-batch-size=4", "horizon=20"]
    for run in plan(REPO / "configs" / "2d-navigation.yaml", ["mlp"], [1, 2], sets, tmp_path / "whole", 1):
        whole = subprocess.run(
            [sys.executable, str(REPO / "train.py"), *run.argv],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert whole.returncode == 0, whole.stderr[-3000:]

    killed = tmp_path / "killed"
    folders = [killed / "2d-navigation-mlp-seed1", killed / "2d-navigation-mlp-seed2"]
    sweep = subprocess.Popen(
        _command(killed),
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not any(completed_batches(f) >= 2 for f in folders if (f / CHECKPOINT).exists()):
            assert time.monotonic() < deadline and sweep.poll() is None, "the sweep never got going"
            time.sleep(0.05)
    finally:
        _kill_trials(killed)
        os.killpg(sweep.pid, signal.SIGKILL)  # the sweep, Ray and the trials' train.py, all at once
        sweep.wait()
    time.sleep(2)
    partial = [completed_batches(f) for f in folders]
    assert min(partial) < BATCHES, f"nothing was interrupted (batches done: {partial}); the test proves nothing"

    again = subprocess.run(
        _command(killed, "--evaluate", "--test-args", "--num-batches 1"),
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    # TensorBoard is pointed at the sweep's run folders, never at Tune's temporary ones
    assert f"tensorboard --logdir {killed}" in again.stderr
    assert "tensorboard --logdir /tmp/ray" not in again.stdout + again.stderr
    if max(partial) == BATCHES:
        assert "finished, skipped" in again.stderr
    expected, got = _outcome(tmp_path / "whole"), _outcome(killed)
    assert expected.keys() == got.keys() == {"2d-navigation-mlp-seed1", "2d-navigation-mlp-seed2"}
    for name, (lines, params) in expected.items():
        assert got[name][0] == lines, name
        assert all(torch.equal(params[k], got[name][1][k]) for k in params), name
    assert all((f / "results.npz").exists() for f in folders)  # --evaluate: test.py on each, compare.py on all
    assert (killed / "comparison" / "comparison.md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed", "whole"]  # nothing else in the cwd


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for flags, words in (
        (["--policies", "cnn"], "--policies"),
        (["--seeds", "1,x"], "--seeds"),
        (["--threads-per-run", "0"], "--threads-per-run"),
    ):
        done = subprocess.run(
            _command(tmp_path / "out", *flags), cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and words in done.stderr, done.stderr


def test_a_run_with_a_record_is_skipped_and_a_record_of_other_settings_refused(tmp_path, capsys):
    from test_scripts import evaluate_main, tiny_config, train_main

    from maml_rl.analysis.compare import RunRecord, save_records
    from maml_rl.config import ConfigError
    from maml_rl.scale.sweep import to_train

    config, sets = tiny_config(tmp_path, num_batches=2), ["policy.hidden-sizes=[8, 8]"]
    out = tmp_path / "exp"
    runs = plan(config, ["mlp"], [1, 2], sets, out, 1)
    assert train_main(list(runs[0].argv)) == 0  # seed 1 trained as the sweep would train it
    assert evaluate_main(["--run", str(runs[0].folder), "--num-batches", "1", "--no-progress"]) == 0
    records = tmp_path / "records"
    save_records([RunRecord.load(runs[0].folder)], records)
    assert (records / "exp" / runs[0].name / "record.json").is_file()
    finished = runs[0].folder.rename(tmp_path / "elsewhere")  # a fresh machine: the run folder is gone
    assert to_train(runs, records) == runs[1:]
    assert f"recorded in {records / 'exp' / runs[0].name}, skipped" in capsys.readouterr().err
    assert to_train(runs) == runs  # without --records, every run
    other = plan(config, ["mlp"], [1], ["policy.hidden-sizes=[16, 16]"], out, 1)
    with pytest.raises(ConfigError, match=r"other settings \(policy.hidden-sizes\)"):
        to_train(other, records)
    finished.rename(runs[0].folder)
    assert to_train(runs, records) == runs[1:]  # finished in its folder: skipped as before
