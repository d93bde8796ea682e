"""End to end: train.py and test.py on every shipped config with both policies, resume and reproducibility."""

import json
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO

from maml_rl.training.log import MOVABLE

TIMING_KEYS = {"seconds", "env_steps_per_s", "time_sample_before", "time_adapt", "time_sample_after", "time_trpo"}
train_main = runpy.run_path(str(REPO / "train.py"))["main"]
evaluate_main = runpy.run_path(str(REPO / "test.py"))["main"]


def tiny_config(tmp_path, name="2d-navigation", **overrides):
    data = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    data.update({"meta-batch-size": 2, "fast-batch-size": 2, "horizon": 5, "num-batches": 1})
    data["policy"]["hidden-sizes"] = [8, 8]
    data.update(overrides)
    path = tmp_path / f"{name}-tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def metrics(folder):
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]


@pytest.mark.parametrize(
    "name", ["halfcheetah-dir", "halfcheetah-vel", "ant-dir", "ant-vel", "swimmer-dir", "2d-navigation"]
)
@pytest.mark.parametrize("policy", ["mlp", "rnn"])
def test_train_then_test_every_config(tmp_path, name, policy):
    run = tmp_path / "run"
    args = [
        "--config",
        str(tiny_config(tmp_path, name)),
        "--policy",
        policy,
        "--output-folder",
        str(run),
        "--no-progress",
    ]
    assert train_main(args) == 0
    assert {"config.yaml", "checkpoint.pt", "metrics.jsonl"} <= {p.name for p in run.iterdir()}
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    row = metrics(run)[0]
    for key in (
        "batch",
        "returns_before",
        "returns_after",
        "loss_before",
        "loss_after",
        "kl_after",
        "env_steps",
        "episode_length_before",
        "terminated_fraction_after",
        "action_saturation_before",
    ):
        assert key in row
    terms = {
        "ant": ("forward", "survive", "ctrl", "contact"),
        "halfcheetah": ("forward", "ctrl"),
        "swimmer": ("forward", "ctrl"),
        "2d": (),
    }
    for term in terms[name.split("-")[0]]:
        for when in ("before", "after"):
            assert f"reward_{term}_{when}" in row
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["policy"]["type"] == policy
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["batch"] == 0 and "mean.weight" in state["policy"]

    assert evaluate_main(["--run", str(run), "--num-batches", "2", "--meta-batch-size", "3", "--no-progress"]) == 0
    results = np.load(run / "results.npz")
    assert results["train_returns"].shape == results["valid_returns"].shape == (6, 2)
    assert results["tasks"].shape[0] == 6


def test_reward_aware_rnn_trains_and_records_rewards_per_time_step(tmp_path):
    run = tmp_path / "run"
    config = tiny_config(tmp_path, "halfcheetah-dir-reward", horizon=7)
    args = [
        "--config",
        str(config),
        "--policy",
        "rnn",
        "--output-folder",
        str(run),
        "--no-progress",
        "--set",
        "policy.spectral-radius=0.95",
        "--set",
        "policy.leak=0.5",
    ]
    assert train_main(args) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())["policy"]
    assert (saved["spectral-radius"], saved["leak"], saved["inputs"][-1]) == (0.95, 0.5, "previous-reward")
    assert (
        evaluate_main(
            ["--run", str(run), "--num-batches", "1", "--meta-batch-size", "3", "--adapt-steps", "2", "--no-progress"]
        )
        == 0
    )
    results = np.load(run / "results.npz")
    assert results["step_rewards"].shape == (3, 3, 7)
    # the mean over time steps of the per-step rewards is the mean return divided by the horizon (no falls here)
    np.testing.assert_allclose(results["step_rewards"].sum(2), results["returns"].mean(2), rtol=1e-5, atol=1e-6)


def test_set_overrides_are_validated(capsys):
    assert train_main(["--config", str(REPO / "configs" / "2d-navigation.yaml"), "--set", "policy.leak=2"]) == 2
    assert "policy.leak" in capsys.readouterr().err


