"""Memory needed to fit DIP to an image, estimated before fitting.

The activations that autograd keeps for the backward pass grow linearly with the
number of pixels. :func:`fit_cost` measures them on a small probe input (one forward
pass through the actual architecture) and scales to the image; :func:`check_memory`
refuses a run that would not fit, with a crop that would.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from dip.errors import DipError

__all__ = ["fit_cost", "available_bytes", "check_memory", "GB", "ENV_LIMIT"]

GB = 1024 ** 3
ENV_LIMIT = "DIP_MEMORY_LIMIT_GB"


def _probe(net: nn.Module, in_channels: int, side: int) -> tuple[float, int]:
    """(bytes per output pixel kept for backward, fixed bytes of parameters and Adam)."""
    x = torch.full((1, in_channels, side, side), 0.05, device=next(net.parameters()).device)
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(x)
    saved += out.numel() * out.element_size()
    params = sum(p.numel() * p.element_size() for p in net.parameters())
    return saved / (side * side), 5 * params  # parameters, gradients, Adam m and v, snapshot


def fit_cost(net: nn.Module, in_channels: int, multiple: int = 1, out_channels: int = 3,
             window: int = 0, min_side: int = 0) -> tuple[float, int]:
    """Memory cost of fitting ``net``: bytes per output pixel and fixed bytes.

    An image of H×W pixels needs about ``per_pixel·H·W + fixed`` bytes.

    Parameters
    ----------
    net : nn.Module
        The network (same architecture and width as the fit's; a throw-away instance:
        the probe's forward pass updates BatchNorm statistics).
    in_channels : int
        Channels of the code z.
    multiple : int
        The net's size multiple (the probe is 2·multiple pixels wide, at least 32).
    min_side : int
        Smallest side the net accepts (:func:`dip.nets.min_size`), when larger.
    out_channels : int
        Output channels (for the early-stopping window).
    window : int
        Outputs kept by ES-WMV (0 without it).

    Returns
    -------
    per_pixel : float
        Twice the activations kept for backward (the backward pass holds gradients of
        the same size) plus the ES-WMV window, in bytes per output pixel.
    fixed : int
        Parameters with their gradients, Adam moments and the backtracking snapshot.
    """
    side = max(2 * multiple, min_side, 32)
    side += -side % max(1, multiple)
    saved, fixed = _probe(net, in_channels, side)
    return 2 * saved + 4 * window * out_channels, fixed


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA's free memory, else the system's MemAvailable."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2 ** 62  # unknown: do not refuse


def check_memory(per_pixel: float, fixed: int, size: tuple[int, int], limit: int,
                 multiple: int = 1, profile: str = "") -> int:
    """Estimated bytes of a fit (see :func:`fit_cost`); DipError when over ``limit``.

    The message suggests the largest square crop (a multiple of ``multiple``) that fits.
    """
    h, w = size
    need = int(per_pixel * h * w + fixed)
    if need <= limit:
        return need
    side = math.isqrt(max(0, int((limit - fixed) / per_pixel))) if per_pixel > 0 else 0
    side -= side % max(1, multiple)
    hints = [f"crop it (crop={side})" if side >= 2 * multiple else "use a smaller image"]
    if profile == "paper":
        hints.append("use the narrower nets of profile=quick")
    raise DipError(f"image {h}×{w} needs about {_size(need)} to fit but {_size(limit)} "
                   "is available; " + " or ".join(hints)
                   + f" (limit: memory_limit_gb or {ENV_LIMIT})")


def _size(n: float) -> str:
    """Bytes as '512 MB' or '3.2 GB'."""
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / 1024 ** 2:.0f} MB"
