"""The trainer loop, top to bottom: one meta-batch after another, each logged and checkpointed together.

A run folder (:mod:`maml_rl.training.folder`) holds ``config.yaml``, ``metrics.jsonl`` (one line per
meta-batch), TensorBoard events and ``checkpoint.pt``. Randomness is keyed by (seed, batch, task)
(:mod:`maml_rl.seeding`), so a checkpoint needs only the parameters and the batch index, and a resumed run
draws exactly what an uninterrupted one draws.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm  # the text bar everywhere: in a notebook without ipywidgets, tqdm.auto warns

from maml_rl.config import Config, to_dict
from maml_rl.experiment import Experiment
from maml_rl.metabatch import Slices
from maml_rl.training.folder import RunFolderError, check_resumable, exclusive, restore_policy
from maml_rl.training.log import (
    CHECKPOINT,
    CONFIG,
    RunLog,
    RunWriteError,
    save_checkpoint,
    save_config_atomically,
    truncate_metrics,
)
from maml_rl.training.signals import deferred


class TrainingDiverged(RuntimeError):
    """Too many consecutive meta-batches were rejected for non-finite numbers."""


def train(
    config: Config,
    output_folder: str | Path,
    resume: bool = False,
    progress: bool = True,
    threads: int | None = None,
    shards: Callable[[Experiment], Slices] | None = None,
) -> Path:
    """Meta-trains for ``config.num_batches`` meta-batches into ``output_folder``; returns the folder.

    Args:
        config: the run's config (saved as ``config.yaml``).
        output_folder: the run folder; it must not hold a run unless ``resume``.
        resume: continue the run in ``output_folder`` from its last complete meta-batch.
        progress: show a progress bar.
        threads: the learner's torch threads (default: :func:`maml_rl.threads.learner_threads`).
        shards: makes where the tasks are sampled and adapted from the built (and, on resume, restored)
            experiment, e.g. ``lambda e: RayShards(config, e.policy.state_dict(), 4)``; default: this process.

    The folder is locked while training (:func:`~maml_rl.training.folder.exclusive`): a second trainer on it stops
    at once. Resuming a run that already has ``config.num_batches`` meta-batches does nothing and writes
    nothing; one that has more is refused (its record would stop matching the run).

    Raises :class:`~maml_rl.training.folder.RunFolderError` or :class:`~maml_rl.training.log.MetricsError` before
    writing anything if the folder cannot be used as asked, :class:`~maml_rl.training.log.RunWriteError` if a write
    fails (the files keep the last complete meta-batch) and :class:`TrainingDiverged`. A meta-batch's metrics
    line and checkpoint are written with SIGINT and SIGTERM held back (see :mod:`maml_rl.training.signals`).
    """
    folder = Path(output_folder)
    if not resume and (folder / CHECKPOINT).exists():
        raise RunFolderError(
            f"{folder} already holds a run; pass --resume to continue it or choose another --output-folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive(folder):
        _train_locked(config, folder, resume, progress, threads, shards)
    return folder


def resume_start(folder: Path, config: Config) -> tuple[dict, int]:
    """The checkpoint of the run to resume and the meta-batch it continues from; refuses a ``num-batches`` below
    what the run already has."""
    state = check_resumable(folder, config.device)
    start = int(state["batch"]) + 1
    if start > config.num_batches:
        raise RunFolderError(
            f"{folder} already has {start} meta-batches, more than --num-batches {config.num_batches}; resume with "
            f"--num-batches {start} or more (nothing was changed)"
        )
    return state, start


def _train_locked(
    config: Config,
    folder: Path,
    resume: bool,
    progress: bool,
    threads: int | None,
    shards: Callable[[Experiment], Slices] | None,
) -> None:
    checkpoint_path = folder / CHECKPOINT
    start = 0
    if resume:
        state, start = resume_start(folder, config)
        if start == config.num_batches:
            return  # nothing to do: no file is touched
    elif checkpoint_path.exists():  # another trainer finished a meta-batch here meanwhile
        raise RunFolderError(
            f"{folder} already holds a run; pass --resume to continue it or choose another --output-folder"
        )

    experiment = Experiment.build(config, threads)
    if resume:
        restore_policy(experiment, state, checkpoint_path)
        truncate_metrics(folder, start)
    # the part count used, so that the saved file gives these numbers with any threads (Ray shards split their
    # slices by their own CPUs unless the config sets it)
    config = config if shards is not None else experiment.recorded_config()
    save_config_atomically(config, folder / CONFIG)
    if shards is not None:
        experiment.shards = shards(experiment)

    log = RunLog(folder)
    bar = tqdm(
        range(start, config.num_batches),
        initial=start,
        total=config.num_batches,
        disable=not progress,
        desc="meta-batch",
        unit="batch",
        dynamic_ncols=True,
    )
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
                        {
                            "policy": experiment.policy.state_dict(),
                            "batch": batch,
                            "config": to_dict(config),
                            **({"outer": outer} if (outer := experiment.outer_state()) is not None else {}),
                        },
                    )
            except RunWriteError as e:
                kept = f"meta-batch {saved} is the last one saved" if saved >= 0 else "no meta-batch is saved yet"
                raise RunWriteError(f"{e}; {kept}, nothing before it is lost") from None
            saved = batch
            if metrics["nonfinite"]:
                rejections += 1
                bar.write(
                    f"warning: meta-batch {batch}: non-finite {metrics['nonfinite']}; update rejected, "
                    f"parameters kept ({rejections} in a row)",
                    file=sys.stderr,
                )
                if rejections >= config.max_nonfinite_batches:
                    raise TrainingDiverged(
                        f"{rejections} meta-batches in a row were rejected for non-finite numbers (last: "
                        f"{metrics['nonfinite']} at meta-batch {batch}); stopping. {checkpoint_path} holds the last "
                        "good parameters; lower fast-lr or max-kl, or raise max-nonfinite-batches, then --resume"
                    )
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
        experiment.close()
        try:
            log.close()
        except RunWriteError:
            if completed:  # else the error that stopped the run is the one to report
                raise
