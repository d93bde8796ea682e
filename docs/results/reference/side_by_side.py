"""Side by side: our MAML-TRPO and the reference implementation (pytorch-maml-rl, ported) on the same task.

Reads per-meta-batch JSON lines from run folders of both implementations: our ``train.py`` run folders
(``metrics.jsonl``) and the reference port's (its ``train.py``, patched to write one line per meta-batch with
the same fields: ``batch``, ``returns_before``, ``returns_after``, ``seconds``). Both returns are the mean,
over the meta-batch's tasks and episodes, of each episode's undiscounted return: ``returns_before`` of the
episodes sampled with θ (before adaptation), ``returns_after`` of those sampled after one inner step.

Writes into ``--output-folder``:

* ``side_by_side.png``: the post-adaptation return per meta-batch (top) and the pre-adaptation return
  (bottom), each seed as a thin line and the mean over seeds in bold, per implementation;
* ``comparison.json`` and ``comparison.md``: per implementation and seed, the mean post-adaptation return over
  the last ``--last`` meta-batches; the mean over seeds with a 95 % bootstrap CI; the difference of the means
  (ours − reference) with a 95 % bootstrap CI; Welch's t-test; the smallest difference the runs could detect
  (80 % power, two-sided α = 0.05); the wall-clock seconds per meta-batch. An optional ``--candidate`` group
  (our runs with a candidate change) gets the same rows and its own difference to the reference.

Only runs that reached ``--num-batches`` meta-batches enter the statistics; shorter ones are drawn (dotted)
and listed as incomplete. Nothing of the reference's code is imported.

Example (the runs of the results page, docs/results/reference.md)::

    python docs/results/reference/side_by_side.py \\
        --ours ~/runs/reference/ours-seed{1,2,3} --reference ~/runs/reference/ref-seed{1,2,3}
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import optimize, stats  # noqa: E402

HERE = Path(__file__).resolve().parent
OURS, REFERENCE = "ours", "reference"
COLORS = {OURS: "tab:blue", REFERENCE: "tab:orange"}
OTHER_COLORS = ["tab:green", "tab:purple", "tab:brown"]


def _shown(path: Path) -> str:
    """A run's path as the page shows it: under the home folder as ``~/...`` (no user's machine in the docs)."""
    try:
        return "~/" + str(Path(path).resolve().relative_to(Path.home()))
    except ValueError:
        return str(path)


@dataclass
class Run:
    """One run's per-meta-batch series (index = meta-batch), read from its JSON lines."""

    implementation: str
    path: Path
    seed: int | None
    returns_before: np.ndarray
    returns_after: np.ndarray
    seconds: np.ndarray
    kl_after: np.ndarray
    """KL of the accepted TRPO step (NaN where the line search rejected)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_batches(self) -> int:
        return len(self.returns_after)

    @property
    def label(self) -> str:
        return f"seed {self.seed}" if self.seed is not None else self.path.name


def metrics_file(path: Path) -> Path:
    """The JSON-lines file of a run: ``path`` itself, or ``path/metrics.jsonl``."""
    candidate = path / "metrics.jsonl" if path.is_dir() else path
    if not candidate.is_file():
        raise SystemExit(f"error: {path}: no metrics.jsonl (expected a run folder or a JSON-lines file)")
    return candidate


def run_seed(path: Path) -> int | None:
    """The run's seed: from its config (ours: ``config.yaml``; the reference port: ``config.json``), else
    from a ``seed<N>`` in the folder's name."""
    folder = path if path.is_dir() else path.parent
    config_json = folder / "config.json"
    if config_json.is_file():
        seed = json.loads(config_json.read_text()).get("seed")
        if seed is not None:
            return int(seed)
    config_yaml = folder / "config.yaml"
    if config_yaml.is_file():
        match = re.search(r"^seed:\s*(\d+)\s*$", config_yaml.read_text(), re.MULTILINE)
        if match:
            return int(match.group(1))
    return seed_from_name(folder)


def seed_from_name(folder: Path) -> int | None:
    """The ``N`` of a ``seed<N>`` in the folder's name."""
    match = re.search(r"seed(\d+)", folder.name)
    return int(match.group(1)) if match else None


