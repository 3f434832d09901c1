"""Deblurring: A = a Gaussian blur k (σ = ``blur_sigma`` pixels), x̂ = k * x + n.

Not a task of the paper: the worked example of adding one (docs/experiments.md, "Adding
a task"). The blur reflects the image at its borders (:class:`GaussianBlur`), and the
noise n is white and Gaussian with std ``noise_std`` of the [0, 1] range, seeded.
Its baselines are scikit-image's Richardson–Lucy and (unsupervised) Wiener
deconvolution, run on the observation reflected by three kernel widths at each border
and cropped back, so that they assume the same borders as the blur: their own
zero-padded or circular borders fall in the margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dip.errors import DipError
from dip.problems import baselines
from dip.problems.noise import add_noise
from dip.problems.problem import Problem, batch
from dip.problems.task import Inputs, Task, register

__all__ = ["DeblurringSettings", "GaussianBlur", "gaussian_kernel", "deblurring",
           "richardson_lucy", "wiener"]

RL_ITERATIONS = 30
"""Richardson–Lucy iterations (scikit-image's gallery example's)."""


@dataclass(frozen=True)
class DeblurringSettings:
    """``blur_sigma``: the std of the Gaussian blur in pixels; ``noise_std``: the std of
    the white noise added after it, on the [0, 1] range (0.01: 2.55 on 0–255)."""

    blur_sigma: float = field(default=1.6, metadata={"give": "a std in pixels > 0, e.g. 1.6"})
    noise_std: float = field(default=0.01, metadata={
        "give": "a std >= 0 on the [0, 1] range, e.g. 0.01"})


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian of std ``sigma``, on radius ⌊3σ + ½⌋ (scipy's
    ``gaussian_filter`` with ``truncate=3``)."""
    radius = int(3 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


class GaussianBlur(nn.Module):
    """A x = k * x, separable, with the image reflected about its edge pixels
    (``F.pad(mode='reflect')``: scipy's ``mode='mirror'``), so that the output has the
    input's size.

    Parameters
    ----------
    sigma : float
        Std of the Gaussian in pixels (> 0).
    """

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = float(sigma)
        self.register_buffer("kernel", gaussian_kernel(self.sigma))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, n = x.shape[1], self.kernel.numel()
        r = n // 2
        x = F.pad(x, (r, r, r, r), mode="reflect")
        k = self.kernel.to(x.dtype)
        x = F.conv2d(x, k.view(1, 1, n, 1).expand(c, 1, n, 1), groups=c)
        return F.conv2d(x, k.view(1, 1, 1, n).expand(c, 1, 1, n), groups=c)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}, taps={self.kernel.numel()}"


def deblurring(*, gt: torch.Tensor | None = None, blurred: torch.Tensor | None = None,
               blur_sigma: float = 1.6, noise_std: float = 0.01, seed: int = 0) -> Problem:
    """Deblurring: A = the Gaussian blur of ``blur_sigma``.

    Give ``gt`` (C×H×W in [0, 1]) to blur it and add noise of std ``noise_std`` (seeded,
    clipped to [0, 1]); give ``blurred`` to restore an image of your own (then ``gt`` only
    scores).
    """
    if not blur_sigma > 0:
        raise DipError(f"blur_sigma={blur_sigma} is invalid; give a std in pixels > 0")
    blur = GaussianBlur(blur_sigma)
    if blurred is None:
        if gt is None:
            raise ValueError("deblurring needs gt or blurred")
        blurred = blur(batch(gt))[0]
        if noise_std > 0:
            blurred = add_noise(blurred, noise_std * 255.0, seed)
    if min(blurred.shape[-2:]) <= blur.kernel.numel() // 2:
        raise DipError(f"the image is smaller than the blur's radius "
                       f"{blur.kernel.numel() // 2}; give a larger image")
    return Problem("deblurring", batch(blurred), blur, tuple(blurred.shape[-3:]),
                   gt=None if gt is None else batch(gt),
                   extras={"blur_sigma": blur_sigma, "noise_std": noise_std})


def _check(settings: DeblurringSettings, corrupted: bool) -> None:
    if not settings.blur_sigma > 0:
        raise DipError(f"blur_sigma={settings.blur_sigma:g} is invalid; give a std in pixels "
                       "> 0, e.g. 1.6")
    if not settings.noise_std >= 0:
        raise DipError(f"noise_std={settings.noise_std:g} is invalid; give a std >= 0 on the "
                       "[0, 1] range, e.g. 0.01")


def _build(inputs: Inputs, settings: DeblurringSettings) -> Problem:
    image, gt = inputs.cropped()
    if inputs.corrupted:
        return deblurring(blurred=image, gt=gt, blur_sigma=settings.blur_sigma,
                          noise_std=settings.noise_std)
    return deblurring(gt=image, blur_sigma=settings.blur_sigma, noise_std=settings.noise_std,
                      seed=inputs.seed)


register(Task("deblurring", DeblurringSettings, _build, _check,
              lambda s: {"blur_sigma": s.blur_sigma, "noise_std": s.noise_std}))


# --- baselines ----------------------------------------------------------------------

def _deconvolve(problem: Problem, name: str, method) -> torch.Tensor:
    """``method(plane, psf)`` on each channel of the observation reflected by three
    kernel widths (:class:`GaussianBlur`'s borders), cropped back."""
    baselines.check_task(problem, "deblurring", name)
    k = problem.operator.kernel.double().cpu().numpy()
    psf = np.outer(k, k)
    margin = 3 * k.size
    image = baselines.to_numpy(problem.observation)
    planes = image[..., None] if image.ndim == 2 else image
    out = []
    for c in range(planes.shape[-1]):
        padded = np.pad(planes[..., c], margin, mode="reflect")
        out.append(method(padded, psf)[margin:-margin, margin:-margin])
    return baselines.to_tensor(np.stack(out, -1))


@baselines.register("richardson_lucy", "deblurring", label="Richardson-Lucy")
def richardson_lucy(problem: Problem) -> torch.Tensor:
    """Richardson–Lucy deconvolution (``skimage.restoration.richardson_lucy``,
    :data:`RL_ITERATIONS` iterations) with the known blur, borders as the blur's."""
    from skimage import restoration

    return _deconvolve(problem, "richardson_lucy", lambda plane, psf: restoration.richardson_lucy(
        plane, psf, num_iter=RL_ITERATIONS))


@baselines.register("wiener", "deblurring", label="Wiener")
def wiener(problem: Problem) -> torch.Tensor:
    """Unsupervised Wiener deconvolution (``skimage.restoration.unsupervised_wiener``: the
    regularisation weight estimated from the image, seeded) with the known blur, borders
    as the blur's."""
    from skimage import restoration

    def one(plane, psf):
        return restoration.unsupervised_wiener(plane, psf, rng=0)[0]

    return _deconvolve(problem, "wiener", one)
