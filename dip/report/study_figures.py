"""The figures of a study: the metric against the settings, and PSNR curves per setting.

:func:`plot_study` draws ``study.png`` (a line per image against one key, or a heatmap of
two: the two whose means spread most when more vary), :func:`plot_curves`
``study_curves.png``; :mod:`dip.report.study` calls them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dip.plots import curves, plt, save_figure
from dip.report.varying import ALL, setting_order, setting_text

__all__ = ["plot_line", "plot_heatmap", "plot_study", "plot_curves"]


def plot_line(ax, table: pd.DataFrame, key: str | None, metric: str) -> None:
    """``metric`` against ``key`` (a line per image and a thick mean line)."""
    values = list(dict.fromkeys(sorted(table[key], key=setting_order))) if key else [ALL]
    numeric = key is not None and all(setting_order(v)[0] == 0 for v in values)
    place = dict(zip(map(setting_text, values), values if numeric else range(len(values)),
                     strict=True))
    table = table.assign(_x=table[key].map(setting_text).map(place) if key else 0)
    std = f"{metric}_std"
    for image, part in table.groupby("image"):
        part = part.sort_values("_x")
        ax.errorbar(part["_x"], part[metric], yerr=part[std].fillna(0) if std in part
                    else None, marker="o", capsize=3, alpha=0.7, lw=1.2, label=image)
    mean = table.groupby("_x")[metric].mean()
    ax.plot(mean.index, mean.values, color="black", lw=3, marker="s",
            label="mean over images")
    if numeric and min(values) > 0 and max(values) / min(values) > 10:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(values)), [setting_text(v) for v in values])
    ax.set(xlabel=key or "", ylabel=f"{metric} (dB)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def plot_heatmap(fig, ax, table: pd.DataFrame, keys: list[str], metric: str) -> None:
    """The mean of ``metric`` over images (and other keys) for two keys, values written."""
    rows, cols = ([setting_text(v) for v in dict.fromkeys(sorted(table[k], key=setting_order))]
                  for k in keys)
    grid = table.assign(_r=table[keys[0]].map(setting_text), _c=table[keys[1]].map(setting_text))
    grid = grid.pivot_table(index="_r", columns="_c", values=metric, aggfunc="mean")
    grid = grid.reindex(index=rows, columns=cols)
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
        if not math.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9,
                    color="black" if image.norm(v) > 0.6 else "white")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel=keys[1], ylabel=keys[0])
    fig.colorbar(image, ax=ax, label=f"mean {metric} (dB)")


def plot_study(table: pd.DataFrame, keys: list[str], metric: str, title: str, path):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if len(keys) <= 1:
        plot_line(ax, table, keys[0] if keys else None, metric)
    else:
        spread = {k: np.ptp(table.groupby(table[k].map(setting_text))[metric].mean()) for k in keys}
        shown = sorted(keys, key=lambda k: -spread[k])[:2]  # the two that spread most
        others = [k for k in keys if k not in shown]
        plot_heatmap(fig, ax, table, shown, metric)
        title += " (mean over images" + (f" and {', '.join(others)}; these two spread the "
                                         "most)" if others else ")")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def plot_curves(records, labels: pd.Series, order, metric: str, title: str, path):
    """Mean PSNR against iteration per setting; None when no record has a history."""
    y = "psnr_gt_avg" if metric == "psnr_avg" else "psnr_gt"
    parts = []
    for index, record in records["record"].items():
        try:
            hist = pd.read_csv(Path(record) / "history.csv")
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
        column = y if y in hist else "psnr_gt"
        if column in hist and "step" in hist:
            parts.append(pd.DataFrame({"setting": labels[index], "step": hist["step"],
                                       "psnr": hist[column]}))
    if not parts:
        return None
    mean = pd.concat(parts).groupby(["setting", "step"])["psnr"].mean().reset_index()
    lines = [(s, mean[mean["setting"] == s].rename(columns={"psnr": y})) for s in order
             if (mean["setting"] == s).any()]
    return curves(lines, path, y=y, title=title)
