"""`python -m maml_rl.rules` end to end on a tiny config, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from maml_rl.rules.cli import main

REPO = Path(__file__).resolve().parents[2]

TINY = (REPO / "configs/rules/tiny.yaml").read_text()


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_cli_end_to_end_writes_results_and_plots_only_to_the_output_folder(tiny_config, tmp_path, monkeypatch, capsys):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    out = tmp_path / "out"
    assert main(["--config", str(tiny_config), "--output-folder", str(out), "--seed", "3", "--no-progress"]) == 0
    assert list(work.iterdir()) == []  # nothing in the working directory
    assert sorted(p.name for p in out.iterdir()) == ["heldout.png", "loss.png", "results.json"]
    res = json.loads((out / "results.json").read_text())
    assert res["seed"] == 3 and res["task"] == "teacher-student" and list(res["rules"]) == ["sgd", "wp", "np", "meta"]
    for name, r in res["rules"].items():
        c = r["curves"]
        assert c["epoch"] == [0, 1, 2, 5, 10, 20, 30, 40]
        assert len(c["train_loss"]) == len(c["test_loss"]) == 8
        assert r["final"]["train_loss"] == c["train_loss"][-1] and r["wall_time_s"] > 0
    assert res["rules"]["sgd"]["final"]["train_loss"] < res["rules"]["sgd"]["curves"]["train_loss"][0]
    meta = res["rules"]["meta"]
    assert meta["ppo_timesteps"] >= 128 and "heldout" in meta and "sgd" in meta["heldout"]
    assert meta["fixed_point_residual_rel"] >= 0 and meta["heldout_final_weight_distance_rel"] > 0
    for p in ("loss.png", "heldout.png"):
        assert (out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stdout = capsys.readouterr().out
    assert "| sgd | 40 |" in stdout  # the summary table


def test_cli_mnist_from_tiny_idx_files_with_accuracy_plot(tmp_path, monkeypatch, capsys):
    from test_rules_data import write_tiny_mnist  # noqa: E402  (same folder, on sys.path under pytest)

    write_tiny_mnist(tmp_path / "idx", n_train=80, n_test=40, gz=True)
    cfg = tmp_path / "m.yaml"
    cfg.write_text(
        "task: {name: mnist, n_train: 60, n_test: 30, input_dim: 5, hidden_dim: 16, output_dim: 10}\n"
        "epochs: 30\nlog_every: 10\nrules: [sgd, np]\nstandardize_weights: true\n"
        "sgd: {lr: 0.05}\nnp: {lr: 1.0e-3}\n"
    )
    monkeypatch.delenv("MNIST_DIR", raising=False)
    out = tmp_path / "out"
    assert (
        main(["--config", str(cfg), "--output-folder", str(out), "--mnist-dir", str(tmp_path / "idx"), "--no-progress"])
        == 0
    )
    res = json.loads((out / "results.json").read_text())
    assert "MNIST IDX files" in res["data_source"]
    assert (out / "accuracy.png").is_file()
    acc = res["rules"]["sgd"]["curves"]["test_accuracy"]
    assert len(acc) == 7 and acc[-1] > 0.5  # the synthetic classes are easy
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,match",
    [
        (["--rules", "sgd,adam"], "unknown rule(s) 'adam'"),
        (["--epochs", "0"], "epochs must be positive"),
        (["--mnist-dir", "/no/such/folder"], "does not exist"),
    ],
)
def test_cli_bad_input_gives_one_line_error(tiny_config, tmp_path, capsys, args, match):
    if "--mnist-dir" in args:
        tiny_config.write_text(
            TINY.replace("name: teacher-student", "name: mnist").replace("output_dim: 2", "output_dim: 10")
        )
    code = main(["--config", str(tiny_config), "--output-folder", str(tmp_path / "o"), "--no-progress", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and match in err[-1]
    assert not (tmp_path / "o").exists()


def test_cli_missing_key_and_help(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: {name: teacher-student}\nrules: [sgd]\nsgd: {lr: 0.1}\n")
    assert main(["--config", str(bad), "--output-folder", str(tmp_path / "o")]) == 2
    assert "missing required key 'epochs'" in capsys.readouterr().err
    help_text = subprocess.run(
        [sys.executable, "-m", "maml_rl.rules", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    ).stdout
    for flag in ("--config", "--rules", "--epochs", "--seed", "--output-folder", "--mnist-dir"):
        assert flag in help_text
