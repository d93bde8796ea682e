"""The typed config: YAML in, unknown and missing keys rejected with the path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from maml_rl.rules.config import ConfigError, config_from_dict, load_config, with_overrides

REPO = Path(__file__).resolve().parents[2]

BASE = {"task": {"name": "teacher-student"}, "epochs": 10, "rules": ["sgd"], "sgd": {"lr": 0.1}}


def test_shipped_configs_load():
    ts = load_config(REPO / "configs/rules/teacher-student.yaml")
    assert (ts.task.input_dim, ts.task.hidden_dim, ts.task.output_dim, ts.task.n_train) == (10, 100, 10, 512)
    mn = load_config(REPO / "configs/rules/mnist.yaml")
    assert mn.task.name == "mnist" and mn.task.hidden_dim == 1000 and mn.task.input_dim == 10
    assert mn.standardize_weights is False  # the paper's stabiliser is off by default
    for cfg in (ts, mn):
        assert set(cfg.rules) == {"sgd", "wp", "np", "meta"}
    upd = load_config(REPO / "configs/rules/teacher-student-update.yaml")
    assert upd.meta.action == "update" and upd.task == ts.task
    tiny = load_config(REPO / "configs/rules/tiny.yaml")
    assert tiny.epochs <= 100


@pytest.mark.parametrize(
    "patch,match",
    [
        ({"epochz": 3}, "unknown key.*'epochz'"),
        ({"task": {"name": "teacher-student", "hiden_dim": 3}}, "unknown key.*'hiden_dim' in task"),
        ({"rules": ["sgd", "adam"]}, "unknown rule.*'adam'"),
        ({"rules": ["sgd", "wp"]}, "no 'wp:' section"),
        ({"task": {"name": "cifar"}}, "task.name.*'cifar' is not allowed"),
        ({"sgd": {}}, "missing required key 'sgd.lr'"),
        ({"sgd": {"lr": -1}}, "sgd.lr must be positive"),
        ({"epochs": "many"}, "epochs: expected an integer"),
    ],
)
def test_bad_configs_fail_with_a_clear_message(patch, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({**BASE, **patch})


def test_missing_required_top_level_key():
    with pytest.raises(ConfigError, match="missing required key 'epochs'"):
        config_from_dict({"task": {"name": "mnist"}})


def test_overrides_and_yaml_number_forms(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "task: {name: teacher-student}\nepochs: 5\nrules: [sgd, np]\nsgd: {lr: 1e-2}\nnp: {lr: 1e-4, sigma: 1e-3}\n"
    )
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.sgd.lr == 0.01 and cfg.np.sigma == 0.001
    cfg2 = with_overrides(cfg, rules="np", epochs=7, seed=None)
    assert cfg2.rules == ("np",) and cfg2.epochs == 7 and cfg2.seed == cfg.seed
    with pytest.raises(ConfigError, match="unknown rule"):
        with_overrides(cfg, rules="sgd,bogus")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
