"""The two-level bootstrap of the report's intervals: its mean, its determinism, and its
coverage against a slow loop that resamples images, then seeds."""

from __future__ import annotations

import numpy as np
import pytest

from dip.report.stats import bootstrap


def _loop(groups, reps, rng):
    stats = []
    for _ in range(reps):
        images = rng.integers(len(groups), size=len(groups))
        stats.append(np.mean([rng.choice(groups[i], size=len(groups[i])).mean()
                              for i in images]))
    return np.quantile(stats, [0.025, 0.975])


def test_the_mean_is_of_the_images_means_and_the_interval_holds_it():
    groups = [[1.0, 2.0, 3.0], [10.0], [4.0, 6.0]]
    out = bootstrap(groups)
    assert out.mean == pytest.approx((2.0 + 10.0 + 5.0) / 3)
    assert out.lo <= out.mean <= out.hi and (out.images, out.seeds) == (3, 1)
    varied = [list(np.random.default_rng(k).normal(size=3)) for k in range(6)]
    assert bootstrap(varied) == bootstrap(varied)  # seeded
    assert bootstrap(varied, seed=1) != bootstrap(varied)


def test_it_agrees_with_a_loop_that_resamples_images_then_seeds():
    rng = np.random.default_rng(5)
    groups = [rng.normal(rng.normal(0, 1), 0.3, size=3) for _ in range(9)]
    lo, hi = _loop(groups, 20_000, np.random.default_rng(7))
    out = bootstrap(groups, reps=20_000)
    assert out.lo == pytest.approx(lo, abs=0.03) and out.hi == pytest.approx(hi, abs=0.03)


def test_degenerate_inputs():
    assert bootstrap([[2.0]]).text() == "2.00 [2.00, 2.00]"
    assert np.isnan(bootstrap([]).mean)
    one = bootstrap([[1.0, 3.0]])  # one image: the seeds alone vary
    assert (one.lo, one.hi) == (1.0, 3.0)
