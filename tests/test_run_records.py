"""Run records stay true to their runs: a resume never rewrites a record it cannot continue, two trainers never
share a folder, and a config file that is not text ends in one line.

Each test follows a user's path, with train.py run as a command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import REPO
from test_robustness import assert_one_error_line, run_script
from test_scripts import tiny_config

from maml_rl.training.folder import completed_batches


def _files(folder):
    """Every file of a run folder with its bytes (the lock's content is the last owner's process id)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != ".lock"}


def _events(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("events.out"))


def test_resume_with_fewer_meta_batches_than_the_run_has_is_refused_and_changes_nothing(tmp_path):
    config = tiny_config(tmp_path, num_batches=3)
    run = tmp_path / "run"
    assert (
        run_script("train.py", "--config", config, "--output-folder", run, "--no-progress", cwd=tmp_path).returncode
        == 0
    )
    before = _files(run)
    done = run_script("train.py", "--output-folder", run, "--resume", "--num-batches", "2", cwd=tmp_path)
    assert_one_error_line(done, f"{run} already has 3 meta-batches", "--num-batches 3 or more")
    assert _files(run) == before


def test_a_resume_with_nothing_left_to_do_says_so_and_touches_nothing(tmp_path):
    config = tiny_config(tmp_path, num_batches=2)
    run = tmp_path / "run"
    assert (
        run_script("train.py", "--config", config, "--output-folder", run, "--no-progress", cwd=tmp_path).returncode
        == 0
    )
    before = _files(run)
    for extra in ([], ["--num-batches", "2"]):
        done = run_script("train.py", "--output-folder", run, "--resume", *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "nothing to do" in done.stderr and "already has all 2" in done.stderr
    assert _files(run) == before  # no rewritten config, no new (empty) TensorBoard events file
    assert len(_events(run)) == 1


def test_a_second_trainer_on_a_busy_folder_stops_at_once_and_a_killed_ones_lock_never_blocks(tmp_path):
    config = tiny_config(tmp_path, num_batches=100000)
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), "--config", str(config), "--output-folder", str(run), "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint.pt").exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first trainer did not start"
            time.sleep(0.2)
        started = time.monotonic()
        second = run_script("train.py", "--output-folder", run, "--resume", "--num-batches", "200000", cwd=tmp_path)
        assert_one_error_line(second, f"{run} is in use by another trainer (process {first.pid})", "--resume")
        assert time.monotonic() - started < 60
        assert len(_events(run)) == 1, "the refused trainer wrote a TensorBoard events file"
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    more = completed_batches(run) + 1
    resumed = run_script("train.py", "--output-folder", run, "--resume", "--num-batches", more, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert completed_batches(run) == more


def test_a_config_that_is_not_utf8_text_ends_in_one_line(tmp_path):
    config = tmp_path / "binary.yaml"
    config.write_bytes(b"env-name: 2DNavigation-v0\n\xff\xfe\x00 not text")
    done = run_script("train.py", "--config", config, "--output-folder", tmp_path / "run", cwd=tmp_path)
    assert_one_error_line(done, f"{config}: not a UTF-8 text file")
    assert not (tmp_path / "run").exists()
