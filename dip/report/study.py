"""Studies of sweeps: the records of a multirun as a table and figures of its settings.

    python -m dip.report study --root R [--out O] [--metric psnr_avg] [--by KEY ...]
                               [--profile P] [--name NAME]

A sweep (``dip -m image=a.png,b.png fit.lr=0.01,0.001 seed=0,1,2 records=R``) leaves a
record per run under ``R``. :func:`varying_keys` finds the settings that tell them apart
(dotted config keys whose values differ, those the jobs' ``overrides`` name first; never
the seed, outputs, execution, the data root, nor keys that follow from the image or from
another setting); :func:`study_table` averages the seeds of each (image, setting). Written
into ``O`` (default ``R/studies/<name>_<profile>``, beside the records it reports; name:
the root folder's; committed studies pass ``O`` under ``results/studies/``):

- ``study.csv``: a row per image and setting: each key, ``runs``, ``seeds``, each PSNR
  field's mean and ``<field>_std`` over seeds, ``iter_oracle``, ``seconds``;
- ``study_settings.csv``: a row per setting: each key, ``images``, ``seeds`` (the fewest
  any image has), ``runs``, each PSNR field's mean over images of the per-image seed
  means and its 95 % bootstrap interval ``<field>_lo``, ``<field>_hi``
  (:func:`dip.report.stats.bootstrap`: images, then seeds);
- ``study.md`` / ``study.tex`` (:mod:`dip.report.study_render`): ``--metric`` per setting
  and image as mean ± std over seeds, the mean over images with its interval, the seeds
  behind each row, the best of each column in bold, a caption saying profile,
  iterations, device, commits and seeds;
- ``study.png`` and ``study_curves.png`` (:mod:`dip.report.study_figures`): the metric
  per setting (a heatmap of mean ± interval for two keys) and PSNR curves, a panel per
  value of the first key.

Records of different profiles are never mixed: choose one with ``--profile``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from dip.atomic import atomic_target, write_text
from dip.errors import DipError, DipNote
from dip.report.stats import LEVEL
from dip.report.study_figures import plot_curves, plot_study
from dip.report.study_render import latex, layout, markdown, span, summary
from dip.report.study_stats import paired_to_best, setting_intervals
from dip.report.varying import (
    load_study,
    setting_labels,
    settings_of,
    varying_keys,
)

__all__ = ["build_study", "study_table", "study_runs", "pivot", "PSNR_FIELDS"]

PSNR_FIELDS = ("psnr_final", "psnr_avg", "psnr_oracle", "psnr_stop")


def study_runs(records: pd.DataFrame, values: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """A row per record: ``image``, ``seed``, ``setting`` (its label), each key's value,
    the PSNR fields present and ``record``: what :mod:`dip.report.study_stats` reads
    (``--by seed`` keeps the one ``seed`` column)."""
    psnr = [f for f in PSNR_FIELDS if f in records and records[f].notna().any()]
    runs = pd.DataFrame({"image": records["image_id"].astype(str), "seed": records["seed"],
                         "setting": setting_labels(values, keys)}, index=records.index)
    own = [k for k in keys if k not in (*runs.columns, *psnr, "record")]
    return pd.concat([runs, values.reindex(columns=own), records[psnr + ["record"]]], axis=1)


def study_table(records: pd.DataFrame, values: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per (image, setting): the key values, runs, means and standard deviations.

    ``records`` and ``values`` come from :func:`load_study`, ``keys`` from
    :func:`varying_keys` (or are chosen). Columns: ``image``, each key, ``setting`` (its
    label), ``runs``, ``seeds`` (distinct), each PSNR field's mean and ``<field>_std``
    (ddof 1; NaN with one run), the means of ``iter_oracle`` and ``seconds``; images
    sorted, settings in the keys' natural order.
    """
    df = records.assign(image=records["image_id"].astype(str),
                        setting=setting_labels(values, keys))
    psnr = [f for f in PSNR_FIELDS if f in df and df[f].notna().any()]
    other = [f for f in ("iter_oracle", "seconds") if f in df]
    groups = df.groupby(["image", "setting"], sort=False)
    table = pd.concat([groups.size().rename("runs"),
                       groups["seed"].nunique(dropna=False).rename("seeds"),
                       groups[psnr + other].mean(),
                       groups[psnr].std(ddof=1).add_suffix("_std")], axis=1).reset_index()
    settings = settings_of(values, keys)
    table = table.merge(settings, left_on="setting", right_index=True, how="left")
    rank = {s: i for i, s in enumerate(settings.index)}
    table = table.assign(_rank=table["setting"].map(rank)).sort_values(["image", "_rank"])
    fields = [c for f in psnr for c in (f, f"{f}_std")] + other
    return table[["image", *keys, "setting", "runs", "seeds", *fields]].reset_index(drop=True)


