"""The tables that experiments declare, built from run records next to the paper's numbers.

An experiment's config declares its table (its ``table:`` block, read by
:mod:`dip.report.declared`: cells, column groups, Δ, footnotes); nothing here names a
table. :func:`~dip.report.records.load_records` gathers the run records into a DataFrame;
:func:`table` gives one row per image of each cell over the image's seeds (within one
profile, and only over seeds: records of one image that differ in any other setting are
refused, see :func:`dip.report.configs.check_seeds_only`), a mean row with its interval
per block (:mod:`dip.report.measures`), beside the released results and the paper's
numbers (:mod:`dip.report.paper`); :func:`~dip.report.render.write_table` writes
markdown, CSV, LaTeX and the table's provenance (:mod:`dip.report.render`); rerun checks
are in :mod:`dip.report.compare`.

Paper numbers only ever fill the ``paper`` group; the ``run`` and ``released`` groups come
only from records (:mod:`dip.report.headings` names the columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dip.atomic import write_text
from dip.errors import DipError
from dip.report.compare import compare_tables
from dip.report.configs import check_seeds_only, record_settings
from dip.report.declared import Column, TableSpec, experiment_name, run_hint, table_spec
from dip.report.headings import SEEDS
from dip.report.measures import Measured, per_row, record_seeds, record_values, rows_of, table_frame
from dip.report.notes import (
    backtrack_note,
    bad_runs,
    diverged_note,
    ensembles,
    flagged,
    partial_blocks,
    provenance,
)
from dip.report.paper import PAPER_ENV, PaperColumns, match_image, paper_numbers
from dip.report.records import SEED_LISTS, int_or_none, load_records, with_datasets
from dip.report.render import MEAN, caption, latex, markdown, table_cpus, write_table
from dip.report.stats import LEVEL, REPS, SEED

__all__ = ["paper_numbers", "table", "write_table", "table_cpus", "markdown", "latex",
           "caption", "experiment_name", "match_image", "compare_tables", "backtrack_note",
           "no_records_message", "write_text", "PAPER_ENV"]


# --- tables -------------------------------------------------------------------------

class _Rows:
    """The image rows of a table and what gathers records into them."""

    def __init__(self, records: pd.DataFrame, spec: TableSpec):
        self.records = records
        self.keys, self.at = rows_of(records, [*spec.cells, "image_id"])
        self.cells = {c: [v if isinstance(v, str) else int_or_none(v) for v in self.keys[c]]
                      for c in spec.cells}
        self.images = list(self.keys["image_id"])
        self.alone: dict[tuple, int] = {}  # (label, field) → ensembles that gave one seed

    def measured(self, group: str, label: str, field: str, seeds: bool) -> Measured:
        """A column of the records' ``field`` (each seed's values where ``seeds``)."""
        values, alone = record_values(self.records, field, seeds)
        if alone:
            self.alone[(label, field)] = alone
        return Measured(group, label, per_row(values, self.at, len(self.images)), seeds)


def _early_stopping(records: pd.DataFrame) -> bool:
    return "stop" in records and bool((records["stop"].fillna("fixed") != "fixed").any())


def _trust_columns(rows: _Rows) -> tuple[list[Measured], list[str]]:
    """Detected stop vs oracle, and seed-ensemble columns, when the records have them;
    and their footnotes."""
    records, out, notes = rows.records, [], []
    if _early_stopping(records):
        modes = "/".join(sorted(set(records["stop"].dropna()) - {"fixed"}))
        for label, field in (("DIP stop", "psnr_stop"), ("iter stop", "iter_stop"),
                             ("steps run", "steps"), ("DIP oracle", "psnr_oracle"),
                             ("gap to oracle", "gap_to_oracle")):
            out.append(rows.measured("run", label, field, seeds=True))
        notes.append(f"DIP stop: output at the step detected without ground truth ({modes}, "
                     "Wang et al.); gap to oracle = DIP oracle − DIP stop, where the oracle is "
                     "the best step of the same run.")
    if ensembles(records):
        out.append(rows.measured("run", "DIP ensemble", "psnr_ensemble", seeds=False))
        note = ("DIP ensemble: PSNR of the mean of the final outputs of a seed ensemble's "
                "seeds")
        if "psnr_ensemble_avg" in records and records["psnr_ensemble_avg"].notna().any():
            out.append(rows.measured("run", "DIP ensemble avg", "psnr_ensemble_avg",
                                     seeds=False))
            note += "; DIP ensemble avg: of the mean of their averaged outputs"
        notes.append(note + " (one number a record).")
    return out, notes


def _paper_column(col: Column, rows: _Rows, ref: PaperColumns, spec: TableSpec) -> tuple:
    """The values of a paper column (None where it is left out: a per-cell column with no
    method for any row, e.g. DIP 003 without ×8 rows) and, for an optional column whose
    methods paper_numbers.csv lacks, what the footnote on it names (else None)."""
    methods = [col.method_of(v) for v in rows.cells[col.by]] if col.by else col.method
    if not any(methods if col.by else [methods]):
        return None, None
    if col.optional and not ref.rows["method"].isin(col.all_methods()).any():
        return None, f"{col.label} (method {' or '.join(col.all_methods())})"
    factors, datasets = (rows.cells.get(spec.paper_key(k)) for k in ("factor", "dataset"))
    return ref.column(col.label, methods, rows.images, factors, datasets), None


def _declared(spec: TableSpec, rows: _Rows, ref) -> tuple[list[Measured], list[str]]:
    """The declared columns, in order, and their footnotes."""
    columns, notes, absent = [], [], []
    for col in spec.columns:
        if col.is_paper:
            values, lacking = _paper_column(col, rows, ref, spec)
            absent += [lacking] if lacking else []
            measured = None if values is None else Measured("paper", col.label, values)
        else:
            measured = rows.measured(col.group, col.label, col.record, col.seeds)
            if col.optional and not any(v.size for v in measured.values):
                measured = None
        if measured is not None:
            columns.append(measured)
            notes += [col.note] if col.note else []
    if absent:
        notes.insert(0, f"No column for {' or '.join(absent)}: paper_numbers.csv has no "
                        "per-image numbers for it.")
    return columns, notes


def _delta(spec: TableSpec, columns: list[Measured], crops: list[int]) -> tuple:
    """The Δ column (this run's column − the paper's, per seed) when this run's images
    are whole images, and its footnote; with crops none, and the footnote says why."""
    d = spec.delta
    if d is None:
        return None, None
    if crops:
        sides = "/".join(f"{c}×{c}" for c in crops)
        return None, (f"No Δ vs paper column: this run's images are centre {sides} crops and "
                      "the paper's numbers are for whole images; the released columns compare "
                      "the methods with this run on the same pixels.")
    this = next((c for c in columns if c.group == "run" and c.label == d.this), None)
    base = next((c for c in columns if c.group == "paper" and c.label == d.paper), None)
    if this is None or base is None:
        return None, None
    values = [v - p if p == p else np.empty(0) for v, p in
              zip(this.values, base.values, strict=True)]
    note = f"Δ vs paper = run: {d.this} − paper: {d.paper}" + (f": {d.note}" if d.note else ".")
    return Measured("delta", d.this, values), note


def _seeds_note(alone: dict[tuple[str, str], int]) -> list[str]:
    """How image rows and mean rows are made, and which seed ensembles gave one seed."""
    notes = [f"Image rows: the DIP columns of this run give the mean ± sample std over the "
             "image's seeds (± with two seeds or more; `seeds` counts them), the other "
             "columns one number. Mean rows: the mean over the block's images of each "
             f"image's mean, with its {LEVEL:.0%} interval [lo, hi] from a two-level bootstrap "
             f"(the images, then each image's seeds, resampled; {REPS} resamples, seed {SEED}: "
             "dip.report.stats.bootstrap); paper columns: the mean of the images shown."]
    parts = [f"{label} ({n} record(s), " + (f"made before {SEED_LISTS[field]} was kept)"
                                           if field in SEED_LISTS else f"no per-seed {field})")
             for (label, field), n in alone.items()]
    if parts:
        notes.append("Seed-ensemble records without a column's per-seed values give their "
                     "first seed's value alone: " + "; ".join(parts) + ".")
    return notes


def _build(spec: TableSpec, records: pd.DataFrame, paper, crops: list[int]):
    """The table of ``spec`` from its records: cells, image, seeds, the run group (the
    declared columns, then the early-stopping and ensemble ones), the released group, the
    paper group, Δ; and its footnotes."""
    fields = [c.record for c in spec.columns if not c.is_paper]
    records = records.assign(**{f: pd.to_numeric(records[f], errors="coerce")
                                for f in fields if f in records})
    if "psnr_oracle" in records and "psnr_stop" in records:
        records = records.assign(gap_to_oracle=records["psnr_oracle"] - records["psnr_stop"])
    rows = _Rows(records, spec)
    ref = None if spec.paper is None else PaperColumns(paper, spec.paper)
    columns, notes = _declared(spec, rows, ref)
    trust, trust_notes = _trust_columns(rows)
    last_run = max((i for i, c in enumerate(columns) if c.group == "run"), default=-1)
    columns[last_run + 1:last_run + 1] = trust
    delta, delta_note = _delta(spec, columns, crops)
    columns += [delta] if delta is not None else []
    notes += [delta_note] if delta_note else []
    seeds = np.bincount(rows.at, weights=record_seeds(records), minlength=len(rows.images))
    df = table_frame(rows.keys, seeds, columns, list(spec.cells))
    notes = ([ref.note()] if ref is not None else []) + notes + list(spec.notes) + trust_notes
    return df, notes + _seeds_note(rows.alone)


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
        DIP ensemble and DIP ensemble avg (to the run group).

    Returns
    -------
    pandas.DataFrame
        One row per image and cell over the image's seeds (``seeds`` counts them; DIP
        columns with their std, ``(std)``) and a 'mean' row closing each block of the
        declared cells (per sigma for denoising, per dataset and factor for SR) with the
        interval of each column of this run (``(95% lo)``, ``(95% hi)``); columns named
        by :mod:`dip.report.headings`. ``df.attrs`` holds the caption's provenance and
        footnotes.

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
    facts = provenance(records)
    df, notes = _build(spec, records, ref, facts["crops"])
    if ref is not None:
        partial = partial_blocks(df, ref[ref["experiment"] == spec.paper], dict(spec.match))
        if partial:
            notes.append("Mean rows average only the images shown (" + "; ".join(partial)
                         + "), so they are not the paper's dataset means.")
    bad = bad_runs(records)
    if not bad.empty:
        notes.append(diverged_note(bad))
    notes.append(backtrack_note(records, settings))
    per_image = df.loc[df["image"] != MEAN, SEEDS]
    facts.update(seeds=int(per_image.sum()), seeds_per_image=sorted(set(per_image)))
    source = None if ref is None else ref.attrs.get("path", "paper_numbers.csv")
    df.attrs.update(facts, experiment=name, profile=profile, notes=notes, paper_path=source,
                    diverged=flagged(df, bad, cells))
    return df
