"""A meta-batch's tasks in slices: each slice sampled, adapted and turned into the outer step's per-task terms
in one process.

The default run holds one slice of every task (:class:`LocalSlices`); a Ray shard
(:mod:`maml_rl.scale.ray_shards`) holds one :class:`TaskSlice` for its slice. On the CPU a slice's learner
phases (the inner loop and the outer step's terms) run in *parts*: contiguous groups of its tasks (``learner-parts``,
by default one per learner thread), spread over the learner threads, each thread on one torch thread computing its
parts one after another, and summed in part order. Its tasks' numbers are those of one part; only the sums over
tasks change their rounding, and the part count alone decides how: not the threads. Everything random comes from
streams keyed by (seed, stream, batch, task index) (:mod:`maml_rl.seeding`), so a task's numbers do not depend
on which slice it is in. Only θ, θ-sized vectors and scalars (and per-task sums for the metrics) leave a slice;
its episodes never do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor

from maml_rl.baseline import compute_advantages
from maml_rl.config import Config
from maml_rl.episodes import Episodes, combine_sums
from maml_rl.metalearner import Adaptation, EpisodeTerms, MetaLearner, leave_one_out_baseline, mean_valid_returns
from maml_rl.optim import unflatten
from maml_rl.policies.base import Params, Policy
from maml_rl.sampler import Sampler
from maml_rl.seeding import TRAIN_STREAM, batch_rng, task_rngs
from maml_rl.threads import torch_threads, whole_batch_threads

NONFINITE_ORDER = ("train observations", "train rewards", "adapted", "valid observations", "valid rewards")
"""The checks of a meta-batch in the order they run; a sliced batch reports the earliest that failed."""


@dataclass
class SliceReport:
    """What a slice sends back after sampling and adapting: sums for the metrics, never episodes."""

    tasks: range
    before: dict[str, tuple[Tensor, Tensor]]
    """:meth:`~maml_rl.episodes.Episodes.task_sums` of the train episodes."""
    after: dict[str, tuple[Tensor, Tensor]] | None
    """The same for the valid episodes (``None`` when the slice stopped before sampling them)."""
    env_steps: int
    nonfinite: str | None
    times: dict[str, float] = field(default_factory=dict)


Result = TypeVar("Result")


def split_tasks(count: int, parts: int) -> list[range]:
    """``range(count)`` as at most ``parts`` contiguous ranges whose lengths differ by at most one (the
    longer ones first); never an empty one."""
    parts = max(1, min(parts, count))
    size, extra = divmod(count, parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + size + (i < extra))
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def part_count(config: Config, learner_threads: int) -> int:
    """The parts a slice's tasks are split into: ``learner-parts`` if set, else one per learner thread on the CPU
    and one on another device."""
    if config.learner_parts is not None:
        return config.learner_parts
    return learner_threads if torch.device(config.device).type == "cpu" else 1


@cache
def part_threads(workers: int) -> ThreadPoolExecutor:
    """The process's ``workers`` threads for the learner's parts beyond the first, each on one torch thread
    (made once and kept, so that a meta-batch starts no threads)."""
    return ThreadPoolExecutor(workers, "learner-part", initializer=torch.set_num_threads, initargs=(1,))


def joined_params(parts: list[Params]) -> Params:
    """The parts' per-task parameters as one dict over all their tasks (detached; one part: its own, detached)."""
    if len(parts) == 1:
        return {k: v.detach() for k, v in parts[0].items()}
    return {k: torch.cat([p[k].detach() for p in parts]) for k in parts[0]}


def first_nonfinite(**tensors: Tensor) -> str | None:
    """The name of the first tensor holding NaN or inf, else ``None``."""
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            return name
    return None


