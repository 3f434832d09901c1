"""Super-resolution: A = d, a fixed Lanczos downsampler by ``factor``; x̂ = the LR image.

The task of the paper's SR table (official ``super-resolution.ipynb``): the LR input is
made from the HR image with PIL's Lanczos (as the official code), or given
(``corrupted=true``). PSNR on BT.601 Y with the authors' border shave. Its baselines:
bicubic (and nearest-neighbour) upscaling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from dip.errors import DipError
from dip.problems import baselines
from dip.problems.noise import lr_image, pil_resize
from dip.problems.operators import Downsampler
from dip.problems.problem import Problem, batch
from dip.problems.task import Inputs, Task, register

__all__ = ["SRSettings", "sr", "bicubic", "nearest"]


@dataclass(frozen=True)
class SRSettings:
    """``factor``: the integer upscaling factor (≥ 2); ``kernel_type``: the downsampler's
    kernel (:func:`dip.problems.operators.kernel_1d`; the paper's: lanczos2)."""

    factor: int = field(default=4, metadata={
        "give": "the SR factor, an integer >= 2, e.g. factor=4"})
    kernel_type: str = "lanczos2"


def sr(*, hr: torch.Tensor | None = None, lr: torch.Tensor | None = None, factor: int = 4,
       kernel_type: str = "lanczos2") -> Problem:
    """Super-resolution: A = d, a fixed Lanczos downsampler by ``factor``.

    Give ``hr`` (sides multiples of ``factor``) to synthesise the LR input with PIL
    Lanczos, as the official code; or give ``lr`` to upscale an image of your own.
    Even factors use the official half-phase kernel; odd factors, which the official
    code does not handle, use the odd-length (phase 0) Lanczos kernel, centred on the
    middle pixel of each factor×factor block as PIL's LR pixel is.
    """
    if isinstance(factor, bool) or int(factor) != factor or factor < 2:
        raise DipError(f"SR factor must be an integer >= 2, got {factor}")
    factor = int(factor)
    if lr is None:
        if hr is None:
            raise ValueError("sr needs hr or lr")
        h, w = hr.shape[-2:]
        if h % factor or w % factor:
            raise DipError(f"image {h}×{w} is not divisible by the SR factor {factor}; "
                           "crop it to a multiple of the factor")
        lr = lr_image(hr, factor)
    c, h, w = lr.shape[-3:]
    out_shape = (c, h * factor, w * factor)
    phase = 0.5 if factor % 2 == 0 else 0.0
    return Problem("sr", batch(lr), Downsampler(c, factor, kernel_type, phase, True), out_shape,
                   gt=None if hr is None else batch(hr), metric="psnr_y",
                   extras={"factor": factor, "lr": lr})


def _check(settings: SRSettings, corrupted: bool) -> None:
    if settings.factor < 2:
        raise DipError(f"factor={settings.factor} is invalid; give the SR factor, an integer "
                       ">= 2, e.g. factor=4")


def _build(inputs: Inputs, settings: SRSettings) -> Problem:
    """``inputs.image`` is the HR image (or the LR input with ``corrupted=true``); the HR
    side must be a multiple of the net's multiple and of the factor."""
    factor, m = int(settings.factor), inputs.multiple
    multiple = m * factor // math.gcd(m, factor)
    h, w = inputs.image.shape[-2:]
    if not inputs.corrupted and multiple > m and min(h, w) < max(2 * m, multiple):
        raise DipError(f"SR factor {factor} does not divide the {inputs.net} net's size "
                       f"multiple {m}, so the image would be cropped to a multiple of "
                       f"{multiple}, but it is {h}×{w}; use a factor that divides {m} "
                       "(2, 4, 8) or a larger image")
    if inputs.corrupted:  # the image is the LR input: the HR output must fit the net
        m_lr = max(1, m // math.gcd(m, factor))
        lr = inputs.crop(inputs.image, m_lr, what=inputs.described, upscale=factor)
        hr = None if inputs.gt is None else inputs.crop(inputs.gt, m_lr, factor)
        return sr(lr=lr, hr=hr, factor=factor, kernel_type=settings.kernel_type)
    hr = inputs.crop(inputs.image, multiple, what=inputs.described,
                     why=f"the SR factor {factor}")
    return sr(hr=hr, factor=factor, kernel_type=settings.kernel_type)


register(Task("sr", SRSettings, _build, _check, lambda s: {"factor": int(s.factor)}))


def _upscale(problem: Problem, resample: str, name: str) -> torch.Tensor:
    baselines.check_task(problem, "sr", name)
    lr = problem.observation.detach().cpu()[0]
    return pil_resize(lr, problem.out_shape[1:], resample)[None]


@baselines.register("bicubic", "sr")
def bicubic(problem: Problem) -> torch.Tensor:
    """Bicubic upscaling of the LR input to the HR size (PIL, 8-bit), for SR."""
    return _upscale(problem, "bicubic", "bicubic")


@baselines.register("nearest", "sr", default=False)
def nearest(problem: Problem) -> torch.Tensor:
    """Nearest-neighbour upscaling of the LR input to the HR size (PIL), for SR."""
    return _upscale(problem, "nearest", "nearest")
