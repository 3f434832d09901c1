"""Fitting: θ* = argmin_θ E(A f_θ(z), x̂) for one run (:func:`fit`) or many at once
(:mod:`dip.fitting.batched`).

Owns the loop and its one step definition (:mod:`~dip.fitting.loop`,
:mod:`~dip.fitting.step`), the settings and result types (:mod:`~dip.fitting.settings`),
the monitors that watch a fit (history, oracle, backtracking, progress:
:mod:`~dip.fitting.monitors`; early stopping: :mod:`~dip.fitting.stopping`), checkpoints
(:mod:`~dip.fitting.checkpoint`), the official notebooks' behaviours
(:mod:`~dip.fitting.official`), fast paths and CUDA graphs (:mod:`~dip.fitting.fast`) and
the test of a diverged fit (:mod:`~dip.fitting.divergence`).

May import: :mod:`dip.launch`, :mod:`dip.nets`, :mod:`dip.problems`, :mod:`dip.data`
and the shared modules. Knows nothing of configs: it takes :class:`FitSettings`.
"""

from dip.fitting.loop import fit
from dip.fitting.settings import FitResult, FitSettings

__all__ = ["fit", "FitSettings", "FitResult"]
