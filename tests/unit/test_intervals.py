"""Bootstrap intervals: coverage on a known binomial, paired vs unpaired width, determinism."""

import numpy as np
import pytest

from reasonlab.eval.intervals import bootstrap_ci, bootstrap_means, paired_bootstrap_ci
from reasonlab.eval.metrics import metric_intervals


def test_interval_covers_a_known_binomial_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(123)
    p, n, trials = 0.3, 100, 300
    hits, widths = 0, []
    for t in range(trials):
        values = (rng.random(n) < p).astype(float)
        lo, hi = bootstrap_ci(values, resamples=1000, seed=t)
        hits += lo <= p <= hi
        widths.append(hi - lo)
    assert 0.90 <= hits / trials <= 0.99
    # the normal-approximation width 2 * 1.96 * sqrt(p (1 - p) / n) = 0.18
    assert np.mean(widths) == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / n), rel=0.1)


def test_paired_interval_of_a_gain_is_narrower_than_unpaired():
    rng = np.random.default_rng(0)
    base = (rng.random(200) < 0.4).astype(float)
    better = base.copy()
    better[rng.choice(np.flatnonzero(base == 0), 16, replace=False)] = 1.0  # +0.08 on the same problems
    lo, hi = paired_bootstrap_ci(better, base)
    assert 0 < lo < 0.08 < hi
    unpaired = bootstrap_means(better, seed=1) - bootstrap_means(base, seed=2)
    u_lo, u_hi = np.quantile(unpaired, [0.025, 0.975])
    assert u_lo < 0 < u_hi  # independent resampling cannot see the same gain
    assert (hi - lo) < 0.5 * (u_hi - u_lo)


def test_intervals_are_deterministic_per_seed_and_handle_edges():
    values = [1, 0, 0, 1, 1, 0, 1, 0, 0, 0]
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    graded = np.random.default_rng(0).random(30)  # continuous, so two seeds' quantiles differ
    assert bootstrap_ci(graded, seed=7) != bootstrap_ci(graded, seed=8)
    lo, hi = bootstrap_ci(values)
    assert lo < 0.4 < hi
    assert bootstrap_ci([]) is None
    lo, hi = bootstrap_ci([0.0] * 8)  # 0 of 8 is not certainty: Wilson's bound, 1.96^2 / (8 + 1.96^2)
    assert lo == 0.0 and hi == pytest.approx(0.3244, abs=1e-4)
    assert bootstrap_ci([1] * 8) == pytest.approx((1 - 0.3244, 1.0), abs=1e-4)
    assert paired_bootstrap_ci([1, 0, 1], [1, 0, 1]) == (0.0, 0.0)  # a difference gets no fallback
    with pytest.raises(ValueError, match="one value per problem"):
        paired_bootstrap_ci([1, 0], [1])


def test_metric_intervals_for_eval_summaries():
    out = metric_intervals({"pass@1": [0.5, 0.25, 1.0, 0.0], "maj@4": [1, 0, 1, 0]})
    assert set(out) == {"pass@1", "maj@4"}
    for (lo, hi), mean in zip(out.values(), [0.4375, 0.5]):
        assert 0 <= lo < mean < hi <= 1
    assert out == metric_intervals({"pass@1": [0.5, 0.25, 1.0, 0.0], "maj@4": [1, 0, 1, 0]})
