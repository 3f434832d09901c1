"""The workload every benchmark measurement fits: a synthetic image, its σ 25 denoising
problem and the paper's fit settings (lr 0.01, input noise 1/30, 32 input channels).

Also :func:`sync`, which waits for a CUDA device's queued work (nothing on the CPU), so
that a clock read after it counts that work.
"""

from __future__ import annotations

import math

import torch

__all__ = ["sync", "image", "problem", "settings"]


def sync(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def image(size: int, seed: int = 0) -> torch.Tensor:
    """A smooth synthetic RGB image (3, size, size) in [0.1, 0.9]: three cosine waves
    with phases drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size),
                          indexing="ij")
    return torch.stack([0.5 + 0.4 * torch.cos(2 * math.pi * (c + 1) * (x + 0.5 * y)
                                              + float(torch.rand(1, generator=g)) * 6)
                        for c in range(3)])


def problem(size: int, seed: int = 0):
    """σ 25 denoising of :func:`image` (``size``², noise drawn from ``seed``)."""
    from dip.problems.denoising import denoising

    return denoising(gt=image(size, seed), sigma=25, seed=seed)


def settings(steps: int, device, seed: int = 0, **kw):
    """The paper's denoising :class:`dip.fitting.settings.FitSettings` for ``steps`` steps on
    ``device``; ``kw`` are further settings (e.g. ``amp='bf16'``, ``cuda_graph=False``)."""
    from dip.fitting.settings import FitSettings

    return FitSettings(num_iter=steps, lr=0.01, reg_noise_std=1.0 / 30, input_depth=32,
                       record_every=10, seed=seed, device=str(device), **kw)
