"""The figures of a study: the metric per setting, and PSNR curves as small multiples.

:func:`plot_study` draws ``study.png``: with one key a line per image against it and the
mean over images with its interval; with two (or the two whose means spread most, of
more) a heatmap, each cell the mean over images of the per-image seed means, written with
its ± (:func:`dip.report.study_stats.cell_stats`), a missing cell hatched.
:func:`plot_curves` draws ``study_curves.png``: a panel per value of the first key, in each
the curves of the second key's values, seeds' band shaded
(:func:`dip.report.study_stats.curve_stats`), one y axis. A learning rate, or any key whose
values are positive and span more than a decade, is a log axis labelled with its values
(:func:`log_scaled`). Keys' values keep their natural order everywhere.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.ticker import NullLocator

from dip.plots import plt, save_figure
from dip.report.study_stats import cell_stats, curve_stats, figure_keys
from dip.report.varying import ALL, setting_order, setting_text

__all__ = ["log_scaled", "plot_line", "plot_heatmap", "plot_study", "plot_curves",
           "LOG_KEYS"]

LOG_KEYS = ("lr",)
"""Last parts of the dotted keys always drawn on a log axis (``fit.lr``) when positive."""
MISSING = "no runs"  # the text of a heatmap cell without records
HISTORY_NAMES = {"psnr_gt": "PSNR to ground truth (dB)",
                 "psnr_gt_avg": "PSNR, averaged (dB)"}


def _numeric(value) -> bool:
    """Whether a setting's value is a number (not a bool)."""
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _values(series: pd.Series) -> dict:
    """A key's distinct values, text → value, in natural order."""
    out: dict = {}
    for v in sorted(series, key=setting_order):
        out.setdefault(setting_text(v), v)
    return out


def log_scaled(key: str | None, values) -> bool:
    """Whether ``key`` gets a log axis: its values are all positive numbers, and it is a
    learning rate (last part in :data:`LOG_KEYS`) or they span more than a decade."""
    values = list(values)
    if key is None or not values or not all(_numeric(v) and v > 0 for v in values):
        return False
    return key.rsplit(".", 1)[-1] in LOG_KEYS or max(values) / min(values) > 10


def _place(ax, which: str, key: str | None, values: dict, slots: bool = False) -> dict:
    """Set up the ``which`` ('x' or 'y') axis of ``ax`` for a key's values and return
    text → position: a log scale at the values, labelled with them (:func:`log_scaled`);
    a linear one for other numbers, unless ``slots``; else one slot per value."""
    raw = list(values.values())
    log = log_scaled(key, raw)
    numeric = key is not None and all(_numeric(v) for v in raw) and (log or not slots)
    place = dict(zip(values, raw if numeric else range(len(raw)), strict=True))
    if log:
        getattr(ax, f"set_{which}scale")("log")
    if log or not numeric:
        axis = getattr(ax, f"{which}axis")
        axis.set_ticks(list(place.values()), list(values))
        axis.set_minor_locator(NullLocator())
    return place


def _edges(positions: list, log: bool) -> np.ndarray:
    """Cell edges around sorted centres: halfway between neighbours (in log10 if
    ``log``), the outer ones as far out as the inner ones are."""
    x = np.log10(positions) if log else np.asarray(positions, dtype=float)
    mids = (x[1:] + x[:-1]) / 2
    first = x[0] - (mids[0] - x[0] if len(x) > 1 else 0.5)
    last = x[-1] + (x[-1] - mids[-1] if len(x) > 1 else 0.5)
    edges = np.concatenate([[first], mids, [last]])
    return 10 ** edges if log else edges


def _pm_text(mean: float, pm: float) -> str:
    """A heatmap cell's text: the mean, and its ± on a second line when there is one."""
    return f"{mean:.2f}" if math.isnan(pm) else f"{mean:.2f}\n± {pm:.2f}"


