"""Drawing: image panels (side by side, or a grid with zoomed insets), PSNR/loss curves.

Every figure is saved through :func:`save_figure` (atomically, then closed). A record's
own pictures (:mod:`dip.runs.records`: ``comparison.png``, ``curves.png``) and the reports'
figures (:mod:`dip.report.grids`, :mod:`dip.report.study`) are drawn with these.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dip.atomic import atomic_target  # noqa: E402
from dip.problems.metrics import to_hwc  # noqa: E402

__all__ = ["side_by_side", "plot_history", "save_figure", "image_grid", "curves",
           "histories", "plt"]


def save_figure(fig, path) -> Path:
    """Save ``fig`` atomically (:func:`dip.atomic.atomic_target`) and close it."""
    try:
        with atomic_target(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def _draw(ax, img: np.ndarray, title: str, inset=None, fontsize: int = 8) -> None:
    """One image panel, titled, with a zoomed inset of the (top, left, side) box."""
    a = np.clip(to_hwc(img), 0, 1)
    grey = a.shape[2] == 1
    show = dict(cmap="gray", vmin=0, vmax=1) if grey else {}
    data = a[..., 0] if grey else a
    ax.imshow(data, interpolation="nearest", **show)
    ax.set_title(title, fontsize=fontsize)
    ax.axis("off")
    if not inset:
        return
    h, w = a.shape[:2]
    top, left, side = inset
    s = max(4, int(round(side * min(h, w))))
    y0, x0 = int(round(top * h)), int(round(left * w))
    y0, x0 = min(y0, h - s), min(x0, w - s)
    ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), s, s, fill=False, ec="#ff3030", lw=1))
    sub = ax.inset_axes([0.6, 0.0, 0.4, 0.4 * w / h if h > w else 0.4])
    sub.imshow(data[y0:y0 + s, x0:x0 + s], interpolation="nearest", **show)
    sub.set_xticks([])
    sub.set_yticks([])
    for spine in sub.spines.values():
        spine.set_edgecolor("#ff3030")


def _title(name: str, value) -> str:
    return name if value is None or not math.isfinite(value) else f"{name}\n{value:.2f} dB"


def image_grid(panels, path, title: str = "", footer: str = "", inset=None,
               ncols: int = 4, panel_in: float = 3.0) -> Path:
    """Images in a grid, each titled (name and PSNR) and with a zoomed inset.

    Parameters
    ----------
    panels : list of (name, image, psnr or None)
        Images as arrays H×W(×C) or tensors in [0, 1]; an image None leaves its place
        blank under its name.
    path : path-like
        PNG to write.
    inset : (top, left, side), optional
        Zoomed box as fractions of the image height/width/shorter side.
    ncols : int
        Panels per row.
    panel_in : float
        Width of a panel in inches (110 dpi).
    """
    n = len(panels)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    shown = [img for _, img, _ in panels if img is not None]
    if not shown:
        raise ValueError(f"{path}: none of the {n} panels has an image")
    h, w = to_hwc(shown[0]).shape[:2]
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                             figsize=(panel_in * ncols,
                                      panel_in * nrows * h / w + 0.6 * nrows + 0.4))
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, img, value) in zip(axes.flat, panels, strict=False):
        if img is None:  # e.g. data not at hand: the panel's place, named
            ax.set_title(f"{name}\n(no image)", fontsize=8)
            ax.axis("off")
        else:
            _draw(ax, img, _title(name, value), inset)
    if title:
        fig.suptitle(title, fontsize=10)
    if footer:
        fig.text(0.5, -0.01, footer, ha="center", va="top", fontsize=7, color="#555555")
    return save_figure(fig, path)


def curves(histories, path, *, y: str = "psnr_gt", logx: bool = False, title: str = "",
           footer: str = "") -> Path:
    """One line per run of a history column against iteration.

    Parameters
    ----------
    histories : list of (label, DataFrame)
        History tables (``history.csv`` of the records).
    y : {'psnr_gt', 'psnr_gt_avg', 'psnr_obs', 'loss'}
        Column to plot; 'loss' is shown as MSE.
    logx : bool
        Logarithmic iteration axis (as in the paper's Fig. 2).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    if len(histories) > 10:  # the default cycle repeats after 10 colours
        ax.set_prop_cycle(color=plt.cm.tab20.colors)
    for label, hist in histories:
        steps = hist["step"] + (1 if logx else 0)
        ax.plot(steps, hist[y], lw=1.2, label=label)
    if logx:
        ax.set_xscale("log")
    names = {"psnr_gt": "PSNR to ground truth (dB)", "psnr_gt_avg": "PSNR, averaged (dB)",
             "psnr_obs": "PSNR to the observation (dB)", "loss": "MSE"}
    ax.set(xlabel="iteration" + (" + 1" if logx else ""), ylabel=names.get(y, y))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    if footer:
        fig.text(0.5, -0.01, footer, ha="center", va="top", fontsize=7, color="#555555")
    return save_figure(fig, path)


def histories(labels, records) -> list:
    """(label, history table) of each record, for :func:`curves`."""
    return [(label, pd.read_csv(Path(r) / "history.csv"))
            for label, r in zip(labels, records, strict=True)]




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
        _draw(ax, img, _title(name, value), fontsize=9)
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
