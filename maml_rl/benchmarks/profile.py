"""Where the outer step's time goes: its parts timed, and the torch operations that take the most time.

    python -m maml_rl.benchmarks profile --config configs/halfcheetah-dir.yaml --policy rnn [--rows 15] [--json]

One meta-batch is sampled and adapted (untimed); then (a) the parts of a TRPO step on it, each timed on its
own: the surrogate's gradient (with the set-up of the Fisher-vector product), one Fisher-vector product (the
mean of ``--products``) and the surrogate and KL at one candidate; (b) one whole TRPO step under
``torch.profiler``, whose operations are listed by the time spent in them (self CPU time; the profiler's own
overhead inflates the total). With several learner threads each part's operations run on its own thread and
their times add up across threads. (c) The matrix products' share of that step and the rate they run at, beside
the rate of one large product (1024 × 1024) on one thread of this machine: how far the step's arithmetic is
from what the core can do.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from maml_rl.cli import add_size_flags, add_threads_flag, benchmark_parser
from maml_rl.config import ConfigError, load_config
from maml_rl.exits import BAD_INPUT, OK, error_line
from maml_rl.experiment import Experiment
from maml_rl.optim import flatten
from maml_rl.threads import check_threads, torch_threads
from maml_rl.trpo import trpo_step

MATRIX_PRODUCTS = frozenset({"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addbmm"})
"""The operations counted as matrix products (the profiler also counts FLOPs of element-wise ``mul`` and ``add``)."""

LARGE_PRODUCT = 1024
"""The side of the square float32 product whose one-thread rate :func:`large_product_rate` measures."""


def large_product_rate(repeats: int = 10) -> float:
    """GFLOP/s of a ``LARGE_PRODUCT``² float32 matrix product on one torch thread (the best of ``repeats``)."""
    a, b = torch.randn(LARGE_PRODUCT, LARGE_PRODUCT), torch.randn(LARGE_PRODUCT, LARGE_PRODUCT)
    best = float("inf")
    with torch_threads(1):
        a @ b
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
    return 2 * LARGE_PRODUCT**3 / best / 1e9


def profile_outer_step(experiment: Experiment, products: int = 3, rows: int = 15) -> dict[str, Any]:
    """The parts' seconds and the top ``rows`` torch operations of one TRPO step on the first meta-batch."""
    if products < 1 or rows < 1:
        raise ConfigError(f"--products and --rows must be >= 1, got {products} and {rows}")
    config, slices = experiment.config, experiment.local_slices()
    theta = flatten(experiment.policy.meta_params()).detach()
    if any(r.nonfinite for r in slices.prepare(0)):
        raise ConfigError("the meta-batch held non-finite numbers: nothing to profile")
    start = time.perf_counter()
    _, grads = slices.gradient()
    gradient = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(products):
        slices.fisher_product(grads)
    product = (time.perf_counter() - start) / products
    start = time.perf_counter()
    slices.losses(theta - 1e-3 * grads / grads.norm().clamp_min(1e-12))
    losses = time.perf_counter() - start
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        start = time.perf_counter()
        metrics, _ = trpo_step(slices, theta, config)
        step = time.perf_counter() - start
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    products = [e for e in events if e.key in MATRIX_PRODUCTS]
    product_seconds = sum(e.self_cpu_time_total for e in products) / 1e6
    product_gflop = sum(e.flops for e in products) / 1e9
    return {
        "config": config.env_name,
        "policy": config.policy.type,
        "learner_threads": experiment.learner_threads,
        "seconds": {
            "gradient": gradient,
            "fisher_product": product,
            "losses_at_a_candidate": losses,
            "trpo_step_profiled": step,
        },
        "cg_iters": config.cg_iters,
        "line_search_steps": metrics.get("ls_steps", 0),
        "matrix_products": {
            "self_fraction": product_seconds * 1e6 / total,
            "gflop": product_gflop,
            "gflop_per_second": product_gflop / product_seconds if product_seconds else 0.0,
            "large_product_gflop_per_second": large_product_rate(),
        },
        "operations": [
            {
                "name": e.key,
                "calls": e.count,
                "self_seconds": e.self_cpu_time_total / 1e6,
                "self_fraction": e.self_cpu_time_total / total,
            }
            for e in events[:rows]
        ],
    }


def format_report(result: dict[str, Any]) -> str:
    s = result["seconds"]
    lines = [
        f"{result['config']} / {result['policy']}, {result['learner_threads']} learner thread(s)",
        f"  gradient (and the Fisher product's set-up)  {s['gradient']:.3f} s",
        f"  one Fisher-vector product                   {s['fisher_product']:.3f} s   (x {result['cg_iters']} CG "
        "iterations)",
        f"  surrogate and KL at one candidate           {s['losses_at_a_candidate']:.3f} s   "
        f"(x {result['line_search_steps']} line-search steps here)",
        f"  one TRPO step under the profiler            {s['trpo_step_profiled']:.3f} s",
    ]
    m = result["matrix_products"]
    lines.append(
        f"  matrix products: {100 * m['self_fraction']:.1f} % of the profiled step, {m['gflop']:.1f} GFLOP at "
        f"{m['gflop_per_second']:.1f} GFLOP/s per thread (a {LARGE_PRODUCT} x {LARGE_PRODUCT} product on one "
        f"thread: {m['large_product_gflop_per_second']:.1f})"
    )
    lines.append("  operation                              calls   self s   share")
    for op in result["operations"]:
        lines.append(
            f"  {op['name'][:36]:<36} {op['calls']:>7} {op['self_seconds']:>8.3f} {100 * op['self_fraction']:>6.1f} %"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("profile", __doc__, "YAML config of the run to profile")
    add_size_flags(parser)
    parser.add_argument("--products", type=int, default=3, help="Fisher-vector products to time (default 3)")
    parser.add_argument("--rows", type=int, default=15, help="operations to list (default 15)")
    add_threads_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    try:
        threads = check_threads(args.threads)
        config = load_config(args.config).replace(
            policy_type=args.policy,
            meta_batch_size=args.meta_batch_size,
            fast_batch_size=args.fast_batch_size,
            horizon=args.horizon,
        )
        if config.outer_step != "trpo":
            raise ConfigError(f"the profile covers the TRPO outer step; this config's is {config.outer_step!r}")
        experiment = Experiment.build(config, threads)
        try:
            result = profile_outer_step(experiment, args.products, args.rows)
        finally:
            experiment.close()
    except ConfigError as e:
        print(error_line(e), file=sys.stderr)
        return BAD_INPUT
    print(json.dumps(result) if args.json else format_report(result))
    return OK
