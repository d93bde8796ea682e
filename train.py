#!/usr/bin/env python
"""Meta-train a policy with MAML-TRPO.

python train.py --config configs/halfcheetah-dir.yaml --policy rnn
python train.py --config configs/halfcheetah-dir.yaml --policy rnn --resume   # continue that run
"""

from __future__ import annotations

from maml_rl.process import prepare_process

prepare_process()  # before torch is imported (see maml_rl.process)

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from maml_rl.cli import ArgumentParser, add_policy_flag, add_set_flag, add_threads_flag
from maml_rl.config import Config, ConfigError, config_help, load_config, with_overrides
from maml_rl.exits import BAD_INPUT, DIVERGED, OK, TERMINATED, WRITE_FAILED, error_line
from maml_rl.process import usable_cores
from maml_rl.scale.ray_session import ClusterError, ray_session
from maml_rl.scale.ray_shards import RayShards
from maml_rl.scale.supervise import as_child, is_child, run_watched
from maml_rl.threads import check_threads
from maml_rl.training.folder import (
    RunFolderError,
    check_not_busy,
    config_differences,
    default_run_folder,
    resume_command,
)
from maml_rl.training.log import CHECKPOINT, CONFIG, MetricsError, RunWriteError
from maml_rl.training.preflight import check_config
from maml_rl.training.resources import FolderError, check_output_folder
from maml_rl.training.signals import exit_status, stop_signals_as_exceptions
from maml_rl.training.trainer import TrainingDiverged, resume_start, train

LOCAL_RAY = "local"
"""--ray without an address: start a Ray instance on this machine."""


