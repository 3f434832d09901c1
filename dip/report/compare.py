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


def compare_tables(reference, candidate) -> pd.DataFrame:
    """Differences between two table CSVs (a committed table and a rerun of it).

    Parameters
    ----------
    reference, candidate : str or Path
        CSV files written by :func:`dip.report.render.write_table`.

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
