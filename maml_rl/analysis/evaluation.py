"""Evaluating a meta-trained policy: fresh tasks, returns before and after adaptation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm  # the text bar everywhere: in a notebook without ipywidgets, tqdm.auto warns

from maml_rl.analysis.statistics import mean_confidence_interval
from maml_rl.baseline import compute_advantages
from maml_rl.episodes import Episodes
from maml_rl.experiment import Experiment
from maml_rl.seeding import EVAL_STREAM, batch_rng, task_rngs
from maml_rl.threads import torch_threads
from maml_rl.training.log import RESULTS, SUMMARY


@dataclass
class Evaluation:
    """Returns of fresh tasks after 0, 1, …, K adaptation steps: ``returns`` is ``(tasks, K + 1, episodes)``.

    ``train_returns`` (before adaptation) and ``valid_returns`` (after the first step) are pytorch-maml-rl's
    names for ``returns[:, 0]`` and ``returns[:, 1]``.
    """

    tasks: np.ndarray
    task_keys: list[str]
    returns: np.ndarray
    step_rewards: np.ndarray
    """Mean reward per time step over each task's episodes still running, ``(tasks, K + 1, horizon)``; NaN where
    every episode of the task had ended. Inference from rewards shows here as a reward that rises within an
    episode before any gradient step (``step_rewards[:, 0]``)."""

    @property
    def train_returns(self) -> np.ndarray:
        return self.returns[:, 0]

    @property
    def valid_returns(self) -> np.ndarray:
        return self.returns[:, 1]

    def summary(self) -> list[dict[str, float]]:
        """Per adaptation step: mean return over tasks (each task's mean over episodes) and its 95% CI."""
        rows = []
        for step in range(self.returns.shape[1]):
            mean, half = mean_confidence_interval(self.returns[:, step].mean(1))
            rows.append({"adapt_steps": step, "mean": mean, "ci95": half})
        return rows


def evaluate(
    experiment: Experiment, num_batches: int, seed: int, adapt_steps: int = 1, progress: bool = True
) -> Evaluation:
    """Adapts to ``num_batches × meta-batch-size`` fresh tasks, ``adapt_steps`` times each, sampling fresh episodes
    after every step (the shape of Finn et al. 2017, Fig. 5); one step is the training inner loop
    (``num-steps`` gradient steps of size ``fast-lr``)."""
    cfg, policy, sampler, learner = experiment.config, experiment.policy, experiment.sampler, experiment.learner
    tasks, returns, step_rewards = [], [], []
    for batch in tqdm(range(num_batches), desc="evaluating", unit="batch", disable=not progress):
        rng = batch_rng(seed, EVAL_STREAM, batch)
        batch_tasks = sampler.sample_tasks(cfg.meta_batch_size, rng)
        params = {k: v.detach() for k, v in policy.task_params(len(batch_tasks)).items()}
        per_step, rewards_per_step = [], []
        for step in range(adapt_steps + 1):
            with torch_threads(1):
                episodes = sampler.sample(
                    policy, params, batch_tasks, task_rngs(seed, EVAL_STREAM, batch, range(len(batch_tasks)), step)
                )
            per_step.append(episodes.returns.cpu().numpy())
            rewards_per_step.append(mean_reward_per_step(episodes))
            if step == adapt_steps:
                break
            with torch_threads(experiment.whole_batch_threads):
                compute_advantages(episodes, cfg.gamma, cfg.gae_lambda)
                leaf = {k: v.requires_grad_() for k, v in params.items()}
                params = {k: v.detach() for k, v in learner.adapt(episodes, leaf, create_graph=False).params.items()}
        tasks.extend(batch_tasks)
        returns.append(np.stack(per_step, 1))
        step_rewards.append(np.stack(rewards_per_step, 1))
    family = type(sampler.family)
    return Evaluation(
        family.task_array(tasks), list(family.task_shapes), np.concatenate(returns), np.concatenate(step_rewards)
    )


def mean_reward_per_step(episodes: Episodes) -> np.ndarray:
    """``(tasks, T)``: each task's mean reward at step t over its episodes still running then (NaN if none)."""
    total = (episodes.rewards * episodes.mask).sum(2)
    count = episodes.mask.sum(2)
    mean = total / count.clamp_min(1.0)
    return torch.where(count > 0, mean, torch.full_like(mean, float("nan"))).cpu().numpy()


def save_results(evaluation: Evaluation, folder: Path) -> None:
    """``results.npz`` (arrays) and ``results.json`` (the per-step summary) in ``folder``."""
    np.savez(
        folder / RESULTS,
        tasks=evaluation.tasks,
        task_keys=np.asarray(evaluation.task_keys),
        train_returns=evaluation.train_returns,
        valid_returns=evaluation.valid_returns,
        returns=evaluation.returns,
        step_rewards=evaluation.step_rewards,
    )
    summary = {"tasks": len(evaluation.tasks), "episodes": evaluation.returns.shape[2], "steps": evaluation.summary()}
    (folder / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
