"""Problems: what DIP restores. A :class:`Problem` holds the observation x̂, the forward
operator A (an ``nn.Module``: :mod:`~dip.problems.operators`), the ground truth and the
metric (:mod:`~dip.problems.metrics`); :mod:`~dip.problems.noise` draws corruptions and
:mod:`~dip.problems.baselines` scores the classical methods on the same problem.

May import :mod:`dip.data` and the shared modules.
"""

from dip.problems.problem import Problem

__all__ = ["Problem"]
