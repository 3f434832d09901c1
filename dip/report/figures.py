"""Figures of single runs: image panels side by side and PSNR/loss curves."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dip.atomic import atomic_target  # noqa: E402
from dip.metrics import to_hwc  # noqa: E402

__all__ = ["side_by_side", "plot_history", "save_figure"]


def save_figure(fig, path) -> Path:
    """Save ``fig`` atomically (:func:`dip.atomic.atomic_target`) and close it."""
    try:
        with atomic_target(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def _show(ax, img, title: str) -> None:
    a = np.clip(to_hwc(img), 0, 1)
    if a.shape[2] == 1:
        ax.imshow(a[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(a, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def side_by_side(panels, path, title: str = "") -> Path:
    """Images in a row, each titled with its name and PSNR.

    Parameters
    ----------
    panels : list of (name, image, psnr or None)
        Images as tensors C×H×W / 1×C×H×W or arrays H×W(×C) in [0, 1].
    path : path-like
        PNG to write.
    """
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
    for ax, (name, img, value) in zip(axes[0], panels, strict=True):
        label = name if value is None or not math.isfinite(value) else f"{name}\n{value:.2f} dB"
        _show(ax, img, label)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def plot_history(history: pd.DataFrame, path, title: str = "") -> Path:
    """PSNR (against observation and ground truth) and loss against iteration."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    if len(history):
        ax1.plot(history.step, history.psnr_obs, label="vs observation", lw=1)
        if history.psnr_gt.notna().any():
            ax1.plot(history.step, history.psnr_gt, label="vs ground truth", lw=1)
            ax1.plot(history.step, history.psnr_gt_avg, label="vs ground truth (averaged)",
                     lw=1)
        ax2.semilogy(history.step, history.loss, lw=1)
    ax1.set(xlabel="iteration", ylabel="PSNR (dB)")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.set(xlabel="iteration", ylabel="loss (MSE)")
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
