"""The paper's figures from run records: image grids with zoomed insets, and curves.

A figure experiment (``conf/experiment/fig_*.yaml``) runs one or more fits whose
records share ``experiment``; its ``figure`` node says how to show them:

``kind``
    'grid': ground truth, the corrupted input (and the network's input image when it
    is one), the classical baselines and every run's restoration side by side, each
    with a zoomed inset; 'curves': only the curves.
``title``, ``inset``
    Title, and the zoomed box as (top, left, side) fractions of the image.

:func:`build_figure` writes ``<out>/<experiment>_<profile>.png`` (grid) and
``<experiment>_<profile>_curves.png`` (PSNR or MSE against iteration for every run).
Every figure carries its profile, iterations, device, seed and commit.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from dip import DipError
from dip.data import load_image
from dip.metrics import to_hwc
from dip.report.figures import plt, save_figure
from dip.report.tables import load_records

__all__ = ["figure_records", "build_figure", "image_grid", "curves", "FIGURES"]

FIGURES = ("fig_architectures", "fig_kate", "fig_lr", "fig_vase", "fig_restoration",
           "fig_jpeg", "fig_flash", "fig_prior_curves")
"""The figure experiments (``make figures`` runs them all)."""

BASELINE_NAMES = {"biharmonic": "biharmonic (skimage)", "nlm": "NLM (skimage)",
                  "cbm3d": "CBM3D", "bicubic": "bicubic"}


def figure_records(experiment: str, profile: str, root="results/runs") -> pd.DataFrame:
    """Records of one figure experiment and profile, in the order they finished."""
    df = load_records(root, profile=profile)
    df = df[df["experiment"] == experiment]
    if df.empty:
        raise DipError(f"no records of {experiment} with profile {profile} under {root}; "
                       f"run `dip -m experiment={experiment} profile={profile}` first")
    return df.sort_values("finished", kind="stable").reset_index(drop=True)


def _spec(record: str) -> dict:
    cfg = OmegaConf.load(Path(record) / "config.yaml")
    return OmegaConf.to_container(cfg.get("figure") or {}, resolve=False)


def _provenance(df: pd.DataFrame) -> str:
    def values(col):
        vals = sorted({str(v) for v in df[col].dropna()}) if col in df else []
        return "/".join(vals) or "?"

    return (f"profile {values('profile')} · {values('num_iter')} it · "
            f"{values('device_name') if 'device_name' in df else values('device')} · "
            f"seed {values('seed')} · commit {values('commit')[:12]}")


def _draw(ax, img: np.ndarray, title: str, inset) -> None:
    a = np.clip(to_hwc(img), 0, 1)
    grey = a.shape[2] == 1
    show = dict(cmap="gray", vmin=0, vmax=1) if grey else {}
    data = a[..., 0] if grey else a
    ax.imshow(data, interpolation="nearest", **show)
    ax.set_title(title, fontsize=8)
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
               ncols: int = 4) -> Path:
    """Images in a grid, each titled (name and PSNR) and with a zoomed inset.

    Parameters
    ----------
    panels : list of (name, image, psnr or None)
        Images as arrays H×W(×C) or tensors in [0, 1].
    path : path-like
        PNG to write.
    inset : (top, left, side), optional
        Zoomed box as fractions of the image height/width/shorter side.
    ncols : int
        Panels per row.
    """
    n = len(panels)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    h, w = to_hwc(panels[0][1]).shape[:2]
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(3.0 * ncols, 3.0 * nrows * h / w + 0.6 * nrows + 0.4))
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, img, value) in zip(axes.flat, panels, strict=False):
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


def _read(record: str, name: str):
    path = Path(record) / name
    return load_image(path) if path.is_file() else None


def build_figure(experiment: str, profile: str = "quick", root="results/runs",
                 out="results/figures") -> list[Path]:
    """Write the figure(s) of ``experiment`` from its records; return the paths."""
    if experiment not in FIGURES:
        raise DipError(f"unknown figure {experiment!r}; choose one of {', '.join(FIGURES)}")
    df = figure_records(experiment, profile, root)
    spec = _spec(df.record.iloc[0])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    footer = _provenance(df)
    title = spec.get("title", experiment) + f" — profile {profile}"
    labels = [str(v) if isinstance(v, str) and v else f"run {i}"
              for i, v in enumerate(df.get("label", pd.Series([None] * len(df))))]
    paths = []
    first = df.record.iloc[0]
    has_gt = df.psnr_final.notna().any()
    if spec.get("kind", "grid") == "grid":
        panels = []
        gt = _read(first, "gt.png")
        if gt is not None:
            panels.append(("ground truth", gt, None))
        corrupted_name = "target (no-flash)" if df.task.iloc[0] == "fitting" else "corrupted"
        panels.append((corrupted_name, _read(first, "corrupted.png"),
                       df.psnr_corrupted.iloc[0] if has_gt else None))
        inp = _read(first, "input.png")
        if inp is not None:
            panels.insert(0, (spec.get("input_panel", "network input"), inp, None))
        for col in [c for c in df if c.startswith("baseline_")]:
            name = col.removeprefix("baseline_")
            img = _read(first, f"baseline_{name}.png")
            if img is not None:
                panels.append((BASELINE_NAMES.get(name, name), img, df[col].iloc[0]))
        for label, row in zip(labels, df.itertuples(), strict=True):
            panels.append((f"DIP: {label}", _read(row.record, "restored.png"),
                           row.psnr_final if has_gt else None))
            if experiment == "fig_jpeg":
                panels.append((f"DIP (averaged): {label}",
                               _read(row.record, "restored_avg.png"), None))
        paths.append(image_grid(panels, out / f"{experiment}_{profile}.png", title=title,
                                footer=footer, inset=spec.get("inset")))
    histories = [(label, pd.read_csv(Path(r) / "history.csv"))
                 for label, r in zip(labels, df.record, strict=True)]
    y = "psnr_gt" if has_gt else "loss"
    paths.append(curves(histories, out / f"{experiment}_{profile}_curves.png", y=y,
                        logx=spec.get("kind") == "curves", title=title, footer=footer))
    return paths
