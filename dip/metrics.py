"""Image quality metrics, computed as the paper's evaluation does.

All functions take images with values in [0, 1] as numpy arrays (H×W or H×W×C) or
torch tensors (C×H×W or 1×C×H×W), and compute in float64.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["psnr", "psnr_y", "ssim", "to_hwc", "rgb_to_y", "SR_SHAVE"]

# Border removed before SR evaluation, as (top, left, bottom, right) pixels. The
# authors' evaluation crops [4:-5] along both axes of the evaluated area (an off-by-one
# of the usual 4-pixel shave that we reproduce so numbers are comparable).
SR_SHAVE = (4, 4, 5, 5)


def to_hwc(img) -> np.ndarray:
    """Return ``img`` as a float64 numpy array H×W×C (C = 1 for grayscale).

    Accepts numpy H×W / H×W×C and torch C×H×W / 1×C×H×W.
    """
    if isinstance(img, torch.Tensor):
        t = img.detach().to("cpu", torch.float64)
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ValueError(f"expected a single image 1×C×H×W, got shape {tuple(t.shape)}")
            t = t[0]
        if t.dim() == 2:
            t = t[None]
        if t.dim() != 3:
            raise ValueError(f"expected C×H×W or 1×C×H×W, got shape {tuple(t.shape)}")
        return t.permute(1, 2, 0).numpy()
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(f"expected H×W or H×W×C, got shape {a.shape}")
    return a


def _check_pair(gt, pred) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_hwc(gt), to_hwc(pred)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    return a, b


def psnr(gt, pred) -> float:
    """Peak signal-to-noise ratio over all pixels and channels, data range 1.

    Equal to ``skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=1)``.

    Returns
    -------
    float
        PSNR in dB; ``inf`` for identical images.
    """
    a, b = _check_pair(gt, pred)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luminance of an H×W×3 image in [0, 1], scaled to [0, 1].

    Y = (16 + 219·(0.299 R + 0.587 G + 0.114 B)) / 255. A one-channel image is
    treated as its own R = G = B.
    """
    a = to_hwc(img)
    lum = a[..., 0] if a.shape[2] == 1 else a[..., :3] @ np.array([0.299, 0.587, 0.114])
    return (16.0 + 219.0 * lum) / 255.0


def psnr_y(gt, pred, shave: tuple[int, int, int, int] = SR_SHAVE) -> float:
    """PSNR on BT.601 luminance after shaving the border, as used for super-resolution.

    Parameters
    ----------
    gt, pred : array or tensor
        High-resolution images in [0, 1] of the same shape.
    shave : (top, left, bottom, right)
        Pixels removed at each side. The default (4, 4, 5, 5) reproduces the authors'
        evaluation script, which slices ``[4:-5, 4:-5]``.

    Returns
    -------
    float
        PSNR in dB, data range 1.
    """
    a, b = _check_pair(gt, pred)
    t, l, bo, r = shave
    h, w = a.shape[:2]
    if t + bo >= h or l + r >= w:
        raise ValueError(f"image {h}×{w} is too small for a border shave of {shave}")
    ya = rgb_to_y(a)[t:h - bo, l:w - r]
    yb = rgb_to_y(b)[t:h - bo, l:w - r]
    return psnr(ya, yb)


def ssim(gt, pred) -> float:
    """Structural similarity (scikit-image, data range 1, channels averaged)."""
    from skimage.metrics import structural_similarity

    a, b = _check_pair(gt, pred)
    if a.shape[2] == 1:
        return float(structural_similarity(a[..., 0], b[..., 0], data_range=1.0))
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=2))
