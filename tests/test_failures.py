"""Runs survive crashes and numerical blow-ups: SIGKILL + --resume, NaN rejection, clean errors."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO
from test_scripts import metrics, tiny_config, train_main

from maml_rl.sampler import Sampler


def _poison_rewards(monkeypatch, which_calls):
    """Makes the sampler's n-th call (0-based, counted over the run) return a NaN reward."""
    original = Sampler.sample
    calls = {"n": 0}

    def sample(self, *args, **kwargs):
        episodes = original(self, *args, **kwargs)
        if calls["n"] in which_calls:
            episodes.rewards[0, 0, 0] = float("nan")
        calls["n"] += 1
        return episodes

    monkeypatch.setattr(Sampler, "sample", sample)


def test_nan_rewards_reject_that_update_and_training_continues(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    _poison_rewards(monkeypatch, {2})  # the train episodes of meta-batch 1
    assert (
        train_main(
            ["--config", str(tiny_config(tmp_path, num_batches=3)), "--output-folder", str(run), "--no-progress"]
        )
        == 0
    )
    rows = metrics(run)
    assert [r["nonfinite"] for r in rows] == [None, "train rewards", None]
    assert not rows[1]["accepted"] and rows[2]["accepted"]
    assert "warning: meta-batch 1: non-finite train rewards; update rejected" in capsys.readouterr().err


def test_nan_in_valid_rewards_keeps_parameters(tmp_path, monkeypatch):
    from maml_rl.config import from_dict
    from maml_rl.experiment import Experiment

    experiment = Experiment.build(
        from_dict(
            {
                "env-name": "2DNavigation-v0",
                "meta-batch-size": 2,
                "fast-batch-size": 2,
                "horizon": 5,
                "policy": {"hidden-sizes": [8]},
            }
        )
    )
    before = {k: v.clone() for k, v in experiment.policy.state_dict().items()}
    _poison_rewards(monkeypatch, {1})  # the valid episodes of this meta-batch
    row = experiment.meta_batch(0)
    assert row["nonfinite"] == "valid rewards" and not row["accepted"]
    assert all(torch.equal(before[k], v) for k, v in experiment.policy.state_dict().items())


def test_consecutive_rejections_stop_training_with_exit_3(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    _poison_rewards(monkeypatch, set(range(100)))
    config = tiny_config(tmp_path, num_batches=5, **{"max-nonfinite-batches": 2})
    assert train_main(["--config", str(config), "--output-folder", str(run), "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "2 meta-batches in a row were rejected" in err and "Traceback" not in err
    assert len(metrics(run)) == 2 and (run / "checkpoint.pt").exists()


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    config = tiny_config(tmp_path, num_batches=8, horizon=60, **{"fast-batch-size": 8, "meta-batch-size": 8})
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert train_main(["--config", str(config), "--output-folder", str(whole), "--no-progress", "--threads", "1"]) == 0

    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "train.py"),
            "--config",
            str(config),
            "--output-folder",
            str(killed),
            "--no-progress",
            "--threads",
            "1",
        ],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(metrics(killed) if (killed / "metrics.jsonl").exists() else []) < 2:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(metrics(killed))
    assert 2 <= done < 8, f"the kill came too late to test anything ({done} batches done)"
    # loadable, not torn; a kill between a batch's metrics line and its checkpoint leaves the checkpoint one behind
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["batch"] in (done - 2, done - 1)

    assert train_main(["--output-folder", str(killed), "--resume", "--no-progress", "--threads", "1"]) == 0
    assert metrics(killed) == metrics(whole)
    a, b = (torch.load(r / "checkpoint.pt", weights_only=True)["policy"] for r in (whole, killed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(p.name.endswith(".tmp") for p in killed.iterdir())


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "cannot be loaded"),
        (b"not a checkpoint at all", "cannot be loaded"),
    ],
)
def test_test_py_reports_a_damaged_checkpoint(tmp_path, content, message, capsys):
    from test_scripts import evaluate_main

    run = tmp_path / "run"
    assert train_main(["--config", str(tiny_config(tmp_path)), "--output-folder", str(run), "--no-progress"]) == 0
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(content or data[: len(data) // 2])
    assert evaluate_main(["--run", str(run), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_test_py_reports_a_checkpoint_of_another_policy(tmp_path, capsys):
    from test_scripts import evaluate_main

    run = tmp_path / "run"
    assert train_main(["--config", str(tiny_config(tmp_path)), "--output-folder", str(run), "--no-progress"]) == 0
    text = (run / "config.yaml").read_text().replace("type: mlp", "type: rnn")
    (run / "config.yaml").write_text(text)
    assert evaluate_main(["--run", str(run), "--no-progress"]) == 2
    assert "does not match the policy" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--config", "{cfg}", "--threads", "0"], "--threads must be between 1 and"),
        (["--config", "{bad}"], "unknown key 'gama'; did you mean 'gamma'"),
        (["--resume"], "--resume needs the run: its --config"),
    ],
)
def test_bad_input_exits_2_without_traceback(tmp_path, args, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("gama: 0.9\n")
    args = [a.format(cfg=tiny_config(tmp_path), bad=bad) for a in args]
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert json.dumps(done.stderr).count("\\n") <= 2  # one line (plus the run-folder line at most)