def pivot(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``metric`` per image (rows, plus 'mean') and setting (columns, in table order)."""
    settings = list(dict.fromkeys(table["setting"]))
    grid = table.pivot(index="image", columns="setting", values=metric)[settings]
    grid.loc["mean"] = grid.mean()
    grid.columns.name = None
    return grid


def _caption(records: pd.DataFrame, table: pd.DataFrame, metric: str, name: str,
             paired: bool = False) -> str:
    def listed(column, fmt=str):
        if column not in records:
            return "?"
        return ", ".join(dict.fromkeys(fmt(v) for v in records[column].dropna())) or "?"

    devices = records.get("device_name", pd.Series(dtype=object)).fillna(records["device"])
    seeds = ", ".join(map(str, sorted({int(s) for s in records["seed"].dropna()})))
    uneven = "; see the seeds of each setting" if len(set(table["seeds"])) > 1 else ""
    return (f"Study {name}: {metric} (dB) per setting and image, each image's mean ± std "
            f"over its seeds; mean: the mean over images of those seed means [its "
            f"{LEVEL * 100:.0f} % bootstrap interval, images then seeds]; best of each "
            f"image and of the mean in bold; "
            + (f"Δ vs best: the setting minus the best mean's, paired on image and seed, "
               f"the mean over images [{LEVEL * 100:.0f} % interval]; " if paired else "")
            + f"profile {listed('profile')}, "
            f"{listed('num_iter', lambda v: str(int(v)))} iterations, device "
            f"{', '.join(dict.fromkeys(devices.dropna().astype(str)))}, commit "
            f"{listed('commit', lambda c: c[:7] + ('+dirty' * c.endswith('+dirty')))}, "
            f"{span(table['seeds'])} seed(s) per cell ({seeds or '?'}{uneven}).")


def _notes(keys: list[str], grid: pd.DataFrame) -> list[str]:
    notes = []
    if not keys:
        notes.append("nothing varies across these records but the seed: one setting")
    if grid.drop(index="mean").isna().any(axis=None):
        notes.append("some settings lack records of some images: their mean is over "
                     "the images they have")
    for note in notes:
        warnings.warn(note, DipNote, stacklevel=3)
    return notes


def build_study(root="results/runs", out=None, *, metric: str = "psnr_avg", by=None,
                profile: str | None = None, name: str | None = None,
                only=None) -> tuple[str, list]:
    """Write a sweep's study (see the module docstring); returns (markdown, paths).

    Parameters
    ----------
    root : path-like
        The sweep's records root.
    out : path-like, optional
        Where the files go (default ``<root>/studies/<name>_<profile>``: beside the
        records, never into the checkout's ``results/`` unless asked).
    metric : str
        The field of the markdown/LaTeX table and the figures (a PSNR field).
    by : list of str, optional
        The settings' keys (default: :func:`varying_keys`).
    profile : str, optional
        The profile whose records are used (required when the root holds several).
    name : str, optional
        The study's name (default: the root folder's name).
    only : list of path-like, optional
        Just these records under ``root`` (e.g. the runs of one folder of images).
    """
    records, values, named = load_study(root, profile, only)
    present = [f for f in PSNR_FIELDS if f in records and records[f].notna().any()]
    if metric not in present:
        raise DipError(f"--metric {metric} is not in these records; choose one of "
                       f"{', '.join(present) or '(none: the runs have no ground truth)'}")
    if by:
        by = [k if k in values or f"{k}.name" not in values else f"{k}.name" for k in by]
        missing = [k for k in by if k not in values]
        if missing:
            raise DipError(f"--by {' '.join(missing)}: no such config key in the records; "
                           "use dotted keys such as fit.lr or net.name")
        keys = list(by)
    else:
        keys = varying_keys(values, records["image_id"].astype(str), named)
    if profile is None:
        profiles = records["profile"].dropna().astype(str)
        profile = profiles.iloc[0] if len(profiles) else "none"
    name = name or Path(root).resolve().name
    out = Path(out) if out is not None else Path(root) / "studies" / f"{name}_{profile}"
    table, runs = study_table(records, values, keys), study_runs(records, values, keys)
    settings = settings_of(values, keys)
    intervals = setting_intervals(runs, [f for f in PSNR_FIELDS if f in table],
                                  list(settings.index))
    paired = len(intervals) > 1  # a Δ vs best needs two settings
    if paired:
        intervals = intervals.merge(paired_to_best(runs, metric, intervals), on="setting")
    caption = _caption(records, table, metric, name, paired=paired)
    notes = _notes(keys, pivot(table, metric))
    frame, best, heads = layout(*summary(table, intervals, metric), settings)
    text = markdown(frame, best, heads, caption, notes)
    per_setting = pd.concat([settings.reset_index(drop=True), intervals], axis=1)
    for file, data in (("study.csv", table), ("study_settings.csv", per_setting)):
        with atomic_target(out / file) as tmp:
            data.to_csv(tmp, index=False)
    title = f"{name} ({profile})"
    paths = [out / "study.csv", out / "study_settings.csv", write_text(out / "study.md", text),
             write_text(out / "study.tex", latex(frame, best, heads, caption, notes)),
             plot_study(runs, table, keys, metric, title, out / "study.png")]
    curve = plot_curves(runs, keys, metric, f"{title}: PSNR history, mean over images and "
                        "seeds", out / "study_curves.png")
    if curve is None:
        warnings.warn(f"no record under {root} has a history.csv: no study_curves.png",
                      DipNote, stacklevel=2)
    return text, paths + ([curve] if curve is not None else [])
