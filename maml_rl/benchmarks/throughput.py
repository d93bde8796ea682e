"""Throughput and memory of meta-training, as ratios to raw MuJoCo measured in the same run.

    python -m maml_rl.benchmarks throughput --config configs/halfcheetah-dir.yaml --policy mlp [--batches N] [--json]

(a) raw MuJoCo: ``mujoco.rollout`` stepping the task's model for meta-batch × fast-batch simulations with
random actions, the same frame skip and horizon, one thread per core; (b) our sampler's environment steps
per second (policy forward included); (c) whole meta-batches, with the time of each phase.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from statistics import median
from typing import Any

import mujoco
import numpy as np
from mujoco import rollout

from maml_rl.cli import add_size_flags, add_threads_flag, benchmark_parser
from maml_rl.config import Config, ConfigError, load_config
from maml_rl.exits import BAD_INPUT, OK, error_line
from maml_rl.experiment import Experiment
from maml_rl.process import usable_cores
from maml_rl.threads import check_threads

PHASES = ("time_sample_before", "time_adapt", "time_sample_after", "time_trpo")


def current_rss_mb() -> float:
    """Resident memory of this process now (Linux ``/proc``; the peak where that is unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_mujoco_steps_per_s(
    model: mujoco.MjModel, num_sims: int, frame_skip: int, horizon: int, nthread: int | None = None, seed: int = 0
) -> float:
    """Environment steps per second of ``mujoco.rollout`` with random actions held for ``frame_skip`` substeps."""
    nthread = nthread or os.cpu_count() or 1
    data = [mujoco.MjData(model) for _ in range(nthread)]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    mujoco.mj_resetData(model, data[0])
    mujoco.mj_forward(model, data[0])
    state = np.zeros(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data[0], state, spec)
    state = np.tile(state, (num_sims, 1))
    low, high = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    rng = np.random.default_rng(seed)
    controls = rng.uniform(low, high, size=(horizon, num_sims, 1, model.nu)).repeat(frame_skip, axis=2)
    with rollout.Rollout(nthread=nthread) as runner:
        runner.rollout(model, data, state, controls[0])  # warm-up: thread pool start
        start = time.perf_counter()
        for t in range(horizon):
            states, _ = runner.rollout(model, data, state, controls[t])
            state = states[:, -1]
        seconds = time.perf_counter() - start
    return num_sims * horizon / seconds


def run_benchmark(config: Config, batches: int, progress: bool = False, threads: int | None = None) -> dict[str, Any]:
    """Measures (a), (b) and (c) for ``config``; returns the numbers and their ratios."""
    experiment = Experiment.build(config, threads)
    family = experiment.sampler.family
    if not hasattr(family, "model"):
        raise ConfigError(f"{config.env_name} is not a MuJoCo task: the benchmark compares against raw MuJoCo")
    num_sims = config.meta_batch_size * config.fast_batch_size
    raw = raw_mujoco_steps_per_s(family.model, num_sims, family.frame_skip, config.horizon)
    rows, rss, faults = [], [], []
    try:
        for batch in range(batches):
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            rows.append(experiment.meta_batch(batch))
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
            rss.append(current_rss_mb())
            if progress:
                print(f"meta-batch {batch}: {rows[-1]['seconds']:.2f} s, RSS {rss[-1]:.0f} MB", file=sys.stderr)
    finally:
        experiment.close()
    timed = rows[1:] if len(rows) > 1 else rows  # the first batch pays one-off start-up costs
    sample_seconds = sum(r["time_sample_before"] + r["time_sample_after"] for r in timed)
    env_steps = sum(r["env_steps"] for r in timed)
    meta_batch_seconds = median(r["seconds"] for r in timed)
    env_steps_per_meta_batch = median(r["env_steps"] for r in timed)
    sampler_steps_per_s = env_steps / sample_seconds
    whole = env_steps_per_meta_batch / meta_batch_seconds
    return {
        "config": config.env_name,
        "policy": config.policy.type,
        "device": config.device,
        "cores": usable_cores(),
        "learner_threads": experiment.learner_threads,
        "meta_batches_timed": len(timed),
        "raw_steps_per_s": raw,
        "sampler_steps_per_s": sampler_steps_per_s,
        "sampler_ratio": sampler_steps_per_s / raw,
        "meta_batch_seconds": meta_batch_seconds,
        "env_steps_per_meta_batch": int(env_steps_per_meta_batch),
        "meta_batch_steps_per_s": whole,
        "meta_batch_ratio": whole / raw,
        "breakdown_seconds": {phase.removeprefix("time_"): median(r[phase] for r in timed) for phase in PHASES},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_mb_after_each_batch": [round(x, 1) for x in rss],
        "page_faults_per_meta_batch": int(median(faults[1:] if len(faults) > 1 else faults)),
    }


def format_report(result: dict[str, Any]) -> str:
    b = result["breakdown_seconds"]
    return "\n".join(
        [
            f"{result['config']} / {result['policy']} on {result['cores']} cores ({result['device']})",
            f"  raw MuJoCo rollout       {result['raw_steps_per_s']:>10,.0f} steps/s",
            f"  sampler                  {result['sampler_steps_per_s']:>10,.0f} steps/s   {result['sampler_ratio']:.2f} x raw",
            f"  whole meta-batch         {result['meta_batch_steps_per_s']:>10,.0f} steps/s   {result['meta_batch_ratio']:.2f} x raw"
            f"   ({result['meta_batch_seconds']:.2f} s for {result['env_steps_per_meta_batch']:,} steps)",
            "  breakdown (s)            " + "  ".join(f"{k} {v:.2f}" for k, v in b.items()),
            f"  peak RSS                 {result['peak_rss_mb']:>10,.0f} MB   (after batch 1: "
            f"{result['rss_mb_after_each_batch'][0]:,.0f} MB, after the last: {result['rss_mb_after_each_batch'][-1]:,.0f} MB)",
            f"  page faults              {result['page_faults_per_meta_batch']:>10,} per meta-batch (minor)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("throughput", __doc__, "YAML config of a MuJoCo task")
    parser.add_argument("--batches", type=int, default=3, help="meta-batches to run; the first is not timed when N > 1")
    add_size_flags(parser)
    parser.add_argument("--device", choices=["cpu", "cuda"], help="device of the policy and learner")
    add_threads_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    try:
        threads = check_threads(args.threads)
        if args.batches < 1:
            raise ConfigError(f"--batches must be >= 1, got {args.batches}")
        config = load_config(args.config).replace(
            policy_type=args.policy,
            meta_batch_size=args.meta_batch_size,
            fast_batch_size=args.fast_batch_size,
            horizon=args.horizon,
            device=args.device,
        )
        result = run_benchmark(config, args.batches, progress=not args.json, threads=threads)
    except ConfigError as e:
        print(error_line(e), file=sys.stderr)
        return BAD_INPUT
    print(json.dumps(result) if args.json else format_report(result))
    return OK
