"""Classical baselines the paper compares against, run on the same problem as DIP.

Each baseline takes a :class:`~dip.problems.problem.Problem` and returns the restored image as a
float32 1×C×H×W tensor in [0, 1], so it is scored exactly like the network's output
(``problem.score``):

- ``biharmonic`` (inpainting): scikit-image's biharmonic inpainting;
- ``nlm`` (denoising): scikit-image's non-local means with the known noise level;
- ``cbm3d`` (denoising): BM3D / CBM3D from the optional ``bm3d`` package
  (``pip install -e .[bm3d]``; non-commercial licence);
- ``bicubic`` and ``nearest`` (super-resolution): PIL upscaling of the LR input.

Each is registered for its task with :func:`register` (a new task registers its own
baselines beside it, from any module); :func:`run_baselines` scores the default
baselines of a task and leaves out the optional ones whose package is missing.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import torch

from dip.errors import DipError
from dip.problems.noise import pil_resize
from dip.problems.problem import Problem

__all__ = ["biharmonic", "nlm", "cbm3d", "bicubic", "nearest", "available", "register",
           "run_baselines", "BASELINES", "TASK_BASELINES", "OPTIONAL", "LABELS", "label"]

BASELINES: dict = {}
"""All baselines by name (filled by :func:`register`)."""

TASK_BASELINES: dict[str, list[str]] = {}
"""The baselines scored for each task by default (those in the paper's tables)."""

OPTIONAL: dict[str, str] = {}
"""Baseline → the optional package it needs."""


def register(name: str, task: str, *, default: bool = True, package: str | None = None):
    """Decorator: register ``fn(problem) -> 1×C×H×W tensor`` as the baseline ``name``
    of ``task``; ``default``: scored in every record of the task; ``package``: an
    optional package it needs (left out where it is missing)."""
    def add(fn):
        BASELINES[name] = fn
        if default:
            TASK_BASELINES.setdefault(task, []).append(name)
        if package is not None:
            OPTIONAL[name] = package
        return fn
    return add

LABELS = {"nlm": "NLM", "cbm3d": "CBM3D"}
"""How a baseline is named in summaries and figures, where not by its name."""


def label(name: str) -> str:
    """The baseline's name as printed: ``NLM``, ``CBM3D``, ``biharmonic``, ``bicubic``."""
    return LABELS.get(name, name)


# Non-local means settings of scikit-image's gallery example "Non-local means denoising
# for preserving textures", fast variant with the noise level given: 5×5 patches searched
# within 6 pixels, h = 0.6·σ and σ subtracted from the patch distances.
NLM_PATCH_SIZE = 5
NLM_PATCH_DISTANCE = 6
NLM_H_PER_SIGMA = 0.6

CBM3D_MISSING = ("CBM3D needs the optional bm3d package: pip install -e .[bm3d] "
                 "(non-commercial licence)")


def _check_task(problem: Problem, task: str, name: str) -> None:
    if problem.task != task:
        raise DipError(f"the {name} baseline is for {task}, not {problem.task}")


def _to_numpy(img: torch.Tensor) -> np.ndarray:
    """1×C×H×W tensor → float64 H×W (one channel) or H×W×C array."""
    a = img.detach().to("cpu", torch.float64)[0].permute(1, 2, 0).numpy()
    return a[..., 0] if a.shape[2] == 1 else a


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    """H×W or H×W×C array → float32 1×C×H×W tensor clipped to [0, 1]."""
    a = np.clip(np.asarray(a, dtype=np.float32), 0.0, 1.0)
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def _channel_axis(a: np.ndarray) -> int | None:
    return -1 if a.ndim == 3 else None


def _sigma(problem: Problem) -> float:
    """Noise std of a denoising problem on the [0, 1] scale."""
    sigma = problem.extras.get("sigma")
    if sigma is None or not sigma > 0:
        raise DipError("the denoising baselines need the noise level; the problem has no sigma")
    return float(sigma) / 255.0


@register("biharmonic", "inpainting")
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

    _check_task(problem, "inpainting", "biharmonic")
    image = _to_numpy(problem.observation)
    known = problem.extras["mask"].detach().cpu().numpy()
    missing = known.min(axis=0) == 0  # H×W, True = to fill (skimage convention)
    out = inpaint_biharmonic(image, missing, channel_axis=_channel_axis(image))
    return _to_tensor(out)


@register("nlm", "denoising")
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

    _check_task(problem, "denoising", "nlm")
    sigma = _sigma(problem)
    image = _to_numpy(problem.observation)
    out = denoise_nl_means(image, patch_size=NLM_PATCH_SIZE,
                           patch_distance=NLM_PATCH_DISTANCE, h=NLM_H_PER_SIGMA * sigma,
                           sigma=sigma, fast_mode=True, channel_axis=_channel_axis(image))
    return _to_tensor(out)


@register("cbm3d", "denoising", package="bm3d")
def cbm3d(problem: Problem) -> torch.Tensor:
    """CBM3D for colour images (``bm3d.bm3d_rgb``), BM3D for grey ones (``bm3d.bm3d``).

    Needs the optional ``bm3d`` package (non-commercial licence); ``sigma_psd`` is the
    known noise std on the [0, 1] scale.

    Raises
    ------
    DipError
        When ``bm3d`` is not installed.
    """
    _check_task(problem, "denoising", "cbm3d")
    try:
        import bm3d
    except ImportError as err:
        raise DipError(CBM3D_MISSING) from err
    sigma = _sigma(problem)
    image = _to_numpy(problem.observation)
    if image.ndim == 3 and image.shape[2] == 3:
        out = bm3d.bm3d_rgb(image, sigma_psd=sigma)
    elif image.ndim == 2:
        out = bm3d.bm3d(image, sigma_psd=sigma)
    else:
        raise DipError(f"CBM3D takes grey or RGB images, not {image.shape[2]} channels")
    return _to_tensor(out)


def _upscale(problem: Problem, resample: str, name: str) -> torch.Tensor:
    _check_task(problem, "sr", name)
    lr = problem.observation.detach().cpu()[0]
    return pil_resize(lr, problem.out_shape[1:], resample)[None]


@register("bicubic", "sr")
def bicubic(problem: Problem) -> torch.Tensor:
    """Bicubic upscaling of the LR input to the HR size (PIL, 8-bit), for SR."""
    return _upscale(problem, "bicubic", "bicubic")


@register("nearest", "sr", default=False)
def nearest(problem: Problem) -> torch.Tensor:
    """Nearest-neighbour upscaling of the LR input to the HR size (PIL), for SR."""
    return _upscale(problem, "nearest", "nearest")


def available(name: str) -> bool:
    """True when the baseline ``name`` can run here (its optional package is installed)."""
    package = OPTIONAL.get(name)
    return package is None or importlib.util.find_spec(package) is not None


def run_baselines(problem: Problem, names: list[str] | None = None,
                  images: dict | None = None) -> dict[str, float]:
    """Score baselines on ``problem`` with its own metric.

    Parameters
    ----------
    problem : Problem
        The problem DIP is fitted to.
    names : list of str, optional
        Baselines to run; default ``TASK_BASELINES[problem.task]``.
    images : dict, optional
        When given, each baseline's output (1×C×H×W) is stored in it under its name.

    Returns
    -------
    dict
        name → score (``problem.score``); NaN for every baseline when the problem has
        no ground truth (nothing is run then). Optional baselines whose package is
        missing (``cbm3d`` without ``bm3d``) are left out.
    """
    names = TASK_BASELINES.get(problem.task, []) if names is None else list(names)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise DipError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)}")
    scores = {}
    for name in names:
        if not available(name):
            continue
        if problem.gt is None:
            scores[name] = math.nan
            continue
        out = BASELINES[name](problem)
        scores[name] = problem.score(out)
        if images is not None:
            images[name] = out
    return scores
