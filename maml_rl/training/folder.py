"""Run folders: where runs live (the default folder, the newest one), whether one can be resumed or loaded,
what differs from a run's config, and the shortest command that resumes a run."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from maml_rl.config import Config, ConfigError, flatten_keys, load_config, to_dict
from maml_rl.exits import first_line
from maml_rl.experiment import Experiment
from maml_rl.training.log import CHECKPOINT, CONFIG, load_checkpoint, read_metrics

LOCK = ".lock"
"""Held (``flock``) by the trainer writing the folder; the kernel releases it when that process ends, however."""
RUNS = Path("runs")
"""Where run folders go by default (relative to the working directory)."""
RESUMABLE_KEYS = ("num-batches", "device")
"""Config keys a resumed run may change (taken from the flags, else from the run)."""
RECORDED_KEYS = ("learner-parts",)
"""Config keys a run folder records as resolved when the config leaves them unset (null), which a config that
leaves them unset matches on resume."""
OVERRIDES = {
    "policy.type": ("--policy", "policy_type"),
    "seed": ("--seed", "seed"),
    "meta-batch-size": ("--meta-batch-size", "meta_batch_size"),
    "fast-batch-size": ("--fast-batch-size", "fast_batch_size"),
}
"""train.py's flags that override config keys (besides the resumable ones): key -> (flag, Config.replace name)."""


class RunFolderError(RuntimeError):
    """A run folder that cannot be used as asked (exists without --resume, nothing to resume, a damaged
    checkpoint, a checkpoint that does not fit its config, not a run folder at all)."""


def check_not_busy(folder: Path) -> None:
    """Raises :class:`RunFolderError` (as :func:`exclusive` would) if a trainer holds the folder now, changing
    nothing; for the scripts, to stop before any other work."""
    path = Path(folder) / LOCK
    if path.exists():
        os.close(_lock(path))


def _lock(path: Path) -> int:
    """An open descriptor of ``path`` holding its ``flock``; :class:`RunFolderError` if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderError(
            f"{path.parent} is in use by another trainer (process {holder}); wait until it ends, or stop it, and "
            "then continue the run with --resume"
        ) from None
    return fd


@contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Holds the run folder's advisory lock for the block: a second trainer on the same folder stops at once.

    The lock is ``flock`` on ``folder/.lock`` (which holds the owner's process id, for the message), so a lock
    left by a killed process never blocks: the kernel drops it with the process. Raises
    :class:`RunFolderError` naming the folder and the process holding it.
    """
    fd = _lock(Path(folder) / LOCK)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race with a process about to lock it)


def completed_batches(folder: Path) -> int:
    """Meta-batches the run folder's checkpoint holds (0 without one)."""
    path = Path(folder) / CHECKPOINT
    return int(_load(path, "cpu")["batch"]) + 1 if path.exists() else 0


def default_run_folder(config_path: Path, config: Config) -> Path:
    """``runs/<config name>-<policy>-seed<seed>``: what a new run uses without ``--output-folder``."""
    policy = config.policy.type.rpartition(":")[2]  # a policy type module:name is named by its name
    return RUNS / f"{Path(config_path).stem}-{policy}-seed{config.seed}"


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def config_differences(run: Config, asked: Config) -> list[str]:
    """``key: run <value>, now <value>`` for every key (but the resumable ones) on which the configs differ; a
    ``learner-parts`` left unset (null) in ``asked`` takes the run's."""
    a, b = flatten_keys(to_dict(run)), flatten_keys(to_dict(asked))
    return [
        f"{key}: run {_show(a.get(key))}, now {_show(b.get(key))}"
        for key in sorted(set(a) | set(b))
        if key not in RESUMABLE_KEYS and a.get(key) != b.get(key) and not (key in RECORDED_KEYS and b.get(key) is None)
    ]


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
                candidates.append(
                    " ".join([f"python {script} --config {shlex.quote(str(config_path))}", *words, "--resume"])
                )
    return min(candidates, key=len)


def latest_run(runs: Path = RUNS) -> Path | None:
    """The run folder (one holding ``config.yaml``) under ``runs`` whose checkpoint or config changed last."""
    if not runs.is_dir():
        return None
    found = []
    for folder in runs.iterdir():
        try:
            if (folder / CONFIG).is_file():
                newest = max(
                    (folder / name).stat().st_mtime for name in (CHECKPOINT, CONFIG) if (folder / name).exists()
                )
                found.append((newest, str(folder), folder))
        except OSError:
            continue
    return max(found)[2] if found else None


def check_resumable(folder: Path, device: str = "cpu") -> dict[str, Any]:
    """The checkpoint of the run in ``folder``, once it and ``metrics.jsonl`` have been read without a problem.

    Raises :class:`RunFolderError` (no checkpoint, a damaged one) or :class:`~maml_rl.training.log.MetricsError`.
    """
    path = Path(folder) / CHECKPOINT
    if not path.exists():
        raise RunFolderError(f"{folder}: no {CHECKPOINT} to resume from; start a new run without --resume")
    state = _load(path, device)
    read_metrics(folder)
    return state


def _load(path: Path, device: str) -> dict[str, Any]:
    try:
        state = load_checkpoint(path, map_location=device)
        int(state["batch"]), state["policy"].keys()
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file: torch raises many kinds
        raise RunFolderError(
            f"{path}: cannot be loaded ({type(e).__name__}); the file is damaged: "
            "restore it from a backup or start a new run"
        ) from None
    return state


def load_run(folder: str | Path, device: str | None = None, threads: int | None = None, **overrides: Any) -> Experiment:
    """The experiment of a run folder with its trained policy loaded (config values may be overridden, e.g.
    ``meta_batch_size=10``; ``threads``: the learner's, as for :meth:`Experiment.build`); raises
    :class:`RunFolderError` for a folder that holds no usable run."""
    folder = Path(folder)
    if not (folder / CONFIG).exists():
        raise RunFolderError(f"{folder}: no {CONFIG}; is this a run folder written by train.py?")
    if not (folder / CHECKPOINT).exists():
        raise RunFolderError(f"{folder}: no {CHECKPOINT}; the run has not finished a meta-batch yet")
    config = load_config(folder / CONFIG).replace(device=device, **overrides)
    state = _load(folder / CHECKPOINT, config.device)
    experiment = Experiment.build(config, threads)
    restore_policy(experiment, state, folder / CHECKPOINT)
    return experiment


def restore_policy(experiment: Experiment, state: dict[str, Any], checkpoint: Path) -> None:
    """Loads a checkpoint's policy into ``experiment``; one that does not fit its config closes the experiment
    and raises :class:`RunFolderError`."""
    try:
        experiment.policy.load_state_dict(state["policy"])
        experiment.load_outer_state(state.get("outer"))
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        experiment.close()
        raise RunFolderError(f"{checkpoint}: does not match the policy of {CONFIG} ({first_line(e)})") from None
