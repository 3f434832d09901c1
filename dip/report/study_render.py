"""A study's table as text: per setting, each image's mean ± std over seeds and the mean
over images with its bootstrap interval, in markdown and LaTeX.

:func:`summary` lays out the cells (strings) and marks the best of each column;
:func:`layout` puts the settings down the rows (their keys as the first columns) or, when
the images outnumber them (a folder of images), the images; :func:`markdown` and
:func:`latex` write it with a caption and notes. The numbers come from
:mod:`dip.report.study` (the per-image table) and
:func:`dip.report.study_stats.setting_intervals`; the CSV keeps them as numbers.
"""

from __future__ import annotations

import math

import pandas as pd

from dip.report.stats import LEVEL
from dip.report.study_stats import vs_best_fields
from dip.report.varying import setting_text

__all__ = ["summary", "layout", "markdown", "latex", "span", "MEAN_COLUMN", "DELTA_COLUMN",
           "SEEDS_COLUMN"]

MEAN_COLUMN = f"mean [{LEVEL * 100:.0f} % interval]"
"""The column (or row) of each setting's mean over images and its bootstrap interval."""
DELTA_COLUMN = f"Δ vs best [{LEVEL * 100:.0f} %]"
"""The column of each setting's paired difference to the best setting
(:func:`dip.report.study_stats.paired_to_best`), when the study has several settings."""
SEEDS_COLUMN = "seeds"
"""The column (or row) of the number of seeds behind each setting's cells."""
NONE = "–"  # a cell without runs


def span(values) -> str:
    """'3' when all the counts are 3, '1–3' when they range."""
    counts = sorted({int(v) for v in values if not pd.isna(v)})
    if not counts:
        return NONE
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


def _cell(mean: float, std: float) -> str:
    """An image's cell: 'mean ± std' over its seeds, the mean alone for one seed."""
    if math.isnan(mean):
        return NONE
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def _interval_cell(mean: float, lo: float, hi: float) -> str:
    """A setting's mean: 'mean [lo, hi]', the mean alone when the interval is a point."""
    if math.isnan(mean):
        return NONE
    return f"{mean:.2f}" if not hi > lo else f"{mean:.2f} [{lo:.2f}, {hi:.2f}]"


