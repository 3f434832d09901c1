"""Restoration problems: what is observed, through which operator, and how it is scored.

A :class:`Problem` bundles the observation x̂, the forward operator A applied to the
network output in the data term ‖A f(z) − x̂‖², the ground truth when it is known and
the metric the paper reports. ``denoising``, ``inpainting`` and ``sr`` build one from
a clean image (synthetic corruption, seeded) or from a given corrupted image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from dip import DipError
from dip.corrupt import add_noise, bernoulli_mask, lr_image, pil_resize
from dip.metrics import psnr, psnr_y
from dip.operators import Downsampler, Identity, Mask

__all__ = ["Problem", "denoising", "inpainting", "sr", "fitting", "TASKS"]

METRICS = {"psnr": psnr, "psnr_y": psnr_y}


@dataclass
class Problem:
    """One restoration problem.

    Attributes
    ----------
    task : str
        'denoising', 'inpainting', 'sr' or 'fitting'.
    observation : torch.Tensor
        x̂ as 1×C×h×w in [0, 1] (h×w is the low resolution for SR).
    operator : nn.Module
        A, mapping the network output (1×C×H×W) to the observation space.
    out_shape : (C, H, W)
        Shape of the restored image the network must produce.
    gt : torch.Tensor or None
        Ground truth 1×C×H×W, when known.
    metric : {'psnr', 'psnr_y'}
        What the paper reports for this task.
    extras : dict
        Task data kept for reports and baselines (mask, LR image, ...).
    """

    task: str
    observation: torch.Tensor
    operator: nn.Module
    out_shape: tuple[int, int, int]
    gt: torch.Tensor | None = None
    metric: str = "psnr"
    extras: dict = field(default_factory=dict)

    def score(self, out: torch.Tensor) -> float:
        """Metric of an output against the ground truth (NaN when there is none)."""
        if self.gt is None:
            return float("nan")
        return METRICS[self.metric](self.gt, out)

    def corrupted_view(self) -> torch.Tensor:
        """The observation shown at the restored image's size (for figures and PSNR)."""
        if self.task == "sr":
            return pil_resize(self.observation[0], self.out_shape[1:], "nearest")[None]
        return self.observation

    def to(self, device) -> Problem:
        """Move tensors and the operator to ``device`` (returns self)."""
        self.observation = self.observation.to(device)
        self.operator = self.operator.to(device)
        if self.gt is not None:
            self.gt = self.gt.to(device)
        return self


def _batch(x: torch.Tensor) -> torch.Tensor:
    return x if x.dim() == 4 else x[None]


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
    return Problem("denoising", _batch(noisy), Identity(), tuple(noisy.shape[-3:]),
                   gt=None if gt is None else _batch(gt), extras={"sigma": sigma})


def inpainting(*, image: torch.Tensor, mask: torch.Tensor | None = None,
               p_missing: float = 0.5, seed: int = 0, image_is_gt: bool = True) -> Problem:
    """Inpainting: A x = x·m with m = 1 on known pixels.

    Parameters
    ----------
    image : torch.Tensor
        C×H×W in [0, 1]: the clean image (``image_is_gt=True``) or the damaged one.
    mask : torch.Tensor, optional
        1×H×W or C×H×W binary mask (1 = known). Drawn with ``p_missing`` and ``seed``
        when omitted.
    """
    c, h, w = image.shape[-3:]
    if mask is None:
        mask = bernoulli_mask((h, w), p_missing, seed)
    mask = mask if mask.dim() == 3 else mask[None]
    if tuple(mask.shape[-2:]) != (h, w):
        raise DipError(f"mask is {mask.shape[-2]}×{mask.shape[-1]} but the image is {h}×{w}; "
                       "give a mask of the image's size")
    grey = int(((mask != 0) & (mask != 1)).sum())
    if grey:
        raise DipError(f"mask is not binary: {grey} of {mask.numel()} values are neither 0 nor "
                       "1; give a black-and-white mask (white = known pixel), or round it at "
                       "0.5 ((mask >= 0.5).float(); the dip command: mask_threshold=0.5)")
    if not bool(mask.any()):
        raise DipError("mask has no known pixel (all zero); white marks the pixels to keep")
    if mask.shape[0] not in (1, c):
        raise DipError(f"mask has {mask.shape[0]} channels, image {c}; give a 1-channel mask")
    gt = _batch(image) if image_is_gt else None
    obs = _batch(image * mask)
    return Problem("inpainting", obs, Mask(_batch(mask)), (c, h, w), gt=gt,
                   extras={"mask": mask, "missing": float(1 - mask.float().mean())})


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
    return Problem("sr", _batch(lr), Downsampler(c, factor, kernel_type, phase, True), out_shape,
                   gt=None if hr is None else _batch(hr), metric="psnr_y",
                   extras={"factor": factor, "lr": lr})


def fitting(*, target: torch.Tensor, gt: torch.Tensor | None = None) -> Problem:
    """Plain fitting: A = I, x̂ = ``target`` (C×H×W in [0, 1]).

    What the network is asked to reproduce is not a corrupted image but a signal
    of interest in itself: the targets of the paper's Fig. 2 (an image, the same
    with noise, with shuffled pixels, pure noise), or the no-flash photo that a net
    fed with the flash photo must reproduce. ``gt`` (optional) is only for scoring.
    """
    return Problem("fitting", _batch(target), Identity(), tuple(target.shape[-3:]),
                   gt=None if gt is None else _batch(gt))


TASKS = {"denoising": denoising, "inpainting": inpainting, "sr": sr, "fitting": fitting}