def read_run(implementation: str, path: Path, num_batches: int) -> Run:
    """A run's first ``num_batches`` meta-batches, in batch order (a resumed run's repeated lines: the last).

    A run folder without ``metrics.jsonl`` yet (not started) is a run of 0 meta-batches, with a warning."""
    rows: dict[int, dict[str, Any]] = {}
    if path.is_dir() and not (path / "metrics.jsonl").exists() or not path.exists():
        print(f"warning: {path}: no metrics.jsonl yet; counted as a run of 0 meta-batches", file=sys.stderr)
        empty = np.array([])
        return Run(
            implementation, path, run_seed(path) if path.exists() else seed_from_name(path), empty, empty, empty, empty
        )
    for number, line in enumerate(metrics_file(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise SystemExit(f"error: {metrics_file(path)}:{number}: not JSON ({error})") from None
        rows[int(row["batch"])] = row
    batches = sorted(b for b in rows if b < num_batches)
    if batches != list(range(len(batches))):
        raise SystemExit(f"error: {metrics_file(path)}: meta-batches are not 0, 1, 2, ... (got {batches[:5]}...)")

    def series(key: str) -> np.ndarray:
        return np.array([float("nan") if rows[b].get(key) is None else float(rows[b][key]) for b in batches])

    return Run(
        implementation,
        path,
        run_seed(path),
        series("returns_before"),
        series("returns_after"),
        series("seconds"),
        series("kl_after"),
    )


FULL_STEP_KL = 0.008
"""An accepted step with KL above this took the line search's full step: the full step is scaled to a quadratic
KL of max-kl = 0.01 (its true KL is within a few % of it), the next candidate (0.8 of it) has about 0.64 × that."""

THIRDS = ((0, 50), (50, 100), (100, 150))


def full_step_fraction(run: Run, start: int, stop: int) -> float | None:
    """Fraction of meta-batches ``start``…``stop − 1`` whose accepted step was the line search's full step."""
    kl = run.kl_after[start:stop]
    return float(np.mean(np.nan_to_num(kl, nan=0.0) > FULL_STEP_KL)) if kl.size else None


def bootstrap_ci(
    samples: Sequence[np.ndarray], statistic: Callable[..., float], resamples: int, seed: int
) -> tuple[float, float]:
    """95 % percentile bootstrap CI of ``statistic`` over independent resamplings of each sample."""
    result = stats.bootstrap(
        tuple(np.asarray(s, dtype=float) for s in samples),
        statistic,
        n_resamples=resamples,
        confidence_level=0.95,
        method="percentile",
        vectorized=False,
        random_state=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def welch(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Welch's t-test of mean(a) − mean(b), with its Welch–Satterthwaite degrees of freedom."""
    test = stats.ttest_ind(a, b, equal_var=False)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return {"t": float(test.statistic), "p": float(test.pvalue), "df": float(df), "standard_error": math.sqrt(va + vb)}


def minimal_detectable_difference(standard_error: float, df: float, power: float = 0.8, alpha: float = 0.05) -> float:
    """The true difference δ that a two-sided Welch test at level ``alpha`` detects with probability ``power``.

    With the observed per-group standard deviations taken as the true ones, the test statistic is noncentral t
    with ``df`` degrees of freedom (Welch–Satterthwaite) and noncentrality δ / SE; δ solves
    P(|T| > t_{1−α/2, df}) = power.
    """
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(delta: float) -> float:
        nc = delta / standard_error
        rejection = stats.nct.sf(critical, df, nc) + stats.nct.cdf(-critical, df, nc)
        return (rejection if np.isfinite(rejection) else 1.0) - power  # nct's tails can be NaN far out

    return float(optimize.brentq(shortfall, 1e-9 * standard_error, 30 * standard_error))


def last_mean(values: np.ndarray, last: int) -> float:
    return float(np.nanmean(values[-last:]))


def summarize(runs: dict[str, list[Run]], num_batches: int, last: int, resamples: int, seed: int) -> dict[str, Any]:
    """Everything ``comparison.json`` holds (see the module docstring)."""
    out: dict[str, Any] = {
        "num_batches": num_batches,
        "last": last,
        "window": [num_batches - last, num_batches - 1],
        "implementations": {},
    }
    complete: dict[str, dict[str, np.ndarray]] = {}
    for name, group in runs.items():
        done = [r for r in group if r.num_batches >= num_batches]
        entry: dict[str, Any] = {
            "runs": [
                {
                    "path": _shown(r.path),
                    "seed": r.seed,
                    "batches": r.num_batches,
                    "complete": r in done,
                    "last_after": last_mean(r.returns_after, last) if r in done else None,
                    "last_before": last_mean(r.returns_before, last) if r in done else None,
                    "seconds_per_batch": float(np.nanmean(r.seconds)) if r.num_batches else None,
                }
                for r in group
            ],
        }
        seconds = np.concatenate([r.seconds for r in group]) if group else np.array([])
        entry["seconds_per_batch"] = float(np.nanmean(seconds)) if seconds.size else None
        entry["batches_timed"] = int(seconds.size)
        entry["full_step_fraction"] = {
            f"{a}-{b - 1}": [full_step_fraction(r, a, b) for r in group] for a, b in THIRDS if a < num_batches
        }
        for key, attribute in (("after", "returns_after"), ("before", "returns_before")):
            values = np.array([last_mean(getattr(r, attribute), last) for r in done])
            complete.setdefault(name, {})[key] = values
            summary: dict[str, Any] = {"seeds": len(values), "mean": float(values.mean()) if len(values) else None}
            if len(values) >= 2:
                summary["sd"] = float(values.std(ddof=1))
                summary["ci95"] = bootstrap_ci([values], np.mean, resamples, seed)
            entry[key] = summary
        out["implementations"][name] = entry
    out["ours_minus_reference"] = differences(complete, OURS, resamples, seed)
    others = [name for name in runs if name not in (OURS, REFERENCE)]
    if others:
        out["other_minus_reference"] = {name: differences(complete, name, resamples, seed) for name in others}
    return out


def differences(complete: dict[str, dict[str, np.ndarray]], name: str, resamples: int, seed: int) -> dict[str, Any]:
    """Group ``name`` − the reference, for the post- and pre-adaptation returns (``None`` below 2 runs each)."""
    diffs: dict[str, Any] = {}
    for key in ("after", "before"):
        a, b = complete.get(name, {}).get(key, np.array([])), complete.get(REFERENCE, {}).get(key, np.array([]))
        if len(a) < 2 or len(b) < 2:
            diffs[key] = None
            continue
        test = welch(a, b)
        diffs[key] = {
            "difference": float(a.mean() - b.mean()),
            "ci95": bootstrap_ci([a, b], lambda x, y: np.mean(x) - np.mean(y), resamples, seed),
            "welch_t": test["t"],
            "welch_p": test["p"],
            "welch_df": test["df"],
            "standard_error": test["standard_error"],
            "minimal_detectable_difference_80": minimal_detectable_difference(test["standard_error"], test["df"]),
        }
    return diffs


def plot(runs: dict[str, list[Run]], num_batches: int, last: int, path: Path) -> None:
    """The two-panel figure: post-adaptation return (top), pre-adaptation return (bottom)."""
    fig, axes = plt.subplots(2, 1, figsize=(9, 8), sharex=True)
    for ax, attribute, title in (
        (axes[0], "returns_after", "after one inner step (post-adaptation)"),
        (axes[1], "returns_before", "before adaptation (pre-adaptation)"),
    ):
        for index, (name, group) in enumerate(runs.items()):
            color = COLORS.get(name, OTHER_COLORS[index % len(OTHER_COLORS)])
            for r in group:
                ax.plot(
                    np.arange(r.num_batches),
                    getattr(r, attribute),
                    color=color,
                    lw=0.7,
                    alpha=0.45,
                    ls="-" if r.num_batches >= num_batches else ":",
                )
            done = [getattr(r, attribute)[:num_batches] for r in group if r.num_batches >= num_batches]
            if done:
                ax.plot(
                    np.arange(num_batches),
                    np.mean(done, axis=0),
                    color=color,
                    lw=2.2,
                    label=f"{name}: mean of {len(done)} seed{'s' if len(done) > 1 else ''}",
                )
            partial = [r for r in group if r.num_batches < num_batches]
            if partial:
                ax.plot([], [], color=color, lw=0.7, ls=":", label=f"{name}: {len(partial)} incomplete run(s)")
        ax.axvspan(num_batches - last - 0.5, num_batches - 0.5, color="0.9", zorder=0)
        ax.set_title(f"HalfCheetahDir: mean return {title}")
        ax.set_ylabel("mean episode return")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[1].set_xlabel(f"meta-batch (shaded: the last {last}, the window of the table)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def markdown(summary: dict[str, Any], runs: dict[str, list[Run]], args: argparse.Namespace) -> str:
    """``comparison.md``."""
    last, n = summary["last"], summary["num_batches"]
    lines = [
        "# Ours vs the reference (pytorch-maml-rl), HalfCheetahDir",
        "",
        f"Ours: bio-maml-rl at commit `{args.ours_commit}`, `train.py --config configs/halfcheetah-dir.yaml --policy mlp "
        f"--seed S --set num-batches={n} --threads 1`. Reference: tristandeleu/pytorch-maml-rl at commit "
        f"`{args.reference_commit}`, ported to gymnasium 1.4 / MuJoCo 4 / NumPy 2 / torch 2.13 with its algorithm "
        f"unchanged (one sampler worker, `configs/maml/halfcheetah-dir.yaml`, {n} meta-batches, torch on one thread). "
        f"Same seeds for both. Returns: mean over the meta-batch's 40 tasks × 20 episodes of the undiscounted "
        f"episode return (100 steps), as each implementation logs it during training. "
        "One setup difference remains, the reference's own: its HalfCheetahDir observes 20 values (HalfCheetah-v5's 17 "
        "and the torso's position x, y, z), ours the 17; dynamics, reset noise, reward, action clipping and horizon are "
        "the same step by step.",
        "",
        f"## Post-adaptation return, mean over meta-batches {n - last}–{n - 1} (the last {last})",
        "",
        "| implementation | per seed | mean over seeds [95 % bootstrap CI] | pre-adaptation, mean over seeds | s per meta-batch |",
        "|---|---|---|---|---|",
    ]
    for name in runs:
        entry = summary["implementations"][name]
        per_seed = ", ".join(
            f"{r['seed']}: {fmt(r['last_after'])}" if r["complete"] else f"{r['seed']}: incomplete ({r['batches']}/{n})"
            for r in entry["runs"]
        )
        after, before = entry["after"], entry["before"]
        ci = after.get("ci95")
        ci_text = f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""
        lines.append(
            f"| {name} | {per_seed} | {fmt(after['mean'])}{ci_text} | {fmt(before['mean'])} | "
            f"{fmt(entry['seconds_per_batch'], 1)} |"
        )
    lines += [
        "",
        "## Difference to the reference",
        "",
        "| comparison | measure | difference [95 % bootstrap CI] | Welch's t (df) | p "
        "| smallest detectable difference (80 % power) |",
        "|---|---|---|---|---|---|",
    ]
    groups = [(OURS, summary["ours_minus_reference"]), *summary.get("other_minus_reference", {}).items()]
    for name, diffs in groups:
        for key, label in (("after", "post-adaptation return"), ("before", "pre-adaptation return")):
            d = diffs.get(key)
            if d is None:
                lines.append(f"| {name} − reference | {label} | needs ≥ 2 complete runs of each | | | |")
                continue
            lines.append(
                f"| {name} − reference | {label} | {fmt(d['difference'])} [{fmt(d['ci95'][0])}, {fmt(d['ci95'][1])}] | "
                f"{fmt(d['welch_t'])} ({fmt(d['welch_df'], 1)}) | {d['welch_p']:.3g} | "
                f"{fmt(d['minimal_detectable_difference_80'])} |"
            )
    lines += [
        "",
        "## Line search: how often the full TRPO step is taken",
        "",
        f"Fraction of meta-batches whose accepted step has KL > {FULL_STEP_KL} (the full step; the reference logs no "
        "step index, and on our runs this test agrees with `ls_steps == 1`), per seed:",
        "",
        "| implementation | " + " | ".join(f"meta-batches {a}–{b - 1}" for a, b in THIRDS) + " |",
        "|---|" + "---|" * len(THIRDS),
    ]
    for name in runs:
        fractions = summary["implementations"][name]["full_step_fraction"]
        cells = [
            ", ".join("—" if f is None else f"{f:.2f}" for f in fractions.get(f"{a}-{b - 1}", [])) for a, b in THIRDS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "How computed: each seed's value is its mean over the window; CIs are percentile bootstraps "
        f"({args.resamples} resamples, `scipy.stats.bootstrap`, seeds resampled within each implementation; with 3 seeds "
        "a percentile bootstrap CI is narrow and only indicative: it can take few distinct values). Welch's t-test "
        "(`scipy.stats.ttest_ind(equal_var=False)`). The smallest detectable difference is the true difference that a "
        "two-sided Welch test at α = 0.05 would detect with 80 % power, taking the observed per-implementation "
        "standard deviations as the true ones: the δ with P(|T| > t_crit) = 0.8 for T noncentral t with the "
        "Welch–Satterthwaite degrees of freedom and noncentrality δ / SE.",
        "",
        "Wall clock: seconds per meta-batch as each implementation times its own meta-batch (sampling before and "
        "after adaptation, adaptation, the TRPO step), mean over all logged meta-batches of all its runs, on the "
        "2-core machine with **two runs side by side** (each with one torch thread; ours steps MuJoCo on both cores "
        "while sampling, the reference samples in one worker process while its main process adapts), so the two "
        "compete for the cores and the times are not those of a run alone.",
        "",
        "![side by side](side_by_side.png)",
        "",
        "Runs: "
        + "; ".join(f"{name}: " + ", ".join(f"`{_shown(r.path)}`" for r in group) for name, group in runs.items()),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ours", nargs="+", type=Path, required=True, help="our run folders (metrics.jsonl)")
    parser.add_argument(
        "--reference", nargs="+", type=Path, required=True, help="the reference port's run folders or JSON-lines files"
    )
    parser.add_argument(
        "--candidate",
        nargs="+",
        type=Path,
        default=[],
        help="optional third group: our run folders with a candidate change, compared with the reference too",
    )
    parser.add_argument("--candidate-label", default="ours, candidate fix", help="the candidate group's name")
    parser.add_argument("--num-batches", type=int, default=150, help="meta-batches of a complete run (default 150)")
    parser.add_argument(
        "--last", type=int, default=30, help="window of the table: the last N meta-batches (default 30)"
    )
    parser.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--ours-commit", default="7d32e95", help="our commit the runs were made at")
    parser.add_argument(
        "--reference-commit", default="21d4ba1ccd300a403928e6db553c9529bcc3fbdf", help="the reference's snapshot commit"
    )
    parser.add_argument(
        "--output-folder", type=Path, default=HERE, help="where to write (default: this script's folder)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.last <= args.num_batches:
        parser.error(f"--last must be in 1..--num-batches ({args.num_batches}), got {args.last}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    runs = {
        OURS: [read_run(OURS, p.expanduser(), args.num_batches) for p in args.ours],
        REFERENCE: [read_run(REFERENCE, p.expanduser(), args.num_batches) for p in args.reference],
    }
    if args.candidate:
        if args.candidate_label in runs:
            raise SystemExit(f"error: --candidate-label must differ from {OURS!r} and {REFERENCE!r}")
        runs[args.candidate_label] = [
            read_run(args.candidate_label, p.expanduser(), args.num_batches) for p in args.candidate
        ]
    summary = summarize(runs, args.num_batches, args.last, args.resamples, args.seed)
    summary["commits"] = {OURS: args.ours_commit, REFERENCE: args.reference_commit}
    args.output_folder.mkdir(parents=True, exist_ok=True)
    plot(runs, args.num_batches, args.last, args.output_folder / "side_by_side.png")
    (args.output_folder / "comparison.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.output_folder / "comparison.md").write_text(markdown(summary, runs, args))
    print((args.output_folder / "comparison.md").read_text())
    return summary


if __name__ == "__main__":
    main()