class TaskSlice:
    """Tasks ``tasks`` of every meta-batch: sampling, advantages, inner-loop adaptation and the per-task terms
    of the outer step (a :class:`~maml_rl.metalearner.MetaBatchTerms` once :meth:`prepare` has run).

    Args:
        sampler: this process's own sampler.
        policy: this process's policy (its θ is written by :meth:`prepare`).
        learner: the meta-learner of ``policy``.
        config: the run's config (seed, batch sizes, γ, λ, …).
        tasks: the task indices of this slice, within ``range(config.meta_batch_size)``.
        learner_threads: threads of the adaptation and the outer step's terms: on the CPU, the parts are spread
            over that many threads (at most one per part), each with one torch thread; a slice computed on one
            thread as one part (one thread, one task, another device) runs on
            :func:`~maml_rl.threads.whole_batch_threads` torch threads.
    """

    def __init__(
        self,
        sampler: Sampler,
        policy: Policy,
        learner: MetaLearner,
        config: Config,
        tasks: range,
        learner_threads: int = 1,
    ) -> None:
        self.sampler, self.policy, self.learner, self.config = sampler, policy, learner, config
        self.tasks, self.learner_threads = tasks, learner_threads
        on_cpu = torch.device(config.device).type == "cpu"
        self.parts = split_tasks(len(tasks), part_count(config, learner_threads))
        """Ranges of the slice's tasks (indices within the slice) whose learner phases are computed separately
        (:func:`part_count` of them, at most one per task)."""
        self._groups = split_tasks(len(self.parts), learner_threads if on_cpu else 1)
        """Ranges of :attr:`parts`, one per thread: each thread computes its group's parts one after another."""
        self._part_threads = (
            1 if len(self.parts) > 1 else whole_batch_threads(policy.prefers_one_thread, learner_threads)
        )
        self._pool = part_threads(len(self._groups) - 1) if len(self._groups) > 1 else None
        self._terms: list[EpisodeTerms] | None = None

    def prepare(self, batch: int, theta: Tensor | None = None) -> SliceReport:
        """Samples the slice's train episodes at θ, adapts, samples the valid episodes at θ'; returns the
        metrics' sums. ``theta`` (flat) is written into the policy first unless ``None`` (already there)."""
        cfg, policy, sampler = self.config, self.policy, self.sampler
        if theta is not None:
            self.learner.write_params(unflatten(theta.to(cfg.device), policy.meta_params()))
        self._terms = None
        clock = [time.perf_counter()]

        def lap() -> float:
            clock.append(time.perf_counter())
            return clock[-1] - clock[-2]

        every = sampler.sample_tasks(cfg.meta_batch_size, batch_rng(cfg.seed, TRAIN_STREAM, batch))
        tasks = every[self.tasks.start : self.tasks.stop]
        with torch_threads(1):
            train = sampler.sample(
                policy, policy.task_params(len(tasks)), tasks, task_rngs(cfg.seed, TRAIN_STREAM, batch, self.tasks, 0)
            )
        times = {"time_sample_before": lap()}
        report = SliceReport(self.tasks, train.task_sums(cfg.normalization_scale), None, train.env_steps, None, times)
        report.nonfinite = first_nonfinite(**{"train observations": train.observations, "train rewards": train.rewards})
        if report.nonfinite is None:
            with torch_threads(self._part_threads):
                compute_advantages(train, cfg.gamma, cfg.gae_lambda)
            trains = self._split(train)
            adaptations: list[Adaptation] = self._each(lambda i: self.learner.adapt(trains[i]))
            adapted = joined_params([a.params for a in adaptations])
            report.nonfinite = first_nonfinite(**{f"adapted {k}": v for k, v in adapted.items()})
        times["time_adapt"] = lap()  # advantages of the train episodes and the inner loop
        valid: Episodes | None = None
        if report.nonfinite is None:
            with torch_threads(1):
                valid = sampler.sample(policy, adapted, tasks, task_rngs(cfg.seed, TRAIN_STREAM, batch, self.tasks, 1))
            report.after = valid.task_sums(cfg.normalization_scale)
            report.env_steps += valid.env_steps
            report.nonfinite = first_nonfinite(
                **{"valid observations": valid.observations, "valid rewards": valid.rewards}
            )
        times["time_sample_after"] = lap()
        if report.nonfinite is None:
            with torch_threads(self._part_threads):
                compute_advantages(valid, cfg.gamma, cfg.gae_lambda)
            valids = self._split(valid)
            baseline = None  # DiCE's leave-one-out baseline is over the slice's tasks, whatever the parts
            if len(self.parts) > 1 and cfg.inner_loss == "dice":
                baseline = leave_one_out_baseline(mean_valid_returns(valid, cfg.gamma))
            self._terms = [
                self.learner.terms(
                    trains[i],
                    valids[i],
                    adaptations[i],
                    cfg.meta_batch_size,
                    None if baseline is None else baseline[part.start : part.stop],
                )
                for i, part in enumerate(self.parts)
            ]
        times["time_advantages_after"] = lap()
        return report

    def _split(self, episodes: Episodes) -> list[Episodes]:
        return [episodes] if len(self.parts) == 1 else [episodes.select_tasks(part) for part in self.parts]

    def _each(self, work: Callable[[int], Result]) -> list[Result]:
        """``work(i)`` for every part ``i``, each thread's group of parts one after another and the groups side by
        side (the first on this thread, the others on the pool's); results in part order."""

        def group(parts: range) -> list[Result]:
            return [work(i) for i in parts]

        with torch_threads(self._part_threads):
            if self._pool is None:
                return group(range(len(self.parts)))
            others = [self._pool.submit(group, parts) for parts in self._groups[1:]]
            try:
                first = group(self._groups[0])
            finally:  # never leave a part running behind an error
                wait(others)
            return [*first, *(result for future in others for result in future.result())]

    def _prepared(self) -> list[EpisodeTerms]:
        if self._terms is None:
            raise RuntimeError("TaskSlice: no meta-batch prepared (or it held non-finite numbers); call prepare()")
        return self._terms

    def gradient(self) -> tuple[float, Tensor]:
        terms = self._prepared()
        return sum_pairs(self._each(lambda i: terms[i].gradient()))

    def fisher_product(self, vector: Tensor) -> Tensor:
        terms = self._prepared()
        return sum_tensors(self._each(lambda i: terms[i].fisher_product(vector)))

    def losses(self, theta: Tensor) -> tuple[float, float]:
        terms = self._prepared()
        return sum_pairs(self._each(lambda i: terms[i].losses(theta)))

    def proximal_objective(self, theta: Tensor) -> tuple[float, Tensor]:
        terms = self._prepared()
        return sum_pairs(self._each(lambda i: terms[i].proximal_objective(theta)))

    def close(self) -> None:
        self._terms = None
        self.sampler.close()


