"""Intervals over images and seeds: the two-level bootstrap every reported mean uses.

A number of the report (a table's mean row, a claim's measured difference) is a mean over
images of the mean over each image's seeds. Its uncertainty has two sources: which images
were drawn, and which seeds. :func:`bootstrap` resamples both, the images with replacement
and then, within each drawn image, its seeds with replacement, and gives the percentile
interval of the mean. It is seeded, so the same numbers give the same interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Interval", "bootstrap", "per_image", "REPS", "LEVEL", "SEED"]

REPS = 10_000
"""Bootstrap resamples."""
LEVEL = 0.95
"""Coverage of the interval."""
SEED = 0
"""Seed of the resampling."""


@dataclass(frozen=True)
class Interval:
    """A mean over images (of the mean over each image's seeds) and its bootstrap interval.

    ``images`` and ``seeds`` say what it rests on (seeds: the fewest any image has);
    ``lo`` = ``hi`` = ``mean`` when there is a single image with a single seed."""

    mean: float
    lo: float
    hi: float
    images: int
    seeds: int

    def text(self, digits: int = 2) -> str:
        """'1.23 [0.98, 1.47]'."""
        return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def per_image(values: pd.DataFrame, value: str = "value", image: str = "image") -> list:
    """The values of each image (a list of arrays, one per image, NaNs dropped; images
    without a value left out), from a long frame with one row per image and seed."""
    groups = values.groupby(image, sort=True)[value]
    out = [g.dropna().to_numpy(dtype=float) for _, g in groups]
    return [v for v in out if v.size]


def bootstrap(groups: list, reps: int = REPS, level: float = LEVEL,
              seed: int = SEED) -> Interval:
    """The mean over images of each image's mean over seeds, and its two-level bootstrap
    interval.

    Parameters
    ----------
    groups : list of array-like
        One array per image: its values, one per seed (e.g. DIP − baseline per seed).
    reps, level, seed : int, float, int
        Resamples, coverage, and the seed of the resampling.

    Returns
    -------
    Interval
        NaN everywhere when there is no value.
    """
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups:
        return Interval(float("nan"), float("nan"), float("nan"), 0, 0)
    counts = np.array([g.size for g in groups])
    table = np.full((len(groups), counts.max()), np.nan)
    for i, g in enumerate(groups):
        table[i, :g.size] = g
    mean = float(np.mean([g.mean() for g in groups]))
    if len(groups) == 1 and counts[0] == 1:
        return Interval(mean, mean, mean, 1, 1)
    rng = np.random.default_rng(seed)
    stats = np.empty(reps)
    chunk = max(1, 2_000_000 // (len(groups) * counts.max()))
    for start in range(0, reps, chunk):
        n = min(chunk, reps - start)
        images = rng.integers(len(groups), size=(n, len(groups)))
        picks = (rng.random((n, len(groups), counts.max())) *
                 counts[images][..., None]).astype(int)
        drawn = table[images[..., None], picks]  # n × images × seeds
        kept = np.arange(counts.max()) < counts[images][..., None]
        seed_means = np.where(kept, drawn, 0).sum(-1) / counts[images]
        stats[start:start + n] = seed_means.mean(-1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(stats, [tail, 1 - tail])
    return Interval(mean, float(lo), float(hi), len(groups), int(counts.min()))
