"""Command line of the learning-rules lab: ``python -m maml_rl.rules --config ... --output-folder ...``."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from maml_rl.cli import ArgumentParser
from maml_rl.exits import BAD_INPUT, FAILED, OK, WRITE_FAILED, error_line
from maml_rl.training.resources import FolderError, available_memory, check_output_folder, remove_created

from .config import RULE_NAMES, ConfigError, load_config, with_overrides
from .data import DataError
from .experiment import run_experiment
from .meta import TrainingError
from .plots import write_plots
from .preflight import check_memory


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m maml_rl.rules",
        description="Compare learning rules (SGD, weight perturbation, node perturbation, a PPO-learned rule) on "
        "the teacher-student task or MNIST projected on principal components. Writes results.json "
        "and PNG plots to the output folder and nothing anywhere else.",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="experiment file, e.g. configs/rules/teacher-student.yaml or configs/rules/mnist.yaml",
    )
    p.add_argument(
        "--output-folder",
        required=True,
        metavar="DIR",
        help="folder for results.json and the plots (created if missing)",
    )
    p.add_argument(
        "--rules",
        metavar="LIST",
        help=f"comma-separated subset of {','.join(RULE_NAMES)} to run, in the order given "
        "(default: the config's 'rules')",
    )
    p.add_argument(
        "--epochs",
        type=int,
        metavar="N",
        help="full-batch learning steps per rule (default: the config's 'epochs'; the paper asks 1e5)",
    )
    p.add_argument("--seed", type=int, help="seed for data, initial weights and all noise (default: config)")
    p.add_argument("--log-every", type=int, metavar="N", help="record losses every N epochs (default: config)")
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: config; 0 = torch's)")
    p.add_argument(
        "--mnist-dir", metavar="DIR", help="folder with the MNIST IDX files (overrides task.mnist_dir and $MNIST_DIR)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def check_extra(cfg) -> None:
    """The lab's own dependencies (the ``rules`` extra), where this experiment needs them: PPO for the learned
    rule, scikit-learn for the offline digits that stand in for MNIST."""
    needed = {"stable_baselines3": "meta" in cfg.rules}
    if cfg.task.name == "mnist":
        needed["sklearn"] = not (cfg.task.mnist_dir or os.environ.get("MNIST_DIR"))
    missing = [module for module, wanted in needed.items() if wanted and importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(
            f'the learning-rules lab needs {", ".join(missing)} for this experiment: pip install -e ".[rules]"'
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out, created = Path(args.output_folder), None
    try:
        cfg = load_config(args.config)
        if args.mnist_dir is not None:
            cfg = with_overrides(cfg, task=dataclasses.replace(cfg.task, mnist_dir=args.mnist_dir))
        cfg = with_overrides(
            cfg, rules=args.rules, epochs=args.epochs, seed=args.seed, log_every=args.log_every, threads=args.threads
        )
        check_extra(cfg)
        check_memory(cfg, available_memory())
        out = Path(args.output_folder)
        created = check_output_folder(out)  # before the run, not after it
        results = run_experiment(cfg, progress=not args.no_progress, log=lambda s: print(s, file=sys.stderr))
        (out / "results.json").write_text(json.dumps(results, indent=1))
        paths = write_plots(results, out)
    except (ConfigError, DataError, FolderError) as exc:
        remove_created(out, created)  # a run that never started leaves no empty folder
        print(error_line(exc), file=sys.stderr)
        return BAD_INPUT
    except TrainingError as exc:
        remove_created(out, created)
        print(error_line(exc), file=sys.stderr)
        return FAILED
    except OSError as exc:
        print(error_line(f"cannot write into {out} ({exc.strerror or exc})"), file=sys.stderr)
        return WRITE_FAILED
    print(summary_table(results))
    print(f"wrote {out / 'results.json'}, " + ", ".join(str(p) for p in paths))
    return OK


def summary_table(results: dict) -> str:
    """A Markdown table of the final numbers, as printed at the end of a run."""
    cls = results["task"] == "mnist"
    head = (
        "| rule | epochs | train loss | test loss |"
        + (" test accuracy |" if cls else "")
        + " wall time (s) | est. 1e5 epochs (s) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    fmt = lambda v: "diverged" if v is None else f"{v:.4g}"  # noqa: E731
    for name, r in results["rules"].items():
        f = r["final"]
        row = f"| {name} | {r['epochs_run']} | {fmt(f['train_loss'])} | {fmt(f['test_loss'])} |"
        if cls:
            row += f" {fmt(f.get('test_accuracy'))} |"
        wall = r["wall_time_s"] + r.get("ppo_train_time_s", 0.0)
        row += f" {wall:.1f} | {r['paper_epochs_estimate_s']:.0f} |"
        lines.append(row)
    return "\n".join(lines)
