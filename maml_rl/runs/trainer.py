"""Meta-training, top to bottom: sample tasks, adapt, sample again, take a TRPO step, log, checkpoint.

Randomness is derived per meta-batch from ``(seed, batch)`` (the tasks) and per task from ``(seed, batch, task)``
(its resets and action noise), so a run resumed at batch k draws exactly what an uninterrupted run draws there
(a checkpoint needs only the parameters and the batch index), and a task's numbers do not depend on where it runs.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from maml_rl.process import reuse_freed_memory
from maml_rl.config import Config, to_dict
from maml_rl.metalearner import MAMLTRPO, TRPOSettings
from maml_rl.policies import Policy, build_policy
from maml_rl.runs.log import (CHECKPOINT, CONFIG, RunLog, RunWriteError, load_checkpoint, read_metrics,
                            save_checkpoint, save_config_atomically, truncate_metrics)
from maml_rl.runs.signals import deferred
from maml_rl.sampler import Sampler
from maml_rl.optim import flatten
from maml_rl.metabatch import InProcessShards, TaskSlice, combine_reports

TRAIN_STREAM, EVAL_STREAM = 0, 1
"""Separate random streams: evaluation tasks never coincide with training tasks of the same seed."""


class RunFolderError(RuntimeError):
    """The output folder cannot be used as asked (exists without --resume, nothing to resume, …)."""


class TrainingDiverged(RuntimeError):
    """Too many consecutive meta-batches were rejected for non-finite numbers."""


def usable_cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_learner_threads(config: Config) -> int:
    """Every usable core for the MLP; one for the RNN policy.

    The RNN's losses run its 100-step recurrence as many small tensor operations; with passive OpenMP waiting
    (see :mod:`maml_rl`), waking a second thread for each costs more than it saves (measured on HalfCheetahDir,
    2 cores: TRPO step 6.8 s on one thread, 10.2 s on two; the MLP's: 5.2 s on one, 3.7 s on two).
    """
    return 1 if config.policy.type == "rnn" else usable_cores()


@contextmanager
def torch_threads(threads: int):
    """Runs the block with ``threads`` torch intra-op threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def batch_rng(seed: int, stream: int, batch: int) -> np.random.Generator:
    """The generator of one meta-batch's tasks."""
    return np.random.default_rng([seed, stream, batch])


def task_rngs(seed: int, stream: int, batch: int, tasks: range | Sequence[int], rollout: int) -> list[np.random.Generator]:
    """One generator per task for one of its rollouts (0: before adaptation, k: after k adaptation steps), keyed
    by (seed, stream, batch, task index, rollout): a task's resets and action noise do not depend on where, or
    beside which other tasks, it is sampled."""
    return [np.random.default_rng([seed, stream, batch, task, rollout]) for task in tasks]


def trpo_settings(config: Config) -> TRPOSettings:
    return TRPOSettings(
        fast_lr=config.fast_lr,
        num_steps=config.num_steps,
        first_order=config.first_order,
        max_kl=config.max_kl,
        cg_iters=config.cg_iters,
        cg_damping=config.cg_damping,
        ls_max_steps=config.ls_max_steps,
        ls_backtrack_ratio=config.ls_backtrack_ratio,
        inner_params=config.inner_params,
    )


@dataclass
class Experiment:
    """The objects a run is made of, built from its config."""

    config: Config
    sampler: Sampler
    policy: Policy
    learner: MAMLTRPO
    learner_threads: int = 1
    """torch threads of the learner phases; sampling runs torch on one thread while MuJoCo uses every core."""

    @classmethod
    def build(cls, config: Config) -> "Experiment":
        reuse_freed_memory()  # large tensors come and go all the time (see maml_rl.process)
        sampler = Sampler(
            config.env_name,
            config.fast_batch_size,
            config.horizon,
            config.normalization_scale,
            config.sampler.backend,
            config.env_kwargs,
        )
        torch.manual_seed(config.seed)  # the initial weights, frozen recurrent ones included
        policy = build_policy(config.policy, sampler.observation_dim, sampler.action_dim).to(config.device)
        return cls(config, sampler, policy, MAMLTRPO(policy, trpo_settings(config)), default_learner_threads(config))

    shards: Any = None
    """Where the meta-batch's tasks are sampled and adapted: ``None`` for one slice of every task in this
    process (the default), or a :class:`maml_rl.scale.ray_shards.RayShards`."""

    def in_process_shards(self) -> InProcessShards:
        return InProcessShards([TaskSlice(self.sampler, self.policy, self.learner, self.config,
                                          range(self.config.meta_batch_size), self.learner_threads)])

    def meta_batch(self, batch: int) -> dict[str, Any]:
        """One meta-batch: returns before/after adaptation, the TRPO step's losses and KL, timings."""
        start = time.perf_counter()
        if self.shards is None:
            shards, theta = self.in_process_shards(), None  # the slice shares this policy: θ is already there
        else:
            shards, theta = self.shards, flatten(self.policy.meta_params()).detach()
        traffic = getattr(shards, "traffic", None)
        moved = (traffic.sent, traffic.received) if traffic is not None else None
        restarts = getattr(shards, "restarts", 0)
        combined = combine_reports(shards.prepare(batch, theta))
        times, diagnostics, bad = combined.pop("times"), combined.pop("diagnostics"), combined.pop("nonfinite")
        row: dict[str, Any] = {"batch": batch, **combined}
        env_steps = row.pop("env_steps")
        t_prepared = time.perf_counter()
        if bad is None:
            row.update(self.learner.outer_step(shards))
            bad = row.pop("nonfinite", None)
        end = time.perf_counter()
        seconds = end - start
        nan = float("nan")
        defaults = {"returns_after": nan, "loss_before": nan, "loss_after": nan, "kl_after": nan, "grad_norm": nan,
                    "ls_steps": 0, "accepted": False}
        return {
            **row, **{k: v for k, v in defaults.items() if k not in row},
            "nonfinite": bad,
            "env_steps": env_steps,
            "seconds": seconds,
            "env_steps_per_s": env_steps / seconds,
            "time_sample_before": times["time_sample_before"],
            "time_adapt": times["time_adapt"],  # advantages of the train episodes and the inner loop
            "time_sample_after": times["time_sample_after"],
            # advantages of the valid episodes and the TRPO step
            "time_trpo": times["time_advantages_after"] + (end - t_prepared),
            **diagnostics,
            **({} if moved is None else {  # on Ray shards: what travelled, per shard summed over shards
                "shard_bytes_sent": traffic.sent - moved[0], "shard_bytes_received": traffic.received - moved[1],
                "shard_restarts": shards.restarts - restarts}),
        }


@dataclass(frozen=True)
class RaySettings:
    """``train.py --ray [ADDRESS] --shards N``: where the shards run (``None``: a local Ray instance started
    for the run) and how many (``None``: one per node)."""

    address: str | None = None
    shards: int | None = None


def train(
    config: Config, output_folder: str | Path, resume: bool = False, progress: bool = True, threads: int | None = None,
    ray: RaySettings | None = None,
) -> Path:
    """Meta-trains for ``config.num_batches`` meta-batches into ``output_folder``; returns the folder.

    With ``ray``, the tasks of each meta-batch are sampled and adapted on Ray shards
    (:mod:`maml_rl.scale.ray_shards`); a cluster that cannot be reached or is lost raises
    :class:`~maml_rl.scale.ray_shards.ClusterError` with the checkpoint holding the last complete meta-batch.

    Raises :class:`RunFolderError` or :class:`~maml_rl.runs.log.MetricsError` before writing anything if the
    folder cannot be used as asked, and :class:`~maml_rl.runs.log.RunWriteError` if a write fails (the files keep
    the last complete meta-batch). A meta-batch's metrics line and checkpoint are written with SIGINT and
    SIGTERM held back (see :mod:`maml_rl.runs.signals`).
    """
    folder = Path(output_folder)
    checkpoint_path = folder / CHECKPOINT
    start = 0
    if resume:
        state = check_resumable(folder, config.device)
    elif checkpoint_path.exists():
        raise RunFolderError(
            f"{folder} already holds a run; pass --resume to continue it or choose another --output-folder"
        )
    folder.mkdir(parents=True, exist_ok=True)

    experiment = Experiment.build(config)
    experiment.learner_threads = threads or experiment.learner_threads
    if resume:
        try:
            experiment.policy.load_state_dict(state["policy"])
        except (KeyError, RuntimeError, TypeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise RunFolderError(f"{checkpoint_path}: does not match the policy of {CONFIG} ({first})") from None
        start = int(state["batch"]) + 1
        truncate_metrics(folder, start)
    save_config_atomically(config, folder / CONFIG)
    if ray is not None:
        from maml_rl.scale.ray_shards import RayShards, connect

        connect(ray.address, usable_cores())
        experiment.shards = RayShards(config, experiment.policy.state_dict(), ray.shards)

    log = RunLog(folder)
    bar = tqdm(range(start, config.num_batches), initial=start, total=config.num_batches, disable=not progress,
               desc="meta-batch", unit="batch", dynamic_ncols=True)
    rejections = 0
    saved = start - 1  # the meta-batch the checkpoint holds
    completed = False
    try:
        for batch in bar:
            metrics = experiment.meta_batch(batch)
            try:
                with deferred():  # the line and the checkpoint together, or (on a kill) the line first
                    log.write(metrics)
                    save_checkpoint(
                        checkpoint_path,
                        {"policy": experiment.policy.state_dict(), "batch": batch, "config": to_dict(config)},
                    )
            except RunWriteError as e:
                kept = f"meta-batch {saved} is the last one saved" if saved >= 0 else "no meta-batch is saved yet"
                raise RunWriteError(f"{e}; {kept}, nothing before it is lost") from None
            saved = batch
            if metrics["nonfinite"]:
                rejections += 1
                bar.write(f"warning: meta-batch {batch}: non-finite {metrics['nonfinite']}; update rejected, "
                          f"parameters kept ({rejections} in a row)", file=sys.stderr)
                if rejections >= config.max_nonfinite_batches:
                    raise TrainingDiverged(
                        f"{rejections} meta-batches in a row were rejected for non-finite numbers (last: "
                        f"{metrics['nonfinite']} at meta-batch {batch}); stopping. {checkpoint_path} holds the last "
                        "good parameters; lower fast-lr or max-kl, or raise max-nonfinite-batches, then --resume")
            else:
                rejections = 0
            bar.set_postfix(
                before=f"{metrics['returns_before']:.2f}",
                after=f"{metrics['returns_after']:.2f}",
                steps_per_s=f"{metrics['env_steps_per_s']:.0f}",
            )
        completed = True
    finally:
        bar.close()
        experiment.sampler.close()
        if experiment.shards is not None:
            from maml_rl.scale.ray_shards import disconnect

            experiment.shards.close()
            disconnect()
        try:
            log.close()
        except RunWriteError:
            if completed:  # else the error that stopped the run is the one to report
                raise
    return folder


def check_resumable(folder: Path, device: str = "cpu") -> dict[str, Any]:
    """The checkpoint of the run in ``folder``, once it and ``metrics.jsonl`` have been read without a problem.

    Raises :class:`RunFolderError` (no checkpoint, a damaged one) or :class:`~maml_rl.runs.log.MetricsError`.
    """
    path = Path(folder) / CHECKPOINT
    if not path.exists():
        raise RunFolderError(f"{folder}: no {CHECKPOINT} to resume from; start a new run without --resume")
    try:
        state = load_checkpoint(path, map_location=device)
        int(state["batch"]), state["policy"].keys()
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file: torch raises many kinds
        raise RunFolderError(f"{path}: cannot be loaded ({type(e).__name__}); the file is damaged: "
                             "restore it from a backup or start a new run") from None
    read_metrics(folder)
    return state
