"""PNG figures drawn from a results dictionary (never from constants): loss curves, accuracy, held-out task."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: no global backend to set, headless and in notebooks alike

COLORS = {"sgd": "C0", "wp": "C1", "np": "C2", "meta": "C3"}
LABELS = {"sgd": "SGD (backprop)", "wp": "weight perturbation", "np": "node perturbation", "meta": "meta-RL (PPO)"}


def _xy(curves: dict, key: str):
    pts = [(e, v) for e, v in zip(curves["epoch"], curves[key]) if v is not None and v > 0]
    return [p[0] for p in pts], [p[1] for p in pts]


def _log_x(ax, curves_list) -> None:
    # epoch 0 cannot sit on a log axis; symlog keeps it while spreading the long runs out
    ax.set_xscale("symlog", linthresh=max(1, min(c["epoch"][1] if len(c["epoch"]) > 1 else 1 for c in curves_list)))


def plot_losses(results: dict[str, Any], path: Path, title: str) -> None:
    """Log loss vs epoch: train solid, test dashed, one colour per rule."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for name, res in results["rules"].items():
        c = res["curves"]
        ax.plot(*_xy(c, "train_loss"), "-", color=COLORS[name], label=f"{LABELS[name]} train")
        ax.plot(*_xy(c, "test_loss"), "--", color=COLORS[name], label=f"{LABELS[name]} test")
    _log_x(ax, [r["curves"] for r in results["rules"].values()])
    ax.set_yscale("log")
    ax.set_xlabel("epoch (full-batch steps)")
    ax.set_ylabel("MSE loss E" if results["task"] == "teacher-student" else "cross-entropy loss E")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_accuracy(results: dict[str, Any], path: Path, title: str) -> None:
    """Test accuracy vs epoch per rule (classification tasks)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for name, res in results["rules"].items():
        c = res["curves"]
        pts = [(e, v) for e, v in zip(c["epoch"], c.get("test_accuracy", [])) if v is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=COLORS[name], label=LABELS[name])
    _log_x(ax, [r["curves"] for r in results["rules"].values()])
    ax.set_ylim(0, 1)
    ax.set_xlabel("epoch (full-batch steps)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_heldout(results: dict[str, Any], path: Path, title: str) -> None:
    """The meta rule on its training task and on a held-out task, with SGD on the held-out task for reference."""
    meta = results["rules"]["meta"]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    runs = [
        ("meta (training task)", meta["curves"], COLORS["meta"], "-"),
        ("meta (held-out task)", meta["heldout"]["meta"]["curves"], COLORS["meta"], ":"),
    ]
    if "sgd" in meta["heldout"]:
        runs.append(("SGD (held-out task)", meta["heldout"]["sgd"]["curves"], COLORS["sgd"], ":"))
    for label, curves, color, style in runs:
        ax.plot(*_xy(curves, "test_loss"), style, color=color, label=f"{label}, test loss")
    _log_x(ax, [r[1] for r in runs])
    ax.set_yscale("log")
    ax.set_xlabel("epoch (full-batch steps)")
    ax.set_ylabel("test loss")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def write_plots(results: dict[str, Any], folder: Path) -> list[Path]:
    """All figures for one run; returns the paths written."""
    title = re.sub(r" from \S+", "", results["data_source"])  # the data folder is the user's business
    paths = [folder / "loss.png"]
    plot_losses(results, paths[0], title)
    if results["task"] == "mnist":
        paths.append(folder / "accuracy.png")
        plot_accuracy(results, paths[-1], title)
    if "meta" in results["rules"]:
        paths.append(folder / "heldout.png")
        plot_heldout(results, paths[-1], f"{results['task']}: does the PPO-learned rule generalise?")
    return paths
