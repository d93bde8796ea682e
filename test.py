#!/usr/bin/env python
"""Evaluate a meta-trained policy on fresh tasks: returns before and after adaptation.

    python test.py --run runs/halfcheetah-dir-rnn-seed1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maml_rl.cli import add_threads_flag, check_threads
from maml_rl.config import ConfigError
from maml_rl.evaluation import RESULTS, SUMMARY, RunError, evaluate, load_run, save_results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate a run folder written by train.py on fresh tasks.")
    parser.add_argument("--run", type=Path, required=True, help="run folder (holds config.yaml and checkpoint.pt)")
    parser.add_argument("--meta-batch-size", type=int, help="tasks per evaluation batch (default: the run's)")
    parser.add_argument("--num-batches", type=int, default=10, help="evaluation batches (default: 10)")
    parser.add_argument("--adapt-steps", type=int, default=1,
                        help="adaptation steps K: returns are recorded after 0, 1, ..., K steps, each on fresh "
                             "episodes (default: 1)")
    parser.add_argument("--seed", type=int, help="seed of the evaluation tasks (default: the run's seed; "
                        "evaluation tasks are drawn from a stream separate from training)")
    parser.add_argument("--record-video", action="store_true",
                        help="also render one episode per task before and after adaptation into RUN/videos/, "
                             "side by side and alone (headless through MUJOCO_GL=egl, the default, or osmesa)")
    parser.add_argument("--video-tasks", type=int, default=2, help="tasks to record with --record-video (default: 2)")
    parser.add_argument("--video-format", choices=["mp4", "gif"], default="mp4",
                        help="clip format of --record-video: H.264 MP4 (default) or GIF, for places that cannot "
                             "play MP4")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="device of the policy (default: the run's)")
    add_threads_flag(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def _check_video_args(args: argparse.Namespace) -> None:
    """Fails before the evaluation, not after it, where the clips cannot be written."""
    from maml_rl.video import RenderingUnavailable, check_format

    if args.video_tasks < 1:
        raise ConfigError(f"--video-tasks must be >= 1, got {args.video_tasks}")
    try:
        check_format(args.video_format)
    except RenderingUnavailable as e:
        raise ConfigError(f"--record-video: {e}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        threads = check_threads(args.threads)
        if args.record_video:
            _check_video_args(args)
        if args.num_batches < 1:
            raise ConfigError(f"--num-batches must be >= 1, got {args.num_batches}")
        if args.adapt_steps < 1:
            raise ConfigError(f"--adapt-steps must be >= 1, got {args.adapt_steps}")
        experiment = load_run(args.run, device=args.device, meta_batch_size=args.meta_batch_size)
        experiment.learner_threads = threads or experiment.learner_threads
        seed = experiment.config.seed if args.seed is None else args.seed
        result = evaluate(experiment, args.num_batches, seed, args.adapt_steps, progress=not args.no_progress)
    except (ConfigError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_results(result, args.run)
    if args.record_video:
        from maml_rl.video import RenderingUnavailable, record_videos

        try:
            paths = record_videos(experiment, args.run / "videos", args.video_tasks, seed, args.video_format)
        except RenderingUnavailable as e:
            print(f"error: --record-video: {e}", file=sys.stderr)
            return 2
        print(f"wrote {len(paths)} clips to {args.run / 'videos'}")
    print(f"{len(result.tasks)} tasks x {result.returns.shape[2]} episodes; mean return ± 95% CI over tasks:")
    for row in result.summary():
        label = "before adaptation" if row["adapt_steps"] == 0 else f"after {row['adapt_steps']} step(s)"
        print(f"  {label:18s} {row['mean']:10.3f} ± {row['ci95']:.3f}")
    print(f"wrote {args.run / RESULTS} and {args.run / SUMMARY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
