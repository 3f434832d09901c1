"""Rerun checks: does a table rebuilt from a rerun's records reproduce a committed one?

:func:`compare_tables` reads two table CSVs (as :func:`dip.report.render.write_table`
writes them, 4 decimals) and lists every value that differs, using pandas'
``DataFrame.compare``; ``python -m dip.report compare`` exits 1 on any difference.
Only the columns both tables have are compared: a rerun on a machine without an optional
baseline's package (``bm3d``) lacks that column, and the result names what was left out.
The row keys are the columns up to ``seeds``; every number after them is compared, the
stds and the bounds of the mean rows' intervals included (the bootstrap is seeded, so the
same values give the same bounds).
"""

from __future__ import annotations

import pandas as pd

from dip.errors import DipError
from dip.report.headings import SEEDS

__all__ = ["compare_tables", "DIFF_COLUMNS"]

DIFF_COLUMNS = ["row", "column", "reference", "candidate"]


def compare_tables(reference, candidate, subset: bool = False) -> pd.DataFrame:
    """Differences between two table CSVs (a committed table and a rerun of it).

    Parameters
    ----------
    reference, candidate : str or Path
        CSV files written by :func:`dip.report.render.write_table`.
    subset : bool
        The candidate reruns a block of the table (e.g. Set5 ×4, or σ 25): only the
        reference's rows whose keys (the columns before ``seeds``: dataset, factor, sigma,
        image) are the candidate's are compared, in the candidate's order.

    Returns
    -------
    pandas.DataFrame
        One row per (row, column) whose values differ, with columns ``row``, ``column``,
        ``reference`` and ``candidate``, in the table's row then column order; empty when
        the tables are identical at the precision they were written with, in the columns
        both have. ``attrs["rows"]`` is the number of rows compared;
        ``attrs["only_reference"]`` and ``attrs["only_candidate"]`` list the columns left
        out because one table lacks them.

    Raises
    ------
    DipError
        When the files cannot be read, have different rows or row keys, or share no
        value column.
    """
    try:
        a, b = pd.read_csv(reference), pd.read_csv(candidate)
    except (OSError, ValueError) as err:
        raise DipError(f"cannot read the tables to compare: {err}") from err
    if subset:
        a = _rows_of(a, b, candidate)
    shared = [c for c in a.columns if c in b.columns]
    keys = _keys(a)
    if (len(a) != len(b) or not set(keys) <= set(shared)
            or len(shared) == len(keys)):
        raise DipError(f"{candidate} has other rows or columns than {reference} "
                       f"({b.shape} vs {a.shape}); rerun the same sweep")
    # object dtype: a column read as int in one file and float in the other still compares
    diff = a[shared].astype(object).compare(b[shared].astype(object),
                                            result_names=("reference", "candidate"))
    if diff.empty:
        long = pd.DataFrame(columns=DIFF_COLUMNS)
    else:
        parts = [diff[c].dropna(how="all").assign(column=c)
                 for c in diff.columns.get_level_values(0).unique()]  # the table's order
        long = pd.concat(parts).rename_axis("row").reset_index()
        long = long.sort_values("row", kind="stable")[DIFF_COLUMNS].reset_index(drop=True)
    long.attrs = {"rows": len(b),
                  "only_reference": [c for c in a.columns if c not in shared],
                  "only_candidate": [c for c in b.columns if c not in shared]}
    return long


def _keys(table: pd.DataFrame) -> list[str]:
    """The columns every table must share: those up to ``seeds`` (the row keys and the
    seed count), or the first one when there is no such column."""
    cols = list(table.columns)
    return cols[:cols.index(SEEDS) + 1] if SEEDS in cols else cols[:1]


def _rows_of(reference: pd.DataFrame, candidate: pd.DataFrame, where) -> pd.DataFrame:
    """The rows of ``reference`` with the keys of ``candidate``'s rows, in its order."""
    if SEEDS not in reference.columns or not set(_keys(reference)) <= set(candidate.columns):
        raise DipError(f"{where} has other row keys than the reference (or no 'seeds' column "
                       "to find the row keys before); rerun the same sweep")
    keys = _keys(reference)[:-1]
    rows = candidate[keys].astype(str).merge(
        reference.astype({k: str for k in keys}).reset_index(), on=keys, how="left")
    if rows["index"].isna().any():
        missing = rows.loc[rows["index"].isna(), keys].agg(" ".join, axis=1).tolist()
        raise DipError(f"{where} has rows the reference has not: {', '.join(missing)}")
    return reference.loc[rows["index"].astype(int)].reset_index(drop=True)
