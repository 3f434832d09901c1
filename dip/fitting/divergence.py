"""When a fit has diverged: the test of its final output, which needs no ground truth.

A run whose parameters blow up ends with an output that fits its own observation
worse than a flat image would, and worse than where the fit started (for instance
``fit.lr=1e6``: about 5 dB against the flat image's 10.6 dB on a smooth 64² image).
:func:`dip.fitting.loop.fit` and the grouped engine (:mod:`dip.fitting.batched`) give such runs the
status 'diverged'; the backtracking guard (:mod:`dip.fitting.monitors`) catches sudden drops
during the fit.
"""

from __future__ import annotations

import pandas as pd
import torch

from dip.problems.metrics import psnr
from dip.problems.problem import Problem

__all__ = ["worse_than_flat", "first_fit_db", "FLAT_MARGIN_DB"]

FLAT_MARGIN_DB = 3.0
"""dB by which a final output may fit the observation worse than the best flat image
before its run counts as diverged (:func:`worse_than_flat`)."""


def worse_than_flat(problem: Problem, output: torch.Tensor,
                    margin_db: float = FLAT_MARGIN_DB, start_db: float | None = None) -> bool:
    """Whether ``output`` fits the observation worse than the best flat image (and worse
    than the fit started): the test of a diverged run.

    Needs no ground truth, so it holds for every task. With A the (linear) operator,
    y the observation and 1 the all-ones image of the output's shape, the best flat
    image c has in each channel k the least-squares constant

        c_k = ⟨(A1)_k, y_k⟩ / ⟨(A1)_k, (A1)_k⟩

    (the mean over the known pixels for inpainting, the plain mean for denoising and SR),
    and the output is worse than flat when

        PSNR(A f, y) < PSNR(A c, y) − margin_db  and  PSNR(A f, y) < start_db.

    The second condition keeps a short fit of a dark, low-contrast image, whose flat
    image is close to the observation and whose output has not yet gone far from its
    start, from counting as diverged; a run that blows up ends below where it started.

    Parameters
    ----------
    problem : Problem
        Observation and operator (``output`` is moved to their device).
    output : torch.Tensor
        The network output f, 1×C×H×W.
    margin_db : float
        Tolerance in dB (:data:`FLAT_MARGIN_DB`).
    start_db : float, optional
        PSNR(A f₀, y) of the first output (the history's first ``psnr_obs``); None
        leaves the second condition out.

    Returns
    -------
    bool
        True when the output is worse than flat by more than ``margin_db`` and worse than
        ``start_db``, or is not finite.
    """
    if not bool(torch.isfinite(output).all()):
        return True
    fit_db, flat_db = _fit_and_flat_db(problem, output)
    return fit_db < flat_db - margin_db and (start_db is None or fit_db < start_db)


def first_fit_db(history: pd.DataFrame) -> float | None:
    """The first recorded PSNR(A f, y) of a fit's history (None without one)."""
    if "psnr_obs" not in history or history.empty:
        return None
    return float(history["psnr_obs"].iloc[0])


def _fit_and_flat_db(problem: Problem, output: torch.Tensor) -> tuple[float, float]:
    """PSNR(A f, y) and PSNR(A c, y) of :func:`worse_than_flat`."""
    y, op = problem.observation, problem.operator
    with torch.no_grad():
        out = output.detach().to(y.device)
        a1 = op(torch.ones_like(out)).double()
        norm = (a1 * a1).sum(dim=(0, 2, 3))
        c = (a1 * y.double()).sum(dim=(0, 2, 3)) / norm.where(norm > 0, 1.0)  # 0 if A1 = 0
        flat = op(c.to(out.dtype).view(1, -1, 1, 1).expand_as(out).contiguous())
        return psnr(y, op(out)), psnr(y, flat)
