"""Studies of sweeps: the records of a multirun as a table and figures of its settings.

    python -m dip.report study --root R [--out O] [--metric psnr_avg] [--by KEY ...]
                               [--profile P] [--name NAME]

A sweep (``dip -m image=a.png,b.png fit.lr=0.01,0.001 seed=0,1 records=R``) leaves a
record per run under ``R``. :func:`varying_keys` finds the settings that tell them apart
(dotted config keys whose values differ, those the jobs' ``overrides`` name first; never
the seed, outputs, execution, the data root, nor keys that follow from the image or from
another setting); :func:`study_table` averages the seeds of each (image, setting). Written
into ``O`` (default ``R/studies/<name>_<profile>``, beside the records it reports; name:
the root folder's; committed studies pass ``O`` under ``results/studies/``):
``study.csv`` (a row per image and setting: each key, ``runs``, each PSNR field's mean and
``<field>_std`` over seeds, ``iter_oracle``, ``seconds``), ``study.md`` / ``study.tex``
(``--metric`` per image and setting, the best of each row in bold, a caption saying
profile, iterations, device, commits and seeds), ``study.png`` (the metric against the
varying key, a line per image; a heatmap for two keys, or the two that spread the most)
and ``study_curves.png`` (mean PSNR against iteration per setting). Records of different
profiles are never mixed: choose one with ``--profile``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from dip.atomic import atomic_target, write_text
from dip.errors import DipError, DipNote
from dip.report.study_figures import plot_curves, plot_study
from dip.report.varying import (
    load_study,
    setting_labels,
    settings_of,
    varying_keys,
)

__all__ = ["build_study", "study_table", "pivot", "PSNR_FIELDS"]

PSNR_FIELDS = ("psnr_final", "psnr_avg", "psnr_oracle", "psnr_stop")
def study_table(records: pd.DataFrame, values: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per (image, setting): the key values, runs, means and standard deviations.

    ``records`` and ``values`` come from :func:`load_study`, ``keys`` from
    :func:`varying_keys` (or are chosen). Columns: ``image``, each key, ``setting`` (its
    label), ``runs``, each PSNR field's mean and ``<field>_std`` (ddof 1; NaN with one
    run), the means of ``iter_oracle`` and ``seconds``; images sorted, settings by value.
    """
    df = records.assign(image=records["image_id"].astype(str),
                        setting=setting_labels(values, keys))
    psnr = [f for f in PSNR_FIELDS if f in df and df[f].notna().any()]
    other = [f for f in ("iter_oracle", "seconds") if f in df]
    groups = df.groupby(["image", "setting"], sort=False)
    table = pd.concat([groups.size().rename("runs"), groups[psnr + other].mean(),
                       groups[psnr].std(ddof=1).add_suffix("_std")], axis=1).reset_index()
    settings = settings_of(values, keys)
    table = table.merge(settings, left_on="setting", right_index=True, how="left")
    rank = {s: i for i, s in enumerate(settings.index)}
    table = table.assign(_rank=table["setting"].map(rank)).sort_values(["image", "_rank"])
    fields = [c for f in psnr for c in (f, f"{f}_std")] + other
    return table[["image", *keys, "setting", "runs", *fields]].reset_index(drop=True)


def pivot(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``metric`` per image (rows, plus 'mean') and setting (columns, in table order)."""
    settings = list(dict.fromkeys(table["setting"]))
    grid = table.pivot(index="image", columns="setting", values=metric)[settings]
    grid.loc["mean"] = grid.mean()
    grid.columns.name = None
    return grid


def _best(grid: pd.DataFrame) -> pd.DataFrame:
    """The cells of each row equal to its maximum at the two decimals shown."""
    shown = grid.round(2)
    return shown.eq(shown.max(axis=1), axis=0) & shown.notna()


def _caption(records: pd.DataFrame, table: pd.DataFrame, metric: str, name: str) -> str:
    def listed(column, fmt=str):
        if column not in records:
            return "?"
        return ", ".join(dict.fromkeys(fmt(v) for v in records[column].dropna())) or "?"

    devices = records.get("device_name", pd.Series(dtype=object)).fillna(records["device"])
    runs = sorted(set(table["runs"]))
    per_cell = str(runs[0]) if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"
    seeds = sorted({int(s) for s in records["seed"].dropna()})
    return (f"Study {name}: {metric} (dB) per image and setting, best of each row in bold; "
            f"profile {listed('profile')}, {listed('num_iter', lambda v: str(int(v)))} "
            f"iterations, device {', '.join(dict.fromkeys(devices.dropna().astype(str)))}, "
            f"commit {listed('commit', lambda c: c[:7] + ('+dirty' * c.endswith('+dirty')))}"
            f", {per_cell} run(s) per cell (seeds {', '.join(map(str, seeds))}).")


def _markdown(grid: pd.DataFrame, caption: str, notes: list[str]) -> str:
    best = _best(grid)
    cells = grid.apply(lambda col: col.map(lambda v: "–" if pd.isna(v) else f"{v:.2f}"))
    cells = cells.mask(best, "**" + cells + "**")
    align = ("left",) + ("right",) * len(grid.columns)
    body = cells.rename_axis("image").to_markdown(disable_numparse=True, colalign=align)
    return "\n".join([caption, "", body, *([""] + [f"- {n}" for n in notes] if notes
                                            else [])]) + "\n"


def _latex(grid: pd.DataFrame, caption: str, notes: list[str]) -> str:
    frame = grid.rename_axis("image").reset_index()
    best = _best(grid).reset_index(drop=True).replace({True: "textbf:--rwrap;", False: ""})
    styler = frame.style.hide(axis="index").format(precision=2, na_rep="--")
    styler = styler.format(escape="latex", subset=["image"]).format_index(escape="latex",
                                                                          axis=1)
    styler = styler.apply(lambda _: best, axis=None, subset=list(grid.columns))
    styler.set_table_styles([{"selector": rule, "props": ":hline;"}  # no booktabs needed
                             for rule in ("toprule", "midrule", "bottomrule")])
    tabular = styler.to_latex(column_format="l" + "r" * len(grid.columns))
    escape = str.maketrans({c: "\\" + c for c in "_&%$#{}"})
    lines = [r"\begin{table}", r"\centering", rf"\caption{{{caption.translate(escape)}}}",
             tabular.rstrip("\n")]
    lines += [r"\par\footnotesize " + n.translate(escape) for n in notes]
    return "\n".join(lines + [r"\end{table}"]) + "\n"


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
    table = study_table(records, values, keys)
    grid = pivot(table, metric)
    caption, notes = _caption(records, table, metric, name), _notes(keys, grid)
    text = _markdown(grid, caption, notes)
    with atomic_target(out / "study.csv") as tmp:
        table.to_csv(tmp, index=False)
    paths = [out / "study.csv", write_text(out / "study.md", text),
             write_text(out / "study.tex", _latex(grid, caption, notes)),
             plot_study(table, keys, metric, f"{name} ({profile})", out / "study.png")]
    curve = plot_curves(records, setting_labels(values, keys), list(grid.columns), metric,
                         f"{name} ({profile}): mean over images and seeds",
                         out / "study_curves.png")
    if curve is None:
        warnings.warn(f"no record under {root} has a history.csv: no study_curves.png",
                      DipNote, stacklevel=2)
    return text, paths + ([curve] if curve is not None else [])
