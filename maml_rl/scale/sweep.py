"""Resumable multi-seed sweeps on Ray Tune: every (policy, seed) is one ``train.py`` run folder.

Each trial runs ``train.py`` itself (the same command line a person would type, ``--resume`` added when the
folder already holds a checkpoint), so a sweep adds scheduling and bookkeeping and never a second training
loop. Trials ask Tune for ``threads_per_run`` CPUs each, so as many run at once as the cluster's CPUs allow.
Running the same sweep again skips the finished runs and continues the interrupted ones from their own
checkpoints: the outcome equals an uninterrupted sweep's, because a resumed run draws what an uninterrupted
one draws (see :mod:`maml_rl.seeding`). Ray Tune is imported where it is used: it is an optional extra.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maml_rl.config import Config, ConfigError, flatten_keys, load_config, to_dict, with_overrides
from maml_rl.exits import OK
from maml_rl.policies.registry import policy_types
from maml_rl.process import usable_cores
from maml_rl.scale.ray_session import ray_session
from maml_rl.training.folder import completed_batches, default_run_folder
from maml_rl.training.log import CHECKPOINT, CONFIG, RECORD, MetricsError, read_metrics

REPO = Path(__file__).resolve().parents[2]
TRAIN_PY, TEST_PY, COMPARE_PY = REPO / "train.py", REPO / "test.py", REPO / "compare.py"
TUNE_FOLDER = "_tune"
"""Tune's own bookkeeping, inside the sweep's output folder."""
POLL_S = 1.0
"""How often a trial looks for new metrics lines to report."""


@dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep: its ``train.py`` arguments and its folder."""

    policy: str
    seed: int
    folder: Path
    argv: tuple[str, ...]
    config: Config | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.folder.name


def plan(
    config_path: Path, policies: list[str], seeds: list[int], assignments: list[str], output: Path, threads: int
) -> list[PlannedRun]:
    """The sweep's runs, in policy-then-seed order; folders named as ``train.py`` names them by default."""
    base = load_config(config_path)
    runs = []
    for policy in policies:
        for seed in seeds:
            config = with_overrides(base.replace(policy_type=policy, seed=seed), assignments)
            folder = output.resolve() / default_run_folder(config_path, config).name
            argv = ["--config", str(Path(config_path).resolve()), "--policy", policy, "--seed", str(seed)]
            for assignment in assignments:
                argv += ["--set", assignment]
            argv += ["--output-folder", str(folder), "--threads", str(threads), "--no-progress"]
            runs.append(PlannedRun(policy, seed, folder, tuple(argv), config))
    return runs


def is_finished(run: PlannedRun) -> bool:
    if not (run.folder / CONFIG).is_file():
        return False
    return completed_batches(run.folder) >= load_config(run.folder / CONFIG).num_batches


RECORD_FREE_KEYS = {"learner-parts", "device"}
"""Config keys a run record may differ in from the planned run and still be that run (the part count is resolved
when a run starts; the device does not change the method)."""


def recorded(run: PlannedRun, records: Path) -> Path | None:
    """The run record of ``run`` under ``records`` (``records/<sweep folder's name>/<run name>``, as
    ``compare.py --save-records`` writes it), or ``None``. A record of that name made with other settings is
    refused (:class:`ConfigError`): skipping the run would leave the sweep with a different experiment."""
    folder = Path(records) / run.folder.parent.name / run.name
    if not (folder / RECORD).is_file():
        return None
    made = flatten_keys(yaml.safe_load((folder / CONFIG).read_text(encoding="utf-8")))
    planned = flatten_keys(to_dict(run.config)) if run.config is not None else made
    differ = sorted(k for k in set(made) | set(planned) if k not in RECORD_FREE_KEYS and made.get(k) != planned.get(k))
    if differ:
        raise ConfigError(
            f"{folder}: this run's record was made with other settings ({', '.join(differ)}); move the record "
            "away to run it again, or drop --records"
        )
    return folder


