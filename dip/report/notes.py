"""A paper table's footnotes and provenance, from its records alone.

:func:`provenance` (records, iterations, devices, CPUs, commits, dates, crops, seed
ensembles: the caption's facts, kept in ``df.attrs`` and the table's JSON),
:func:`partial_blocks` (blocks showing fewer images than the paper), :func:`bad_runs` and
:func:`flagged` (diverged runs and the rows they spoil), :func:`backtrack_note` (how often
the backtracking rolled fits back).
"""

from __future__ import annotations

import math

import pandas as pd

from dip.fitting.official import OFFICIAL_BACKTRACK
from dip.report.configs import record_settings
from dip.report.records import int_or_none
from dip.report.render import DAGGER, MEAN, fmt_cell

__all__ = ["provenance", "partial_blocks", "bad_runs", "flagged", "diverged_note",
           "backtrack_note", "ensembles", "GOOD_STATUS"]

GOOD_STATUS = ("ok", "stopped")  # 'stopped': early stopping ended the run, as it should


def partial_blocks(df: pd.DataFrame, paper_rows: pd.DataFrame, match: dict) -> list[str]:
    """'N of M images[ for KEY]' for each block showing fewer images than the paper has.

    ``match``: each cell field of the table (in order) → the paper_numbers.csv column it
    pairs with ('factor' or 'dataset'; :class:`dip.report.declared.TableSpec`'s ``match``).
    """
    block = list(match)
    rows = df[df["image"] != MEAN]
    out = []
    for key, part in (rows.groupby(block, sort=False, dropna=False) if block else [((), rows)]):
        key = key if isinstance(key, tuple) else (key,)
        sub = paper_rows
        for col, value in zip(block, key, strict=True):
            col = match[col]
            sub = sub[sub[col].map(int_or_none if col == "factor" else str) == value]
        total = sub["image"].nunique()
        if len(part) < total:
            where = ", ".join(f"{c} {fmt_cell(v, c)}" for c, v in zip(block, key, strict=True))
            out.append(f"{len(part)} of {total} images" + (f" for {where}" if where else ""))
    return out


def bad_runs(records: pd.DataFrame) -> pd.DataFrame:
    """Records whose status is other than ok (records without one count as ok)."""
    if "status" not in records:
        return records.iloc[:0]
    return records[~records["status"].fillna("ok").isin(GOOD_STATUS)]


def _block_key(row, block: list[str]) -> tuple:
    """A record's or table row's cell fields (``block``: dataset, factor, sigma, ...),
    comparable: text as it is, numbers as :func:`int_or_none`."""
    return tuple(row[c] if isinstance(row[c], str) else int_or_none(row[c]) for c in block)


def flagged(df: pd.DataFrame, bad: pd.DataFrame, block: list[str]) -> list[int]:
    """Per table row, how many of ``bad`` it averages (a mean row: those of its block of
    cell fields ``block``)."""
    runs = [(_block_key(r, block), r["image_id"]) for _, r in bad.iterrows()]
    return [sum(key == _block_key(row, block) and row["image"] in (MEAN, image)
                for key, image in runs) for _, row in df.iterrows()]


def diverged_note(bad: pd.DataFrame) -> str:
    """The footnote on the diverged runs ``bad`` (see :func:`bad_runs`)."""
    statuses = ", ".join(sorted(set(bad["status"])))
    return (f"{DAGGER} diverged: {len(bad)} run(s) (status {statuses}: the final output fits "
            "the observation worse than a flat image, or the fit blew up); the DIP values "
            f"marked {DAGGER} include them.")


def ensembles(records: pd.DataFrame) -> bool:
    """Whether the records are seed ensembles (they have a spread over seeds)."""
    return "psnr_seeds_std" in records and bool(records["psnr_seeds_std"].notna().any())


def provenance(records: pd.DataFrame) -> dict:
    """The caption's facts: records, iterations, devices, CPUs, commits, dates, crops, and
    the sizes of the seed ensembles among the records (``ensembles``; none: [])."""
    def values(col):
        return sorted({str(v) for v in records[col].dropna()}) if col in records else []

    def ints(col):
        return sorted({int(v) for v in records[col].dropna()}) if col in records else []

    dates = sorted(str(v)[:10] for v in records["finished"].dropna())
    sizes = ints("n_seeds")
    return {"records": len(records), "iterations": ints("num_iter"),
            "devices": values("device_name") or values("device"),
            "cpus": values("cpu_model"), "commits": values("commit"),
            "dates": (dates[0], dates[-1]) if dates else None, "crops": ints("crop"),
            "ensembles": sizes if any(k > 1 for k in sizes) else []}


def backtrack_note(records: pd.DataFrame, settings: pd.DataFrame | None = None) -> str:
    """How often the backtracking rolled a fit back, per mode (``fit.backtrack``; records
    made before the setting existed ran the guard), from the records' ``backtracks``.

    ``settings``: :func:`dip.report.configs.record_settings` of ``records`` when at hand.
    """
    counts = pd.to_numeric(records["backtracks"], errors="coerce") if "backtracks" in records \
        else pd.Series(math.nan, index=records.index)
    settings = record_settings(records) if settings is None else settings
    modes = (settings["fit.backtrack"] if "fit.backtrack" in settings
             else pd.Series(math.nan, index=records.index, dtype=object)).fillna("guard")
    parts = []
    for mode in sorted(set(modes)):
        mine = modes == mode
        known, n = counts[mine].dropna(), int(mine.sum())
        label = f"Backtracking guard ({mode})"
        if mode == "official" and not set(records.loc[mine, "task"]) & set(OFFICIAL_BACKTRACK):
            label = "Backtracking (official: none in this task's notebook)"
        if known.empty:
            parts.append(f"{label}: rollbacks unknown ({n} run(s) recorded without a count)")
            continue
        total, fired = int(known.sum()), int((known > 0).sum())
        text = (f"{total} rollback{'s' * (total != 1)} over {fired} of {len(known)} run(s)"
                if total else f"no rollbacks in {len(known)} run(s)")
        if len(known) < n:
            text += f", unknown for {n - len(known)} run(s) recorded without a count"
        parts.append(f"{label}: {text}")
    note = "; ".join(parts) + "."
    if ensembles(records):
        note += " For seed ensembles the count is the first seed's."
    return note
