"""Rerun checks: does a table rebuilt from a rerun's records reproduce a committed one?

:func:`compare_tables` reads two table CSVs (as :func:`dip.report.render.write_table`
writes them, 4 decimals) and lists every value that differs, using pandas'
``DataFrame.compare``; ``python -m dip.report compare`` exits 1 on any difference.
"""

from __future__ import annotations

import pandas as pd

from dip import DipError

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
        reference's rows whose keys (the columns before ``runs``: dataset, factor, sigma,
        image) are the candidate's are compared, in the candidate's order.

    Returns
    -------
    pandas.DataFrame
        One row per (row, column) whose values differ, with columns ``row``, ``column``,
        ``reference`` and ``candidate``, in the table's row then column order; empty when
        the tables are identical at the precision they were written with.

    Raises
    ------
    DipError
        When the files cannot be read or have different rows or columns.
    """
    try:
        a, b = pd.read_csv(reference), pd.read_csv(candidate)
    except (OSError, ValueError) as err:
        raise DipError(f"cannot read the tables to compare: {err}") from err
    if subset:
        a = _rows_of(a, b, candidate)
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        raise DipError(f"{candidate} has other rows or columns than {reference} "
                       f"({b.shape} vs {a.shape}); rerun the same sweep")
    # object dtype: a column read as int in one file and float in the other still compares
    diff = a.astype(object).compare(b.astype(object), result_names=("reference", "candidate"))
    if diff.empty:
        return pd.DataFrame(columns=DIFF_COLUMNS)
    parts = [diff[c].dropna(how="all").assign(column=c)
             for c in diff.columns.get_level_values(0).unique()]  # the table's column order
    long = pd.concat(parts).rename_axis("row").reset_index()
    return long.sort_values("row", kind="stable")[DIFF_COLUMNS].reset_index(drop=True)


def _rows_of(reference: pd.DataFrame, candidate: pd.DataFrame, where) -> pd.DataFrame:
    """The rows of ``reference`` with the keys of ``candidate``'s rows, in its order."""
    if "runs" not in reference.columns or list(reference.columns) != list(candidate.columns):
        raise DipError(f"{where} has other columns than the reference (or no 'runs' column "
                       "to find the row keys before); rerun the same sweep")
    keys = list(reference.columns[:list(reference.columns).index("runs")])
    rows = candidate[keys].astype(str).merge(
        reference.astype({k: str for k in keys}).reset_index(), on=keys, how="left")
    if rows["index"].isna().any():
        missing = rows.loc[rows["index"].isna(), keys].agg(" ".join, axis=1).tolist()
        raise DipError(f"{where} has rows the reference has not: {', '.join(missing)}")
    return reference.loc[rows["index"].astype(int)].reset_index(drop=True)
