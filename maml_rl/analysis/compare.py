"""Compare meta-training runs: group them, pool seeds, test the difference, draw the curves.

Runs are grouped by their resolved configs with the seed left out (so, typically, by policy). For each run,
the post-adaptation return and the adaptation gain (after − before) come from ``results.npz`` when ``test.py``
has evaluated it (fresh tasks), else from the last tenth of its training metrics. Between two groups: Welch's
t-test (scipy.stats) and Hedges' g (Hedges 1981: Cohen's d with the small-sample correction).
"""

from __future__ import annotations

import gzip
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from maml_rl.analysis.statistics import (
    bootstrap_band,
    bootstrap_ci,
    brown_forsythe,
    detectable_effect,
    fall_backs,
    first_above,
    iqm,
    mean_confidence_interval,
    probability_of_improvement,
    probability_of_improvement_ci,
    welch,
)
from maml_rl.config import flatten_keys
from maml_rl.envs.rewards import REWARD_TERMS
from maml_rl.training.log import CONFIG, METRICS_GZ, RECORD, RESULTS, read_metrics

IGNORED_KEYS = {"seed", "num-batches", "device", "learner-parts"}
"""Config keys that do not define a group (seeds are pooled; length, device and the learner's part count, which
changes only the rounding of sums over tasks, do not change the method)."""


def _record_kept_returns(folder: Path) -> bool:
    """Whether ``folder`` is a run record whose record.json says it kept ``test.py``'s returns."""
    if not (folder / RECORD).exists():
        return False
    try:
        return "returns" in json.loads((folder / RECORD).read_text(encoding="utf-8")).get("kept", "")
    except (json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"{folder / RECORD}: not a run record's JSON ({e})") from None


