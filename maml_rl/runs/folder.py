"""Where runs live: the default run folder, the newest one, what differs from a run's config, and the
shortest command that resumes a run."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from maml_rl.config import Config, ConfigError, flatten_keys, load_config, to_dict
from maml_rl.runs.log import CHECKPOINT, CONFIG

RUNS = Path("runs")
"""Where run folders go by default (relative to the working directory)."""
RESUMABLE_KEYS = ("num-batches", "device")
"""Config keys a resumed run may change (taken from the flags, else from the run)."""
OVERRIDES = {"policy.type": ("--policy", "policy_type"), "seed": ("--seed", "seed"),
             "meta-batch-size": ("--meta-batch-size", "meta_batch_size"),
             "fast-batch-size": ("--fast-batch-size", "fast_batch_size")}
"""train.py's flags that override config keys (besides the resumable ones): key -> (flag, Config.replace name)."""


def default_run_folder(config_path: Path, config: Config) -> Path:
    """``runs/<config name>-<policy>-seed<seed>``: what a new run uses without ``--output-folder``."""
    return RUNS / f"{Path(config_path).stem}-{config.policy.type}-seed{config.seed}"


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def config_differences(run: Config, asked: Config) -> list[str]:
    """``key: run <value>, now <value>`` for every key (but the resumable ones) on which the configs differ."""
    a, b = flatten_keys(to_dict(run)), flatten_keys(to_dict(asked))
    return [f"{key}: run {_show(a.get(key))}, now {_show(b.get(key))}" for key in sorted(set(a) | set(b))
            if key not in RESUMABLE_KEYS and a.get(key) != b.get(key)]


def resume_command(folder: Path, config_path: Path | None = None, script: str = "train.py") -> str:
    """The shortest ``train.py ... --resume`` command line that continues the run in ``folder``.

    ``--output-folder FOLDER --resume`` always works; ``--config PATH [flags] --resume`` works when ``folder`` is
    the default one of that config and the config file still resolves to the run's values.
    """
    candidates = [f"python {script} --output-folder {shlex.quote(str(folder))} --resume"]
    if config_path is not None:
        try:
            run, file = load_config(Path(folder) / CONFIG), load_config(config_path)
        except ConfigError:
            run = file = None
        if run is not None and file is not None:
            run_flat, file_flat = flatten_keys(to_dict(run)), flatten_keys(to_dict(file))
            changed = [key for key in OVERRIDES if run_flat[key] != file_flat[key]]
            asked = file.replace(**{OVERRIDES[key][1]: run_flat[key] for key in changed})
            if not config_differences(run, asked) and default_run_folder(config_path, asked) == Path(folder):
                words = [f"{OVERRIDES[key][0]} {shlex.quote(str(run_flat[key]))}" for key in changed]
                candidates.append(" ".join([f"python {script} --config {shlex.quote(str(config_path))}", *words, "--resume"]))
    return min(candidates, key=len)


def latest_run(runs: Path = RUNS) -> Path | None:
    """The run folder (one holding ``config.yaml``) under ``runs`` whose checkpoint or config changed last."""
    if not runs.is_dir():
        return None
    found = []
    for folder in runs.iterdir():
        try:
            if (folder / CONFIG).is_file():
                newest = max((folder / name).stat().st_mtime for name in (CHECKPOINT, CONFIG) if (folder / name).exists())
                found.append((newest, str(folder), folder))
        except OSError:
            continue
    return max(found)[2] if found else None
