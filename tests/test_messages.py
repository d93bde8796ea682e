"""Messages that point at the fix: a section's key given at the top level, env-kwargs from --set, a cell's name
given as a policy type."""

from __future__ import annotations

from conftest import REPO
from test_robustness import assert_one_error_line, run_script


def test_a_sections_key_at_the_top_level_suggests_the_dotted_key(tmp_path):
    done = run_script("train.py", "--config", REPO / "configs/2d-navigation.yaml", "--set", "leak=0.3", cwd=tmp_path)
    assert_one_error_line(done, "--set: unknown key 'leak'; did you mean 'policy.leak'?")


def test_env_kwargs_from_set_are_blamed_on_set_not_on_the_config_file(tmp_path):
    config = REPO / "configs/halfcheetah-dir.yaml"
    done = run_script(
        "train.py",
        "--config",
        config,
        "--set",
        "env-kwargs={bogus: 1}",
        "--output-folder",
        tmp_path / "run",
        cwd=tmp_path,
    )
    assert_one_error_line(done, "error: --set env-kwargs={bogus: 1}: {'bogus': 1} is rejected by HalfCheetahDir-v0")
    assert str(config) not in done.stderr


def test_a_cell_given_as_the_policy_points_at_the_cell_key(tmp_path):
    done = run_script("train.py", "--config", REPO / "configs/2d-navigation.yaml", "--policy", "lstm", cwd=tmp_path)
    assert_one_error_line(done, "invalid choice 'lstm' (choose from mlp, rnn)", "--policy rnn --set policy.cell=lstm")
