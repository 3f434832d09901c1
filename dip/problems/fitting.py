"""Fitting: A = I, x̂ = a target that is a signal of interest in itself.

The paper's Fig. 2 (how fast a network fits an image, the same with noise, its shuffled
pixels, white noise: ``signal=``) and the no-flash photo that a net fed with the flash
photo reproduces. No corruption, no baseline; the curves of interest are the loss and
the PSNR to the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from dip.errors import DipError
from dip.problems.noise import SIGNALS, signal
from dip.problems.operators import Identity
from dip.problems.problem import Problem, batch
from dip.problems.task import Inputs, Task, register

__all__ = ["FittingSettings", "fitting"]


@dataclass(frozen=True)
class FittingSettings:
    """``signal``: the target made of the image (image, noisy, shuffled, noise: the
    paper's Fig. 2); ``sigma``: the noise std of ``signal=noisy`` (0–255 scale)."""

    signal: str = "image"
    sigma: float = field(default=25, metadata={
        "give": "the noise std on the 0-255 scale, e.g. sigma=25"})


def fitting(*, target: torch.Tensor, gt: torch.Tensor | None = None) -> Problem:
    """Plain fitting: A = I, x̂ = ``target`` (C×H×W in [0, 1]).

    What the network is asked to reproduce is not a corrupted image but a signal
    of interest in itself: the targets of the paper's Fig. 2 (an image, the same
    with noise, with shuffled pixels, pure noise), or the no-flash photo that a net
    fed with the flash photo must reproduce. ``gt`` (optional) is only for scoring.
    """
    return Problem("fitting", batch(target), Identity(), tuple(target.shape[-3:]),
                   gt=None if gt is None else batch(gt))


def _check(settings: FittingSettings, corrupted: bool) -> None:
    if settings.signal not in SIGNALS:
        raise DipError(f"signal={settings.signal} is invalid; choose one of "
                       f"{', '.join(SIGNALS)}")


def _build(inputs: Inputs, settings: FittingSettings) -> Problem:
    image, gt = inputs.cropped()
    sigma = float(settings.sigma) if settings.signal == "noisy" else 25.0
    return fitting(target=signal(image, settings.signal, sigma=sigma, seed=inputs.seed),
                   gt=gt)


register(Task("fitting", FittingSettings, _build, _check))
