"""One validated config: unknown keys, wrong types and out-of-range values fail with a clear message."""

from pathlib import Path

import pytest
from conftest import REPO

from maml_rl.config import Config, ConfigError, from_dict, load_config, save_config, to_dict

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
MEMORY_ONLY = ("-rl2", "-reservoir", "-memoryless", "-hebbian", "-neuromodulated")
"""Config names whose policies adapt by memory alone (fast-lr 0)."""
FROZEN_MEMORY = ("-reward", "-reservoir", "-memoryless", "-hebbian", "-neuromodulated", "-neuromodulated-maml")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_load_with_pytorch_maml_rl_values(path):
    cfg = load_config(path)
    assert (cfg.gamma, cfg.gae_lambda, cfg.first_order) == (0.99, 1.0, False)
    fast_lr = 0.0 if path.stem.endswith(MEMORY_ONLY) else 0.1  # RL^2 and its relatives: adaptation by memory alone
    assert (cfg.fast_batch_size, cfg.num_steps, cfg.fast_lr, cfg.num_batches) == (20, 1, fast_lr, 500)
    assert cfg.meta_batch_size == (20 if "navigation" in path.stem else 40)
    assert (cfg.max_kl, cfg.cg_iters, cfg.cg_damping, cfg.ls_max_steps, cfg.ls_backtrack_ratio) == (
        0.01,
        10,
        1e-5,
        15,
        0.8,
    )
    assert (cfg.horizon, cfg.normalization_scale) == (100, 10.0)
    assert cfg.policy.hidden_sizes == (64, 64) and cfg.policy.nonlinearity == "tanh"


@pytest.mark.parametrize(
    "path",
    [p for p in CONFIGS if "-reward" in p.stem or p.stem.endswith(MEMORY_ONLY + FROZEN_MEMORY)],
    ids=lambda p: p.stem,
)
def test_reward_aware_configs_feed_the_previous_action_and_reward(path):
    cfg = load_config(path)
    assert cfg.policy.inputs == ("observation", "previous-action", "previous-reward")
    assert cfg.policy.freeze_recurrent == (path.stem.endswith(FROZEN_MEMORY))
    plastic = next((rule for rule in ("hebbian", "neuromodulated") if f"-{rule}" in path.stem), "none")
    assert cfg.policy.plasticity == plastic
    assert cfg.policy.type == (
        "mlp" if path.stem.endswith(("-memoryless", "-reward")) else "rnn"
    )  # -reward: --policy picks


def test_round_trip_through_yaml(tmp_path):
    cfg = from_dict({"env-name": "AntVel-v0", "fast_lr": 0.3, "policy": {"type": "rnn", "cell": "gru"}})
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize(
    "data,message",
    [
        ({"fast-batch-sise": 3}, "unknown key 'fast-batch-sise'; did you mean 'fast-batch-size'"),
        ({"policy": {"tpye": "rnn"}}, "unknown key 'policy.tpye'; did you mean 'policy.type'"),
        ({"fast-batch-size": "20"}, "key 'fast-batch-size': expected an integer"),
        ({"fast-batch-size": 0}, "key 'fast-batch-size': must be > 0"),
        ({"fast-lr": -0.1}, "key 'fast-lr': must be >= 0"),
        ({"max-kl": 0}, "key 'max-kl': must be > 0"),
        ({"gamma": 1.5}, "key 'gamma': must be in (0, 1]"),
        ({"first-order": "yes"}, "key 'first-order': expected true or false"),
        ({"env-name": "HalfCheetah-v5"}, "key 'env-name': is not a task family: HalfCheetahEnv has no sample_tasks"),
        (
            {"env-name": "HalfCheetahDirr-v0"},
            "key 'env-name': is not a registered gymnasium environment (did you mean "
            "HalfCheetahDir-v0?); task families: 2DNavigation-v0, AntDir-v0, AntVel-v0, "
            "HalfCheetahDir-v0, HalfCheetahVel-v0, SwimmerDir-v0, SwimmerVel-v0, got",
        ),
        ({"policy": {"type": "transformer"}}, "key 'policy.type': must be one of mlp, rnn"),
        ({"policy": {"cell": "elman"}}, "key 'policy.cell': must be one of gru, lstm, rnn"),
        ({"policy": {"hidden-sizes": [64, 0]}}, "key 'policy.hidden-sizes': must be a non-empty list"),
        ({"sampler": {"backend": "fast"}}, "key 'sampler.backend': must be one of"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(data, message):
    with pytest.raises(ConfigError) as info:
        from_dict(data, source="x.yaml")
    assert str(info.value).startswith("x.yaml: ")
    assert message in str(info.value)


def test_scientific_notation_without_dot_is_a_number(tmp_path):
    (tmp_path / "c.yaml").write_text("cg-damping: 1e-5\n")
    assert load_config(tmp_path / "c.yaml").cg_damping == 1e-5


@pytest.mark.parametrize(
    "text,message",
    [
        ("gamma: [0.9\n", "malformed YAML at line"),
        ("- 1\n- 2\n", "expected a mapping"),
    ],
)
def test_unreadable_yaml(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml")


def test_missing_file():
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(Path("nope.yaml"))


def test_config_is_frozen_and_replace_validates():
    cfg = Config()
    with pytest.raises(Exception):
        cfg.gamma = 0.5  # type: ignore[misc]
    assert cfg.replace(policy_type="rnn", seed=3).policy.type == "rnn"
    with pytest.raises(ConfigError, match="meta-batch-size"):
        cfg.replace(meta_batch_size=0)
    assert to_dict(cfg)["policy"]["hidden-sizes"] == [64, 64]
