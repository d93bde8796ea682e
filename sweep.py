#!/usr/bin/env python
"""Train every (policy, seed) of a config as Ray Tune trials; run it again to resume.

python sweep.py --config configs/halfcheetah-dir.yaml --policies mlp,rnn --seeds 1,2,3 --output-folder sweeps/hc
python sweep.py ... --evaluate          # afterwards: test.py on each finished run, compare.py on the lot
"""

from __future__ import annotations

from maml_rl.process import prepare_process

prepare_process()  # before torch is imported (see maml_rl.process)

import argparse
import shlex
import sys
from pathlib import Path

from maml_rl.cli import ArgumentParser, add_set_flag
from maml_rl.config import ConfigError
from maml_rl.exits import BAD_INPUT, FAILED, INTERRUPTED, OK, error_line
from maml_rl.scale.ray_session import ClusterError
from maml_rl.scale.sweep import check_policies, check_seeds, evaluate_runs, plan, run_sweep
from maml_rl.training.log import MetricsError
from maml_rl.training.resources import FolderError, check_output_folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog="sweep.py", description="Resumable multi-seed sweeps of train.py runs on Ray Tune.")
    parser.add_argument("--config", type=Path, required=True, help="YAML experiment config")
    parser.add_argument("--policies", default="mlp", help="comma-separated policies (default: mlp)")
    parser.add_argument("--seeds", default="1", help="comma-separated seeds (default: 1)")
    add_set_flag(parser, "; in every run of the sweep")
    parser.add_argument(
        "--output-folder",
        type=Path,
        required=True,
        help="the sweep's folder: one run folder per (policy, seed), named as train.py names them",
    )
    parser.add_argument(
        "--address", help="Ray cluster to run on (auto, ray://HOST:PORT, HOST:PORT; default: a local Ray instance)"
    )
    parser.add_argument(
        "--threads-per-run",
        type=int,
        default=1,
        metavar="K",
        help="CPUs (and learner threads) per run; runs at once = the cluster's CPUs / K (default 1)",
    )
    parser.add_argument(
        "--records",
        type=Path,
        metavar="DIR",
        help="skip a run whose run record (compare.py --save-records DIR) is in DIR/<output folder's name>/<run "
        "name>, made with the same settings: the seeds an experiment has kept need no second run",
    )
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="then run test.py on each finished run and compare.py on all of them (into OUTPUT/comparison)",
    )
    parser.add_argument(
        "--test-args",
        default="",
        metavar="ARGS",
        help='with --evaluate: more test.py flags, in one string (e.g. "--adapt-steps 3 --num-batches 5")',
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.threads_per_run < 1:
            raise ConfigError(f"--threads-per-run must be at least 1, got {args.threads_per_run}")
        runs = plan(
            args.config,
            check_policies(args.policies),
            check_seeds(args.seeds),
            args.assignments,
            args.output_folder,
            args.threads_per_run,
        )
        check_output_folder(args.output_folder)
        failed = run_sweep(runs, args.output_folder, args.threads_per_run, args.address, args.records)
    except (ConfigError, FolderError, MetricsError, ClusterError) as e:
        print(error_line(e), file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to continue the sweep", file=sys.stderr)
        return INTERRUPTED
    if failed:
        print(
            error_line(
                f"{len(failed)} run(s) failed: {', '.join(failed)}; see their trial logs under "
                f"{args.output_folder}/_tune, then run the same command again"
            ),
            file=sys.stderr,
        )
        return FAILED
    print(
        f"done: {len(runs)} runs in {args.output_folder} (learning curves: tensorboard --logdir {args.output_folder})",
        file=sys.stderr,
    )
    if args.evaluate:
        return evaluate_runs(runs, args.output_folder, args.threads_per_run, shlex.split(args.test_args))
    return OK


if __name__ == "__main__":
    sys.exit(main())
