"""Scale-out on Ray: a meta-batch's tasks split into contiguous slices, one Ray actor (a shard) per slice.

Each shard holds a :class:`~maml_rl.metabatch.TaskSlice`, the same object the in-process run uses for all its
tasks: its own batched sampler, episodes, advantages and inner-loop adaptation. The driver keeps θ and runs
conjugate gradient and the line search (:func:`maml_rl.trpo.trpo_step`); every call sends one θ-sized vector
(one ``ray.put``, fetched by each shard) and sums what the shards send back. Episodes never leave their shard.
The driver connects with :func:`maml_rl.scale.ray_session.ray_session`.

A shard that dies (its actor killed, its node gone) is started again on the same slice, and the calls of the
current meta-batch that built its state (sampling and adaptation, the gradient) are replayed from the same
random streams before the call that failed, so the meta-batch completes with the numbers it would have had. A
cluster that cannot be reached or is lost raises :class:`ClusterError`.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from maml_rl.config import Config
from maml_rl.exits import first_line
from maml_rl.experiment import Experiment
from maml_rl.metabatch import SliceReport, TaskSlice, sum_pairs, sum_tensors
from maml_rl.process import reuse_freed_memory
from maml_rl.scale.ray_session import ClusterError

READY_TIMEOUT_S = 300.0
"""How long a (re)started shard may take to build its environments before the cluster counts as lost."""
RESTARTS_PER_CALL = 3
"""Restarts of one shard within one call before giving up."""


def task_slices(num_tasks: int, shards: int) -> list[range]:
    """``shards`` contiguous slices of ``range(num_tasks)``, the larger ones first (sizes differ by at most 1)."""
    base, extra = divmod(num_tasks, shards)
    bounds = [0]
    for i in range(shards):
        bounds.append(bounds[-1] + base + (1 if i < extra else 0))
    return [range(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


def payload_bytes(value: Any) -> int:
    """Bytes of a value sent to or from a shard: a tensor's data, else its pickled size."""
    if isinstance(value, Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, tuple):
        return sum(payload_bytes(v) for v in value)
    return len(pickle.dumps(value, protocol=5))


class ShardActor:
    """The Ray actor of one slice (wrapped with ``ray.remote`` at start-up, so importing needs no Ray)."""

    def __init__(self, config: Config, policy_state: dict[str, Tensor], tasks: range, threads: int) -> None:
        reuse_freed_memory()  # OMP_WAIT_POLICY comes with the worker's environment (see ray_session.connect)
        torch.set_num_threads(threads)
        experiment = Experiment.build(config)
        experiment.policy.load_state_dict(policy_state)  # frozen recurrent weights come with it
        cap = min(experiment.learner_threads, threads)
        self.slice = TaskSlice(experiment.sampler, experiment.policy, experiment.learner, config, tasks, cap)

    def ready(self) -> int:
        return os.getpid()

    def prepare(self, batch: int, theta: Tensor) -> SliceReport:
        return self.slice.prepare(batch, theta)

    def gradient(self) -> tuple[float, Tensor]:
        return self.slice.gradient()

    def fisher_product(self, vector: Tensor) -> Tensor:
        return self.slice.fisher_product(vector)

    def losses(self, theta: Tensor) -> tuple[float, float]:
        return self.slice.losses(theta)

    def proximal_objective(self, theta: Tensor) -> tuple[float, Tensor]:
        return self.slice.proximal_objective(theta)


@dataclass
class Traffic:
    """Bytes between the driver and the shards, counted per shard (a vector put once is fetched by each)."""

    sent: int = 0
    received: int = 0
    calls: dict[str, int] = field(default_factory=dict)


