"""A table's numbers: each row's values over its seeds, and each block's mean with its
interval.

A row of a table is one image of one cell. Its seeds are separate records (one seed
each: the inpainting and SR tables at ``seed=0,1,2``) or the members of a seed-ensemble
record (the denoising table's ``seeds=3``), whose per-seed lists
(:data:`dip.report.records.SEED_LISTS`) hold each seed's number. :func:`rows_of` gives
each record its row; :func:`record_values` the values a record gives a column (each
seed's for a column of DIP's outputs, else its one number); :class:`Measured` holds a
column's values per row; :func:`table_frame` lays the columns out, image rows then a mean
row per block: an image row shows the mean (and sample std) over its values, a mean row
the mean over the block's images of those means with its interval
(:func:`dip.report.stats.bootstrap`), a paper column the plain mean of its numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from dip.report.headings import SEEDS, name
from dip.report.paper import natural_key
from dip.report.records import SEED_LISTS, int_or_none
from dip.report.render import MEAN
from dip.report.stats import bootstrap

__all__ = ["Measured", "rows_of", "record_values", "per_row", "record_seeds", "table_frame"]


@dataclass
class Measured:
    """One column: its group ('run', 'released', 'paper', 'delta'), label and, per image
    row, the values it rests on (an array: each seed's, or each record's; a paper column:
    one number). ``seeds``: the image rows show the std over the values too."""

    group: str
    label: str
    values: list
    seeds: bool = False


def rows_of(records: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The table's image rows (one per distinct value of ``keys``: the cell fields and
    ``image_id``, sorted with :func:`~dip.report.paper.natural_key`) and each record's
    row number."""
    found = records.groupby(keys, dropna=False, sort=False).ngroup().to_numpy()
    rows = records.drop_duplicates(keys)[keys].reset_index(drop=True)
    ordered = rows.sort_values(keys, key=lambda s: s.map(natural_key))
    position = np.empty(len(rows), dtype=int)
    position[ordered.index.to_numpy()] = np.arange(len(rows))
    return ordered.reset_index(drop=True), position[found]


def record_seeds(records: pd.DataFrame) -> np.ndarray:
    """How many seeds each record fitted (a seed ensemble's size; else 1)."""
    if "n_seeds" not in records:
        return np.ones(len(records), dtype=int)
    return records["n_seeds"].fillna(1).clip(lower=1).astype(int).to_numpy()


def _finite(values) -> np.ndarray:
    out = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return out[np.isfinite(out)]


def record_values(records: pd.DataFrame, field: str, seeds: bool) -> tuple[list, int]:
    """Per record, the values of ``field`` it gives a column (NaN left out), and how many
    seed ensembles gave their first seed's alone.

    A column of DIP's outputs (``seeds``) takes each seed's value of a seed ensemble from
    its per-seed list (``psnr_final``: ``psnr_seeds``, ``psnr_avg``: ``psnr_seeds_avg``);
    an ensemble without that list (made before it was kept, or a field without one)
    gives ``field``, its first seed's. Other columns take each record's one number.
    """
    lists = SEED_LISTS.get(field) if seeds else None
    size = record_seeds(records)
    column = records[field] if field in records else pd.Series(math.nan, records.index)
    out, alone = [], 0
    for i, value in enumerate(column):
        seq = records[lists].iat[i] if lists in records else None
        if isinstance(seq, list):
            out.append(_finite(seq))
            continue
        out.append(_finite([value]))
        alone += int(seeds and size[i] > 1 and out[-1].size > 0)
    return out, alone


def per_row(values: list, rows: np.ndarray, n: int) -> list[np.ndarray]:
    """The values of the records (``values``, one array each) gathered by their row."""
    out = [[] for _ in range(n)]
    for row, v in zip(rows, values, strict=True):
        out[row].append(v)
    return [np.concatenate(v) if v else np.empty(0) for v in out]


def _mean(a: np.ndarray) -> float:
    return float(a.mean()) if a.size else math.nan


def _std(a: np.ndarray) -> float:
    return float(a.std(ddof=1)) if a.size > 1 else math.nan


def _cells(rows: pd.DataFrame, cells: list[str]) -> dict[str, list]:
    """The cell fields of each row: numbers as integers where they are (25.0 → 25; sigma,
    factor), text as it is (dataset)."""
    return {c: [int_or_none(v) for v in rows[c]] if is_numeric_dtype(rows[c])
            else list(rows[c]) for c in cells}


def _image_rows(col: Measured, index) -> dict[str, list]:
    """A column's cells on the image rows ``index``: mean (and std), no interval."""
    if col.group == "paper":
        return {name(col.group, col.label): [col.values[i] for i in index]}
    out = {name(col.group, col.label): [_mean(col.values[i]) for i in index]}
    if col.seeds:
        out[name(col.group, col.label, "std")] = [_std(col.values[i]) for i in index]
    nan = [math.nan] * len(index)
    return {**out, name(col.group, col.label, "lo"): nan, name(col.group, col.label, "hi"): nan}


def _mean_row(col: Measured, index) -> dict[str, float]:
    """A column's cells on the mean row of the image rows ``index``."""
    if col.group == "paper":
        values = pd.Series([col.values[i] for i in index], dtype=float)
        return {name(col.group, col.label): values.mean()}
    interval = bootstrap([col.values[i] for i in index])
    out = {name(col.group, col.label): interval.mean}
    if col.seeds:
        out[name(col.group, col.label, "std")] = math.nan
    return {**out, name(col.group, col.label, "lo"): interval.lo,
            name(col.group, col.label, "hi"): interval.hi}


def table_frame(rows: pd.DataFrame, seeds: np.ndarray, columns: list[Measured],
                block: list[str]) -> pd.DataFrame:
    """The table: the cell fields, ``image``, ``seeds`` and ``columns`` (in order), the
    image rows ``rows`` (from :func:`rows_of`) of each block of ``block`` (cell fields)
    followed by its mean row (``seeds``: the block's total)."""
    keys = pd.DataFrame({**_cells(rows, block), "image": list(rows["image_id"]),
                         SEEDS: [int(s) for s in seeds]})
    parts = []
    groups = keys.groupby(block, sort=False, dropna=False) if block else [((), keys)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        index = list(part.index)
        body = part.reset_index(drop=True)
        for col in columns:
            body = body.assign(**_image_rows(col, index))
        mean = {**dict(zip(block, key, strict=True)), "image": MEAN,
                SEEDS: int(part[SEEDS].sum())}
        for col in columns:
            mean.update(_mean_row(col, index))
        parts += [body, pd.DataFrame([mean], columns=body.columns)]
    return pd.concat(parts, ignore_index=True)
