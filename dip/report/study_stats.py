"""The numbers a study shows: means over images of each image's seed mean, with their
intervals, and PSNR histories averaged over images and seeds.

A study's runs come as one frame, a row per record (built by
:func:`dip.report.study.build_study`): ``image``, ``seed``, ``setting`` (its label), the
settings' keys (raw values), the PSNR fields and ``record`` (the folder).
:func:`setting_intervals` gives the table's mean column, :func:`paired_to_best` its Δ to the
best setting (paired on image and seed, so that the images' spread cancels),
:func:`cell_stats` the figures' cells (a heatmap's, a line plot's means),
:func:`curve_stats` the curves and their bands.
Every interval is :func:`dip.report.stats.bootstrap`'s (images, then seeds), so the table
and the figures agree; the figures draw these frames and compute nothing of their own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dip.report.stats import LEVEL, bootstrap, per_image
from dip.report.varying import ALL, setting_order, setting_text

__all__ = ["ordered_texts", "figure_keys", "setting_intervals", "paired_to_best",
           "vs_best_fields", "cell_stats", "curve_stats", "PM_INTERVAL", "PM_STD"]

PM_INTERVAL = f"half-width of its {LEVEL * 100:.0f} % bootstrap interval (images, then seeds)"
"""What a cell's ± is when the study has several images."""
PM_STD = "std over seeds (one image)"
"""What a cell's ± is when the study has a single image."""


def ordered_texts(values: pd.Series) -> list[str]:
    """The distinct values of a key as text, in the settings' natural order
    (:func:`dip.report.varying.setting_order`: numbers by value, then text)."""
    return list(dict.fromkeys(setting_text(v) for v in sorted(values, key=setting_order)))


def figure_keys(runs: pd.DataFrame, keys: list[str], metric: str) -> list[str]:
    """The keys a figure shows: all of them up to two, else the two whose means of
    ``metric`` spread the most, in the order of ``keys`` (the first: rows, or panels)."""
    if len(keys) <= 2:
        return list(keys)
    spread = {k: np.ptp(runs.groupby(runs[k].map(setting_text))[metric].mean())
              for k in keys}
    shown = sorted(keys, key=lambda k: -spread[k])[:2]
    return [k for k in keys if k in shown]


def _seeds(part: pd.DataFrame) -> int:
    """The fewest distinct seeds any image of ``part`` has."""
    return int(part.groupby("image")["seed"].nunique(dropna=False).min()) if len(part) else 0


def setting_intervals(runs: pd.DataFrame, fields: list[str], order: list[str]
                      ) -> pd.DataFrame:
    """Per setting: the mean over images of each image's seed mean of each field, and its
    bootstrap interval.

    Parameters
    ----------
    runs : pandas.DataFrame
        A row per record (see the module docstring).
    fields : list of str
        PSNR fields of ``runs``.
    order : list of str
        The settings' labels, in the order of the rows returned.

    Returns
    -------
    pandas.DataFrame
        Columns ``setting``, ``images``, ``seeds`` (the fewest any of its images has),
        ``runs``, then per field ``<field>``, ``<field>_lo`` and ``<field>_hi``.
    """
    rows = []
    for setting in order:
        part = runs[runs["setting"] == setting]
        row = {"setting": setting, "images": part["image"].nunique(), "seeds": _seeds(part),
               "runs": len(part)}
        for field in fields:
            interval = bootstrap(per_image(part, value=field))
            row.update({field: interval.mean, f"{field}_lo": interval.lo,
                        f"{field}_hi": interval.hi})
        rows.append(row)
    return pd.DataFrame(rows)


def vs_best_fields(metric: str) -> list[str]:
    """The columns :func:`paired_to_best` gives: ``<metric>_vs_best`` and its ``_lo``,
    ``_hi``."""
    return [f"{metric}_vs_best{s}" for s in ("", "_lo", "_hi")]


def paired_to_best(runs: pd.DataFrame, metric: str, intervals: pd.DataFrame
                   ) -> pd.DataFrame:
    """Per setting: its ``metric`` minus the best setting's, paired on image and seed.

    The best setting is the one with the highest mean in ``intervals``
    (:func:`setting_intervals`). Each (image, seed) the two settings share gives a
    difference d = a − best (where they share no seed, as in a study by seed, each image's
    seed means do); the value is the mean over images of each image's mean d, and
    its interval :func:`dip.report.stats.bootstrap`'s. Paired, the images' own spread
    (often several dB) cancels, and what is left is the settings' difference.

    Returns
    -------
    pandas.DataFrame
        Columns ``setting``, ``<metric>_vs_best``, ``<metric>_vs_best_lo``,
        ``<metric>_vs_best_hi``, in ``intervals``' order: 0 for the best itself, NaN for a
        setting that shares no image with it.
    """
    names = vs_best_fields(metric)
    means = intervals.set_index("setting")[metric]
    if not means.notna().any():
        return pd.DataFrame({"setting": intervals["setting"],
                             **{n: float("nan") for n in names}})
    cols = ["image", "seed", metric]
    ref = runs.loc[runs["setting"] == means.idxmax(), cols]
    rows = []
    for setting in intervals["setting"]:
        part = runs.loc[runs["setting"] == setting, cols]
        pairs = part.merge(ref, on=["image", "seed"], suffixes=("", "_best"))
        if pairs.empty:  # no seed in common (a study by seed): the images' seed means
            pairs = (part.groupby("image")[metric].mean().to_frame().join(
                ref.groupby("image")[metric].mean().rename(f"{metric}_best"), how="inner")
                .reset_index())
        diff = pairs.assign(value=pairs[metric] - pairs[f"{metric}_best"])
        iv = bootstrap(per_image(diff))
        rows.append({"setting": setting, **dict(zip(names, (iv.mean, iv.lo, iv.hi),
                                                     strict=True))})
    return pd.DataFrame(rows, columns=["setting", *names])


