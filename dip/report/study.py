"""Studies of sweeps: the records of a multirun as a table and figures of its settings.

    python -m dip.report study --root R [--out O] [--metric psnr_avg] [--by KEY ...]
                               [--profile P] [--name NAME]

A sweep (``dip -m image=a.png,b.png fit.lr=0.01,0.001 seed=0,1 records=R``) leaves a
record per run under ``R``. :func:`varying_keys` finds the settings that tell them apart
(dotted config keys whose values differ, those the jobs' ``overrides`` name first; never
the seed, outputs, execution, the data root, nor keys that follow from the image or from
another setting); :func:`study_table` averages the seeds of each (image, setting). Written
into ``O`` (default ``results/studies/<name>_<profile>``, name: the root folder's):
``study.csv`` (a row per image and setting: each key, ``runs``, each PSNR field's mean and
``<field>_std`` over seeds, ``iter_oracle``, ``seconds``), ``study.md`` / ``study.tex``
(``--metric`` per image and setting, the best of each row in bold, a caption saying
profile, iterations, device, commits and seeds), ``study.png`` (the metric against the
varying key, a line per image; a heatmap for two keys, or the two that spread the most)
and ``study_curves.png`` (mean PSNR against iteration per setting). Records of different
profiles are never mixed: choose one with ``--profile``.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from dip import DipError, DipNote
from dip.atomic import atomic_target, write_text
from dip.plots import curves, plt, save_figure
from dip.records import RunRecord
from dip.report.configs import IGNORED
from dip.report.records import load_records

__all__ = ["build_study", "load_study", "varying_keys", "study_table", "pivot",
           "PSNR_FIELDS", "STUDY_IGNORED"]

PSNR_FIELDS = ("psnr_final", "psnr_avg", "psnr_oracle", "psnr_stop")
STUDY_IGNORED = (*IGNORED, "device", "image")
"""Keys that are never a setting of a study: those of :data:`dip.report.configs.IGNORED`
(seed, outputs, progress, threads, data root, hydra, ...), the device, and the image (the
rows of a study)."""
UNSET = "unset"  # a key a record lacks
ALL = "all runs"  # the label of the one setting when nothing varies


def _ignored(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in STUDY_IGNORED)


def _flat(node, prefix: str = "") -> dict:
    """``{'fit': {'lr': 0.01}}`` → ``{'fit.lr': 0.01}`` (lists stay values)."""
    if not isinstance(node, dict) or not node:
        return {prefix: node} if prefix else {}
    out = {}
    for key, value in node.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _text(value) -> str:
    """A setting's value as text: 0.01 → '0.01', 4 → '4', None → 'null', [1, 2] → '[1, 2]'."""
    if isinstance(value, float) and math.isnan(value):
        return UNSET
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _record_values(folder) -> tuple[dict, list]:
    """The flattened resolved config of a record (:class:`dip.records.RunRecord`),
    completed by its job's overrides, and the keys those overrides name (``net=encdec``
    names ``net.name``)."""
    record = RunRecord.load(folder)
    values = _flat(record.config if record is not None else {})
    overrides = record.overrides if record is not None else []
    named = []
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        parsed = []
    for override in parsed:
        key = override.get_key_element().lstrip("+~")
        key = f"{key}.name" if key not in values and f"{key}.name" in values else key
        if key not in values and not override.is_sweep_override():
            values[key] = override.value()
        named.append(key)
    return values, named


def load_study(root, profile: str | None = None, only=None
               ) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """The records of one profile under ``root`` (:func:`~dip.report.records.load_records`),
    their settings (a row per record, a column per dotted config key, NaN where a record
    lacks it) and the keys their ``overrides`` name, in order; a :class:`~dip.DipError`
    when none is readable, or several profiles are found and none chosen. ``only``: keep
    just these record folders."""
    records = load_records(root)
    if only is not None and not records.empty:
        keep = {str(Path(p).resolve()) for p in only}
        mask = [str(Path(r).resolve()) in keep for r in records["record"]]
        records = records[mask].reset_index(drop=True)
    if records.empty:
        raise DipError(f"no readable run records under {root}; run a sweep with "
                       f"`dip -m ... records={root}` first, or point --root at one")
    found = sorted(records["profile"].dropna().astype(str).unique())
    if profile is None and len(found) > 1:
        raise DipError(f"{root} holds records of profiles {' and '.join(found)}; "
                       "choose one with --profile")
    if profile is not None:
        records = records[records["profile"] == profile].reset_index(drop=True)
        if records.empty:
            raise DipError(f"no records of profile {profile} under {root}; it holds "
                           f"profiles {', '.join(found) or '(none named)'}")
    pairs = [_record_values(r) for r in records["record"]]
    values = pd.DataFrame([p[0] for p in pairs], index=records.index, dtype=object)
    return records, values, list(dict.fromkeys(k for p in pairs for k in p[1]))


def _function_of(text: pd.DataFrame, key: str, by: list[str]) -> bool:
    """Whether ``key`` takes one value within each group of equal ``by`` values."""
    return bool(text.groupby(by)[key].nunique().max() <= 1)


