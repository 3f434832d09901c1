"""Seeded corruption generators: noise, pixel masks, low-resolution images.

Each takes a clean image as a float32 C×H×W tensor in [0, 1] and returns tensors in
the same convention. A seed makes every corruption reproducible across runs and
machines (CPU generator), on a stream of its own (see :data:`STREAM`).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = ["add_noise", "bernoulli_mask", "pil_resize", "lr_image", "signal", "SIGNALS"]


STREAM = 1_000_003
"""Offset of the corruption seeds: a fit draws its code z from ``seed`` and its input
noise from ``seed + 1``; were a corruption drawn from ``seed`` too, the noise, the mask or
the target would be a function of z (the net could read the mask from its input)."""


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed) + STREAM)
    return g


def add_noise(img: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Additive white Gaussian noise of standard deviation ``sigma``/255, clipped to [0, 1].

    Parameters
    ----------
    img : torch.Tensor
        Clean image C×H×W in [0, 1].
    sigma : float
        Noise level on the 0–255 scale (the paper uses 25 and 50); must be > 0.
    seed : int
        Seed of the noise draw.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 (0-255 scale), got {sigma}")
    noise = torch.randn(img.shape, generator=_generator(seed), dtype=torch.float32)
    return (img + noise * (sigma / 255.0)).clamp_(0.0, 1.0)


def bernoulli_mask(shape: tuple[int, int], p_missing: float, seed: int = 0) -> torch.Tensor:
    """Random pixel mask, 1 = known, 0 = missing, shared by all channels.

    Parameters
    ----------
    shape : (H, W)
        Spatial size.
    p_missing : float
        Probability in [0, 1) that a pixel is dropped (0.5 for the paper's table, 0.9
        or more for the restoration experiment).
    seed : int
        Seed of the draw.

    Returns
    -------
    torch.Tensor
        float32 1×H×W of zeros and ones.
    """
    if not 0.0 <= p_missing < 1.0:
        raise ValueError(f"p_missing must be in [0, 1), got {p_missing}")
    u = torch.rand((1, *shape), generator=_generator(seed))
    return (u >= p_missing).float()


def pil_resize(img: torch.Tensor, size: tuple[int, int], resample: str = "lanczos") -> torch.Tensor:
    """Resize a C×H×W image in [0, 1] with PIL on 8-bit values, as the official code does.

    Parameters
    ----------
    size : (H, W)
        Target size in pixels.
    resample : {'lanczos', 'bicubic', 'bilinear', 'nearest'}
    """
    modes = {
        "lanczos": Image.Resampling.LANCZOS,
        "bicubic": Image.Resampling.BICUBIC,
        "bilinear": Image.Resampling.BILINEAR,
        "nearest": Image.Resampling.NEAREST,
    }
    if resample not in modes:
        raise ValueError(f"unknown resample {resample!r}; choose one of {', '.join(modes)}")
    arr = (img.detach().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    pil = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
    out = np.asarray(pil.resize((size[1], size[0]), modes[resample]), dtype=np.float32) / 255.0
    out = out[None] if out.ndim == 2 else out.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(out))


def lr_image(hr: torch.Tensor, factor: int) -> torch.Tensor:
    """Low-resolution input of the SR experiments: PIL Lanczos downscaling by ``factor``.

    ``hr`` must already be cropped so that its sides are multiples of ``factor``
    (the official code crops to a multiple of 32 first).
    """
    h, w = hr.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"HR size {h}×{w} is not a multiple of the SR factor {factor}")
    return pil_resize(hr, (h // factor, w // factor), "lanczos")


SIGNALS = ("image", "noisy", "shuffled", "noise")


def signal(img: torch.Tensor, kind: str, *, sigma: float = 25.0, seed: int = 0) -> torch.Tensor:
    """Targets of the paper's Fig. 2 (how fast a network fits each kind of signal).

    Parameters
    ----------
    img : torch.Tensor
        Natural image C×H×W in [0, 1].
    kind : {'image', 'noisy', 'shuffled', 'noise'}
        'image': the image itself; 'noisy': plus Gaussian noise of std ``sigma``/255;
        'shuffled': its pixels (all channels together) randomly permuted; 'noise':
        i.i.d. U(0, 1) values of the same shape.
    sigma : float
        Noise level of 'noisy' on the 0–255 scale.
    seed : int
        Seed of the noise, permutation or uniform draw.
    """
    if kind == "image":
        return img.clone()
    if kind == "noisy":
        return add_noise(img, sigma, seed)
    c, h, w = img.shape
    if kind == "shuffled":
        perm = torch.randperm(h * w, generator=_generator(seed))
        return img.reshape(c, h * w)[:, perm].reshape(c, h, w)
    if kind == "noise":
        return torch.rand(img.shape, generator=_generator(seed))
    raise ValueError(f"unknown signal {kind!r}; choose one of {', '.join(SIGNALS)}")
