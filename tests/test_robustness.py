"""The obvious retry works, bad input ends in one line, and stops (SIGTERM, a full disk) keep every finished batch.

Each test follows a new user's path: train.py and test.py run as commands, from a working directory with
the default ``runs/`` folder.
"""

import os
import resource
import shlex
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from conftest import REPO
from test_scripts import evaluate_main, metrics, tiny_config, train_main


def run_script(script, *args, cwd, preexec_fn=None, timeout=300):
    return subprocess.run(
        [sys.executable, str(REPO / script), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def assert_one_error_line(done, *fragments):
    """Exit status 2 and exactly one line on stderr, starting with ``error:``, holding every fragment."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def folder_state(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith("events.out")}


# --- 1. the obvious retry ----------------------------------------------------------------------------------


def test_the_original_command_with_resume_appended_continues_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(tmp_path, num_batches=3).relative_to(tmp_path)
    command = ["--config", str(config), "--policy", "rnn", "--no-progress"]
    assert train_main([*command, "--output-folder", "whole"]) == 0
    assert train_main([*command, "--num-batches", "2"]) == 0  # runs/<config>-rnn-seed1
    folder = tmp_path / "runs" / f"{config.stem}-rnn-seed1"
    capsys.readouterr()

    assert train_main([*command, "--num-batches", "2"]) == 2  # the same command again: refused, with the way on
    err = capsys.readouterr().err
    assert "already holds a run" in err and f"--config {config} --policy rnn --resume" in err

    assert train_main([*command, "--resume"]) == 0  # to the run's own num-batches: nothing to do
    assert len(metrics(folder)) == 2
    assert train_main([*command, "--num-batches", "3", "--resume"]) == 0
    assert metrics(folder) == metrics(tmp_path / "whole")


def test_resume_names_each_changed_key_with_both_values(tmp_path):
    config = tiny_config(tmp_path)
    assert train_main(["--config", str(config), "--output-folder", str(tmp_path / "run"), "--no-progress"]) == 0
    data = yaml.safe_load(config.read_text())
    data["gamma"], data["policy"]["hidden-sizes"] = 0.9, [4]
    config.write_text(yaml.safe_dump(data))
    done = run_script(
        "train.py", "--config", config, "--output-folder", tmp_path / "run", "--seed", "1", "--resume", cwd=tmp_path
    )
    assert_one_error_line(done, "gamma: run 0.99, now 0.9", "policy.hidden-sizes: run [8, 8], now [4]")
    done = run_script("train.py", "--output-folder", tmp_path / "run", "--policy", "rnn", "--resume", cwd=tmp_path)
    assert_one_error_line(done, "policy.type: run mlp, now rnn")
    done = run_script("train.py", "--config", config, "--policy", "rnn", "--resume", cwd=tmp_path)  # default folder
    assert_one_error_line(done, f"runs/{config.stem}-rnn-seed1: no run to resume")


# --- 2. test.py without --run ------------------------------------------------------------------------------


def test_test_py_without_run_evaluates_the_newest_run_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert evaluate_main([]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: no run folder under runs/ here; pass --run DIR, a folder written by train.py"
    )
    config = tiny_config(tmp_path)
    for seed in ("2", "1"):
        assert train_main(["--config", str(config), "--seed", seed, "--no-progress"]) == 0
    newest = tmp_path / "runs" / f"{config.stem}-mlp-seed1"
    assert evaluate_main(["--num-batches", "1", "--no-progress"]) == 0
    assert f"evaluating runs/{newest.name} (the most recently modified run" in capsys.readouterr().err
    assert (newest / "results.npz").exists() and not (
        newest.with_name(f"{config.stem}-mlp-seed2") / "results.npz"
    ).exists()


# --- 3.-5. every config is checked before anything heavy starts ----------------------------------------------


def test_unknown_env_kwargs_end_in_one_line(tmp_path):
    config = tiny_config(tmp_path, "halfcheetah-dir", **{"env-kwargs": {"bogus": 1}})
    done = run_script("train.py", "--config", config, "--output-folder", tmp_path / "run", cwd=tmp_path)
    assert_one_error_line(
        done, str(config), "key 'env-kwargs'", "unexpected keyword argument 'bogus'", "takes: ", "ctrl_cost_weight"
    )
    assert not (tmp_path / "run").exists()


def run_main(main, args, capsys):
    """An entry point in-process: its exit status and its stderr lines."""
    capsys.readouterr()
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    "where,reason",
    [("file/run", "Not a directory"), ("/proc/version/run", "Not a directory"), ("readonly/run", "Permission denied")],
)
def test_an_output_folder_that_cannot_be_written_ends_in_one_line(tmp_path, where, reason, capsys):
    (tmp_path / "file").write_text("")
    if where.startswith("readonly"):
        if os.geteuid() == 0:
            pytest.skip("root may write into a read-only folder")
        (tmp_path / "readonly").mkdir(mode=0o500)
    folder = where if where.startswith("/") else tmp_path / where
    status, err = run_main(train_main, ["--config", tiny_config(tmp_path), "--output-folder", folder], capsys)
    assert status == 2 and len(err) == 1 and err[0].startswith(f"error: --output-folder {folder}: cannot"), err
    assert reason in err[0]


def test_a_meta_batch_too_large_for_memory_ends_in_one_line(tmp_path, capsys):
    config = tiny_config(tmp_path, "halfcheetah-dir", horizon=100000000)
    done = run_script("train.py", "--config", config, "--output-folder", tmp_path / "run", cwd=tmp_path)
    assert_one_error_line(done, "one meta-batch needs about", "is available", "lower horizon (now 100000000)")
    for change, key in (
        ({"meta-batch-size": 10**7}, "lower meta-batch-size (now 10000000)"),
        ({"policy": {"hidden-sizes": [10**6, 10**6]}}, "lower policy.hidden-sizes"),
    ):
        config = tiny_config(tmp_path, "halfcheetah-dir", **change)
        status, err = run_main(train_main, ["--config", config, "--output-folder", tmp_path / "run"], capsys)
        assert status == 2 and len(err) == 1 and err[0].startswith("error: ") and key in err[0], err
    assert not (tmp_path / "run").exists()


# --- 6. SIGTERM is Ctrl-C ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signum,status,word", [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")]
)
def test_sigterm_and_ctrl_c_keep_the_run_and_print_a_resume_command_that_works(tmp_path, signum, status, word):
    config = tiny_config(tmp_path, num_batches=400, horizon=20)
    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), "--config", str(config), "--no-progress", "--threads", "1"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = tmp_path / "runs" / f"{config.stem}-mlp-seed1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ((folder / "metrics.jsonl").exists() and len(metrics(folder)) >= 2):
        time.sleep(0.02)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert f"{word}: runs/{config.stem}-mlp-seed1 holds every meta-batch completed so far" in err
    assert "Traceback" not in err
    done = len(metrics(folder))
    assert 2 <= done < 400
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["batch"] == done - 1  # written together
    command = shlex.split(err.strip().splitlines()[-1])
    assert command[:2] == ["python", str(REPO / "train.py")] and command[-1] == "--resume"
    resumed = subprocess.run(
        [sys.executable, *command[1:], "--num-batches", str(done + 1), "--no-progress"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [r["batch"] for r in metrics(folder)] == list(range(done + 1))


# --- a full disk -------------------------------------------------------------------------------------------


def _file_size_limit(limit):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: EFBIG


def test_a_checkpoint_that_cannot_be_written_keeps_the_previous_one(tmp_path):
    config, run = tiny_config(tmp_path, num_batches=2), tmp_path / "run"
    assert train_main(["--config", str(config), "--output-folder", str(run), "--no-progress"]) == 0
    limit = (run / "checkpoint.pt").stat().st_size - 1  # the next checkpoint cannot be written whole
    before = folder_state(run)
    done = run_script(
        "train.py",
        "--output-folder",
        run,
        "--resume",
        "--num-batches",
        "4",
        "--no-progress",
        cwd=tmp_path,
        preexec_fn=_file_size_limit(limit),
    )
    assert done.returncode == 4, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(
        f"error: cannot write {run / 'checkpoint.pt'} (File too large); meta-batch 1 is the last one saved"
    ), done.stderr
    assert f"--output-folder {run} --resume" in lines[-1] and "Traceback" not in done.stderr
    assert torch.load(run / "checkpoint.pt", weights_only=True)["batch"] == 1
    assert folder_state(run)["checkpoint.pt"] == before["checkpoint.pt"]
    assert not (run / "checkpoint.pt.tmp").exists()
    assert train_main(["--output-folder", str(run), "--resume", "--num-batches", "4", "--no-progress"]) == 0
    whole = tmp_path / "whole"
    assert (
        train_main(["--config", str(config), "--output-folder", str(whole), "--num-batches", "4", "--no-progress"]) == 0
    )
    assert metrics(run) == metrics(whole)


def test_a_metrics_line_that_cannot_be_written_is_not_left_torn(tmp_path):
    config, run = tiny_config(tmp_path, num_batches=2), tmp_path / "run"
    assert train_main(["--config", str(config), "--output-folder", str(run), "--no-progress"]) == 0
    # long lines make metrics.jsonl the largest file, so that its next line crosses the limit first
    lines = (run / "metrics.jsonl").read_text().splitlines()
    padded = "".join(line[:-1] + ', "note": "' + "x" * 3000 + '"}\n' for line in lines)
    (run / "metrics.jsonl").write_text(padded)
    before = folder_state(run)
    done = run_script(
        "train.py",
        "--output-folder",
        run,
        "--resume",
        "--num-batches",
        "4",
        "--no-progress",
        cwd=tmp_path,
        preexec_fn=_file_size_limit(len(padded) + 100),
    )
    assert done.returncode == 4, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write {run / 'metrics.jsonl'} (File too large); meta-batch 1 is the last"), (
        last
    )
    assert "Traceback" not in done.stderr
    after = folder_state(run)
    assert after["metrics.jsonl"] == before["metrics.jsonl"] and after["checkpoint.pt"] == before["checkpoint.pt"]


# --- a damaged metrics.jsonl -------------------------------------------------------------------------------


def test_resume_refuses_a_metrics_file_damaged_in_the_middle_and_changes_nothing(tmp_path):
    run = tmp_path / "run"
    assert (
        train_main(
            ["--config", str(tiny_config(tmp_path, num_batches=3)), "--output-folder", str(run), "--no-progress"]
        )
        == 0
    )
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text(lines[0] + "garbage\x00{\n" + "".join(lines[1:]))
    before = folder_state(run)
    done = run_script("train.py", "--output-folder", run, "--resume", "--num-batches", "5", cwd=tmp_path)
    assert_one_error_line(done, f"{run / 'metrics.jsonl'}: line 2 of 4 is damaged")
    assert folder_state(run) == before


def test_a_torn_last_metrics_line_is_dropped_on_resume(tmp_path):
    run = tmp_path / "run"
    assert (
        train_main(
            ["--config", str(tiny_config(tmp_path, num_batches=2)), "--output-folder", str(run), "--no-progress"]
        )
        == 0
    )
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"batch": 2, "retu')
    assert train_main(["--output-folder", str(run), "--resume", "--num-batches", "3", "--no-progress"]) == 0
    assert [r["batch"] for r in metrics(run)] == [0, 1, 2]
