"""Forward operators A of the data term E(A f(z), x̂), as ``nn.Module``s.

Each operator maps the network output (1×C×H×W, values in [0, 1]) to the space of
the observation: identity for denoising, JPEG and flash/no-flash, a pixel mask for
inpainting, a fixed anti-aliasing downsampler for super-resolution.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Identity", "Mask", "Downsampler", "kernel_1d", "get_kernel"]


class Identity(nn.Module):
    """A = I: the observation lives in the image space (denoising, JPEG, flash)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Mask(nn.Module):
    """A x = x · m with a fixed binary mask m (1 = known pixel, 0 = missing).

    Parameters
    ----------
    mask : torch.Tensor
        1×1×H×W or 1×C×H×W tensor of zeros and ones; broadcast over channels.
    """

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        if mask.dim() == 2:
            mask = mask[None, None]
        elif mask.dim() == 3:
            mask = mask[None]
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


def _lanczos(x: np.ndarray, support: int) -> np.ndarray:
    """Lanczos window sinc(x)·sinc(x/a), written as in the official kernel code."""
    out = np.ones_like(x)
    nz = x != 0
    xs = x[nz]
    out[nz] = support * np.sin(np.pi * xs) * np.sin(np.pi * xs / support) / (np.pi**2 * xs**2)
    return out


def kernel_1d(factor: int, kernel_type: str = "lanczos2", phase: float = 0.5,
              *, sigma: float | None = None) -> np.ndarray:
    """One-dimensional anti-aliasing kernel of the official DIP downsampler.

    The official 2-D kernels (lanczos, box) are outer products of this vector with
    itself, so the downsampler is applied separably.

    Parameters
    ----------
    factor : int
        Downsampling factor (≥ 1).
    kernel_type : {'lanczos2', 'lanczos3', 'box', 'gauss'}
        'lanczos2' (support 2, 4·factor taps at phase 0.5; the paper's choice),
        'lanczos3' (support 3, 6·factor taps), 'box' (factor taps, always half
        phase), 'gauss' (7 taps with ``sigma`` in input pixels, default 1/2, phase 0).
    phase : {0, 0.5}
        Sub-pixel offset of the sampling grid; 0.5 centres each output pixel between
        input pixels (even-sized kernel).

    Returns
    -------
    numpy.ndarray
        float64 vector that sums to 1.
    """
    if phase not in (0, 0.5):
        raise ValueError(f"phase must be 0 or 0.5, got {phase}")
    if kernel_type in ("lanczos2", "lanczos3"):
        support = 2 if kernel_type == "lanczos2" else 3
        width = 2 * support * factor + 1
        n = width - 1 if phase == 0.5 else width
        center = (width + 1) / 2.0
        i = np.arange(1, n + 1, dtype=np.float64)
        d = np.abs(i + phase - center) / factor
        k = _lanczos(d, support)
    elif kernel_type == "box":
        k = np.ones(factor, dtype=np.float64)
    elif kernel_type == "gauss":
        if phase == 0.5:
            raise ValueError("the gauss kernel is defined for phase 0 only")
        sigma = 0.5 if sigma is None else sigma
        width = 7
        center = (width + 1) / 2.0
        d = (np.arange(1, width + 1) - center) / 2.0
        k = np.exp(-(d**2) / (2 * sigma**2))
    else:
        raise ValueError(
            f"unknown kernel_type {kernel_type!r}; use 'lanczos2', 'lanczos3', 'box' or 'gauss'"
        )
    return k / k.sum()


def get_kernel(factor: int, kernel_type: str = "lanczos2", phase: float = 0.5,
               **kwargs) -> np.ndarray:
    """Two-dimensional kernel (outer product of :func:`kernel_1d`), sums to 1."""
    k = kernel_1d(factor, kernel_type, phase, **kwargs)
    return np.outer(k, k)


class Downsampler(nn.Module):
    """Fixed anti-aliased downsampler d(x) of the super-resolution data term.

    Separable filtering with :func:`kernel_1d` then subsampling by ``factor``.
    With ``preserve_size=True`` the input is replication-padded so that an H×W
    input gives (H/factor)×(W/factor), as the official SR notebook uses it.

    Parameters
    ----------
    n_planes : int
        Number of channels (each filtered on its own).
    factor : int
        Integer downsampling factor ≥ 1.
    kernel_type : str
        See :func:`kernel_1d`.
    phase : {0, 0.5}
        Sampling phase. An even-length kernel (phase 0.5) is centred between two
        pixels, so it needs an even factor; for odd factors use phase 0.
    preserve_size : bool
        Replication-pad the input (official behaviour for SR and for
        ``downsample_mode='lanczos2'`` inside the networks). The padding centres the
        kernel on each factor×factor block, (taps − factor)/2 pixels a side, as the
        official code does for its even factors; where that is not a whole number
        (an odd-length kernel and an even factor) it pads (taps − 1)/2, the official
        rule for odd-length kernels.

    Raises
    ------
    ValueError
        For a factor below 1 or an even-length kernel with an odd factor.
    """

    def __init__(self, n_planes: int, factor: int, kernel_type: str = "lanczos2",
                 phase: float = 0.5, preserve_size: bool = True, **kernel_kwargs):
        super().__init__()
        if int(factor) != factor or factor < 1:
            raise ValueError(f"factor must be an integer ≥ 1, got {factor}")
        self.n_planes, self.factor = int(n_planes), int(factor)
        k = torch.from_numpy(kernel_1d(self.factor, kernel_type, phase, **kernel_kwargs)).float()
        self.register_buffer("kernel", k)
        n = k.numel()
        if (n - self.factor) % 2 == 0:
            self.pad = (n - self.factor) // 2
        elif n % 2 == 1:
            self.pad = (n - 1) // 2
        else:
            raise ValueError(f"a {n}-tap kernel (phase {phase}) cannot be centred on the "
                             f"blocks of an odd factor {self.factor}; use phase=0")
        self.preserve_size = preserve_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preserve_size and self.pad > 0:
            x = F.pad(x, (self.pad,) * 4, mode="replicate")
        c, n = x.shape[1], self.kernel.numel()
        kh = self.kernel.to(x.dtype).view(1, 1, n, 1).expand(c, 1, n, 1)
        kw = self.kernel.to(x.dtype).view(1, 1, 1, n).expand(c, 1, 1, n)
        x = F.conv2d(x, kh, stride=(self.factor, 1), groups=c)
        return F.conv2d(x, kw, stride=(1, self.factor), groups=c)

    def extra_repr(self) -> str:
        return f"n_planes={self.n_planes}, factor={self.factor}, taps={self.kernel.numel()}"

