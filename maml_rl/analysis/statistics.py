"""The statistics of comparisons: confidence intervals, Welch's t-test and Hedges' g (scipy.stats)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


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


def band(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the first axis (seeds) and the 95% CI half-width (zero for one seed)."""
    mean = curves.mean(0)
    if len(curves) < 2:
        return mean, np.zeros_like(mean)
    return mean, stats.t.ppf(0.975, len(curves) - 1) * stats.sem(curves, axis=0)
