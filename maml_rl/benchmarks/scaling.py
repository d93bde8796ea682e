"""In-process vs Ray shards: meta-batch seconds, the overhead ratio, bytes moved, and a scaling estimate.

    python -m maml_rl.benchmarks scaling --config configs/halfcheetah-dir.yaml --policy mlp --shards 0,1,2 --batches 4

``0`` is the in-process run, ``N`` ≥ 1 a local Ray instance with N shards. Per mode: the median meta-batch
seconds (the first meta-batch, which pays start-up costs, is not timed when there are several), its phases, and
for Ray the bytes between driver and shards per meta-batch, per shard, next to the bound
2 × (CG iterations + line-search steps + 4) × θ bytes. Timings need an otherwise idle machine; the bytes do not.

The estimate for N nodes of this machine's size (not a measurement): every phase but the driver's CG
arithmetic runs on the shards in parallel, so with M tasks per meta-batch and c driver ↔ shard calls per
meta-batch (prepare, gradient, one per CG iteration, one per line-search step),

    T(N) ≈ T_in · ⌈M/N⌉ / M + c · ℓ,    ℓ = (T_ray,1 − T_in) / c

with T_in the in-process meta-batch and ℓ the per-call cost measured with one shard (serialisation, Ray's
scheduling, the driver's gather), taken as independent of N: on real nodes the network adds to it.
"""

from __future__ import annotations

import json
import math
import sys
from contextlib import nullcontext
from statistics import median
from typing import Any

from maml_rl.cli import add_threads_flag, benchmark_parser
from maml_rl.config import Config, ConfigError, load_config
from maml_rl.exits import BAD_INPUT, OK, error_line
from maml_rl.experiment import Experiment
from maml_rl.optim import flatten
from maml_rl.process import usable_cores
from maml_rl.scale.ray_session import ray_session
from maml_rl.scale.ray_shards import RayShards
from maml_rl.threads import check_threads

PHASES = ("time_sample_before", "time_adapt", "time_sample_after", "time_trpo")


def measure(
    config: Config, shards: int, batches: int, threads: int | None = None, address: str | None = None
) -> dict[str, Any]:
    """Runs ``batches`` meta-batches in-process (``shards == 0``) or on ``shards`` Ray shards (a local Ray
    instance, or the cluster at ``address``)."""
    experiment = Experiment.build(config, threads)
    with ray_session(address, None if address else usable_cores()) if shards else nullcontext():
        if shards:
            experiment.shards = RayShards(config, experiment.policy.state_dict(), shards)
        try:
            rows = [experiment.meta_batch(batch) for batch in range(batches)]
        finally:
            if shards:
                calls = dict(experiment.shards.traffic.calls)
            experiment.close()
    timed = rows[1:] if len(rows) > 1 else rows
    theta_bytes = flatten(experiment.policy.meta_params()).numel() * 4
    out: dict[str, Any] = {
        "shards": shards,
        "meta_batch_seconds": median(r["seconds"] for r in timed),
        "phases": {p.removeprefix("time_"): median(r[p] for r in timed) for p in PHASES},
        "theta_bytes": theta_bytes,
        "ls_steps": [r["ls_steps"] for r in rows],
    }
    if shards:
        moved = [(r["shard_bytes_sent"] + r["shard_bytes_received"]) / shards for r in rows]
        calls_per_batch = (calls.get("fisher_product", 0) + calls.get("losses", 0)) / batches
        out.update(
            {
                "bytes_per_shard_per_meta_batch": moved,
                "cg_plus_ls_calls_per_meta_batch": calls_per_batch,
                "bound_bytes": 2 * (calls_per_batch + 4) * theta_bytes,
                "calls_per_meta_batch": calls_per_batch + 2,
            }
        )
    return out


def estimate(in_process: dict[str, Any], one_shard: dict[str, Any], tasks: int, nodes: int) -> float:
    """T(N) of the module docstring, in seconds per meta-batch."""
    calls = one_shard["calls_per_meta_batch"]
    per_call = max(0.0, (one_shard["meta_batch_seconds"] - in_process["meta_batch_seconds"]) / calls)
    return in_process["meta_batch_seconds"] * math.ceil(tasks / nodes) / tasks + calls * per_call


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("scaling", __doc__, "YAML experiment config")
    parser.add_argument("--shards", default="0,1,2", help="comma-separated: 0 in-process, N Ray shards (default 0,1,2)")
    parser.add_argument(
        "--batches", type=int, default=4, help="meta-batches per mode; the first is not timed (default 4)"
    )
    add_threads_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    try:
        threads = check_threads(args.threads)
        try:
            modes = [int(s) for s in args.shards.split(",")]
        except ValueError:
            raise ConfigError(f"--shards {args.shards!r}: give comma-separated integers, e.g. 0,1,2") from None
        config = load_config(args.config).replace(policy_type=args.policy)
    except ConfigError as e:
        print(error_line(e), file=sys.stderr)
        return BAD_INPUT
    results = [measure(config, n, args.batches, threads) for n in modes]
    by = {r["shards"]: r for r in results}
    summary: dict[str, Any] = {
        "config": config.env_name,
        "policy": config.policy.type,
        "cores": usable_cores(),
        "results": results,
    }
    if 0 in by:
        for n in modes:
            if n:
                by[n]["overhead_ratio"] = by[n]["meta_batch_seconds"] / by[0]["meta_batch_seconds"] - 1
        if 1 in by:
            summary["estimate_seconds"] = {
                f"{nodes} nodes": estimate(by[0], by[1], config.meta_batch_size, nodes) for nodes in (1, 2, 4, 16)
            }
    if args.json:
        print(json.dumps(summary))
        return OK
    print(f"{config.env_name} / {config.policy.type} on {usable_cores()} cores")
    for r in results:
        line = (
            f"  {'in-process' if not r['shards'] else str(r['shards']) + ' shard(s)':<12} "
            f"{r['meta_batch_seconds']:.2f} s/meta-batch"
        )
        if "overhead_ratio" in r:
            line += f"  overhead {100 * r['overhead_ratio']:+.1f} %"
        if r["shards"]:
            line += (
                f"  bytes/shard/meta-batch {median(r['bytes_per_shard_per_meta_batch']):,.0f}"
                f" (bound {r['bound_bytes']:,.0f}; θ {r['theta_bytes']:,} B)"
            )
        print(line)
    for name, seconds in summary.get("estimate_seconds", {}).items():
        print(f"  estimate {name:<9} {seconds:.2f} s/meta-batch")
    return OK