def plot_line(ax, table: pd.DataFrame, cells: pd.DataFrame, key: str | None,
              metric: str) -> None:
    """``metric`` against ``key``: a line per image (its seed mean ± std) and a thick
    line of the mean over images ± the ± of ``cells`` (:func:`cell_stats` over [key])."""
    values = _values(table[key]) if key else {ALL: ALL}
    place = _place(ax, "x", key, values)
    x = table[key].map(setting_text).map(place) if key else pd.Series(0, table.index)
    std = f"{metric}_std"
    for image, part in table.assign(_x=x).groupby("image"):
        part = part.sort_values("_x")
        ax.errorbar(part["_x"], part[metric], yerr=part[std].fillna(0) if std in part
                    else None, marker="o", capsize=3, alpha=0.7, lw=1.2, label=image)
    xs = cells[key].map(place) if key else [0] * len(cells)
    ax.errorbar(xs, cells["mean"], yerr=cells["pm"].fillna(0), color="black", lw=2.5,
                elinewidth=1.5, marker="s", capsize=5, label="mean over images")
    ax.set(xlabel=key or "", ylabel=f"{metric} (dB)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def plot_heatmap(fig, ax, cells: pd.DataFrame, runs: pd.DataFrame, keys: list[str],
                 metric: str) -> None:
    """The cells of two keys (rows: ``keys[0]``, columns: ``keys[1]``) coloured by their
    mean and written as mean ± pm; a cell without runs hatched and marked 'no runs'."""
    rows, cols = (_values(runs[k]) for k in keys)
    ys, xs = (_place(ax, w, k, v, slots=True)
              for w, k, v in (("y", keys[0], rows), ("x", keys[1], cols)))
    logs = [log_scaled(k, v.values()) for k, v in zip(keys, (rows, cols), strict=True)]
    ye, xe = (_edges(list(p.values()), log) if log else np.arange(len(p) + 1) - 0.5
              for p, log in zip((ys, xs), logs, strict=True))
    by = cells.set_index(keys)
    grid = np.full((len(rows), len(cols)), np.nan)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if (r, c) in by.index:
                grid[i, j] = by.loc[(r, c), "mean"]
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(grid), cmap="viridis")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x, y = xs[c], ys[r]
            if math.isnan(grid[i, j]):
                ax.add_patch(plt.Rectangle((xe[j], ye[i]), xe[j + 1] - xe[j],
                                           ye[i + 1] - ye[i], facecolor="#eeeeee",
                                           edgecolor="#aaaaaa", hatch="///", lw=0))
                ax.text(x, y, MISSING, ha="center", va="center", fontsize=7, color="#666666")
                continue
            ax.text(x, y, _pm_text(grid[i, j], by.loc[(r, c), "pm"]), ha="center",
                    va="center", fontsize=8,
                    color="black" if mesh.norm(grid[i, j]) > 0.6 else "white")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[-1], ye[0])  # the first row at the top, as in the table
    ax.set(xlabel=keys[1], ylabel=keys[0])
    fig.colorbar(mesh, ax=ax, label=f"mean {metric} (dB)")


def _study_footer(cells: pd.DataFrame, metric: str, missing: bool) -> str:
    seeds = sorted(set(cells["seeds"]))
    seeds = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    images = int(cells["images"].max()) if len(cells) else 0
    return (f"{metric}: the mean over images of each image's mean over seeds, ± the "
            f"{cells.attrs['pm']}; {images} image(s), {seeds} seed(s) a cell"
            + ("; hatched: no runs" if missing else "") + ".")


def plot_study(runs: pd.DataFrame, table: pd.DataFrame, keys: list[str], metric: str,
               title: str, path):
    """``study.png``: a line plot of one key (or none), a heatmap of two (of more: the
    two that spread most, :func:`~dip.report.study_stats.figure_keys`), with a footer
    saying what a value and its ± are."""
    shown = figure_keys(runs, keys, metric)
    cells = cell_stats(runs, shown, metric)
    if len(shown) <= 1:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        plot_line(ax, table, cells, shown[0] if shown else None, metric)
        missing = False
    else:
        rows, cols = (runs[k].map(setting_text).nunique() for k in shown)
        fig, ax = plt.subplots(figsize=(max(6.4, 3.4 + 1.1 * cols),
                                        max(4.2, 1.6 + 0.62 * rows)))
        plot_heatmap(fig, ax, cells, runs, shown, metric)
        missing = len(cells) < rows * cols
        others = [k for k in keys if k not in shown]
        title += " (mean over images" + (f" and {', '.join(others)}; these two spread the "
                                         "most)" if others else ")")
    ax.set_title(title, fontsize=9)
    fig.text(0.5, -0.01, _study_footer(cells, metric, missing), ha="center", va="top",
             fontsize=7, color="#555555", wrap=True)
    return save_figure(fig, path)


