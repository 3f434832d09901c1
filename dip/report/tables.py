"""The tables that experiments declare, built from run records next to the paper's numbers.

An experiment's config declares its table (its ``table:`` block, read by
:mod:`dip.report.declared`: cells, columns, Δ, footnotes); nothing here names a table.
:func:`~dip.report.records.load_records` gathers the run records into a DataFrame;
:func:`table` averages the runs of each image (over seeds, within one profile, and only
over seeds: records of one image that differ in any other setting are refused, see
:func:`dip.report.configs.check_seeds_only`) and puts them beside the paper's numbers
(:mod:`dip.report.paper`); :func:`~dip.report.render.write_table` writes markdown, CSV,
LaTeX and the table's provenance (:mod:`dip.report.render`); rerun checks are in
:mod:`dip.report.compare`.

Paper numbers only ever fill the "(paper)" columns; "(this run, PROFILE)" columns come
only from records.
"""

from __future__ import annotations

import math

import pandas as pd
from pandas.api.types import is_numeric_dtype

from dip.atomic import write_text
from dip.errors import DipError
from dip.report.compare import compare_tables
from dip.report.configs import check_seeds_only, record_settings
from dip.report.declared import Column, TableSpec, experiment_name, run_hint, table_spec
from dip.report.notes import (
    backtrack_note,
    bad_runs,
    diverged_note,
    ensembles,
    flagged,
    partial_blocks,
    provenance,
)
from dip.report.paper import PAPER_ENV, PaperColumns, match_image, natural_key, paper_numbers
from dip.report.records import int_or_none, load_records, with_datasets
from dip.report.render import MEAN, caption, latex, markdown, table_cpus, write_table

__all__ = ["paper_numbers", "table", "write_table", "table_cpus", "markdown", "latex",
           "caption", "experiment_name", "match_image", "compare_tables", "backtrack_note",
           "no_records_message", "write_text", "PAPER_ENV"]


# --- tables -------------------------------------------------------------------------

def _aggregate(records: pd.DataFrame, keys: list[str], fields=()) -> pd.DataFrame:
    """Mean of every metric (and of ``fields``) per group of ``keys`` (over seeds), with a
    ``runs`` count."""
    cols = [c for c in records if c.startswith(("psnr_", "baseline_"))
            or c in ("iter_stop", "steps", *fields)]
    groups = records.groupby(keys, dropna=False, sort=False)
    out = groups[cols].mean()
    out["runs"] = groups.size()
    out = out.reset_index()
    return out.sort_values(keys, key=lambda s: s.map(natural_key)).reset_index(drop=True)


def _col(agg: pd.DataFrame, name: str) -> pd.Series:
    return agg[name] if name in agg else pd.Series(math.nan, index=agg.index)


