"""Image quality metrics, computed as the paper's evaluation does.

All functions take images with values in [0, 1] as numpy arrays (H×W or H×W×C) or
torch tensors (C×H×W or 1×C×H×W), and compute in float64. :func:`psnr` and
:func:`psnr_y` of two tensors on the same GPU compute there (float64, one scalar back to
the host) instead of copying both images to the CPU: the oracle scores every step.
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
        return _chw64(img, "cpu").permute(1, 2, 0).numpy()
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


def _on_device(gt, pred) -> bool:
    return (isinstance(gt, torch.Tensor) and isinstance(pred, torch.Tensor)
            and gt.device.type != "cpu" and gt.device == pred.device)


def _chw64(img: torch.Tensor, device=None) -> torch.Tensor:
    """A tensor image as float64 C×H×W on ``device`` (default: its own)."""
    t = img.detach().to(device or img.device, torch.float64)
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a single image 1×C×H×W, got shape {tuple(t.shape)}")
        t = t[0]
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3:
        raise ValueError(f"expected C×H×W or 1×C×H×W, got shape {tuple(t.shape)}")
    return t


def _tensor_pair(gt: torch.Tensor, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _chw64(gt), _chw64(pred)
    if a.shape != b.shape:
        hwc = lambda t: (*t.shape[1:], t.shape[0])  # noqa: E731  (as the numpy path says)
        raise ValueError(f"image shapes differ: {hwc(a)} vs {hwc(b)}")
    return a, b


def _db(mse: float) -> float:
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def _psnr_tensor(a: torch.Tensor, b: torch.Tensor) -> float:
    return _db(float(torch.mean((a - b) ** 2)))


def _y_tensor(a: torch.Tensor) -> torch.Tensor:
    """:func:`rgb_to_y` of a float64 C×H×W tensor (H×W)."""
    if a.shape[0] == 1:
        lum = a[0]
    else:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=a.dtype, device=a.device)
        lum = torch.einsum("chw,c->hw", a[:3], w)
    return (16.0 + 219.0 * lum) / 255.0


def psnr(gt, pred) -> float:
    """Peak signal-to-noise ratio over all pixels and channels, data range 1.

    Equal to ``skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=1)``.

    Returns
    -------
    float
        PSNR in dB; ``inf`` for identical images.
    """
    if _on_device(gt, pred):
        return _psnr_tensor(*_tensor_pair(gt, pred))
    a, b = _check_pair(gt, pred)
    return _db(np.mean((a - b) ** 2))


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
    t, l, bo, r = shave
    if _on_device(gt, pred):
        a, b = _tensor_pair(gt, pred)
        h, w = a.shape[1:]
        _check_shave(h, w, shave)
        return _psnr_tensor(_y_tensor(a)[t:h - bo, l:w - r], _y_tensor(b)[t:h - bo, l:w - r])
    a, b = _check_pair(gt, pred)
    h, w = a.shape[:2]
    _check_shave(h, w, shave)
    ya = rgb_to_y(a)[t:h - bo, l:w - r]
    yb = rgb_to_y(b)[t:h - bo, l:w - r]
    return psnr(ya, yb)


def _check_shave(h: int, w: int, shave: tuple[int, int, int, int]) -> None:
    t, l, bo, r = shave
    if t + bo >= h or l + r >= w:
        raise ValueError(f"image {h}×{w} is too small for a border shave of {shave}")


def ssim(gt, pred) -> float:
    """Structural similarity (scikit-image, data range 1, channels averaged)."""
    from skimage.metrics import structural_similarity

    a, b = _check_pair(gt, pred)
    if a.shape[2] == 1:
        return float(structural_similarity(a[..., 0], b[..., 0], data_range=1.0))
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=2))