@dataclass
class RunRecord:
    """One run folder's data: its config, its metrics rows and (if evaluated) its test returns."""

    folder: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    returns: np.ndarray | None  # (tasks, K + 1, episodes) from test.py, or None
    step_rewards: np.ndarray | None = None  # (tasks, K + 1, horizon) from test.py, or None

    @classmethod
    def load(cls, folder: str | Path) -> RunRecord:
        folder = Path(folder)
        if not (folder / CONFIG).exists():
            raise ValueError(
                f"{folder}: no {CONFIG}; is this a run folder written by train.py (or a run record written by "
                "compare.py --save-records)?"
            )
        config = yaml.safe_load((folder / CONFIG).read_text(encoding="utf-8"))
        returns = step_rewards = None
        if not (folder / RESULTS).exists() and _record_kept_returns(folder):
            raise ValueError(
                f"{folder}: its {RECORD} says it kept test.py's returns, but {RESULTS} is missing, so its evaluation "
                f"is lost (was {RESULTS} left out of a commit? .gitignore must not ignore a run record's {RESULTS}); "
                "restore the file, or re-run the run from the record's config.yaml and evaluate it"
            )
        if (folder / RESULTS).exists():
            with np.load(folder / RESULTS) as data:
                returns = (
                    data["returns"]
                    if "returns" in data
                    else np.stack([data["train_returns"], data["valid_returns"]], 1)
                )
                step_rewards = data["step_rewards"] if "step_rewards" in data else None
        return cls(folder, config, read_metrics(folder), returns, step_rewards)

    def save(self, folder: str | Path) -> Path:
        """Writes this run as a run record: a few tens of kB that compare.py reads as it reads the run.

        The record holds the config, the metrics (gzipped), and test.py's returns averaged over each task's
        episodes and its rewards per step averaged over tasks: every statistic and figure of a comparison
        averages over them in that order, so a comparison of records prints the run's numbers. The checkpoint
        is left out (a record cannot be resumed or evaluated again). ``folder`` must not exist yet.
        """
        folder = Path(folder)
        folder.mkdir(parents=True)
        (folder / CONFIG).write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        lines = "".join(json.dumps(row) + "\n" for row in self.metrics)
        (folder / METRICS_GZ).write_bytes(gzip.compress(lines.encode("utf-8"), mtime=0))
        kept = "config, metrics"
        if self.returns is not None:
            arrays = {"returns": self.returns.mean(axis=2, keepdims=True)}
            if self.step_rewards is not None:
                with warnings.catch_warnings():  # a step no episode reached stays NaN, as in the figure
                    warnings.simplefilter("ignore", RuntimeWarning)
                    arrays["step_rewards"] = np.nanmean(self.step_rewards, axis=0, keepdims=True)
            np.savez_compressed(folder / RESULTS, **arrays)
            kept += ", returns per task (mean over episodes), rewards per step (mean over tasks)"
        source = self.folder.resolve()
        record = {"from": f"{source.parent.name}/{source.name}", "meta_batches": self.length, "kept": kept}
        (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        return folder

    @property
    def source(self) -> str:
        return "test.py (fresh tasks)" if self.returns is not None else "training metrics (last 10%)"

    @property
    def length(self) -> int:
        """Meta-batches the run has (its metrics lines)."""
        return len(self.metrics)

    @property
    def planned(self) -> int | None:
        """The meta-batches its config asks for (``None`` if it does not say)."""
        value = self.config.get("num-batches")
        return int(value) if isinstance(value, int) else None

    @property
    def finished(self) -> bool:
        return self.planned is None or self.length >= self.planned

    @property
    def environment(self) -> str:
        return str(self.config.get("env-name", "?"))

    def length_text(self) -> str:
        """``33``, or ``21 of 50 (unfinished)``."""
        return str(self.length) if self.finished else f"{self.length} of {self.planned} (unfinished)"

    def before_after(self) -> tuple[float, float]:
        """Mean return before and after (one step of) adaptation."""
        if self.returns is not None:
            return float(self.returns[:, 0].mean()), float(self.returns[:, 1].mean())
        tail = self.tenth("last")
        if not tail:
            raise ValueError(f"{self.folder}: no metrics and no {RESULTS} to compare")
        return float(np.mean([r["returns_before"] for r in tail])), float(np.mean([r["returns_after"] for r in tail]))

    def tenth(self, which: str) -> list[dict[str, Any]]:
        """The first or last tenth (at least one) of the meta-batches whose update was finite."""
        rows = [r for r in self.metrics if not r.get("nonfinite")]
        n = max(1, len(rows) // 10)
        return rows[:n] if which == "first" else rows[-n:]

    def training_progress(self) -> tuple[float, float] | None:
        """Post-adaptation training return averaged over the first and the last tenth of the meta-batches, or
        ``None`` without metrics: how far meta-training moved it."""
        first, last = self.tenth("first"), self.tenth("last")
        if not first:
            return None
        return (float(np.mean([r["returns_after"] for r in first])), float(np.mean([r["returns_after"] for r in last])))


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config's values by dotted key, lists and mappings as JSON text (comparable and hashable)."""
    return {
        key: json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
        for key, value in flatten_keys(config).items()
    }


def group_runs(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """Groups runs whose configs agree on every key but the ignored ones.

    A group is labelled by its run folders' common name without the seed (``halfcheetah-dir-reward-rnn`` for
    ``…-seed1``, ``…-seed2``), when that names every group apart; otherwise by the config keys that differ.
    """
    flats = [{k: v for k, v in flat_config(r.config).items() if k not in IGNORED_KEYS} for r in runs]
    differing = sorted(k for k in set().union(*flats) if len({repr(f.get(k)) for f in flats}) > 1)
    by_config: dict[str, list[RunRecord]] = {}
    for run, flat in zip(runs, flats):
        key = ", ".join(f"{k.removeprefix('policy.')}={flat.get(k)}" for k in differing) or "all runs"
        by_config.setdefault(key, []).append(run)
    names = [{re.sub(r"-seed\d+$", "", r.folder.name) for r in members} for members in by_config.values()]
    if all(len(n) == 1 for n in names) and len({next(iter(n)) for n in names}) == len(names):
        return {next(iter(n)): members for n, members in zip(names, by_config.values())}
    return by_config


def group_settings(runs: list[RunRecord]) -> dict[str, Any]:
    """The config keys (flattened) on which ``runs`` agree, the seed and length left out."""
    flats = [{k: v for k, v in flat_config(r.config).items() if k not in IGNORED_KEYS} for r in runs]
    return {k: v for k, v in flats[0].items() if all(f.get(k) == v for f in flats)}


MEASURES = ("before", "after", "gain")
"""Per run: the return before adaptation, after one step, and the gain (after − before)."""
CURVE = "mean over meta-batches"
"""Per run with training metrics: the mean post-adaptation training return (the area under the learning curve over
its length), tested between groups beside the measures."""


@dataclass
class Comparison:
    """Per group, the measures' means and 95% CIs; between every two groups, Welch's t-test on each measure.

    The CIs are over seeds. Where every group is a single run evaluated by test.py (a sweep with one seed
    per setting), they are over the evaluation tasks instead, and no tests are made (``ci_over`` says which).
    """

    groups: dict[str, list[RunRecord]]
    per_group: dict[str, dict[str, Any]] = field(default_factory=dict)
    tests: list[dict[str, Any]] = field(default_factory=list)
    ci_over: str = "seeds"
    level: float | None = None
    drop: float | None = None

    @classmethod
    def of(
        cls, runs: list[RunRecord], allow_unequal: bool = False, level: float | None = None, drop: float | None = None
    ) -> Comparison:
        """The comparison of ``runs``, grouped. Pooling runs of unequal lengths, or unfinished ones, into a group
        is refused (``ValueError`` naming them) unless ``allow_unequal``: their curves would be cut to the
        shortest and their returns come from different points of training.

        ``level`` and ``drop`` (fixed in advance, in units of return) add the learning-speed and stability
        measures of each run's post-adaptation training curve: the first meta-batch above ``level``, and how
        often and how far it falls back more than ``drop`` below its best so far."""
        for name, value in (("level", level), ("drop", drop)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number of return units, got {value}")
        if drop is not None and drop <= 0:
            raise ValueError(f"drop must be positive (a fall in return units), got {drop}")
        comparison = cls(group_runs(runs), level=level, drop=drop)
        for label, members in comparison.groups.items():
            seeds = [r.config.get("seed") for r in members]
            twice = [r for r in members if r.config.get("seed") is not None and seeds.count(r.config.get("seed")) > 1]
            if twice:
                raise ValueError(
                    f"group {label} has seed {twice[0].config.get('seed')} more than once "
                    f"({', '.join(str(r.folder) for r in twice)}): the same run twice (a run and its record?) "
                    "would count as two seeds; give each run once"
                )
            lengths = {r.length for r in members}
            unfinished = [r for r in members if not r.finished]
            if (len(lengths) > 1 or unfinished) and not allow_unequal:
                listed = ", ".join(f"{r.folder.name}: {r.length_text()}" for r in members)
                raise ValueError(
                    f"group {label} would pool runs of {'unequal lengths' if len(lengths) > 1 else 'unfinished runs'} "
                    f"(meta-batches {listed}); compare runs that finished the same number of meta-batches, or pass "
                    "--allow-unequal to pool them anyway (the curves are cut to the shortest run)"
                )
        single = all(len(m) == 1 and m[0].returns is not None for m in comparison.groups.values())
        comparison.ci_over = "tasks" if single else "seeds"
        values = {}
        for label, members in comparison.groups.items():
            if single:  # each task's mean over its episodes
                pairs = members[0].returns[:, :2].mean(2)
            else:
                pairs = np.array([run.before_after() for run in members])
            before, after, gain = pairs[:, 0], pairs[:, 1], pairs[:, 1] - pairs[:, 0]
            values[label] = {"before": before, "after": after, "gain": gain}
            comparison.per_group[label] = {
                "runs": [str(r.folder) for r in members],
                "seeds": [r.config.get("seed") for r in members],
                "source": sorted({r.source for r in members}),
                "sources": {
                    source: sum(r.source == source for r in members) for source in sorted({r.source for r in members})
                },
                "environments": sorted({r.environment for r in members}),
                "meta_batches": [r.length for r in members],
                "unfinished": [str(r.folder) for r in members if not r.finished],
                # each run's (or, with one run a group, each task's) values, so that a later analysis needs no run
                # folders
                "values": {name: [float(x) for x in arr] for name, arr in values[label].items()},
                **{
                    f"{name}_{stat}": value
                    for name, arr in values[label].items()
                    for stat, value in zip(("mean", "ci95"), mean_confidence_interval(arr))
                },
                **{f"{name}_iqm": iqm(arr) for name, arr in values[label].items()},
                **{f"{name}_iqm_ci95": list(bootstrap_ci(arr)) for name, arr in values[label].items()},
                **_progress_summary(members),
                **_curve_summary(members, level, drop),
                "config": group_settings(members),
            }
            if all(run.metrics for run in members):
                values[label][CURVE] = np.array([_training_curve(run).mean() for run in members])
                comparison.per_group[label]["values"][CURVE] = [float(x) for x in values[label][CURVE]]
        for a, b in combinations(comparison.groups if not single else [], 2):
            if comparison.per_group[a]["environments"] != comparison.per_group[b]["environments"]:
                continue  # returns of different task families are not comparable
            for measure in (*MEASURES, CURVE):
                if measure not in values[a] or measure not in values[b]:
                    continue
                x, y = values[a][measure], values[b][measure]
                comparison.tests.append(
                    {
                        "groups": [a, b],
                        "measure": measure,
                        **welch(x, y),
                        **brown_forsythe(x, y),
                        "probability_of_improvement": probability_of_improvement(x, y),
                        "probability_of_improvement_ci95": list(probability_of_improvement_ci(x, y)),
                        "detectable_g": detectable_effect(len(x), len(y)),
                    }
                )
        return comparison

    def pooled(self) -> list[str]:
        """What each group pooled, as Markdown lines: its runs, seeds, environment, run lengths and the source of
        its returns; and a note where groups are not comparable or not testable."""
        lines = [
            "What each group pools:",
            "",
            "| group | runs (seeds) | environment | meta-batches per run | returns from |",
            "|---|---|---|---|---|",
        ]
        for label, members in self.groups.items():
            g = self.per_group[label]
            lengths = ", ".join(r.length_text() for r in members)
            sources = "; ".join(f"{source}: {count}" for source, count in g["sources"].items())
            if len(g["sources"]) > 1:
                sources += " (mixed)"
            seeds = ", ".join(str(seed) for seed in g["seeds"])
            lines.append(
                f"| {label} | {len(members)} ({seeds}) | {', '.join(g['environments'])} | {lengths} | {sources} |"
            )
        lines.append("")
        environments = {tuple(g["environments"]) for g in self.per_group.values()}
        if len(environments) > 1:
            lines += [
                "The groups run on different environments; no test compares groups of different environments "
                "(their returns are on different scales).",
                "",
            ]
        few = [label for label, g in self.per_group.items() if len(g["seeds"]) < 2]
        if few and self.ci_over == "seeds":
            lines += [
                f"{', '.join(few)}: one seed, so no confidence interval over seeds and no Welch's test "
                "(each needs at least two seeds per group); such cells read —.",
                "",
            ]
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "ci_over": self.ci_over,
            "level": self.level,
            "drop": self.drop,
            "groups": self.per_group,
            "tests": self.tests,
        }

    def to_markdown(self) -> str:
        lines = [
            *self.pooled(),
            "| group | seeds | return before adaptation | post-adaptation return | adaptation gain (after − before) |",
            "|---|---|---|---|---|",
        ]
        for label, g in self.per_group.items():
            lines.append(
                f"| {label} | {len(g['seeds'])} | "
                + " | ".join(_plus_minus(g[f"{m}_mean"], g[f"{m}_ci95"]) for m in MEASURES)
                + " |"
            )
        if self.ci_over == "tasks":
            lines += [
                "",
                "One run per group: mean over the evaluation tasks ± 95% confidence interval over tasks "
                "(Student t); with one seed per group, no test between groups.",
                "",
            ]
        else:
            lines += ["", "Mean ± 95% confidence interval over seeds (Student t).", ""]
        lines += [
            "Interquartile mean (the mean of the middle half of the runs; Agarwal et al. 2021) with its 95% "
            f"percentile-bootstrap CI over {self.ci_over}:",
            "",
            "| group | return before adaptation | post-adaptation return | adaptation gain |",
            "|---|---|---|---|",
            *(
                f"| {label} | " + " | ".join(_interval(g[f"{m}_iqm"], g[f"{m}_iqm_ci95"]) for m in MEASURES) + " |"
                for label, g in self.per_group.items()
            ),
            "",
        ]
        progress = {label: g for label, g in self.per_group.items() if "training_first_mean" in g}
        if progress:
            lines += [
                "Meta-training progress: the post-adaptation return of the training meta-batches, averaged over "
                "the first and the last tenth of them, per run; mean ± 95% CI over seeds.",
                "",
                "| group | meta-batches | first tenth | last tenth | change (last − first) |",
                "|---|---|---|---|---|",
            ]
            for label, g in progress.items():
                lines.append(
                    f"| {label} | {g['training_meta_batches']} | "
                    + " | ".join(_plus_minus(g[f"training_{m}_mean"], g[f"training_{m}_ci95"]) for m in PROGRESS)
                    + " |"
                )
            lines.append("")
        lines += self._curve_lines()
        if self.tests:
            lines += [
                "Between groups A vs B, on before, after and gain and, where every run has its training metrics, on "
                "the mean over meta-batches of the post-adaptation training return (the area under the learning "
                "curve): Welch's t-test, Hedges' g (A − B), the probability of improvement P(A > B) "
                "(a run of A beats a run of B; 0.5: no difference) with its 95% bootstrap CI, the smallest g "
                "these seeds detect with 80% power at α = 0.05 (a p above 0.05 rules out no effect smaller than it), "
                "and the Brown–Forsythe test of equal spread over seeds (its p; small: one group varies more).",
                "",
                "| comparison | measure | Welch's t | p | Hedges' g | P(A > B) | detectable g | spread p |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for t in self.tests:
                lines.append(
                    f"| {t['groups'][0]} vs {t['groups'][1]} | {t['measure']} | {_number(t['t'], '.2f')} | "
                    f"{_number(t['p'], '.3g')} | {_number(t['hedges_g'], '.2f')} | "
                    f"{_interval(t['probability_of_improvement'], t['probability_of_improvement_ci95'])} | "
                    f"{_number(t['detectable_g'], '.2f')} | {_number(t['brown_forsythe_p'], '.3g')} |"
                )
        return "\n".join(lines) + "\n"

    def _curve_lines(self) -> list[str]:
        """The learning-speed and stability table (Markdown lines), where runs have training curves."""
        curves = {label: g for label, g in self.per_group.items() if "curve_mean_mean" in g}
        if not curves:
            return []
        level, drop = self.level, self.drop
        timed = all("seconds_per_batch" in g for g in curves.values())
        head = ["group", "mean over meta-batches"] + (["s per meta-batch (outer step)"] if timed else [])
        if level is not None:
            head += [f"first meta-batch above {level:g} (per run)", f"runs above {level:g}"]
        if drop is not None:
            head += [f"fall-backs by more than {drop:g} (per run)", "deepest fall (per run)"]
        lines = [
            "Learning speed and stability of the post-adaptation training return (one value per meta-batch): its "
            "mean over the meta-batches (the area under the curve over its length; mean ± 95% CI over seeds)"
            + (f", the first meta-batch above {level:g}" if level is not None else "")
            + (
                f", and how often it falls back more than {drop:g} below the run's best so far (a fall-back ends "
                "within that distance of the best again) with the deepest fall below the best so far"
                if drop is not None
                else ""
            )
            + "; — : never."
            + (
                " Wall clock: seconds per meta-batch and, in brackets, of its outer step (TRPO or PPO), mean over "
                "every meta-batch of the group's runs, as each run timed itself (on whatever else the machine ran)."
                if timed
                else ""
            ),
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for label, g in curves.items():
            row = [label, _plus_minus(g["curve_mean_mean"], g["curve_mean_ci95"])]
            if timed:
                outer = g.get("outer_step_seconds")
                row.append(f"{g['seconds_per_batch']:.1f}" + (f" ({outer:.1f})" if outer is not None else ""))
            if level is not None:
                row += [", ".join("—" if x is None else str(x) for x in g["first_above"]), _count(g["first_above"])]
            if drop is not None:
                row += [", ".join(str(x) for x in g["fall_backs"]), ", ".join(f"{x:.1f}" for x in g["deepest_fall"])]
            lines.append("| " + " | ".join(row) + " |")
        return [*lines, ""]


def _count(firsts: list[int | None]) -> str:
    return f"{sum(x is not None for x in firsts)} of {len(firsts)}"


def _training_curve(run: RunRecord) -> np.ndarray:
    """The run's post-adaptation training return, one value per meta-batch."""
    return np.array([row["returns_after"] for row in run.metrics])


def _curve_summary(members: list[RunRecord], level: float | None, drop: float | None) -> dict[str, Any]:
    """Per group, over the runs with metrics: ``curve_mean_{mean,ci95}`` (each run's mean post-adaptation training
    return), the mean seconds per meta-batch and per outer step where every row records them, and with ``level`` /
    ``drop`` each run's first meta-batch above it and its fall-backs."""
    curves = [_training_curve(run) for run in members if run.metrics]
    if not curves:
        return {}
    summary: dict[str, Any] = {}
    summary["curve_mean_mean"], summary["curve_mean_ci95"] = mean_confidence_interval([c.mean() for c in curves])
    rows = [row for run in members for row in run.metrics]
    for key, name in (("seconds", "seconds_per_batch"), ("time_trpo", "outer_step_seconds")):
        if all(key in row for row in rows):
            summary[name] = float(np.mean([row[key] for row in rows]))
    if level is not None:
        summary["first_above"] = [first_above(c, level) for c in curves]
    if drop is not None:
        falls = [fall_backs(c, drop) for c in curves]
        summary["fall_backs"] = [n for n, _ in falls]
        summary["deepest_fall"] = [depth for _, depth in falls]
    return summary


def _number(value: float, spec: str) -> str:
    """``value`` formatted, or — where it is undefined (NaN: one seed, or no spread)."""
    return "—" if math.isnan(value) else format(value, spec)


def _interval(value: float, ci: list[float]) -> str:
    """``value [low, high]``, or the value alone where the interval is undefined."""
    if any(math.isnan(c) for c in ci):
        return _number(value, ".2f")
    return f"{value:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def _plus_minus(mean: float, ci: float) -> str:
    """``mean ± ci``, or the mean alone where one seed gives no interval."""
    return f"{mean:.2f}" if math.isnan(ci) else f"{mean:.2f} ± {ci:.2f}"


PROGRESS = ("first", "last", "change")
"""Per run: the training post-adaptation return over the first and last tenth of meta-batches, and the change."""


def _progress_summary(members: list[RunRecord]) -> dict[str, Any]:
    """``training_{first,last,change}_{mean,ci95}`` over the runs with metrics (CI over seeds), and
    ``training_meta_batches`` (the shortest run's length); empty if no run has metrics."""
    pairs = [p for p in (r.training_progress() for r in members) if p is not None]
    if not pairs:
        return {}
    first, last = np.array(pairs).T
    summary: dict[str, Any] = {"training_meta_batches": min(len(r.metrics) for r in members if r.metrics)}
    for name, arr in zip(PROGRESS, (first, last, last - first)):
        summary[f"training_{name}_mean"], summary[f"training_{name}_ci95"] = mean_confidence_interval(arr)
    return summary


def _new_figure(size: tuple[float, float]):
    fig = Figure(figsize=size)  # no pyplot: works headless and inside notebooks alike
    return fig, fig.add_subplot()


FEW_POINTS = 20
"""Curves of at most this many points get markers: a one-point line is invisible."""


def _marker(points: int) -> str | None:
    return "o" if points <= FEW_POINTS else None


def _integer_ticks(ax) -> None:
    """Meta-batches and steps are counted: no 0.5 ticks on a two-point axis."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


BAND_SEEDS = 5
"""With at least this many seeds a group's spread is drawn as a bootstrap band; with fewer, each seed is drawn as
its own thin line (a band from two or three seeds says little, and a t-band leaves the data's range)."""


def _draw(
    ax, x: np.ndarray, curves: np.ndarray, colour: str, style: str = "-", label: str | None = None, alpha: float = 1.0
) -> None:
    """A group's mean curve over its seeds (first axis of ``curves``), with its spread: each seed as a thin line
    below :data:`BAND_SEEDS` seeds, else the 95% percentile-bootstrap band of the mean (inside the data's range)."""
    if len(curves) >= BAND_SEEDS:
        low, high = bootstrap_band(curves)
        ax.fill_between(x, low, high, color=colour, alpha=0.15 * alpha, linewidth=0)
    elif len(curves) > 1:
        for curve in curves:
            ax.plot(x, curve, style, color=colour, linewidth=0.6, alpha=0.35 * alpha, label="_seed")
    ax.plot(x, curves.mean(0), style, color=colour, marker=_marker(len(x)), alpha=alpha, label=label)


def _finish(fig: Figure, ax, xlabel: str, ylabel: str, title: str, path: Path | None) -> Figure:
    """Labels, integer ticks on x, the legend beside the axes (never over the data); saved to ``path`` if given."""
    ax.set_xlabel(xlabel)
    _integer_ticks(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # beside, not over, the data
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def _spread(groups: dict[str, list[RunRecord]], what: str = "bands") -> str:
    """What the figure draws around each group's mean: thin lines, bootstrap bands, or nothing (one seed)."""
    seeds = [len(members) for members in groups.values()]
    if max(seeds) < 2:
        return f"one seed per group: no {what}"
    if max(seeds) < BAND_SEEDS:
        return "thin lines: each seed"
    if min(seeds) >= BAND_SEEDS:
        return f"{what}: 95% bootstrap CI of the mean over seeds"
    return f"{what}: 95% bootstrap CI over seeds ({BAND_SEEDS}+ seeds); thin lines: each seed (fewer)"


def plot_learning_curves(groups: dict[str, list[RunRecord]], path: Path | None = None, against: str = "meta-batch"):
    """Returns before (dashed) and after (solid) adaptation per meta-batch, mean over seeds with their spread;
    ``against="env-steps"`` puts the environment steps sampled so far on x instead (the mean over the group's
    seeds of their cumulative ``env_steps``), which compares groups that sample differently per meta-batch.

    Saves the figure to ``path`` if given; returns it."""
    if against not in ("meta-batch", "env-steps"):
        raise ValueError(f"against must be 'meta-batch' or 'env-steps', got {against!r}")
    fig, ax = _new_figure((9, 4.2))
    for i, (label, members) in enumerate(groups.items()):
        length = min(len(r.metrics) for r in members)
        if length == 0:
            continue
        colour = f"C{i}"
        x = np.arange(length)
        if against == "env-steps":
            steps = np.array([[row["env_steps"] for row in r.metrics[:length]] for r in members], dtype=float)
            x = steps.cumsum(1).mean(0)
        for key, style, name in (("returns_after", "-", "after"), ("returns_before", "--", "before")):
            curves = np.array([[row[key] for row in r.metrics[:length]] for r in members], dtype=float)
            _draw(ax, x, curves, colour, style, f"{label} ({name})")
    fig = _finish(
        fig,
        ax,
        "meta-batch" if against == "meta-batch" else "environment steps sampled (train and valid episodes)",
        "mean episode return",
        f"Returns before (dashed) and after (solid) adaptation\n{_spread(groups, 'bands')}",
        None,
    )
    if against == "env-steps":
        ax.xaxis.set_major_locator(MaxNLocator())  # steps are not few integers: plain ticks, millions at the axis end
        ax.ticklabel_format(axis="x", style="sci", scilimits=(6, 6))
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def _records_env_steps(groups: dict[str, list[RunRecord]]) -> bool:
    """Whether every run with metrics records its environment steps per meta-batch."""
    rows = [row for members in groups.values() for r in members for row in r.metrics]
    return bool(rows) and all("env_steps" in row for row in rows)


def plot_adaptation_curves(groups: dict[str, list[RunRecord]], path: Path | None = None):
    """Return vs number of adaptation steps (from test.py), mean ± 95% CI over seeds.

    Returns the figure (saved to ``path`` if given), or ``None`` if no run was evaluated with test.py."""
    fig, ax = _new_figure((7, 4))
    drawn = False
    for i, (label, members) in enumerate(groups.items()):
        evaluated = [r for r in members if r.returns is not None]
        if not evaluated:
            continue
        steps = min(r.returns.shape[1] for r in evaluated)
        curves = np.array([r.returns[:, :steps].mean(axis=(0, 2)) for r in evaluated])
        if len(curves) >= BAND_SEEDS:
            low, high = bootstrap_band(curves)
            mean = curves.mean(0)
            ax.errorbar(
                np.arange(steps),
                mean,
                yerr=[mean - low, high - mean],
                marker="o",
                capsize=3,
                color=f"C{i}",
                label=label,
            )
        else:
            _draw(ax, np.arange(steps), curves, f"C{i}", label=label)
            ax.lines[-1].set_marker("o")
        drawn = True
    if not drawn:
        return None
    return _finish(
        fig,
        ax,
        "adaptation steps",
        "mean episode return (fresh tasks)",
        f"Return after k inner steps\n{_spread(groups, 'bars')}",
        path,
    )


def plot_within_episode(groups: dict[str, list[RunRecord]], path: Path | None = None, step: int = 0):
    """Mean reward per time step before adaptation (``step`` = 0; k: after k inner steps), one line per group,
    mean ± 95% CI over seeds (from test.py's ``step_rewards``). A policy that infers its task from the rewards
    it gets shows a reward that rises within the first steps of an episode, before any gradient step.

    Returns the figure (saved to ``path`` if given), or ``None`` if no run has per-step rewards."""
    fig, ax = _new_figure((9, 4.2))
    drawn = False
    for i, (label, members) in enumerate(groups.items()):
        evaluated = [r for r in members if r.step_rewards is not None and r.step_rewards.shape[1] > step]
        if not evaluated:
            continue
        horizon = min(r.step_rewards.shape[2] for r in evaluated)
        curves = np.array([np.nanmean(r.step_rewards[:, step, :horizon], axis=0) for r in evaluated])
        _draw(ax, np.arange(horizon), curves, f"C{i}", label=label)
        drawn = True
    if not drawn:
        return None
    when = "before adaptation" if step == 0 else f"after {step} inner step(s)"
    return _finish(
        fig,
        ax,
        "time step within the episode",
        "mean reward (fresh tasks)",
        f"Reward per time step {when}\n{_spread(groups, 'bands')}",
        path,
    )


DIAGNOSTICS = (
    (("episode_length_before", "episode_length_after"), "episode length (steps)"),
    (("terminated_fraction_before", "terminated_fraction_after"), "episodes terminated early"),
    (("action_magnitude_before", "action_magnitude_after"), "mean |action| / bound"),
    (("action_saturation_before", "action_saturation_after"), "action components clipped"),
    *(((f"reward_{term}_before", f"reward_{term}_after"), f"{title} / step") for term, title in REWARD_TERMS.items()),
    (("kl_after",), "KL of the outer step"),
    (("ls_steps",), "line-search backtracks"),
)
"""Panels of the diagnostics figure: the ``metrics.jsonl`` keys drawn in each (a ``*_before`` key dashed, its
``*_after`` key solid) and its title; one panel per reward term of :data:`maml_rl.envs.rewards.REWARD_TERMS`."""


def _logged(runs: list[RunRecord], key: str) -> list[RunRecord]:
    """The runs whose every meta-batch records ``key``."""
    return [r for r in runs if r.metrics and all(key in row for row in r.metrics)]


def plot_diagnostics(groups: dict[str, list[RunRecord]], path: Path | None = None):
    """One panel per training diagnostic of ``metrics.jsonl`` (episode length, early terminations, action size and
    clipping, each reward term: dashed before adaptation, solid after; the outer step's KL and line-search
    backtracks) against the meta-batch, one colour per group, mean ± 95% CI over seeds. The evidence to read when a
    task does not learn.

    Returns the figure (saved to ``path`` if given), or ``None`` if no run records any of them."""
    runs = [r for rs in groups.values() for r in rs]
    present = [(keys, title) for keys, title in DIAGNOSTICS if _logged(runs, keys[0])]
    if not present:
        return None
    columns = min(len(present), 4)
    rows = -(-len(present) // columns)
    fig = Figure(figsize=(3.4 * columns, 2.6 * rows + 0.3))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (keys, title) in zip(axes, present):
        values = [
            row[key] for key in keys for members in groups.values() for r in _logged(members, key) for row in r.metrics
        ]
        if np.ptp(np.asarray(values, dtype=float)) == 0:  # no line to read: say what it is
            ax.text(
                0.5,
                0.5,
                f"{values[0]:g} in every meta-batch",
                ha="center",
                va="center",
                fontsize=8,
                transform=ax.transAxes,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title} (constant)", fontsize=9)
            continue
        for i, (label, members) in enumerate(groups.items()):
            for key in keys:
                logged = _logged(members, key)
                if not logged:
                    continue
                length = min(len(r.metrics) for r in logged)
                curves = np.array([[row[key] for row in r.metrics[:length]] for r in logged], dtype=float)
                before = key.endswith("_before")
                _draw(
                    ax,
                    np.arange(length),
                    curves,
                    f"C{i}",
                    "--" if before else "-",
                    None if before and len(keys) > 1 else label,
                    alpha=0.6 if before else 1.0,
                )
        ax.set_title(title, fontsize=9)
        _integer_ticks(ax)
        ax.tick_params(labelsize=7)
    for ax in axes[len(present) :]:
        ax.set_visible(False)
    handles = {}  # one entry per group, from whichever panels drew it (a constant panel draws none)
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(text, handle)
    if handles:  # beside the panels, never over the data
        fig.legend(list(handles.values()), list(handles), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    paired = any(len(keys) > 1 for keys, _ in present)
    fig.suptitle(("dashed: before adaptation, solid: after; " if paired else "") + _spread(groups, "bands"), fontsize=9)
    fig.supxlabel("meta-batch", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig


def plot_before_after(comparison: Comparison, path: Path | None = None):
    """Per group: the return before and after adaptation, mean ± 95% CI over seeds."""
    fig, ax = _new_figure((5, 4))
    labels = list(comparison.groups)
    for i, label in enumerate(labels):
        pairs = np.array([run.before_after() for run in comparison.groups[label]])
        for j, name in enumerate(("before", "after")):
            mean, half = mean_confidence_interval(pairs[:, j])
            ax.bar(
                i + (j - 0.5) * 0.38,
                mean,
                width=0.36,
                yerr=0 if np.isnan(half) else half,
                capsize=3,
                color=f"C{i}",
                alpha=0.45 if name == "before" else 0.9,
                label=name if i == 0 else None,
            )
    ax.set_xticks(
        range(len(labels)),
        labels,
        fontsize=8,
        rotation=20 if len(labels) > 3 else 0,
        ha="right" if len(labels) > 3 else "center",
    )
    ax.set_ylabel("mean episode return")
    ax.set_title("before (light) and after (dark) adaptation", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def save_records(runs: list[RunRecord], folder: str | Path) -> list[Path]:
    """Saves each run as a run record in ``folder``/<its parent folder's name>/<its folder's name>, so that
    ``runs/plasticity/x-seed1`` becomes ``folder/plasticity/x-seed1``; returns the records written.

    A record already there is kept (records are written once, when a run is finished), and a record given as a
    run is its own record; two runs that would share a record are refused, since one would hide the other.
    """
    targets = [Path(folder) / run.folder.resolve().parent.name / run.folder.name for run in runs]
    twice = sorted({str(t) for t in targets if targets.count(t) > 1})
    if twice:
        raise ValueError(f"--save-records: two runs would be saved as {', '.join(twice)}; rename one")
    written = []
    for run, target in zip(runs, targets):
        if target.resolve() == run.folder.resolve() or (target / RECORD).exists():
            continue
        if target.exists():
            raise ValueError(f"--save-records: {target} exists and is not a run record; move it away first")
        written.append(run.save(target))
    return written


def write_comparison(
    run_folders: list[str | Path],
    output_folder: str | Path,
    allow_unequal: bool = False,
    level: float | None = None,
    drop: float | None = None,
    records: str | Path | None = None,
) -> Comparison:
    """Writes comparison.md, comparison.json, learning_curves.png (and learning_curves_steps.png, against
    environment steps, where the runs record them), diagnostics.png (where the runs record the
    training diagnostics) and, for runs evaluated by test.py, adaptation_curves.png and within_episode.png
    (``level``, ``drop``: see :meth:`Comparison.of`). With ``records``, each run is also saved there as a run
    record (:func:`save_records`); a record already there is left as it is."""
    runs = [RunRecord.load(f) for f in run_folders]
    comparison = Comparison.of(runs, allow_unequal, level, drop)
    if records is not None:
        save_records(runs, records)
    out = Path(output_folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(comparison.to_markdown(), encoding="utf-8")
    (out / "comparison.json").write_text(json.dumps(comparison.to_json(), indent=2) + "\n", encoding="utf-8")
    plot_learning_curves(comparison.groups, out / "learning_curves.png")
    if _records_env_steps(comparison.groups):
        plot_learning_curves(comparison.groups, out / "learning_curves_steps.png", against="env-steps")
    plot_adaptation_curves(comparison.groups, out / "adaptation_curves.png")
    plot_within_episode(comparison.groups, out / "within_episode.png")
    plot_diagnostics(comparison.groups, out / "diagnostics.png")
    return comparison
