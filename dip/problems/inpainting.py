"""Inpainting: A x = x·m with a binary mask m (1 = known pixel), x̂ = x·m.

The task of the paper's inpainting table and figures (official ``inpainting.ipynb``,
``restoration.ipynb``): the mask is a file (``mask=``, or a folder of masks paired with
the images by file stem) or drawn at random (``p_missing``). Its baseline:
scikit-image's biharmonic inpainting.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch

from dip.data.folders import is_folder, paired_mask
from dip.data.images import size_wh
from dip.errors import DipError, DipNote
from dip.problems import baselines
from dip.problems.noise import bernoulli_mask
from dip.problems.operators import Mask
from dip.problems.problem import Problem, batch
from dip.problems.task import Inputs, Task, register

__all__ = ["InpaintingSettings", "inpainting", "biharmonic"]


@dataclass(frozen=True)
class InpaintingSettings:
    """``mask``: the mask file (white = known pixel) or a folder of masks; null draws
    one with ``p_missing`` (the fraction of dropped pixels) and the run's seed.
    ``mask_threshold`` in (0, 1) binarises a grey, anti-aliased or JPEG mask."""

    mask: str | None = None
    mask_threshold: float | None = field(default=None, metadata={
        "give": "a level in (0, 1) (mask pixels at or above it are known), e.g. "
                "mask_threshold=0.5"})
    p_missing: float = field(default=0.5, metadata={"give": "a fraction in [0, 1)"})


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
        raise DipError(f"mask is {size_wh(mask)} but the image is {size_wh(image)}; "
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
    gt = batch(image) if image_is_gt else None
    obs = batch(image * mask)
    return Problem("inpainting", obs, Mask(batch(mask)), (c, h, w), gt=gt,
                   extras={"mask": mask, "missing": float(1 - mask.float().mean())})


def _given(settings: InpaintingSettings) -> bool:
    return settings.mask is not None and str(settings.mask).strip() != ""


def _check(settings: InpaintingSettings, corrupted: bool) -> None:
    level = settings.mask_threshold
    if level is not None and not 0 < level < 1:
        raise DipError(f"mask_threshold={level:g} is invalid; give a level in (0, 1) (mask "
                       "pixels at or above it are known), e.g. mask_threshold=0.5")
    if not _given(settings) and not 0 <= settings.p_missing < 1:
        raise DipError(f"p_missing={settings.p_missing:g} is invalid; give a fraction in [0, 1)")
    if level is not None and not _given(settings):
        warnings.warn(f"mask_threshold={level:g} is ignored: no mask= is given", DipNote,
                      stacklevel=3)


def binary_mask(mask: torch.Tensor, level: float | None, spec) -> torch.Tensor:
    """``mask`` (values in [0, 1]) as 0/1: rounded at ``level`` (with a note counting the
    grey pixels), or refused when it has grey pixels and no level is given."""
    grey = int(((mask != 0) & (mask != 1)).sum())
    if not grey:
        return mask
    if level is None:
        raise DipError(f"mask {spec} is not binary: {grey} of {mask.numel()} pixels are grey "
                       "(neither black nor white); set mask_threshold=0.5 to round them, or "
                       "give a black-and-white mask (white = known pixel)")
    warnings.warn(f"{spec}: binarised at {level:g}; {grey} of {mask.numel()} pixels were grey "
                  "and were rounded", DipNote, stacklevel=3)
    return (mask >= level).to(mask.dtype)


def _build(inputs: Inputs, settings: InpaintingSettings) -> Problem:
    image, gt = inputs.cropped()
    mask = None
    if _given(settings):
        spec = paired_mask(settings.mask, inputs.name) if is_folder(settings.mask) \
            else settings.mask
        mask = inputs.read(spec, "mask")
        if mask.shape[-2:] != inputs.image.shape[-2:]:
            raise DipError(f"mask is {size_wh(mask)} but the image is "
                           f"{size_wh(inputs.image)}; give a mask of the image's size")
        mask = binary_mask(mask.amin(0, keepdim=True), settings.mask_threshold, spec)
        mask = inputs.crop(mask, inputs.multiple, mask=True)
    elif inputs.corrupted:
        raise DipError("inpainting a damaged image needs its mask; set mask=PATH "
                       "(white = known pixel)")
    problem = inpainting(image=image, mask=mask, p_missing=float(settings.p_missing),
                         seed=inputs.seed, image_is_gt=not inputs.corrupted)
    if gt is not None:
        problem.gt = gt[None]
    return problem


register(Task("inpainting", InpaintingSettings, _build, _check))


@baselines.register("biharmonic", "inpainting")
def biharmonic(problem: Problem) -> torch.Tensor:
    """Biharmonic inpainting (``skimage.restoration.inpaint_biharmonic``).

    Our masks use 1 = known pixel; scikit-image's ``mask`` argument uses the opposite
    convention (1 = missing, the pixels to fill), so the mask is inverted here. Known
    pixels are returned unchanged.

    Parameters
    ----------
    problem : Problem
        An inpainting problem (``problem.extras['mask']``: 1×H×W, 1 = known).

    Returns
    -------
    torch.Tensor
        float32 1×C×H×W in [0, 1].
    """
    from skimage.restoration import inpaint_biharmonic

    baselines.check_task(problem, "inpainting", "biharmonic")
    image = baselines.to_numpy(problem.observation)
    known = problem.extras["mask"].detach().cpu().numpy()
    missing = known.min(axis=0) == 0  # H×W, True = to fill (skimage convention)
    out = inpaint_biharmonic(image, missing, channel_axis=baselines.channel_axis(image))
    return baselines.to_tensor(out)