def _delta_cell(mean: float, lo: float, hi: float) -> str:
    """A setting's Δ to the best: '+0.12 [−0.05, +0.30]'; 'best' for the best itself."""
    if math.isnan(mean):
        return NONE
    if mean == lo == hi == 0:
        return "best"
    return f"{mean:+.2f}" if not hi > lo else f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def summary(table: pd.DataFrame, intervals: pd.DataFrame, metric: str
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table's cells, a row per setting (in ``intervals``' order).

    Parameters
    ----------
    table : pandas.DataFrame
        A row per (image, setting): ``metric``, ``<metric>_std`` and ``seeds``
        (:func:`dip.report.study.study_table`).
    intervals : pandas.DataFrame
        A row per setting: ``metric``, ``<metric>_lo``, ``<metric>_hi``
        (:func:`dip.report.study_stats.setting_intervals`), and where present
        ``<metric>_vs_best`` with its ``_lo`` and ``_hi``
        (:func:`dip.report.study_stats.paired_to_best`).

    Returns
    -------
    cells, best : pandas.DataFrame
        Indexed by setting label; a column per image ('mean ± std', or the mean alone for
        one seed, '–' when missing), :data:`MEAN_COLUMN` ('mean [lo, hi]'),
        :data:`DELTA_COLUMN` (where ``intervals`` has it) and :data:`SEEDS_COLUMN`;
        ``best`` marks the highest value of each column at the two decimals shown.
    """
    settings = list(intervals["setting"])
    images = list(dict.fromkeys(table["image"]))
    means, stds = (table.pivot(index="setting", columns="image", values=v)
                   .reindex(index=settings, columns=images)
                   for v in (metric, f"{metric}_std"))
    cells = pd.DataFrame({image: [_cell(m, s) for m, s in
                                  zip(means[image], stds[image], strict=True)]
                          for image in images}, index=pd.Index(settings, name="setting"))
    iv = intervals.set_index("setting")
    cells[MEAN_COLUMN] = [_interval_cell(*iv.loc[s, [metric, f"{metric}_lo",
                                                      f"{metric}_hi"]]) for s in settings]
    delta = vs_best_fields(metric)
    if set(delta) <= set(iv.columns):
        cells[DELTA_COLUMN] = [_delta_cell(*iv.loc[s, delta]) for s in settings]
    seeds = table.groupby("setting")["seeds"].agg(span)
    cells[SEEDS_COLUMN] = [seeds.get(s, NONE) for s in settings]
    shown = means.assign(**{MEAN_COLUMN: iv[metric].reindex(settings)}).round(2)
    best = shown.eq(shown.max(axis=0), axis=1) & shown.notna()
    return cells, best.reindex(columns=cells.columns, fill_value=False)


def layout(cells: pd.DataFrame, best: pd.DataFrame, settings: pd.DataFrame
           ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The summary as printed: settings down the rows with a column per key first
    (``settings``: a row per setting, a column per key, as
    :func:`dip.report.varying.settings_of` gives), or images down the rows when they
    outnumber the settings. Returns (frame of strings, best mask, header columns)."""
    images = [c for c in cells if c not in (MEAN_COLUMN, DELTA_COLUMN, SEEDS_COLUMN)]
    if len(images) > len(cells):
        frame = cells.T.rename_axis("image").reset_index()
        return frame, best.T.reset_index(drop=True).reindex(
            columns=frame.columns, fill_value=False), 1
    keys = settings.reindex(cells.index)
    heads = (keys.apply(lambda col: col.map(setting_text)) if len(keys.columns)
             else pd.DataFrame({"setting": cells.index}, index=cells.index))
    frame = pd.concat([heads, cells], axis=1).reset_index(drop=True)
    return frame, best.reset_index(drop=True).reindex(columns=frame.columns,
                                                      fill_value=False), len(heads.columns)


def markdown(frame: pd.DataFrame, best: pd.DataFrame, heads: int, caption: str,
             notes: list[str]) -> str:
    """The caption, the table (best cells in bold) and the notes as a markdown list."""
    cells = frame.mask(best, "**" + frame.astype(str) + "**")
    align = ("left",) * heads + ("right",) * (len(frame.columns) - heads)
    body = cells.to_markdown(index=False, disable_numparse=True, colalign=align)
    return "\n".join([caption, "", body, *([""] + [f"- {n}" for n in notes] if notes
                                            else [])]) + "\n"


_ESCAPE = str.maketrans({**{c: "\\" + c for c in "_&%$#{}"}, "±": r"$\pm$", "–": "--",
                         "Δ": r"$\Delta$"})


def latex(frame: pd.DataFrame, best: pd.DataFrame, heads: int, caption: str,
          notes: list[str]) -> str:
    """A ``table`` environment: caption, a ``tabular`` with ``\\hline`` rules (no
    package needed), best cells in ``\\textbf``, the notes in small type."""
    def row(values, bold=None):
        texts = [str(v).translate(_ESCAPE) for v in values]
        if bold is not None:
            texts = [rf"\textbf{{{t}}}" if b else t for t, b in zip(texts, bold, strict=True)]
        return " & ".join(texts) + r" \\"

    lines = [r"\begin{table}", r"\centering", rf"\caption{{{caption.translate(_ESCAPE)}}}",
             rf"\begin{{tabular}}{{{'l' * heads + 'r' * (len(frame.columns) - heads)}}}",
             r"\hline", row(frame.columns), r"\hline"]
    lines += [row(frame.iloc[i], best.iloc[i]) for i in range(len(frame))]
    lines += [r"\hline", r"\end{tabular}"]
    lines += [r"\par\footnotesize " + n.translate(_ESCAPE) for n in notes]
    return "\n".join(lines + [r"\end{table}"]) + "\n"