def cell_stats(runs: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """The cells of a figure over ``keys`` (none, one or two): each cell's runs averaged.

    Returns
    -------
    pandas.DataFrame
        A row per cell present, in the keys' natural order: a column per key (its value as
        text), ``mean`` (over images of each image's seed mean), ``lo``, ``hi`` (the
        bootstrap interval), ``pm`` (the ± a figure writes: the interval's half-width, or
        with a single image in the whole study the std over seeds; NaN for a cell of one
        run), ``images``, ``seeds``, ``runs``. ``attrs['pm']`` says which ± it is
        (:data:`PM_INTERVAL` or :data:`PM_STD`).
    """
    texts = runs.assign(**{k: runs[k].map(setting_text) for k in keys})
    one_image = runs["image"].nunique() == 1
    rows = []
    for cell, part in (texts.groupby(keys, sort=False) if keys else [((), texts)]):
        interval = bootstrap(per_image(part, value=metric))
        values = part[metric].dropna()
        pm = (values.std(ddof=1) if one_image else (interval.hi - interval.lo) / 2)
        rows.append({**dict(zip(keys, cell if isinstance(cell, tuple) else (cell,),
                                strict=True)),
                     "mean": interval.mean, "lo": interval.lo, "hi": interval.hi,
                     "pm": pm if len(values) > 1 else float("nan"),
                     "images": interval.images, "seeds": _seeds(part), "runs": len(part)})
    cells = pd.DataFrame(rows, columns=[*keys, "mean", "lo", "hi", "pm", "images", "seeds",
                                        "runs"])
    if keys:
        ranks = [cells[k].map({t: i for i, t in enumerate(ordered_texts(runs[k]))})
                 for k in keys]
        cells = cells.iloc[np.lexsort([r.to_numpy() for r in reversed(ranks)])]
    cells = cells.reset_index(drop=True)
    cells.attrs["pm"] = PM_STD if one_image else PM_INTERVAL
    return cells


def _history(record, y: str) -> pd.DataFrame | None:
    """``step`` and the PSNR column ``y`` (else ``psnr_gt``) of a record's history."""
    try:
        hist = pd.read_csv(Path(record) / "history.csv")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    column = y if y in hist else "psnr_gt"
    if column not in hist or "step" not in hist:
        return None
    return pd.DataFrame({"step": hist["step"], "psnr": hist[column]})


def curve_stats(runs: pd.DataFrame, keys: list[str], y: str) -> pd.DataFrame | None:
    """The PSNR histories of a study, a curve per setting of ``keys``; None when no
    record has a history.

    With two keys the first makes the panels and the second the curves of each panel;
    with one, one panel (:data:`~dip.report.varying.ALL`) of a curve per value; with none,
    one curve. Each curve is, at each step, the mean over seeds of each seed's mean over
    images (and over the keys not shown); its band the lowest and highest of those seed
    curves.

    Returns
    -------
    pandas.DataFrame or None
        Columns ``panel``, ``curve`` (values as text, in natural order), ``step``,
        ``mean``, ``lo``, ``hi``, ``seeds`` (the seed curves at that step).
    """
    panel_key = keys[0] if len(keys) == 2 else None
    curve_key = keys[-1] if keys else None
    parts = []
    for _, run in runs.iterrows():
        hist = _history(run["record"], y)
        if hist is not None:
            parts.append(hist.assign(
                panel=setting_text(run[panel_key]) if panel_key else ALL,
                curve=setting_text(run[curve_key]) if curve_key else ALL, seed=run["seed"]))
    if not parts:
        return None
    long = pd.concat(parts, ignore_index=True)
    per_seed = long.groupby(["panel", "curve", "seed", "step"], dropna=False)["psnr"].mean()
    stats = per_seed.groupby(["panel", "curve", "step"]).agg(
        mean="mean", lo="min", hi="max", seeds="count").reset_index()
    panels = ordered_texts(runs[panel_key]) if panel_key else [ALL]
    curves = ordered_texts(runs[curve_key]) if curve_key else [ALL]
    stats = stats.assign(_p=stats["panel"].map(panels.index),
                         _c=stats["curve"].map(curves.index))
    return stats.sort_values(["_p", "_c", "step"]).drop(columns=["_p", "_c"]).reset_index(
        drop=True)
