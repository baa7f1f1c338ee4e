"""95% confidence intervals by bootstrapping over problems.

Why a bootstrap over problems: every number we compare (accuracy, pass@1, maj@n, the gain of a
strategy over pass@1) is a mean of one value per problem, and problems are the unit that was
sampled from the task. Resampling problems with replacement gives the spread that a different
draw of problems would show (Efron & Tibshirani 1993, percentile interval).

Why paired for gains: two strategies run on the same problems share each problem's difficulty.
Resampling the per-problem *differences* keeps that pairing, so the interval of a gain is much
narrower than one from resampling the two accuracies independently (Koehn 2004's paired
bootstrap for MT). A gain whose paired interval excludes 0 is one the problems support.

Deterministic: a fixed ``seed`` gives the same interval every run, and the same seed reused for
every point of a curve resamples the same problem sets (common random numbers), so neighbouring
points are compared on equal draws.

Where we depart from the plain percentile bootstrap: when every value is 0 (0 of 64 right) or
every value is 1, every resample has the same mean and the interval would collapse to a point,
claiming certainty that 64 problems cannot give. There the interval is Wilson's score interval
for 0 (or n) successes of n, ``[0, z^2 / (n + z^2)]`` (about 3.8/n: the rule of three's cousin).
Gains (differences, in [-1, 1]) get no such fallback: an all-zero difference stays [0, 0].
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


def bootstrap_means(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Means of ``resamples`` resamples (with replacement) of ``values``: shape (resamples,)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"bootstrap needs a non-empty 1-D sequence, got shape {x.shape}")
    idx = np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))
    return x[idx].mean(axis=1)


def bootstrap_ci(values: Sequence[float], *, level: float = LEVEL, resamples: int = RESAMPLES,
                 seed: int = 0) -> tuple[float, float] | None:
    """Percentile interval of the mean of per-problem ``values`` (Wilson's at an all-0 or all-1
    boundary); None when there are none."""
    if len(values) == 0:
        return None
    x = np.asarray(values, dtype=np.float64)
    if np.all(x == 0) or np.all(x == 1):  # a boundary: the bootstrap cannot see any spread
        z2 = NormalDist().inv_cdf((1 + level) / 2) ** 2
        edge = z2 / (x.size + z2)
        return (0.0, edge) if x[0] == 0 else (1.0 - edge, 1.0)
    return _percentile(x, level, resamples, seed)


def paired_bootstrap_ci(x: Sequence[float], y: Sequence[float], *, level: float = LEVEL,
                        resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float] | None:
    """Interval of mean(x) - mean(y) where x[i] and y[i] belong to the same problem i."""
    if len(x) != len(y):
        raise ValueError(f"paired bootstrap needs one value per problem in both, got {len(x)} and {len(y)}")
    if len(x) == 0:
        return None
    return _percentile(np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64), level, resamples, seed)


def _percentile(values: np.ndarray, level: float, resamples: int, seed: int) -> tuple[float, float]:
    lo, hi = np.quantile(bootstrap_means(values, resamples=resamples, seed=seed), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def rounded(ci: tuple[float, float] | None, digits: int = 4) -> list[float] | None:
    """A JSON-friendly ``[lo, hi]``."""
    return None if ci is None else [round(ci[0], digits), round(ci[1], digits)]
