"""The documentation's worked examples run as the pages show them, the configuration table is the config's own,
and the README stays a short front page that keeps the two set-up commands (CI runs the second)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import REPO

EXAMPLES = sorted((REPO / "docs" / "examples").glob("*.py"))
SETUP_COMMANDS = (
    "python -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python train.py "
    "--config configs/halfcheetah-dir.yaml --policy rnn",
    'python -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest',
)
README_LIMIT = 15 * 1024
"""The README is the front page: at most 15 kB; everything else lives in docs/."""
EXAMPLE_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def example_runs(tmp_path_factory):
    """Every example started at once, each in an empty working directory of its own, its run going elsewhere:
    ``{name: (process, working directory, output folder)}``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    started = {}
    for path in EXAMPLES:
        base = tmp_path_factory.mktemp(path.stem)
        cwd, out = base / "cwd", base / "out"
        cwd.mkdir()
        process = subprocess.Popen(
            [sys.executable, str(path), str(out / "run")],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started[path.name] = (process, cwd, out)
    yield started
    for process, _, _ in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def test_there_are_examples():
    assert {"custom_task_family.py", "custom_policy.py", "use_from_python.py"} <= {p.name for p in EXAMPLES}


@pytest.mark.parametrize("name", [p.name for p in EXAMPLES])
def test_example_trains_two_meta_batches_and_leaves_the_working_directory_empty(example_runs, name):
    process, cwd, out = example_runs[name]
    output, _ = process.communicate(timeout=EXAMPLE_TIMEOUT_S)
    assert process.returncode == 0, output
    metrics = sorted(out.rglob("metrics.jsonl"))
    assert metrics, f"{name} wrote no run folder under {out}:\n{output}"
    for path in metrics:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 2, f"{path}: {len(lines)} meta-batches, expected 2"
    assert sorted(p.name for p in cwd.iterdir()) == [], f"{name} left files in its working directory"


@pytest.mark.parametrize("name", [p.name for p in EXAMPLES])
def test_a_page_shows_the_tested_example_file(name):
    snippet = f'--8<-- "docs/examples/{name}"'
    pages = [p for p in (REPO / "docs").rglob("*.md") if snippet in p.read_text(encoding="utf-8")]
    assert pages, f"no page of docs/ includes {name} ({snippet})"


def _hook(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_table_lists_every_config_key():
    from maml_rl.config import config_reference

    hook = _hook("config_table")
    assert hook.MARKER in (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = hook.config_table().splitlines()
    rows = config_reference()
    assert len(table) == 2 + len(rows)
    for line, row in zip(table[2:], rows):
        assert line.startswith(f"| `{row.key}` |"), line
    ranges = {row.key: row.allowed for row in rows}
    assert (
        ranges["gamma"] == "(0, 1]" and ranges["cg-iters"] == "[1, 1000]" and ranges["ls-backtrack-ratio"] == "(0, 1)"
    )
    assert hook.yaml_default("True") == "true" and hook.yaml_default("None") == "null"
    assert hook.yaml_default("['observation']") == "[observation]" and hook.yaml_default("0.99") == "0.99"


def test_api_reference_turns_rst_tables_and_shared_entries_into_markdown():
    hook = _hook("griffe_docstrings")
    table = hook.rst_tables(
        "Layout:\n\n====  =====\nname  shape\n====  =====\n``a``   ``(t,)``\n      more\n====  =====\n"
    )
    assert "| name | shape |" in table and "| ``a`` | ``(t,)`` more |" in table
    split = hook.split_shared_entries("Doc.\n\nArgs:\n    a, b: shared text\n        continued\n    c: own\n")
    assert split.splitlines()[3:] == [
        "    a: shared text",
        "        continued",
        "    b: shared text",
        "        continued",
        "    c: own",
    ]


def test_readme_is_a_short_front_page_with_the_two_setup_commands():
    readme = (REPO / "README.md").read_bytes()
    assert len(readme) <= README_LIMIT, f"README.md is {len(readme)} bytes; keep it at most {README_LIMIT}"
    text = readme.decode("utf-8")
    for command in SETUP_COMMANDS:
        assert command in text, f"README.md lost the set-up command: {command}"