def varying_keys(values: pd.DataFrame, images, named=()) -> list[str]:
    """The settings that tell the records apart.

    Parameters
    ----------
    values : pandas.DataFrame
        One row per record, one column per dotted config key (:func:`load_study`).
    images : sequence
        Each record's image (the rows of a study: a key that follows from the image is
        not a setting).
    named : sequence of str
        Keys the jobs' overrides name, in their order; they come first and are preferred
        over keys derived from them.

    Returns
    -------
    list of str
        Keys whose values differ across records, without :data:`STUDY_IGNORED`, keys that
        follow from the image, and keys that follow from a preferred key (the named
        ones, then ``*.name`` keys, then the rest in config order) with the image.
    """
    text = values.apply(lambda col: col.map(_text)).fillna(UNSET)
    text["\0image"] = list(images)
    varying = [k for k in values if not _ignored(k) and text[k].nunique() > 1]
    named = list(named)
    order = sorted(varying, key=lambda k: (k not in named, named.index(k) if k in named
                                           else not k.endswith(".name"), varying.index(k)))
    kept: list[str] = []
    for key in order:
        if _function_of(text, key, ["\0image"]):
            continue
        overrides = [k for k in kept if k in named]
        if key not in named and overrides and _function_of(text, key, ["\0image",
                                                                       *overrides]):
            continue
        if any(_function_of(text, key, ["\0image", k]) for k in kept):
            continue
        kept.append(key)
    return sorted(kept, key=order.index)


def _order(value):
    """Sort key of a setting's value: numbers by value, before text."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return (0, float(value), "") if not math.isnan(value) else (2, 0.0, "")
    return (1, 0.0, _text(value))


def _settings(values: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per setting, sorted, indexed by its label ('fit.lr=0.01, net.depth=4')."""
    labels = _labels(values, keys)
    settings = values.reindex(columns=keys).assign(setting=labels).drop_duplicates("setting")
    settings = settings.set_index("setting")
    ordered = sorted(settings.index, key=lambda s: [_order(v) for v in settings.loc[s, keys]])
    return settings.loc[ordered]


def _labels(values: pd.DataFrame, keys: list[str]) -> pd.Series:
    if not keys:
        return pd.Series(ALL, index=values.index)
    parts = values.reindex(columns=keys)
    return parts.apply(lambda row: ", ".join(f"{k}={_text(row[k])}" for k in keys), axis=1)


def study_table(records: pd.DataFrame, values: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per (image, setting): the key values, runs, means and standard deviations.

    ``records`` and ``values`` come from :func:`load_study`, ``keys`` from
    :func:`varying_keys` (or are chosen). Columns: ``image``, each key, ``setting`` (its
    label), ``runs``, each PSNR field's mean and ``<field>_std`` (ddof 1; NaN with one
    run), the means of ``iter_oracle`` and ``seconds``; images sorted, settings by value.
    """
    df = records.assign(image=records["image_id"].astype(str),
                        setting=_labels(values, keys))
    psnr = [f for f in PSNR_FIELDS if f in df and df[f].notna().any()]
    other = [f for f in ("iter_oracle", "seconds") if f in df]
    groups = df.groupby(["image", "setting"], sort=False)
    table = pd.concat([groups.size().rename("runs"), groups[psnr + other].mean(),
                       groups[psnr].std(ddof=1).add_suffix("_std")], axis=1).reset_index()
    settings = _settings(values, keys)
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


def _plot_line(ax, table: pd.DataFrame, key: str | None, metric: str) -> None:
    """``metric`` against ``key`` (a line per image and a thick mean line)."""
    values = list(dict.fromkeys(sorted(table[key], key=_order))) if key else [ALL]
    numeric = key is not None and all(_order(v)[0] == 0 for v in values)
    place = dict(zip(map(_text, values), values if numeric else range(len(values)),
                     strict=True))
    table = table.assign(_x=table[key].map(_text).map(place) if key else 0)
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
        ax.set_xticks(range(len(values)), [_text(v) for v in values])
    ax.set(xlabel=key or "", ylabel=f"{metric} (dB)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def _plot_heatmap(fig, ax, table: pd.DataFrame, keys: list[str], metric: str) -> None:
    """The mean of ``metric`` over images (and other keys) for two keys, values written."""
    rows, cols = ([_text(v) for v in dict.fromkeys(sorted(table[k], key=_order))]
                  for k in keys)
    grid = table.assign(_r=table[keys[0]].map(_text), _c=table[keys[1]].map(_text))
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


def _plot_study(table: pd.DataFrame, keys: list[str], metric: str, title: str, path):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if len(keys) <= 1:
        _plot_line(ax, table, keys[0] if keys else None, metric)
    else:
        spread = {k: np.ptp(table.groupby(table[k].map(_text))[metric].mean()) for k in keys}
        shown = sorted(keys, key=lambda k: -spread[k])[:2]  # the two that spread most
        others = [k for k in keys if k not in shown]
        _plot_heatmap(fig, ax, table, shown, metric)
        title += " (mean over images" + (f" and {', '.join(others)}; these two spread the "
                                         "most)" if others else ")")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def _plot_curves(records, labels: pd.Series, order, metric: str, title: str, path):
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
        Where the files go (default ``results/studies/<name>_<profile>``).
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
    out = Path(out) if out is not None else Path("results/studies") / f"{name}_{profile}"
    table = study_table(records, values, keys)
    grid = pivot(table, metric)
    caption, notes = _caption(records, table, metric, name), _notes(keys, grid)
    text = _markdown(grid, caption, notes)
    with atomic_target(out / "study.csv") as tmp:
        table.to_csv(tmp, index=False)
    paths = [out / "study.csv", write_text(out / "study.md", text),
             write_text(out / "study.tex", _latex(grid, caption, notes)),
             _plot_study(table, keys, metric, f"{name} ({profile})", out / "study.png")]
    curve = _plot_curves(records, _labels(values, keys), list(grid.columns), metric,
                         f"{name} ({profile}): mean over images and seeds",
                         out / "study_curves.png")
    if curve is None:
        warnings.warn(f"no record under {root} has a history.csv: no study_curves.png",
                      DipNote, stacklevel=2)
    return text, paths + ([curve] if curve is not None else [])
