#!/usr/bin/env python
"""Evaluate a meta-trained policy on fresh tasks: returns before and after adaptation.

python test.py                                    # the most recently modified run under runs/
python test.py --run runs/halfcheetah-dir-rnn-seed1
"""

from __future__ import annotations

from maml_rl.process import prepare_process

prepare_process()  # before torch is imported (see maml_rl.process)

import argparse
import sys
from pathlib import Path

from maml_rl.analysis.evaluation import RESULTS, SUMMARY, evaluate, save_results
from maml_rl.analysis.video import RenderingUnavailable, check_format, make_render_env, record_videos
from maml_rl.cli import ArgumentParser, add_threads_flag
from maml_rl.config import ConfigError, load_config, seed_range
from maml_rl.exits import BAD_INPUT, OK, WRITE_FAILED, error_line
from maml_rl.threads import check_threads
from maml_rl.training.folder import RUNS, RunFolderError, latest_run, load_run
from maml_rl.training.log import CONFIG
from maml_rl.training.preflight import check_config
from maml_rl.training.resources import FolderError, check_output_folder
from maml_rl.training.signals import exit_status, stop_signals_as_exceptions

NUM_BATCHES, ADAPT_STEPS = 10, 1
"""The evaluation's defaults: batches of fresh tasks, and adaptation steps."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog="test.py", description="Evaluate a run folder written by train.py on fresh tasks.")
    parser.add_argument(
        "--run",
        type=Path,
        help="run folder (holds config.yaml and checkpoint.pt; default: the most "
        f"recently modified run folder under {RUNS}/)",
    )
    parser.add_argument("--meta-batch-size", type=int, help="tasks per evaluation batch (default: the run's)")
    parser.add_argument("--num-batches", type=int, help=f"evaluation batches (default: {NUM_BATCHES})")
    parser.add_argument(
        "--adapt-steps",
        type=int,
        help="adaptation steps K: returns are recorded after 0, 1, ..., K steps, each on fresh episodes "
        f"(default: {ADAPT_STEPS})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the evaluation tasks (default: the run's seed; "
        "evaluation tasks are drawn from a stream separate from training)",
    )
    parser.add_argument(
        "--record-video",
        action="store_true",
        help="instead of evaluating, render one episode per task before and after adaptation into RUN/videos/, "
        "side by side and alone (headless through MUJOCO_GL=egl, the default, or osmesa); the evaluation's "
        "results.npz and results.json are left as they are",
    )
    parser.add_argument("--video-tasks", type=int, default=2, help="tasks to record with --record-video (default: 2)")
    parser.add_argument(
        "--video-format",
        choices=["mp4", "gif"],
        default="mp4",
        help="clip format of --record-video: H.264 MP4 (default) or GIF, for places that cannot play MP4",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], help="device of the policy (default: the run's)")
    add_threads_flag(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> Path:
    """Everything about the command line that can be checked before the run is loaded (for videos: that a frame
    can be rendered at all); returns the run folder."""
    evaluation_only = [
        flag
        for flag, value in (("--num-batches", args.num_batches), ("--adapt-steps", args.adapt_steps))
        if value is not None
    ]
    if args.record_video and evaluation_only:
        raise ConfigError(
            f"--record-video records clips only; {' and '.join(evaluation_only)} set(s) the evaluation: "
            "run test.py once without --record-video for it"
        )
    args.num_batches = NUM_BATCHES if args.num_batches is None else args.num_batches
    args.adapt_steps = ADAPT_STEPS if args.adapt_steps is None else args.adapt_steps
    for flag, value in (
        ("--num-batches", args.num_batches),
        ("--adapt-steps", args.adapt_steps),
        ("--video-tasks", args.video_tasks),
    ):
        if value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    if args.seed is not None and seed_range(args.seed):
        raise ConfigError(f"--seed {seed_range(args.seed)}, got {args.seed}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu")
    run = args.run
    if run is None:
        run = latest_run()
        if run is None:
            raise ConfigError(f"no run folder under {RUNS}/ here; pass --run DIR, a folder written by train.py")
        print(
            f"evaluating {run} (the most recently modified run under {RUNS}/; pass --run DIR for another)",
            file=sys.stderr,
        )
    if not (run / CONFIG).is_file():
        raise RunFolderError(f"{run}: no {CONFIG}; is this a run folder written by train.py?")
    config = load_config(run / CONFIG).replace(device=args.device, meta_batch_size=args.meta_batch_size)
    check_config(config, str(run / CONFIG))
    if args.record_video:
        try:  # now, before any sampling: no encoder for the format, or no GL backend that renders a frame
            check_format(args.video_format)
            make_render_env(config.env_name, config.env_kwargs).close()
        except RenderingUnavailable as e:
            raise ConfigError(f"--record-video: {e}") from None
    check_output_folder(run, flag="--run")  # results.npz or the videos go there
    return run


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with stop_signals_as_exceptions():
        try:
            threads = check_threads(args.threads)
            run = check_args(args)
            experiment = load_run(run, device=args.device, threads=threads, meta_batch_size=args.meta_batch_size)
            seed = experiment.config.seed if args.seed is None else args.seed
            try:
                if args.record_video:
                    try:
                        paths = record_videos(experiment, run / "videos", args.video_tasks, seed, args.video_format)
                    except RenderingUnavailable as e:
                        raise ConfigError(f"--record-video: {e}") from None
                    finally:
                        experiment.close()
                    print(f"wrote {len(paths)} clips to {run / 'videos'} ({RESULTS} is untouched)")
                    return OK
                try:
                    result = evaluate(
                        experiment, args.num_batches, seed, args.adapt_steps, progress=not args.no_progress
                    )
                finally:
                    experiment.close()
                save_results(result, run)
            except OSError as e:
                print(
                    error_line(f"cannot write into {run} ({e.strerror or e}); free some space and run test.py again"),
                    file=sys.stderr,
                )
                return WRITE_FAILED
        except (ConfigError, FolderError, RunFolderError) as e:
            print(error_line(e), file=sys.stderr)
            return BAD_INPUT
        except KeyboardInterrupt as interrupt:
            print("\ninterrupted: the evaluation is incomplete and nothing more was written", file=sys.stderr)
            return exit_status(interrupt)
    print(f"{len(result.tasks)} tasks x {result.returns.shape[2]} episodes; mean return ± 95% CI over tasks:")
    for row in result.summary():
        label = "before adaptation" if row["adapt_steps"] == 0 else f"after {row['adapt_steps']} step(s)"
        print(f"  {label:18s} {row['mean']:10.3f} ± {row['ci95']:.3f}")
    print(f"wrote {run / RESULTS} and {run / SUMMARY}")
    return OK


if __name__ == "__main__":
    sys.exit(main())
