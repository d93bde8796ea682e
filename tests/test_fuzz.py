"""Config and argument fuzzing: whatever the input, the scripts end with exit 0 or with one line ``error: ...``.

Random mutations of the shipped configs (read here, so keys added later are mutated too): keys dropped,
renamed, retyped, out of range, huge, nested where flat, added. Most cases go straight to the config loader
in-process; some run ``train.py --num-batches 1`` in-process on a tiny size (with the available memory pinned,
so that the outcome does not depend on the machine); a few run it as a command. The same for ``test.py`` and
``compare.py`` arguments and for the learning-rules lab's configs. Hypothesis runs derandomised (the same cases
in every run, as CI needs); raise ``FUZZ_EXAMPLES`` (a factor) to search longer.
"""

from __future__ import annotations

import atexit
import copy
import itertools
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis caches (unicode tables, constants) in ./.hypothesis by default: not in the user's working directory
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="bio-maml-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)

from conftest import REPO  # noqa: E402  (after the Hypothesis home is set)
from test_scripts import evaluate_main, train_main  # noqa: E402

SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
MAML_CONFIGS = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((REPO / "configs").glob("*.yaml"))}
RULES_CONFIGS = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((REPO / "configs" / "rules").glob("*.yaml"))}
TINY = {"meta-batch-size": 2, "fast-batch-size": 2, "horizon": 5}
HUGE = [10**9, 10**12, 10**30, 2**64, 1e300, -(10**30)]
"""Values too large for any machine's memory where they size something; none of them only makes a run longer."""


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.sampled_from([0, -1, 1, 2, *HUGE]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.5, 0.5, 1.0, 1.5, 1e-300]),
    st.text(max_size=8),
    st.sampled_from(["", "mlp", "rnn", "gru", "1e-5", "nan", "yes", "auto", "2DNavigation-v0"]),
    st.lists(st.one_of(st.integers(-3, 64), st.sampled_from(HUGE), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3), max_size=2),
)
new_keys = st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["env-kwargs", "env_kwargs", "policy", "seed"]))