def _with_means(df: pd.DataFrame, block: list[str]) -> pd.DataFrame:
    """Append a 'mean' row after each block (mean of each column; ``runs`` summed)."""
    parts = []
    groups = df.groupby(block, sort=False, dropna=False) if block else [((), df)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        mean = part.drop(columns=block + ["image", "runs"]).mean(numeric_only=True)
        row = {**dict(zip(block, key, strict=True)), "image": MEAN, "runs": int(part["runs"].sum()),
               **mean.to_dict()}
        parts += [part, pd.DataFrame([row], columns=df.columns)]
    return pd.concat(parts, ignore_index=True)


def _this(profile: str) -> str:
    return f"this run, {profile}"


def _early_stopping(records: pd.DataFrame) -> bool:
    return "stop" in records and bool((records["stop"].fillna("fixed") != "fixed").any())


def _trust_columns(df: pd.DataFrame, agg: pd.DataFrame, records: pd.DataFrame,
                   t: str) -> list[str]:
    """Detected stop vs oracle, and seed-ensemble columns, when the records have them.

    Returns the footnotes for the added columns.
    """
    notes = []
    if _early_stopping(records):
        modes = "/".join(sorted(set(records["stop"].dropna()) - {"fixed"}))
        df[f"DIP stop ({t})"] = agg["psnr_stop"]
        df[f"iter stop ({t})"] = agg["iter_stop"]
        df[f"steps run ({t})"] = _col(agg, "steps")
        df[f"DIP oracle ({t})"] = agg["psnr_oracle"]
        df[f"gap to oracle ({t})"] = df[f"DIP oracle ({t})"] - df[f"DIP stop ({t})"]
        notes.append(f"DIP stop: output at the step detected without ground truth ({modes}, "
                     "Wang et al.); gap to oracle = DIP oracle − DIP stop, where the oracle is "
                     "the best step of the same run.")
    if ensembles(records):
        df[SEEDS_MEAN.format(t)] = agg["psnr_seeds_mean"]
        df[SEEDS_STD.format(t)] = agg["psnr_seeds_std"]
        df[f"DIP ensemble ({t})"] = agg["psnr_ensemble"]
        note = ("mean±std: PSNR of each seed's final output over the seeds of a run (sample "
                "std); ensemble: PSNR of the mean of those outputs")
        if _col(agg, "psnr_ensemble_avg").notna().any():
            df[f"DIP ensemble avg ({t})"] = agg["psnr_ensemble_avg"]
            note += "; ensemble avg: of the mean of the seeds' averaged outputs"
        notes.append(note + ". Mean rows average the means and the stds.")
    return notes


SEEDS_MEAN, SEEDS_STD = "seeds mean ({})", "seeds std ({})"


def _mean_std(df: pd.DataFrame, t: str) -> pd.DataFrame:
    """Replace the seeds mean and std columns by one 'mean±std' text column."""
    mean, std = SEEDS_MEAN.format(t), SEEDS_STD.format(t)
    if mean not in df:
        return df
    text = [f"{m:.2f}±{s:.2f}" if m == m and s == s else "–"
            for m, s in zip(df[mean], df[std], strict=True)]
    df.insert(list(df.columns).index(mean), f"DIP mean±std ({t})", text)
    return df.drop(columns=[mean, std])


def _cells(agg: pd.DataFrame, cells) -> dict[str, list]:
    """The cell fields of each aggregated row: numbers as integers where they are (25.0 →
    25; sigma, factor), text as it is (dataset)."""
    return {c: [int_or_none(v) for v in agg[c]] if is_numeric_dtype(agg[c]) else list(agg[c])
            for c in cells}


def _column(col: Column, agg: pd.DataFrame, ref: PaperColumns | None, label: str,
            rows: dict) -> tuple:
    """The values of a declared column (None where it is left out: an optional record
    column no record has, a per-cell paper column with no method for any row, e.g. DIP 003
    without ×8 rows) and, for an optional paper column whose methods paper_numbers.csv
    lacks, what the footnote on it names (else None)."""
    if not col.is_paper:
        values = _col(agg, col.record)
        return (None if col.optional and not values.notna().any() else values), None
    methods = [col.method_of(v) for v in rows["cells"][col.by]] if col.by else col.method
    if not any(methods if col.by else [methods]):
        return None, None
    if col.optional and not ref.rows["method"].isin(col.all_methods()).any():
        return None, f"{col.label} (method {' or '.join(col.all_methods())})"
    return ref.column(label, methods, rows["images"], rows["factors"], rows["datasets"]), None


def _build(spec: TableSpec, records: pd.DataFrame, paper, profile: str):
    """The table of ``spec`` from its records: cells, image, runs, the declared columns
    in order, the Δ column, then the early-stopping and ensemble columns; and its
    footnotes."""
    t = _this(profile)
    fields = [c.record for c in spec.columns if not c.is_paper]
    records = records.assign(**{f: pd.to_numeric(records[f], errors="coerce")
                                for f in fields if f in records})
    agg = _aggregate(records, [*spec.cells, "image_id"], fields)
    images, cells = list(agg["image_id"]), _cells(agg, spec.cells)
    df = pd.DataFrame({**cells, "image": images, "runs": agg["runs"]})
    ref = None if spec.paper is None else PaperColumns(paper, spec.paper)
    rows = {"cells": cells, "images": images,  # what the paper's numbers are looked up by
            **{f"{key}s": cells.get(spec.paper_key(key)) for key in ("factor", "dataset")}}
    absent, notes = [], []
    for col in spec.columns:
        label = col.heading(t)
        values, lacking = _column(col, agg, ref, label, rows)
        absent += [lacking] if lacking else []
        if values is not None:
            df[label] = values
            notes += [col.note] if col.note else []
    if absent:
        notes.insert(0, f"No column for {' or '.join(absent)}: paper_numbers.csv has no "
                        "per-image numbers for it.")
    if spec.delta is not None:
        d = spec.delta
        this, base = f"{d.this} ({t})", f"{d.paper} (paper)"
        df[f"Δ vs paper ({t})"] = _col(df, this) - _col(df, base)
        notes.append(f"Δ = {this} − {base}" + (f": {d.note}" if d.note else "."))
    notes = ([ref.note()] if ref is not None else []) + notes + list(spec.notes)
    notes += _trust_columns(df, agg, records, t)
    return _mean_std(_with_means(df, list(spec.cells)), t), notes


def no_records_message(experiment: str, profile: str, root) -> str:
    """The one-line error for an empty selection of records."""
    return (f"no records for {experiment} with profile {profile} under {root}; "
            f"run `{run_hint(experiment, profile)}` first")


def _records(spec: TableSpec, profile: str, root, stop) -> pd.DataFrame:
    """The records of one table: one profile, one stopping rule, datasets named."""
    name = spec.experiment
    records = load_records(root, name, profile, stop)
    if stop is None and "stop" in records:
        rules = sorted(set(records["stop"].fillna("fixed")))
        if len(rules) > 1:
            raise DipError(f"the {profile} records of {name} mix stopping rules "
                           f"({', '.join(rules)}); choose one with stop= (--stop)")
    if records.empty:
        raise DipError(no_records_message(name, profile, root))
    return with_datasets(records) if "dataset" in spec.cells else records


def _crops_note(crops: list[int], profile: str, paper: bool) -> str:
    sides = "/".join(f"{c}×{c}" for c in crops)
    note = f"This run's images are centre {sides} crops (profile {profile})"
    return note + ("; the paper's numbers are for whole images, so Δ compares different "
                   "images." if paper else ".")


def table(experiment: str, profile: str = "quick", root="results/runs",
          paper=None, stop=None) -> pd.DataFrame:
    """Per-image table of an experiment that declares one, beside the paper's numbers.

    Parameters
    ----------
    experiment : str
        An experiment whose config declares a ``table:`` block ('table_inpainting',
        'table_denoising', 'table_sr', ...); short names ('inpainting', ...) are accepted.
    profile : str
        Only records of this profile are used (profiles are never mixed).
    root : str or Path
        Records root.
    paper : str, Path or pandas.DataFrame, optional
        paper_numbers.csv or its :func:`paper_numbers` frame; default as there (not read
        for a table without paper numbers).
    stop : {'fixed', 'wmv', 'emv'}, optional
        Only records of this stopping rule. Records with early stopping add the columns
        DIP stop, iter stop, steps run, DIP oracle and gap to oracle; seed ensembles add
        DIP mean±std, DIP ensemble and DIP ensemble avg.

    Returns
    -------
    pandas.DataFrame
        One row per image and cell (runs of several seeds averaged; ``runs`` counts them)
        and a 'mean' row closing each block of the declared cells (per sigma for
        denoising, per dataset and factor for SR). ``df.attrs`` holds the caption's
        provenance and footnotes.

    Raises
    ------
    DipError
        When the experiment declares no table, when no record matches, when the records
        of one image differ in anything but their seed (that is a study: ``python -m
        dip.report study``), or when the paper numbers cannot be found.
    """
    spec = table_spec(experiment)
    name, cells = spec.experiment, list(spec.cells)
    records = _records(spec, profile, root, stop)
    settings = record_settings(records)
    check_seeds_only(records, settings, [*cells, "image_id"], f"{name} ({profile})", root)
    ref = None
    if spec.paper is not None:
        ref = paper if isinstance(paper, pd.DataFrame) else paper_numbers(paper)
    df, notes = _build(spec, records, ref, profile)
    if ref is not None:
        partial = partial_blocks(df, ref[ref["experiment"] == spec.paper], dict(spec.match))
        if partial:
            notes.append("Mean rows average only the images shown (" + "; ".join(partial)
                         + "), so they are not the paper's dataset means.")
    bad = bad_runs(records)
    if not bad.empty:
        notes.append(diverged_note(bad))
    notes.append(backtrack_note(records, settings))
    facts = provenance(records)
    if facts["crops"]:
        notes.append(_crops_note(facts["crops"], profile, ref is not None))
    source = None if ref is None else ref.attrs.get("path", "paper_numbers.csv")
    df.attrs.update(facts, experiment=name, profile=profile, notes=notes, paper_path=source,
                    diverged=flagged(df, bad, cells))
    return df
