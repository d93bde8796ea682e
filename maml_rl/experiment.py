"""The objects a run is made of, built from its config, and one meta-batch from beginning to end.

One meta-batch: sample the tasks and their train episodes at θ, fit the baselines, adapt every task, sample the
valid episodes at each task's θ', then one outer step over the slices' per-task terms (:mod:`maml_rl.metabatch`):
TRPO (:func:`maml_rl.trpo.trpo_step`) or ProMP's (:func:`maml_rl.ppo.ppo_step`). The trainer loop
(:func:`maml_rl.training.trainer.train`) runs it once per meta-batch and writes what it returns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from maml_rl.config import Config
from maml_rl.metabatch import LocalSlices, Slices, TaskSlice, combine_reports, part_count
from maml_rl.metalearner import MetaLearner
from maml_rl.optim import flatten, unflatten
from maml_rl.policies.base import Policy
from maml_rl.policies.registry import build_policy
from maml_rl.ppo import outer_optimizer, ppo_step
from maml_rl.sampler import Sampler
from maml_rl.threads import learner_threads, whole_batch_threads
from maml_rl.trpo import trpo_step


@dataclass
class Experiment:
    """A run's sampler, policy and meta-learner, and where its tasks are sampled and adapted."""

    config: Config
    sampler: Sampler
    policy: Policy
    learner: MetaLearner
    learner_threads: int = 1
    """Threads of the learner phases (see :mod:`maml_rl.threads`); sampling runs torch on one thread while
    MuJoCo uses every core."""
    shards: Slices | None = None
    """Where the meta-batch's tasks are sampled and adapted: ``None`` for one slice of every task in this
    process (the default), or e.g. :class:`maml_rl.scale.ray_shards.RayShards`."""
    optimizer: torch.optim.Optimizer | None = None
    """The ``ppo`` outer step's Adam optimiser (made at its first meta-batch; ``None`` for ``trpo``)."""

    def outer_state(self) -> dict[str, Any] | None:
        """What the outer step carries from one meta-batch to the next (``ppo``: Adam's state), for a checkpoint."""
        return None if self.optimizer is None else self.optimizer.state_dict()

    def load_outer_state(self, state: dict[str, Any] | None) -> None:
        """Restores :meth:`outer_state` (``None``: nothing to restore)."""
        if state is None or self.config.outer_step != "ppo":
            return
        self.optimizer = outer_optimizer(flatten(self.policy.meta_params()), self.config)
        self.optimizer.load_state_dict(state)

    @classmethod
    def build(cls, config: Config, threads: int | None = None) -> Experiment:
        """The experiment of ``config``; ``threads``: the learner's torch threads (default:
        :func:`maml_rl.threads.learner_threads`)."""
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
        return cls(config, sampler, policy, MetaLearner(policy, config), learner_threads(threads))

    @property
    def learner_parts(self) -> int:
        """How many parts the learner splits the meta-batch's tasks into (see :func:`maml_rl.metabatch.part_count`;
        :meth:`recorded_config` records it)."""
        return part_count(self.config, self.learner_threads)

    def recorded_config(self) -> Config:
        """The config with ``learner-parts`` set to the count this experiment uses, as a run folder records it, so
        that a resume or a rerun of the saved file gives the same numbers with any number of threads."""
        return self.config.replace(learner_parts=self.learner_parts)

    @property
    def whole_batch_threads(self) -> int:
        """torch threads for a batch of tasks computed as one (see :func:`maml_rl.threads.whole_batch_threads`)."""
        return whole_batch_threads(self.policy.prefers_one_thread, self.learner_threads)

    def local_slices(self) -> LocalSlices:
        """One slice of every task, sharing this experiment's sampler, policy and learner."""
        return LocalSlices(
            [
                TaskSlice(
                    self.sampler,
                    self.policy,
                    self.learner,
                    self.config,
                    range(self.config.meta_batch_size),
                    self.learner_threads,
                )
            ]
        )

    def meta_batch(self, batch: int) -> dict[str, Any]:
        """One meta-batch: returns before/after adaptation, the TRPO step's losses and KL, diagnostics, timings."""
        start = time.perf_counter()
        shards = self.shards or self.local_slices()
        theta = flatten(self.policy.meta_params()).detach()
        traffic = getattr(shards, "traffic", None)
        moved = (traffic.sent, traffic.received) if traffic is not None else None
        restarts = getattr(shards, "restarts", 0)
        combined = combine_reports(shards.prepare(batch, None if shards.shares_policy else theta))
        times, diagnostics, bad = combined.pop("times"), combined.pop("diagnostics"), combined.pop("nonfinite")
        row: dict[str, Any] = {"batch": batch, **combined}
        env_steps = row.pop("env_steps")
        t_prepared = time.perf_counter()
        if bad is None:
            if self.config.outer_step == "ppo":
                if self.optimizer is None:
                    self.optimizer = outer_optimizer(theta, self.config)
                step, accepted = ppo_step(shards, theta, self.config, self.optimizer)
            else:
                step, accepted = trpo_step(shards, theta, self.config)
            if accepted is not None:
                self.learner.write_params(unflatten(accepted, self.policy.meta_params()))
            row.update(step)
            bad = row.pop("nonfinite", None)
        end = time.perf_counter()
        seconds = end - start
        nan = float("nan")
        defaults = {
            "returns_after": nan,
            "loss_before": nan,
            "loss_after": nan,
            "kl_after": nan,
            "grad_norm": nan,
            "ls_steps": 0,
            "accepted": False,
        }
        return {
            **row,
            **{k: v for k, v in defaults.items() if k not in row},
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
            **(
                {}
                if moved is None
                else {  # on Ray shards: what travelled, per shard summed over shards
                    "shard_bytes_sent": traffic.sent - moved[0],
                    "shard_bytes_received": traffic.received - moved[1],
                    "shard_restarts": shards.restarts - restarts,
                }
            ),
        }

    def close(self) -> None:
        """Releases the simulations (and the shards, if any)."""
        self.sampler.close()
        if self.shards is not None:
            self.shards.close()