def _die_with_parent() -> None:
    """In the child: SIGTERM when the trial's worker dies, so train.py stops cleanly between meta-batches and
    never trains on beside a resumed sweep."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_trial(trial: dict[str, Any]) -> None:
    """Tune's function trainable: runs ``train.py`` for one run, reporting each new metrics line, and the run's
    checkpoint at the end."""
    from ray import tune

    spec = trial["run"]
    folder, argv = Path(spec["folder"]), list(spec["argv"])
    if (folder / CHECKPOINT).exists():
        argv.append("--resume")
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [sys.executable, str(TRAIN_PY), *argv],
        cwd=folder.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    reported = 0
    while True:
        done = process.poll() is not None
        lines = _metrics_so_far(folder)
        for line in lines[reported:]:
            tune.report({"run": folder.name, **{k: v for k, v in line.items() if isinstance(v, (int, float))}})
        reported = max(reported, len(lines))
        if done:
            break
        time.sleep(POLL_S)
    if process.returncode != 0:
        log.seek(0)
        last = [line for line in log.read().splitlines() if line.strip()][-1:] or ["(no output)"]
        raise RuntimeError(f"train.py {folder.name} exited with {process.returncode}: {last[0]}")
    with tempfile.TemporaryDirectory() as keep:
        for name in (CHECKPOINT, CONFIG):
            shutil.copy2(folder / name, Path(keep) / name)
        tune.report({"run": folder.name, "done": True}, checkpoint=tune.Checkpoint.from_directory(keep))


def _metrics_so_far(folder: Path) -> list[dict[str, Any]]:
    """The run's metrics lines written so far (a line being written right now is left for the next poll)."""
    try:
        return read_metrics(folder)
    except MetricsError:  # damaged: train.py itself will say so and stop
        return []


def to_train(runs: list[PlannedRun], records: Path | None = None) -> list[PlannedRun]:
    """The runs still to train: not finished in their folders and, with ``records``, without a run record there
    (each skipped one is named on stderr)."""
    todo = []
    for run in runs:
        if is_finished(run):
            print(f"{run.name}: finished, skipped", file=sys.stderr)
        elif records is not None and (record := recorded(run, records)) is not None:
            print(f"{run.name}: recorded in {record}, skipped", file=sys.stderr)
        else:
            todo.append(run)
    return todo


def run_sweep(
    runs: list[PlannedRun], output: Path, threads: int, address: str | None, records: Path | None = None
) -> list[str]:
    """Trains every run still to train (:func:`to_train`) as a Tune trial; returns the names of runs that
    failed."""
    try:
        from ray import tune
    except ImportError:
        raise ConfigError('sweep.py needs Ray Tune: pip install -e ".[ray]"') from None

    todo = to_train(runs, records)
    if not todo:
        return []
    output.mkdir(parents=True, exist_ok=True)
    # Tune's own loggers would write a second copy of every metric and print a TensorBoard hint at its
    # temporary folder; the runs' folders hold the metrics and TensorBoard events (see sweep.py's last line)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    with ray_session(address, usable_cores()):
        trainable = tune.with_resources(run_trial, {"cpu": threads})
        specs = [{"folder": str(r.folder), "argv": list(r.argv)} for r in todo]
        tuner = tune.Tuner(
            trainable,
            param_space={"run": tune.grid_search(specs)},
            tune_config=tune.TuneConfig(
                reuse_actors=False, trial_name_creator=_trial_name, trial_dirname_creator=_trial_name
            ),
            run_config=tune.RunConfig(
                name=f"sweep-{int(time.time())}",
                storage_path=str(output.resolve() / TUNE_FOLDER),
                verbose=0,
                log_to_file=True,
            ),
        )
        results = tuner.fit()
    return [Path(r.config["run"]["folder"]).name for r in results if r.error is not None]


def _trial_name(trial: Any) -> str:
    return Path(trial.config["run"]["folder"]).name


def evaluate_runs(runs: list[PlannedRun], output: Path, threads: int, test_args: list[str] = ()) -> int:
    """``test.py`` (with ``test_args``) on each finished run without ``results.json``, then ``compare.py`` on all
    finished runs."""
    finished = [r for r in runs if is_finished(r)]
    for run in finished:
        if (run.folder / "results.json").exists():  # test.py writes it after results.npz: the evaluation is whole
            print(f"{run.name}: evaluated already, skipped", file=sys.stderr)
            continue
        done = subprocess.run(
            [
                sys.executable,
                str(TEST_PY),
                "--run",
                str(run.folder),
                "--threads",
                str(threads),
                "--no-progress",
                *test_args,
            ],
            cwd=output,
        )
        if done.returncode != 0:
            return done.returncode
    if not finished:
        return OK
    return subprocess.run(
        [
            sys.executable,
            str(COMPARE_PY),
            *[str(r.folder) for r in finished],
            "--output-folder",
            str(output.resolve() / "comparison"),
        ],
        cwd=output,
    ).returncode


def check_policies(text: str) -> list[str]:
    policies = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in policies if p not in policy_types()]
    if bad or not policies:
        raise ConfigError(
            f"--policies: {','.join(bad) or 'nothing'} is not a policy; give a comma-separated list "
            f"of {', '.join(policy_types())} (e.g. mlp,rnn)"
        )
    return policies


def check_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds: {text!r} is not a comma-separated list of integers (e.g. 1,2,3)") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds: {text!r}: give distinct integers, e.g. 1,2,3")
    return seeds