class Slices(Protocol):
    """Where a meta-batch's tasks are sampled and adapted: :class:`LocalSlices` or
    :class:`maml_rl.scale.ray_shards.RayShards`. After :meth:`prepare`, a
    :class:`~maml_rl.metalearner.MetaBatchTerms` of the whole meta-batch (its slices' sums, in slice order)."""

    shares_policy: bool
    """Whether the slices use the driver's own policy object (then :meth:`prepare` needs no θ)."""

    def prepare(self, batch: int, theta: Tensor | None = None) -> list[SliceReport]: ...

    def gradient(self) -> tuple[float, Tensor]: ...

    def fisher_product(self, vector: Tensor) -> Tensor: ...

    def losses(self, theta: Tensor) -> tuple[float, float]: ...

    def proximal_objective(self, theta: Tensor) -> tuple[float, Tensor]: ...

    def close(self) -> None: ...


class LocalSlices:
    """The meta-batch's slices, all in this process (the default run: one slice of every task).

    The sums over slices of one slice are that slice's numbers unchanged, so the default path's arithmetic is
    exactly a single process's.
    """

    shares_policy = True

    def __init__(self, slices: list[TaskSlice]) -> None:
        self.slices = slices

    def prepare(self, batch: int, theta: Tensor | None = None) -> list[SliceReport]:
        return [s.prepare(batch, theta) for s in self.slices]

    def gradient(self) -> tuple[float, Tensor]:
        return sum_pairs([s.gradient() for s in self.slices])

    def fisher_product(self, vector: Tensor) -> Tensor:
        return sum_tensors([s.fisher_product(vector) for s in self.slices])

    def losses(self, theta: Tensor) -> tuple[float, float]:
        return sum_pairs([s.losses(theta) for s in self.slices])

    def proximal_objective(self, theta: Tensor) -> tuple[float, Tensor]:
        return sum_pairs([s.proximal_objective(theta) for s in self.slices])

    def close(self) -> None:
        for s in self.slices:
            s.close()


def sum_tensors(parts: list[Tensor]) -> Tensor:
    """Σ of the slices' vectors in slice order (one slice: itself, bit for bit)."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def sum_pairs(parts: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    """Element-wise Σ of the slices' pairs in slice order (floats or tensors)."""
    first = [p[0] for p in parts]
    second = [p[1] for p in parts]
    add = sum_tensors if isinstance(first[0], Tensor) else (lambda xs: sum(xs[1:], xs[0]))
    add2 = sum_tensors if isinstance(second[0], Tensor) else (lambda xs: sum(xs[1:], xs[0]))
    return add(first), add2(second)


def combine_reports(reports: list[SliceReport]) -> dict[str, Any]:
    """The meta-batch's row from its slices' reports: returns and diagnostics before/after adaptation (means
    over every task, weighted as one process weighs them), environment steps, the earliest non-finite check
    that failed and the phase times of the slowest slice."""
    bad = [r.nonfinite for r in reports if r.nonfinite is not None]
    row: dict[str, Any] = {}
    before = combine_sums([r.before for r in reports])
    row["returns_before"] = before.pop("returns")
    diagnostics = {f"{k}_before": v for k, v in before.items()}
    if all(r.after is not None for r in reports):
        after = combine_sums([r.after for r in reports])
        row["returns_after"] = after.pop("returns")
        diagnostics.update({f"{k}_after": v for k, v in after.items()})
    row["nonfinite"] = (
        min(bad, key=lambda name: next(i for i, prefix in enumerate(NONFINITE_ORDER) if name.startswith(prefix)))
        if bad
        else None
    )
    row["env_steps"] = sum(r.env_steps for r in reports)
    row["times"] = {k: max(r.times.get(k, 0.0) for r in reports) for k in reports[0].times}
    row["diagnostics"] = diagnostics
    return row
