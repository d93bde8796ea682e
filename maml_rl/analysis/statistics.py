"""The statistics of comparisons (scipy.stats): t confidence intervals, Welch's t-test and Hedges' g; the
interquartile mean with percentile-bootstrap CIs and the probability of improvement (Agarwal et al. 2021, "Deep
reinforcement learning at the edge of the statistical precipice"); the smallest effect a number of seeds detects;
the Brown–Forsythe test of equal spread; and a learning curve's speed and stability (the first point above a level,
its mean, its fall-backs from the best so far).

rliable, the reference implementation of Agarwal et al.'s statistics, installs but does not import beside pandas 3
(its ``arch`` dependency); these few functions follow its definitions with scipy's bootstrap."""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats


def mean_confidence_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval (NaN for fewer than two values)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * stats.sem(values)
    return mean, float(half)


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Standardised mean difference (a − b) with the pooled SD and Hedges' small-sample correction."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return float("nan")
    pooled = math.sqrt(((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2))
    if pooled == 0:
        return float("nan")
    correction = 1 - 3 / (4 * (na + nb) - 9)
    return float((np.mean(a) - np.mean(b)) / pooled * correction)


def welch(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Welch's t-test of a against b, and Hedges' g."""
    if len(a) < 2 or len(b) < 2:
        return {"t": float("nan"), "p": float("nan"), "hedges_g": float("nan")}
    result = stats.ttest_ind(a, b, equal_var=False)
    return {"t": float(result.statistic), "p": float(result.pvalue), "hedges_g": hedges_g(a, b)}


def brown_forsythe(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """The Brown–Forsythe test of equal variances (Brown & Forsythe 1974: Levene's test on the absolute deviations
    from each group's median, robust to heavy tails): its statistic and p; NaN where the deviations do not vary
    within the groups (fewer than three values each, or no spread)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    undefined = {"brown_forsythe": float("nan"), "brown_forsythe_p": float("nan")}
    deviations = [np.abs(x - np.median(x)) for x in (a, b)]
    # two values per group have equal deviations from their median: nothing varies within the groups
    if len(a) < 2 or len(b) < 2 or all(np.ptp(d) == 0 for d in deviations):
        return undefined
    result = stats.levene(a, b, center="median")
    return {"brown_forsythe": float(result.statistic), "brown_forsythe_p": float(result.pvalue)}


def first_above(curve: np.ndarray, level: float) -> int | None:
    """The 1-based index of the curve's first point strictly above ``level``, or ``None`` if it never gets there."""
    above = np.flatnonzero(np.asarray(curve, dtype=np.float64) > level)
    return int(above[0]) + 1 if len(above) else None


def fall_backs(curve: np.ndarray, drop: float) -> tuple[int, float]:
    """How often the curve falls back more than ``drop`` below its best value so far (a fall-back ends when it
    is within ``drop`` of that best again), and the deepest fall below the best so far (0 for a curve that never
    falls)."""
    curve = np.asarray(curve, dtype=np.float64)
    if len(curve) == 0:
        return 0, 0.0
    deficit = np.maximum.accumulate(curve) - curve
    down = deficit > drop
    starts = int(down[0]) + int(np.count_nonzero(down[1:] & ~down[:-1]))
    return starts, float(deficit.max())


CONFIDENCE = 0.95
RESAMPLES = 10_000
"""Bootstrap resamples of the intervals (percentile method, a fixed seed: the same runs give the same CIs)."""
BOOTSTRAP_SEED = 0


def iqm(values: np.ndarray) -> float:
    """The interquartile mean: the mean of the middle 50 % (Agarwal et al. 2021; scipy's trimmed mean)."""
    return float(stats.trim_mean(np.asarray(values, dtype=np.float64).ravel(), 0.25))


def bootstrap_ci(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap CI of the :func:`iqm` over the values (seeds: with one task, the stratified bootstrap
    of Agarwal et al. 2021 is this one); ``(nan, nan)`` for fewer than two values."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(values) < 2:
        return float("nan"), float("nan")
    result = stats.bootstrap(
        (values,),
        lambda v, axis=-1: stats.trim_mean(v, 0.25, axis=axis),
        vectorized=True,
        confidence_level=confidence,
        n_resamples=RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + ½ P(X = Y) for a run X of one group and a run Y of the other (Agarwal et al. 2021: the
    Mann-Whitney U statistic over all pairs, divided by their number)."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    greater = (x[:, None] > y[None, :]).mean()
    ties = (x[:, None] == y[None, :]).mean()
    return float(greater + 0.5 * ties)


def probability_of_improvement_ci(x: np.ndarray, y: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap CI of :func:`probability_of_improvement`, each group resampled on its own;
    ``(nan, nan)`` where a group has fewer than two runs."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if len(x) < 2 or len(y) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    xs = x[rng.integers(0, len(x), size=(RESAMPLES, len(x)))]
    ys = y[rng.integers(0, len(y), size=(RESAMPLES, len(y)))]
    greater = (xs[:, :, None] > ys[:, None, :]).mean((1, 2))
    ties = (xs[:, :, None] == ys[:, None, :]).mean((1, 2))
    low, high = np.quantile(greater + 0.5 * ties, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def detectable_effect(n1: int, n2: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest standardised difference (Cohen's d, ≈ Hedges' g) that a two-sided two-sample t-test on
    ``n1`` and ``n2`` runs detects with probability ``power`` at level ``alpha`` (the noncentral t
    distribution); NaN for fewer than two runs in a group."""
    if n1 < 2 or n2 < 2:
        return float("nan")
    df = n1 + n2 - 2
    critical = stats.t.ppf(1 - alpha / 2, df)
    scale = math.sqrt(n1 * n2 / (n1 + n2))

    def power_at(d: float) -> float:
        nc = d * scale
        upper, lower = stats.nct.sf(critical, df, nc), stats.nct.cdf(-critical, df, nc)
        return float(np.nan_to_num(upper, nan=1.0) + np.nan_to_num(lower, nan=0.0)) - power  # NaN: far in a tail

    return float(optimize.brentq(power_at, 1e-6, 20.0))


def bootstrap_band(
    curves: np.ndarray, confidence: float = CONFIDENCE, resamples: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """Per point of the curves (seeds on the first axis): the percentile bootstrap CI of the mean over seeds. Means
    of resampled seeds, so the band never leaves the range of the data."""
    curves = np.asarray(curves, dtype=np.float64)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(curves), size=(resamples, len(curves)))
    means = curves[picks].mean(1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    return low, high