def _paths(data: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, value in data.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out.extend(_paths(value, (*prefix, key)))
    return out


@st.composite
def mutated(draw, configs: dict[str, dict], base: dict | None = None) -> dict:
    """One of ``configs`` (updated with ``base``), changed in one to three places."""
    data = copy.deepcopy(configs[draw(st.sampled_from(sorted(configs)))])
    for key, value in (base or {}).items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        *parents, key = draw(st.sampled_from(paths))
        parent = data
        for p in parents:
            parent = parent[p]
        kind = draw(st.sampled_from(["drop", "rename", "value", "huge", "nest", "list", "add"]))
        if kind == "drop":
            del parent[key]
        elif kind == "rename":
            text = str(key)
            new = draw(
                st.one_of(
                    st.just(text.replace("-", "_")),
                    st.just(text.upper()),
                    st.just(text[:-1]),
                    st.just(text + "s"),
                    new_keys,
                )
            )
            parent[new] = parent.pop(key)
        elif kind == "value":
            parent[key] = draw(odd_values)
        elif kind == "huge":
            parent[key] = draw(st.sampled_from(HUGE))
        elif kind == "nest":
            parent[key] = {draw(st.sampled_from([str(key), "value"])): parent[key]}
        elif kind == "list":
            parent[key] = [parent[key]]
        else:
            parent[draw(new_keys)] = draw(
                st.one_of(odd_values, st.dictionaries(st.text(max_size=6), odd_values, max_size=2))
            )
    return data


def write_yaml(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"c{next(_counter)}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


_counter = itertools.count()


def assert_clean(status: int, err: str, allowed=(0, 2)) -> None:
    """Exit 0, or one line ``error: ...`` with exit 2 (3: training stopped on non-finite numbers, also one line)."""
    assert "Traceback" not in err, err
    assert status in allowed, f"exit {status}: {err}"
    if status == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    elif status != 0:
        assert err.strip().splitlines()[-1].startswith("error: "), err


def call(main, args: list[str], capsys) -> tuple[int, str]:
    """An entry point in-process; argparse's exit counts as its exit status."""
    capsys.readouterr()
    try:
        status = main([str(a) for a in args])
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().err


# --- train.py configs ---------------------------------------------------------------------------------------


@fuzz_settings(300)
@given(data=mutated(MAML_CONFIGS))
def test_config_loader_accepts_or_explains_in_one_line(tmp_path, data):
    from maml_rl.config import Config, ConfigError, load_config

    loads_or_explains(load_config, Config, ConfigError, write_yaml(tmp_path / "loader", data))


def loads_or_explains(load, config_type: type, error_type: type, path) -> None:
    """``load(path)`` gives a ``config_type``, or raises ``error_type`` whose printed form is one line naming the file."""
    from maml_rl.exits import error_line

    try:
        assert isinstance(load(path), config_type)
    except error_type as e:  # as the command line prints it
        lines = error_line(e).splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), lines


@pytest.fixture
def pinned_memory(monkeypatch):
    """4 GB available, whatever the machine has: a config is refused or run the same way everywhere."""
    import maml_rl.rules.cli as rules_cli
    import maml_rl.training.preflight as preflight

    monkeypatch.setattr(preflight, "available_memory", lambda: 4 * 10**9)
    monkeypatch.setattr(rules_cli, "available_memory", lambda: 4 * 10**9)


@fuzz_settings(40)
@given(data=mutated(MAML_CONFIGS, base={**TINY, "policy": {"hidden-sizes": [8, 8]}}))
def test_train_py_on_mutated_tiny_configs(tmp_path, capsys, pinned_memory, data):
    n = next(_counter)
    path = write_yaml(tmp_path / "train", data)
    status, err = call(
        train_main,
        ["--config", path, "--num-batches", "1", "--no-progress", "--output-folder", tmp_path / "runs" / f"run{n}"],
        capsys,
    )
    assert_clean(status, err, allowed=(0, 2, 3))


@fuzz_settings(4)
@given(data=mutated(MAML_CONFIGS, base={**TINY, "policy": {"hidden-sizes": [8, 8]}}))
def test_train_py_command_on_mutated_tiny_configs(tmp_path, data):
    n = next(_counter)
    path = write_yaml(tmp_path / "cmd", data)
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "--config",
            str(path),
            "--num-batches",
            "1",
            "--no-progress",
            "--output-folder",
            str(tmp_path / "runs" / f"run{n}"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert_clean(done.returncode, done.stderr, allowed=(0, 2, 3))


DROP = "<dropped>"


def _extremes(value) -> list:
    """Well-typed values at and beyond the edges of what a key of this type may hold, and its absence."""
    if isinstance(value, bool):
        return [not value, DROP]
    if isinstance(value, int):
        return [0, -1, 10**30, DROP]
    if isinstance(value, float):
        return [0.0, -1.0, 1e-300, 1e300, DROP]
    if isinstance(value, str):
        return ["", "x", DROP]
    if isinstance(value, list):
        return [[], [0], [10**30], DROP]
    return [DROP]


def _sweep() -> list[tuple[tuple, object]]:
    cases = set()
    for data in MAML_CONFIGS.values():
        for path in _paths(data):
            value = data
            for p in path:
                value = value[p]
            cases.update((path, v if not isinstance(v, list) else tuple(v)) for v in _extremes(value))
    kwargs = [{"bogus": 1}, {"frame_skip": 0}, {"reset_noise_scale": -1.0}, {"xml_file": "/nonexistent.xml"}, {}]
    return sorted(cases, key=repr) + [(("env-kwargs",), ("kwargs", repr(k))) for k in kwargs]


@pytest.mark.parametrize(
    "path,value",
    _sweep(),
    ids=lambda x: (
        ".".join(map(str, x)) if isinstance(x, tuple) and all(isinstance(p, str) for p in x) else repr(x)[:24]
    ),
)
def test_train_py_on_every_key_at_its_extremes(tmp_path, capsys, pinned_memory, path, value):
    name = "halfcheetah-dir" if path == ("env-kwargs",) else "2d-navigation"
    data = copy.deepcopy(MAML_CONFIGS[name])
    data.update(TINY)
    data["policy"]["hidden-sizes"] = [8, 8]
    parent = data
    for p in path[:-1]:
        parent = parent.setdefault(p, {})
    if value == DROP:
        parent.pop(path[-1], None)
    elif isinstance(value, tuple) and value[:1] == ("kwargs",):
        parent[path[-1]] = eval(value[1])  # noqa: S307 - a literal written above
    else:
        parent[path[-1]] = list(value) if isinstance(value, tuple) else value
    config = write_yaml(tmp_path, data)
    status, err = call(
        train_main,
        ["--config", config, "--num-batches", "1", "--no-progress", "--output-folder", tmp_path / "run"],
        capsys,
    )
    assert_clean(status, err, allowed=(0, 2, 3))


# --- test.py and compare.py arguments -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from test_scripts import tiny_config

    folder = tmp_path_factory.mktemp("fuzz-run")
    run = folder / "run"
    assert (
        train_main(["--config", str(tiny_config(folder, num_batches=2)), "--output-folder", str(run), "--no-progress"])
        == 0
    )
    return run


ints = st.one_of(st.integers(-3, 3), st.sampled_from(HUGE[:4] + [2**32, -(2**63)]), st.text(max_size=4))


@st.composite
def argument_lists(draw, flags: dict[str, st.SearchStrategy], positional: st.SearchStrategy | None = None) -> list:
    args = draw(positional) if positional is not None else []
    for flag in draw(st.lists(st.sampled_from(sorted(flags)), max_size=4, unique=True)):
        value = flags[flag]
        args += [flag] if value is None else [flag, draw(value)]
    if draw(st.integers(0, 9)) == 0:
        args.append(draw(st.sampled_from(["--bogus", "-x", "extra", "--num-batches"])))
    return args


def _run_paths(run: Path) -> st.SearchStrategy:
    return st.sampled_from([run, run, run, run.parent / "missing", run / "config.yaml", run.parent])


@fuzz_settings(40)
@given(data=st.data())
def test_test_py_arguments(tiny_run, capsys, pinned_memory, data):
    flags = {
        "--run": _run_paths(tiny_run),
        "--meta-batch-size": ints,
        "--num-batches": st.sampled_from([1, 2, 0, -1, "x"]),
        "--adapt-steps": st.sampled_from([1, 2, 0, -2, "1.5"]),
        "--seed": ints,
        "--video-tasks": ints,
        "--device": st.sampled_from(["cpu", "cuda", "tpu"]),
        "--threads": ints,
        "--no-progress": None,
    }
    args = data.draw(argument_lists(flags))
    if "--run" not in args:
        args = ["--run", tiny_run, *args]  # the newest run under runs/ has its own test
    status, err = call(evaluate_main, args, capsys)
    assert_clean(status, err)


@fuzz_settings(20)
@given(data=st.data())
def test_compare_py_arguments(tmp_path, tiny_run, capsys, data):
    compare_main = runpy.run_path(str(REPO / "compare.py"))["main"]
    (tmp_path / "file").write_text("")
    outputs = st.sampled_from(
        [tmp_path / "out", tmp_path / "a" / "b", tmp_path / "file", tmp_path / "file" / "x", Path("/proc/version/x")]
    )
    runs = st.lists(_run_paths(tiny_run), max_size=3)
    args = data.draw(argument_lists({"--output-folder": outputs}, positional=runs))
    status, err = call(compare_main, args, capsys)
    assert_clean(status, err)


# --- the learning-rules lab ---------------------------------------------------------------------------------


@fuzz_settings(200)
@given(data=mutated(RULES_CONFIGS))
def test_rules_config_loader_accepts_or_explains_in_one_line(tmp_path, data):
    from maml_rl.rules.config import ConfigError, RulesConfig, load_config

    loads_or_explains(load_config, RulesConfig, ConfigError, write_yaml(tmp_path / "rules", data))


@fuzz_settings(20)
@given(data=mutated({"tiny": RULES_CONFIGS["tiny"]}))
def test_rules_lab_on_mutated_tiny_configs(tmp_path, capsys, pinned_memory, data):
    from maml_rl.rules.cli import main as rules_main

    n = next(_counter)
    path = write_yaml(tmp_path / "rules", data)
    status, err = call(
        rules_main,
        [
            "--config",
            path,
            "--output-folder",
            tmp_path / f"out{n}",
            "--epochs",
            "3",
            "--rules",
            "sgd,wp,np",
            "--no-progress",
        ],
        capsys,
    )
    assert_clean(status, err)


@fuzz_settings(3)
@given(data=mutated({"tiny": RULES_CONFIGS["tiny"]}))
def test_rules_command_on_mutated_tiny_configs(tmp_path, data):
    n = next(_counter)
    path = write_yaml(tmp_path / "rules", data)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "maml_rl.rules",
            "--config",
            str(path),
            "--output-folder",
            str(tmp_path / f"out{n}"),
            "--epochs",
            "3",
            "--rules",
            "sgd,wp,np",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert_clean(done.returncode, done.stderr)
