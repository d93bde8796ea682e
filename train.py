#!/usr/bin/env python
"""Meta-train a policy with MAML-TRPO.

    python train.py --config configs/halfcheetah-dir.yaml --policy rnn
    python train.py --output-folder runs/halfcheetah-dir-rnn-seed1 --resume
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maml_rl.cli import add_threads_flag, check_threads
from maml_rl.config import Config, ConfigError, config_help, load_config, with_overrides
from maml_rl.runlog import CONFIG
from maml_rl.trainer import RunFolderError, TrainingDiverged, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Meta-train a Gaussian MLP or frozen-recurrence RNN policy with MAML-TRPO.",
        epilog="Config keys (YAML, under the defaults shown):\n" + config_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="YAML experiment config (required unless --resume)")
    parser.add_argument("--policy", choices=["mlp", "rnn"], help="override the config's policy type")
    parser.add_argument("--output-folder", type=Path,
                        help="run folder (default: runs/<config name>-<policy>-seed<seed>)")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="device of the policy and learner (physics stays on the CPU)")
    parser.add_argument("--num-batches", type=int, help="override the number of meta-batches")
    parser.add_argument("--meta-batch-size", type=int, help="override the number of tasks per meta-batch")
    parser.add_argument("--fast-batch-size", type=int, help="override the number of episodes per task")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="override any config key, nested keys with dots (e.g. --set policy.leak=0.3 --set "
                             "fast-lr=0); repeatable; applied after the other overrides")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --output-folder from its last complete meta-batch "
                             "(only --num-batches and --device may change)")
    add_threads_flag(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> tuple[Config, Path]:
    overrides = {"policy_type": args.policy, "seed": args.seed, "meta_batch_size": args.meta_batch_size,
                 "fast_batch_size": args.fast_batch_size}
    if args.resume:
        if args.output_folder is None:
            raise ConfigError("--resume needs --output-folder (the run to continue)")
        changed = [f"--{k.replace('_', '-').replace('policy-type', 'policy')}" for k, v in overrides.items() if v is not None]
        changed += ["--set"] if args.assignments else []
        if changed:
            raise ConfigError(f"--resume keeps the run's own config; {', '.join(changed)} cannot change mid-run")
        config = load_config(args.output_folder / CONFIG)
        return config.replace(num_batches=args.num_batches, device=args.device), args.output_folder
    if args.config is None:
        raise ConfigError("--config is required (e.g. --config configs/halfcheetah-dir.yaml)")
    config = load_config(args.config).replace(**overrides, num_batches=args.num_batches, device=args.device)
    config = with_overrides(config, args.assignments)
    folder = args.output_folder or Path("runs") / f"{args.config.stem}-{config.policy.type}-seed{config.seed}"
    return config, folder


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.output_folder
    try:
        threads = check_threads(args.threads)
        config, folder = resolve_config(args)
        if config.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu")
        print(f"run folder: {folder}", file=sys.stderr)
        train(config, folder, resume=args.resume, progress=not args.no_progress, threads=threads)
    except (ConfigError, RunFolderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        if folder is None:
            return 130
        print(f"\ninterrupted: {folder} holds every meta-batch completed so far; continue with\n"
              f"  python train.py --output-folder {folder} --resume", file=sys.stderr)
        return 130
    print(f"done: {folder} (test it with: python test.py --run {folder})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