def test_scripts_run_as_commands_with_a_progress_bar(tmp_path):
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--config", str(tiny_config(tmp_path)), "--output-folder", str(run)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "meta-batch" in done.stderr and "after=" in done.stderr
    done = subprocess.run(
        [sys.executable, str(REPO / "test.py"), "--run", str(run), "--num-batches", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "before adaptation" in done.stdout and "after 1 step(s)" in done.stdout and "±" in done.stdout


def test_same_seed_same_metrics_and_parameters(tmp_path):
    config = tiny_config(tmp_path, num_batches=2)
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        assert train_main(["--config", str(config), "--output-folder", str(run), "--no-progress"]) == 0
    assert metrics(runs[0]) == metrics(runs[1])
    a, b = (torch.load(r / "checkpoint.pt", weights_only=True)["policy"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = tmp_path / "c"
    assert train_main(["--config", str(config), "--output-folder", str(other), "--seed", "2", "--no-progress"]) == 0
    assert metrics(other) != metrics(runs[0])


@pytest.mark.parametrize("policy", ["mlp", "rnn"])
def test_resume_continues_exactly(tmp_path, policy):
    config = tiny_config(tmp_path, num_batches=3)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert (
        train_main(["--config", str(config), "--policy", policy, "--output-folder", str(whole), "--no-progress"]) == 0
    )
    assert (
        train_main(
            [
                "--config",
                str(config),
                "--policy",
                policy,
                "--output-folder",
                str(parts),
                "--num-batches",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert train_main(["--output-folder", str(parts), "--resume", "--num-batches", "3", "--no-progress"]) == 0
    assert metrics(parts) == metrics(whole)
    a, b = (torch.load(r / "checkpoint.pt", weights_only=True)["policy"] for r in (whole, parts))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_unfinished_run_moved_as_its_movable_files_continues_exactly(tmp_path):
    config = tiny_config(tmp_path, num_batches=3)
    whole, started = tmp_path / "whole", tmp_path / "started"
    for folder, batches in ((whole, "3"), (started, "2")):
        args = ["--config", str(config), "--policy", "rnn", "--output-folder", str(folder), "--num-batches", batches]
        assert train_main([*args, "--no-progress"]) == 0
    moved = tmp_path / "elsewhere" / "started"
    moved.mkdir(parents=True)
    for name in MOVABLE:
        (moved / name).write_bytes((started / name).read_bytes())
    assert sorted(p.name for p in started.iterdir()) != sorted(MOVABLE)  # the folder held more than was moved
    assert train_main(["--output-folder", str(moved), "--resume", "--num-batches", "3", "--no-progress"]) == 0
    assert metrics(moved) == metrics(whole)
    a, b = (torch.load(r / "checkpoint.pt", weights_only=True)["policy"] for r in (whole, moved))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_records_its_part_count_and_resumes_with_its_numbers_on_other_threads(tmp_path):
    config = tiny_config(tmp_path, num_batches=3)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    common = ["--config", str(config), "--no-progress"]
    assert train_main([*common, "--output-folder", str(whole), "--threads", "2"]) == 0
    assert yaml.safe_load((whole / "config.yaml").read_text())["learner-parts"] == 2
    assert train_main([*common, "--output-folder", str(parts), "--threads", "2", "--num-batches", "2"]) == 0
    # resumed on one thread, by the config file (learner-parts unset there) and by the folder: still two parts
    assert train_main([*common, "--output-folder", str(parts), "--threads", "1", "--num-batches", "3", "--resume"]) == 0
    assert yaml.safe_load((parts / "config.yaml").read_text())["learner-parts"] == 2
    assert metrics(parts) == metrics(whole)
    one = tmp_path / "one"
    assert train_main([*common, "--output-folder", str(one), "--threads", "1"]) == 0
    assert yaml.safe_load((one / "config.yaml").read_text())["learner-parts"] == 1
    assert metrics(one) != metrics(whole)  # one part rounds otherwise: the resume above kept the run's two
    again = tmp_path / "again"  # a rerun of the saved config.yaml, on one thread
    assert train_main(["--config", str(whole / "config.yaml"), "--output-folder", str(again), "--threads", "1"]) == 0
    assert metrics(again) == metrics(whole)


def test_refuses_to_overwrite_a_run_and_reports_bad_input(tmp_path, capsys):
    config = tiny_config(tmp_path)
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--output-folder", str(run), "--no-progress"]) == 0
    assert train_main(["--config", str(config), "--output-folder", str(run), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert train_main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert evaluate_main(["--run", str(tmp_path)]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_adaptation_curve_has_k_plus_one_columns(tmp_path):
    run = tmp_path / "run"
    assert train_main(["--config", str(tiny_config(tmp_path)), "--output-folder", str(run), "--no-progress"]) == 0
    assert evaluate_main(["--run", str(run), "--num-batches", "2", "--adapt-steps", "3", "--no-progress"]) == 0
    results = np.load(run / "results.npz")
    assert results["returns"].shape == (4, 4, 2)  # tasks (2 batches x 2) x (K + 1) x episodes
    np.testing.assert_array_equal(results["train_returns"], results["returns"][:, 0])
    np.testing.assert_array_equal(results["valid_returns"], results["returns"][:, 1])
    summary = json.loads((run / "results.json").read_text())
    assert [s["adapt_steps"] for s in summary["steps"]] == [0, 1, 2, 3]
    means = [s["mean"] for s in summary["steps"]]
    np.testing.assert_allclose(means, results["returns"].mean(2).mean(0))


def _can_render() -> str | None:
    try:
        from maml_rl.analysis.video import make_render_env

        make_render_env("HalfCheetahDir-v0", {}, 32, 32).close()
    except Exception as e:  # noqa: BLE001 - any failure means: no headless GL here
        return str(e)
    return None


def test_record_video_writes_clips_before_and_after(tmp_path):
    reason = _can_render()
    if reason:
        pytest.skip(f"no headless rendering here: {reason}")
    run = tmp_path / "run"
    # the reward-aware RNN: the clip's rollout feeds the previous action and reward as the sampler does
    assert (
        train_main(
            [
                "--config",
                str(tiny_config(tmp_path, "halfcheetah-dir-reward")),
                "--policy",
                "rnn",
                "--output-folder",
                str(run),
                "--no-progress",
            ]
        )
        == 0
    )
    import imageio.v2 as imageio

    assert evaluate_main(["--run", str(run), "--num-batches", "1", "--adapt-steps", "2", "--no-progress"]) == 0
    evaluation = {name: (run / name).read_bytes() for name in ("results.npz", "results.json")}
    assert evaluate_main(["--run", str(run), "--record-video", "--video-tasks", "2", "--no-progress"]) == 0
    # recording never replaces the evaluation (compare.py reads its adaptation curves from it)
    assert {name: (run / name).read_bytes() for name in evaluation} == evaluation
    names = [f"task{i}_{kind}" for i in (0, 1) for kind in ("after", "before", "before_after")]
    assert sorted(p.name for p in (run / "videos").iterdir()) == [f"{n}.mp4" for n in names]
    for name, width in (("task0_before", 320), ("task0_before_after", 640)):
        reader = imageio.get_reader(run / "videos" / f"{name}.mp4", format="FFMPEG")
        meta, frames = reader.get_meta_data(), list(reader.iter_data())
        reader.close()
        assert meta["codec"] == "h264" and meta["fps"] == 20.0  # real time: dt = 0.05 s
        assert len(frames) == 6 and frames[0].shape == (288, width, 3)  # horizon 5 steps + the first frame
        assert any(f.std() > 0 for f in frames)

    assert (
        evaluate_main(
            [
                "--run",
                str(run),
                "--record-video",
                "--video-tasks",
                "1",
                "--video-format",
                "gif",
                "--no-progress",
            ]
        )
        == 0
    )
    frames = imageio.mimread(run / "videos" / "task0_before_after.gif")
    assert len(frames) == 6 and frames[0].shape[:2] == (288, 640)
    from PIL import Image

    with Image.open(run / "videos" / "task0_before_after.gif") as gif:
        assert gif.info["duration"] == 50  # ms per frame: real time


def test_record_video_without_gl_says_so(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert (
        train_main(
            ["--config", str(tiny_config(tmp_path, "halfcheetah-dir")), "--output-folder", str(run), "--no-progress"]
        )
        == 0
    )
    import maml_rl.analysis.video as video

    def broken(*args, **kwargs):
        raise video.RenderingUnavailable("cannot render (simulated: no GL backend)")

    monkeypatch.setattr(video, "make_render_env", broken)
    monkeypatch.setitem(evaluate_main.__globals__, "make_render_env", broken)

    def no_work(*args, **kwargs):
        raise AssertionError("the run was loaded before the rendering check")

    monkeypatch.setitem(evaluate_main.__globals__, "load_run", no_work)  # fails before any sampling
    assert evaluate_main(["--run", str(run), "--record-video", "--no-progress"]) == 2
    assert "--record-video: cannot render" in capsys.readouterr().err
    assert not (run / "results.npz").exists() and not (run / "videos").exists()
    assert evaluate_main(["--run", str(run), "--record-video", "--adapt-steps", "3", "--no-progress"]) == 2
    assert "--record-video records clips only; --adapt-steps" in capsys.readouterr().err
    assert evaluate_main(["--run", str(run), "--record-video", "--video-tasks", "0", "--no-progress"]) == 2
    assert "--video-tasks must be >= 1" in capsys.readouterr().err


def test_record_video_of_a_task_without_a_renderer_says_so(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main(["--config", str(tiny_config(tmp_path)), "--output-folder", str(run), "--no-progress"]) == 0
    assert evaluate_main(["--run", str(run), "--record-video", "--no-progress"]) == 2
    assert "2DNavigation-v0 has no renderer" in capsys.readouterr().err