class RayShards:
    """The meta-batch's tasks on ``shards`` Ray actors (default: one per alive node), each a contiguous slice.

    A :class:`~maml_rl.metabatch.Slices`, like :class:`~maml_rl.metabatch.LocalSlices`; sums over shards are
    taken in shard order.
    """

    shares_policy = False

    def __init__(self, config: Config, policy_state: dict[str, Tensor], shards: int | None = None) -> None:
        import ray

        self.config = config
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
        if not nodes:
            raise ClusterError("the Ray cluster has no alive node with a CPU")
        count = shards or len(nodes)
        if not 1 <= count <= config.meta_batch_size:
            raise ClusterError(
                f"--shards must be between 1 and meta-batch-size ({config.meta_batch_size}), got {count}"
            )
        self.slices = task_slices(config.meta_batch_size, count)
        self.placement = [nodes[i % len(nodes)] for i in range(count)]
        per_node = {n["NodeID"]: sum(p["NodeID"] == n["NodeID"] for p in self.placement) for n in nodes}
        self.cpus = [max(1, int(p["Resources"]["CPU"]) // per_node[p["NodeID"]]) for p in self.placement]
        self.state_ref = ray.put({k: v.detach().cpu() for k, v in policy_state.items()})
        self.remote_class = ray.remote(max_restarts=0)(ShardActor)
        self.actors: list[Any] = [None] * count
        self.setup: list[tuple[str, tuple]] = []  # this meta-batch's calls that build the shards' state
        self.traffic = Traffic()
        self.restarts = 0
        for i in range(count):
            self._start(i)
        self._wait_ready(range(count))

    @property
    def num_shards(self) -> int:
        return len(self.actors)

    def _start(self, i: int) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        strategy = NodeAffinitySchedulingStrategy(self.placement[i]["NodeID"], soft=True)
        self.actors[i] = self.remote_class.options(num_cpus=self.cpus[i], scheduling_strategy=strategy).remote(
            self.config, self.state_ref, self.slices[i], self.cpus[i]
        )

    def _wait_ready(self, which: range | list[int]) -> None:
        import ray

        try:
            ray.get([self.actors[i].ready.remote() for i in which], timeout=READY_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise ClusterError(
                f"the Ray shards did not start within {READY_TIMEOUT_S:.0f} s (not enough free CPUs in the cluster?)"
            ) from None
        except ray.exceptions.RayError as e:
            raise ClusterError(f"a Ray shard failed to start: {first_line(e)}") from None

    def _restart(self, i: int) -> None:
        import ray

        try:
            ray.kill(self.actors[i], no_restart=True)
        except Exception:  # noqa: BLE001 - it is gone already
            pass
        self.restarts += 1
        self._start(i)
        self._wait_ready([i])
        for method, args in self.setup:  # rebuild this meta-batch's state: same seeds, same numbers
            ray.get(getattr(self.actors[i], method).remote(*args))

    def _call(self, method: str, *args: Any, payload: Any = None) -> list[Any]:
        """Calls ``method`` on every shard (``payload``: the values behind ``args``, for the byte count) and
        returns the results in shard order, restarting shards that died."""
        import ray

        refs = [getattr(actor, method).remote(*args) for actor in self.actors]
        results = []
        for i, ref in enumerate(refs):
            for attempt in range(RESTARTS_PER_CALL + 1):
                try:
                    results.append(ray.get(ref))
                    break
                except (
                    ray.exceptions.RayActorError,
                    ray.exceptions.ActorUnavailableError,
                    ray.exceptions.NodeDiedError,
                    ray.exceptions.WorkerCrashedError,
                    ray.exceptions.ObjectLostError,
                ):
                    if attempt == RESTARTS_PER_CALL:
                        raise ClusterError(
                            f"shard {i} (tasks {self.slices[i].start}-{self.slices[i].stop - 1}) "
                            f"died {attempt + 1} times in one call"
                        ) from None
                    self._restart(i)
                    ref = getattr(self.actors[i], method).remote(*args)
                except ray.exceptions.RayTaskError:
                    raise  # an error in our own code on the shard: not the cluster's fault
                except (ray.exceptions.RayError, ConnectionError) as e:
                    raise ClusterError(f"lost the Ray cluster: {first_line(e)}") from None
        self.traffic.calls[method] = self.traffic.calls.get(method, 0) + 1
        if payload is not None:
            self.traffic.sent += payload_bytes(payload) * self.num_shards
        self.traffic.received += sum(payload_bytes(r) for r in results)
        return results

    def prepare(self, batch: int, theta: Tensor) -> list[SliceReport]:
        import ray

        theta_ref = ray.put(theta)
        self.setup = []  # a shard restarted during this call only needs the call itself
        self.traffic.sent += 8 * self.num_shards  # the batch index
        reports = self._call("prepare", batch, theta_ref, payload=theta)
        self.setup = [("prepare", (batch, theta_ref))]
        return reports

    def gradient(self) -> tuple[float, Tensor]:
        results = self._call("gradient")
        self.setup.append(("gradient", ()))
        return sum_pairs(results)

    def fisher_product(self, vector: Tensor) -> Tensor:
        import ray

        return sum_tensors(self._call("fisher_product", ray.put(vector), payload=vector))

    def losses(self, theta: Tensor) -> tuple[float, float]:
        import ray

        return sum_pairs(self._call("losses", ray.put(theta), payload=theta))

    def proximal_objective(self, theta: Tensor) -> tuple[float, Tensor]:
        import ray

        return sum_pairs(self._call("proximal_objective", ray.put(theta), payload=theta))

    def close(self) -> None:
        import ray

        for actor in self.actors:
            if actor is not None:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - the cluster may be gone
                    pass
