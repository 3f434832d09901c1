"""Denoising: A = I, x̂ = x + n with white Gaussian noise n of std σ (0–255 scale).

The task of the paper's denoising table (official ``denoising.ipynb``), with its
baselines: non-local means (scikit-image) and CBM3D (the optional ``bm3d`` package).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from dip.errors import DipError
from dip.problems import baselines
from dip.problems.noise import add_noise
from dip.problems.operators import Identity
from dip.problems.problem import Problem, batch
from dip.problems.task import Inputs, Task, register

__all__ = ["DenoisingSettings", "denoising", "nlm", "cbm3d"]


@dataclass(frozen=True)
class DenoisingSettings:
    """``sigma``: the noise std on the 0–255 scale (the paper's table: 25 and 50); of a
    noisy photo (``corrupted=true``), what the baselines assume."""

    sigma: float = field(default=25, metadata={
        "give": "the noise std on the 0-255 scale, e.g. sigma=25"})


def denoising(*, gt: torch.Tensor | None = None, noisy: torch.Tensor | None = None,
              sigma: float = 25.0, seed: int = 0) -> Problem:
    """Denoising: A = I, x̂ = noisy image.

    Give ``gt`` (C×H×W, [0, 1]) to draw Gaussian noise of level ``sigma`` (0–255 scale)
    with ``seed``; give ``noisy`` to restore an already noisy image (then ``gt`` is
    only used for scoring).
    """
    if noisy is None:
        if gt is None:
            raise ValueError("denoising needs gt or noisy")
        if not sigma > 0:
            raise DipError(f"sigma must be > 0 (noise std on the 0-255 scale), got {sigma}")
        noisy = add_noise(gt, sigma, seed)
    if gt is not None and gt.shape != noisy.shape:
        raise DipError(f"noisy image {tuple(noisy.shape)} and ground truth {tuple(gt.shape)} "
                       "differ in shape; give images of the same size")
    return Problem("denoising", batch(noisy), Identity(), tuple(noisy.shape[-3:]),
                   gt=None if gt is None else batch(gt), extras={"sigma": sigma})


def _check(settings: DenoisingSettings, corrupted: bool) -> None:
    if not corrupted and not settings.sigma > 0:
        raise DipError(f"sigma={settings.sigma:g} is invalid; give the noise std on the 0-255 "
                       "scale, e.g. sigma=25")


def _build(inputs: Inputs, settings: DenoisingSettings) -> Problem:
    image, gt = inputs.cropped()
    if inputs.corrupted:
        return denoising(noisy=image, gt=gt, sigma=float(settings.sigma))
    return denoising(gt=image, sigma=float(settings.sigma), seed=inputs.seed)


register(Task("denoising", DenoisingSettings, _build, _check,
              lambda s: {"sigma": s.sigma}))


# --- baselines ----------------------------------------------------------------------

# Non-local means settings of scikit-image's gallery example "Non-local means denoising
# for preserving textures", fast variant with the noise level given: 5×5 patches searched
# within 6 pixels, h = 0.6·σ and σ subtracted from the patch distances.
NLM_PATCH_SIZE = 5
NLM_PATCH_DISTANCE = 6
NLM_H_PER_SIGMA = 0.6

CBM3D_MISSING = ("CBM3D needs the optional bm3d package: pip install -e .[bm3d] "
                 "(non-commercial licence)")


def _sigma(problem: Problem) -> float:
    """Noise std of a denoising problem on the [0, 1] scale."""
    sigma = problem.extras.get("sigma")
    if sigma is None or not sigma > 0:
        raise DipError("the denoising baselines need the noise level; the problem has no sigma")
    return float(sigma) / 255.0


@baselines.register("nlm", "denoising", label="NLM")
def nlm(problem: Problem) -> torch.Tensor:
    """Non-local means (``skimage.restoration.denoise_nl_means``) with the known sigma.

    Settings of scikit-image's gallery example, fast variant with σ given:
    ``patch_size=5``, ``patch_distance=6``, ``h=0.6·σ``, ``sigma=σ``,
    ``fast_mode=True`` (σ = ``problem.extras['sigma']``/255).

    Returns
    -------
    torch.Tensor
        float32 1×C×H×W in [0, 1].
    """
    from skimage.restoration import denoise_nl_means

    baselines.check_task(problem, "denoising", "nlm")
    sigma = _sigma(problem)
    image = baselines.to_numpy(problem.observation)
    out = denoise_nl_means(image, patch_size=NLM_PATCH_SIZE,
                           patch_distance=NLM_PATCH_DISTANCE, h=NLM_H_PER_SIGMA * sigma,
                           sigma=sigma, fast_mode=True,
                           channel_axis=baselines.channel_axis(image))
    return baselines.to_tensor(out)


@baselines.register("cbm3d", "denoising", package="bm3d", label="CBM3D")
def cbm3d(problem: Problem) -> torch.Tensor:
    """CBM3D for colour images (``bm3d.bm3d_rgb``), BM3D for grey ones (``bm3d.bm3d``).

    Needs the optional ``bm3d`` package (non-commercial licence); ``sigma_psd`` is the
    known noise std on the [0, 1] scale.

    Raises
    ------
    DipError
        When ``bm3d`` is not installed.
    """
    baselines.check_task(problem, "denoising", "cbm3d")
    try:
        import bm3d
    except ImportError as err:
        raise DipError(CBM3D_MISSING) from err
    sigma = _sigma(problem)
    image = baselines.to_numpy(problem.observation)
    if image.ndim == 3 and image.shape[2] == 3:
        out = bm3d.bm3d_rgb(image, sigma_psd=sigma)
    elif image.ndim == 2:
        out = bm3d.bm3d(image, sigma_psd=sigma)
    else:
        raise DipError(f"CBM3D takes grey or RGB images, not {image.shape[2]} channels")
    return baselines.to_tensor(out)