@dataclass(frozen=True)
class RaySettings:
    """``--ray [ADDRESS] --shards N``: where the shards run (``None``: a local Ray instance started for the run)
    and how many (``None``: one per node)."""

    address: str | None = None
    shards: int | None = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="train.py",
        description="Meta-train a Gaussian MLP or frozen-recurrence RNN policy with MAML-TRPO.",
        epilog="Config keys (YAML, under the defaults shown):\n" + config_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, help="YAML experiment config (required unless --resume with --output-folder)"
    )
    add_policy_flag(parser, "override the config's policy type (policy.type; another cell: --set policy.cell=lstm)")
    parser.add_argument(
        "--output-folder", type=Path, help="run folder (default: runs/<config name>-<policy>-seed<seed>)"
    )
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], help="device of the policy and learner (physics stays on the CPU)"
    )
    parser.add_argument("--num-batches", type=int, help="override the number of meta-batches")
    parser.add_argument("--meta-batch-size", type=int, help="override the number of tasks per meta-batch")
    parser.add_argument("--fast-batch-size", type=int, help="override the number of episodes per task")
    add_set_flag(parser, "; applied after the other overrides")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run (in --output-folder, else in the default folder of --config, --policy "
        "and --seed) from its last complete meta-batch; the other flags and the config may be "
        "repeated but not changed, except --num-batches and --device",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_RAY,
        metavar="ADDRESS",
        help="sample and adapt the tasks on Ray shards: without ADDRESS on a local Ray instance started "
        "for the run, else on the cluster at ADDRESS (auto, ray://HOST:PORT, HOST:PORT)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        metavar="N",
        help="with --ray: Ray actors, each owning a contiguous slice of the meta-batch's tasks "
        "(default: one per node of the cluster)",
    )
    add_threads_flag(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def lost_cluster_line(status: int, folder: Path, config: Path | None, script: str) -> str:
    """The one line for a driver that Ray ended (the cluster or the connection to it was lost)."""
    saved = (
        f"{folder} holds every meta-batch completed so far; continue with: {resume_command(folder, config, script)}"
        if (folder / CHECKPOINT).exists()
        else "no meta-batch was completed"
    )
    return error_line(f"the Ray cluster or the connection to it was lost (the run ended with status {status}); {saved}")


def ray_settings(args: argparse.Namespace) -> RaySettings | None:
    """``--ray``/``--shards`` checked; ``None`` for the in-process run."""
    if args.ray is None:
        if args.shards is not None:
            raise ConfigError("--shards needs --ray (e.g. --ray --shards 2)")
        return None
    if args.shards is not None and args.shards < 1:
        raise ConfigError(f"--shards must be at least 1, got {args.shards}")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError('--ray needs Ray: pip install -e ".[ray]"') from None
    return RaySettings(None if args.ray == LOCAL_RAY else args.ray, args.shards)


def resolve_config(args: argparse.Namespace) -> tuple[Config, Path, str]:
    """The run's config, its folder and where the config came from (for messages)."""
    overrides = {
        "policy_type": args.policy,
        "seed": args.seed,
        "meta_batch_size": args.meta_batch_size,
        "fast_batch_size": args.fast_batch_size,
    }
    asked = (
        None if args.config is None else with_overrides(load_config(args.config).replace(**overrides), args.assignments)
    )
    if not args.resume:
        if asked is None:
            raise ConfigError("--config is required (e.g. --config configs/halfcheetah-dir.yaml)")
        config = asked.replace(num_batches=args.num_batches, device=args.device)
        return config, args.output_folder or default_run_folder(args.config, config), str(args.config)
    if args.output_folder is None and asked is None:
        raise ConfigError(
            "--resume needs the run: its --config (with the --policy and --seed it was started with) "
            "or --output-folder RUN"
        )
    folder = args.output_folder or default_run_folder(args.config, asked)
    if not (folder / CONFIG).is_file():
        raise RunFolderError(
            f"{folder}: no run to resume (no {CONFIG} there); start it without --resume"
            + ("" if args.output_folder else ", or pass the run's --output-folder")
        )
    run = load_config(folder / CONFIG)
    differences = config_differences(
        run, asked if asked is not None else with_overrides(run.replace(**overrides), args.assignments)
    )
    if differences:
        raise ConfigError(
            f"--resume: {folder} was started with other values ({'; '.join(differences)}); resume "
            "with the run's values, or start a new run with another --output-folder"
        )
    return run.replace(num_batches=args.num_batches, device=args.device), folder, str(folder / CONFIG)


def env_kwargs_assignment(assignments: list[str]) -> str | None:
    """``--set env-kwargs...=...`` as given, the last one (it names where a rejected env-kwargs came from)."""
    found = [a for a in assignments if a.partition("=")[0].strip().replace("_", "-").split(".")[0] == "env-kwargs"]
    return f"--set {found[-1]}" if found else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    script = sys.argv[0] if Path(sys.argv[0]).name == "train.py" else "train.py"
    folder: Path | None = None
    with stop_signals_as_exceptions():  # SIGTERM (schedulers, Ray) stops the run as Ctrl-C does
        try:
            threads = check_threads(args.threads)
            ray = ray_settings(args)
            config, folder, source = resolve_config(args)
            if not args.resume and (folder / CHECKPOINT).exists():
                raise RunFolderError(
                    f"{folder} already holds a run; continue it with: "
                    f"{resume_command(folder, args.config, script)} (or choose another --output-folder)"
                )
            if config.device == "cuda":
                import torch

                if not torch.cuda.is_available():
                    raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu")
            check_not_busy(folder)
            if args.resume:
                _, start = resume_start(folder, config)
                if start == config.num_batches:
                    print(
                        f"nothing to do: {folder} already has all {start} of its meta-batches; nothing was changed "
                        f"(to train on, resume with --num-batches above {start})",
                        file=sys.stderr,
                    )
                    return OK
            check_config(config, source, env_kwargs_assignment(args.assignments))
            check_output_folder(folder)
            if ray is not None and not is_child():
                return run_watched(
                    [sys.executable, str(Path(__file__).resolve()), *(sys.argv[1:] if argv is None else argv)],
                    lambda status: lost_cluster_line(status, folder, args.config, script),
                )
            print(f"run folder: {folder}", file=sys.stderr)
            if ray is None:
                train(config, folder, resume=args.resume, progress=not args.no_progress, threads=threads)
            else:
                with ray_session(ray.address, usable_cores()):
                    train(
                        config,
                        folder,
                        resume=args.resume,
                        progress=not args.no_progress,
                        threads=threads,
                        shards=lambda experiment: RayShards(config, experiment.policy.state_dict(), ray.shards),
                    )
        except (ConfigError, FolderError, RunFolderError, MetricsError) as e:
            print(error_line(e), file=sys.stderr)
            return BAD_INPUT
        except ClusterError as e:
            saved = (
                f"{folder} holds every meta-batch completed so far; continue with: "
                f"{resume_command(folder, args.config, script)}"
                if (folder / CHECKPOINT).exists()
                else "no meta-batch was completed"
            )
            print(error_line(f"{e}; {saved}"), file=sys.stderr)
            return BAD_INPUT
        except TrainingDiverged as e:
            print(error_line(e), file=sys.stderr)
            return DIVERGED
        except RunWriteError as e:
            print(
                error_line(f"{e}; free some space, then continue with: {resume_command(folder, args.config, script)}"),
                file=sys.stderr,
            )
            return WRITE_FAILED
        except KeyboardInterrupt as interrupt:
            what = "terminated (SIGTERM)" if exit_status(interrupt) == TERMINATED else "interrupted"
            if folder is not None and (folder / CHECKPOINT).exists():
                print(
                    f"\n{what}: {folder} holds every meta-batch completed so far; continue with\n"
                    f"  {resume_command(folder, args.config, script)}",
                    file=sys.stderr,
                )
            else:
                print(f"\n{what}: stopped before the first meta-batch was complete; nothing to resume", file=sys.stderr)
            return exit_status(interrupt)
    print(f"done: {folder} (test it with: python test.py --run {folder})", file=sys.stderr)
    return OK


if __name__ == "__main__":
    sys.exit(as_child(main) if is_child() else main())
