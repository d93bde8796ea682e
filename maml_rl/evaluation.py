"""Evaluating a meta-trained policy: fresh tasks, returns before and after adaptation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from tqdm.auto import tqdm

from maml_rl.baseline import compute_advantages
from maml_rl.config import Config, ConfigError, load_config
from maml_rl.runlog import CHECKPOINT, CONFIG, load_checkpoint
from maml_rl.trainer import EVAL_STREAM, Experiment, batch_rng, torch_threads

RESULTS = "results.npz"


class RunError(RuntimeError):
    """A run folder that cannot be evaluated (no checkpoint, unreadable checkpoint, mismatched policy)."""


@dataclass
class Evaluation:
    """Returns of fresh tasks: ``train_returns`` before adaptation, ``valid_returns`` after, ``(tasks, episodes)``."""

    tasks: np.ndarray
    task_keys: list[str]
    train_returns: np.ndarray
    valid_returns: np.ndarray


def mean_confidence_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval."""
    values = np.asarray(values, dtype=np.float64).ravel()
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * stats.sem(values)
    return mean, float(half)


def load_run(folder: str | Path, device: str | None = None, **overrides) -> Experiment:
    """The experiment of a run folder with its trained policy loaded (config values may be overridden)."""
    folder = Path(folder)
    if not (folder / CONFIG).exists():
        raise RunError(f"{folder}: no {CONFIG}; is this a run folder written by train.py?")
    if not (folder / CHECKPOINT).exists():
        raise RunError(f"{folder}: no {CHECKPOINT}; the run has not finished a meta-batch yet")
    config: Config = load_config(folder / CONFIG).replace(device=device, **overrides)
    try:
        state = load_checkpoint(folder / CHECKPOINT, map_location=config.device)
    except Exception as e:  # a truncated or foreign file: torch raises many kinds
        raise RunError(f"{folder / CHECKPOINT}: cannot be loaded ({type(e).__name__}); the file is damaged") from None
    experiment = Experiment.build(config)
    try:
        experiment.policy.load_state_dict(state["policy"])
    except (KeyError, RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0]
        raise RunError(f"{folder / CHECKPOINT}: does not match the policy of {CONFIG} ({first})") from None
    return experiment


def evaluate(experiment: Experiment, num_batches: int, seed: int, progress: bool = True) -> Evaluation:
    """Adapts to ``num_batches × meta-batch-size`` fresh tasks and records returns before and after."""
    cfg, policy, sampler = experiment.config, experiment.policy, experiment.sampler
    tasks, before, after = [], [], []
    for batch in tqdm(range(num_batches), desc="evaluating", unit="batch", disable=not progress):
        rng = batch_rng(seed, EVAL_STREAM, batch)
        batch_tasks = sampler.sample_tasks(cfg.meta_batch_size, rng)
        with torch_threads(1):
            train = sampler.sample(policy, policy.task_params(len(batch_tasks)), batch_tasks, rng)
        with torch_threads(experiment.learner_threads):
            compute_advantages(train, cfg.gamma, cfg.gae_lambda)
            adapted = experiment.learner.adapt(train, create_graph=False).params
        with torch_threads(1):
            valid = sampler.sample(policy, {k: v.detach() for k, v in adapted.items()}, batch_tasks, rng)
        tasks.extend(batch_tasks)
        before.append(train.returns.cpu().numpy())
        after.append(valid.returns.cpu().numpy())
    family = type(sampler.family)
    return Evaluation(family.task_array(tasks), list(family.task_shapes), np.concatenate(before), np.concatenate(after))


def save_results(evaluation: Evaluation, path: Path) -> None:
    np.savez(
        path,
        tasks=evaluation.tasks,
        task_keys=np.asarray(evaluation.task_keys),
        train_returns=evaluation.train_returns,
        valid_returns=evaluation.valid_returns,
    )


__all__ = ["ConfigError", "Evaluation", "RunError", "evaluate", "load_run", "mean_confidence_interval", "save_results"]
