"""Targets (a) and (b) of the plasticity experiment, from committed comparisons: does a memory-only group with
frozen recurrent weights reach, *before* any gradient step, MAML's return *after* one step (on HalfCheetahDir and
2D navigation: target (a); on AntDir: target (b), ``--target b``)?

Reads the per-run values that compare.py stores in comparison.json (no run folders needed) and prints, with the
library's statistics (Agarwal et al. 2021): each side's interquartile mean (IQM) with its 95 % percentile-bootstrap
CI over seeds, the difference of the IQMs with a stratified bootstrap CI (each group resampled on its own), and the
probability of improvement P(memory before > MAML after) with its CI; with ``--control``, the same probability
against a memoryless control's return before adaptation. Run from the repository root:

    python docs/results/plasticity/targets.py \\
        --memory docs/results/plasticity/halfcheetah-dir/comparison.json:halfcheetah-dir-reservoir-rnn \\
        --maml docs/results/plasticity/halfcheetah-dir-maml/comparison.json:halfcheetah-dir-mlp \\
        --control docs/results/plasticity/halfcheetah-dir/comparison.json:halfcheetah-dir-memoryless-mlp
    python docs/results/plasticity/targets.py --target b \
        --memory docs/results/plasticity/ant-dir/comparison.json:ant-dir-reservoir-rnn \
        --maml docs/results/ant-dir/comparison.json:ant-dir-mlp
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from maml_rl.analysis.statistics import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    RESAMPLES,
    bootstrap_ci,
    iqm,
    probability_of_improvement,
    probability_of_improvement_ci,
)


def values(spec: str, measure: str) -> np.ndarray:
    """The per-run ``measure`` values of group GROUP in comparison.json FILE, given as ``FILE:GROUP``."""
    path, _, group = spec.rpartition(":")
    groups = json.loads(Path(path).read_text(encoding="utf-8"))["groups"]
    if group not in groups:
        raise SystemExit(f"error: {path} has no group {group!r} (it has {', '.join(groups)})")
    return np.asarray(groups[group]["values"][measure], dtype=np.float64)


def iqm_difference_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Percentile-bootstrap CI of IQM(x) − IQM(y), x and y resampled independently (a stratified bootstrap)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    xs = x[rng.integers(0, len(x), size=(RESAMPLES, len(x)))]
    ys = y[rng.integers(0, len(y), size=(RESAMPLES, len(y)))]
    diffs = stats.trim_mean(xs, 0.25, axis=1) - stats.trim_mean(ys, 0.25, axis=1)
    low, high = np.quantile(diffs, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(low), float(high)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory", required=True, help="FILE:GROUP of the memory-only group (its 'before' values)")
    parser.add_argument("--maml", required=True, help="FILE:GROUP of the MAML group (its 'after' values)")
    parser.add_argument("--control", help="FILE:GROUP of the memoryless control (its 'before' values)")
    parser.add_argument("--target", default="a", help="the target's letter, for the verdict lines (default: a)")
    args = parser.parse_args()
    memory, maml = values(args.memory, "before"), values(args.maml, "after")
    for name, v in (("memory-only, before any step", memory), ("MAML, after one step", maml)):
        low, high = bootstrap_ci(v)
        print(f"{name}: IQM {iqm(v):.2f} [{low:.2f}, {high:.2f}] over {len(v)} seeds")
    low, high = iqm_difference_ci(memory, maml)
    p_low, p_high = probability_of_improvement_ci(memory, maml)
    print(f"IQM difference (memory − MAML): {iqm(memory) - iqm(maml):.2f} [{low:.2f}, {high:.2f}]")
    print(f"P(memory before > MAML after) = {probability_of_improvement(memory, maml):.2f} [{p_low:.2f}, {p_high:.2f}]")
    reached = iqm(memory) >= iqm(maml)
    print(
        f"target ({args.target}), first half: "
        + ("met: " if reached else "not met: ")
        + f"the memory-only IQM is {'at least' if reached else 'below'} MAML's"
        + ("; the difference's CI excludes zero" if low > 0 or high < 0 else "; the difference's CI contains zero")
    )
    if args.control:
        control = values(args.control, "before")
        p_low, p_high = probability_of_improvement_ci(memory, control)
        above = p_low > 0.5
        print(
            f"P(memory before > control before) = {probability_of_improvement(memory, control):.2f} "
            f"[{p_low:.2f}, {p_high:.2f}]: target ({args.target}), second half, {'met' if above else 'not met'} (CI "
            f"{'above' if above else 'not above'} 1/2)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