def _colours(values: dict) -> dict:
    """text → colour: a sequential map for numbers (in their order), else categories."""
    n = len(values)
    if all(_numeric(v) for v in values.values()):
        return dict(zip(values, plt.cm.viridis(np.linspace(0.0, 0.85, n)), strict=True))
    cycle = plt.cm.tab10.colors if n <= 10 else plt.cm.tab20.colors
    return {t: cycle[i % len(cycle)] for i, t in enumerate(values)}


def _grid(n: int) -> tuple[int, int]:
    """(rows, columns) of ``n`` panels: one row up to three, else near square, ≤ 4 wide."""
    ncols = n if n <= 3 else min(4, math.ceil(math.sqrt(n)))
    return math.ceil(n / ncols), ncols


def _draw_panel(ax, part: pd.DataFrame, colours: dict) -> None:
    """One panel's curves (rows of :func:`curve_stats`), each with its seeds' band."""
    for curve, line in part.groupby("curve", sort=False):
        ax.plot(line["step"], line["mean"], color=colours[curve], lw=1.4, label=curve)
        if (line["seeds"] > 1).any():
            ax.fill_between(line["step"], line["lo"], line["hi"], color=colours[curve],
                            alpha=0.25, lw=0)
    ax.grid(alpha=0.3)


def plot_curves(runs: pd.DataFrame, keys: list[str], metric: str, title: str, path):
    """``study_curves.png``: a panel per value of the first shown key (one panel with one
    key or none), in each a curve per value of the last, shared axes, one legend; None
    when no record has a history."""
    y = "psnr_gt_avg" if metric == "psnr_avg" else "psnr_gt"
    shown = figure_keys(runs, keys, metric)
    stats = curve_stats(runs, shown, y)
    if stats is None:
        return None
    panels = list(dict.fromkeys(stats["panel"]))
    curve_key = shown[-1] if shown else None
    colours = _colours(_values(runs[curve_key]) if curve_key else {ALL: ALL})
    nrows, ncols = _grid(len(panels))
    fig, axes = plt.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False,
                             layout="constrained",
                             figsize=(max(6.4, 1.6 + 3.0 * ncols), max(4.0, 1.0 + 2.4 * nrows)))
    for i, (ax, panel) in enumerate(zip(axes.flat, panels, strict=False)):
        _draw_panel(ax, stats[stats["panel"] == panel], colours)
        if len(shown) == 2:
            ax.set_title(f"{shown[0]} = {panel}", fontsize=9)
        if i + ncols >= len(panels):  # no panel below: this one shows the x axis
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("iteration")
        if i % ncols == 0:
            ax.set_ylabel(HISTORY_NAMES.get(y, y))
    for ax in axes.flat[len(panels):]:
        ax.remove()
    finals = stats.sort_values("step").groupby(["panel", "curve"])["mean"].last()
    axes[0, 0].set_ylim(max(stats["lo"].min(), finals.min() - 6) - 0.2,
                        stats["hi"].max() + 0.3)  # the end of the fits, where they differ
    handles = [plt.Line2D([], [], color=c, lw=2) for c in colours.values()]
    fig.legend(handles, list(colours), title=curve_key, loc="outside right upper",
               fontsize=8, title_fontsize=8)
    fig.suptitle(title, fontsize=10)
    seeds = int(stats["seeds"].max())
    band = (f"band: the lowest to the highest of those {seeds} seed curves" if seeds > 1
            else "one seed: no band")
    fig.text(0.5, -0.01, f"Each curve: the mean over seeds of each seed's mean over images "
             f"of {y}; {band}.", ha="center", va="top", fontsize=7, color="#555555", wrap=True)
    return save_figure(fig, path)
