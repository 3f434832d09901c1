"""Run records read back for reports: one DataFrame row per finished run.

A record is a directory under the records root (default ``results/runs/``) holding
``metrics.json`` and ``config.yaml``, as :mod:`dip.runs.records` writes it and reads it
(:class:`~dip.runs.records.RunRecord`, :func:`~dip.runs.records.find_records`).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

from dip.data.registry import image_id
from dip.runs.records import RunRecord, find_records

__all__ = ["load_records", "with_datasets", "int_or_none", "RECORD_COLUMNS", "NUMERIC",
           "SEED_LISTS"]

RECORD_COLUMNS = ["experiment", "task", "image", "image_id", "profile", "sigma", "factor",
                  "dataset", "seed", "num_iter", "psnr_corrupted", "psnr_final", "psnr_avg",
                  "psnr_oracle", "device", "commit", "finished", "record"]
NUMERIC = ["sigma", "factor", "seed", "num_iter", "crop", "height", "width", "psnr_corrupted",
           "psnr_final", "psnr_avg", "psnr_oracle", "iter_oracle", "seconds", "psnr_stop",
           "iter_stop", "steps", "psnr_seeds_mean", "psnr_seeds_std", "psnr_ensemble",
           "psnr_ensemble_avg", "n_seeds"]
SEED_LISTS = {"psnr_final": "psnr_seeds", "psnr_avg": "psnr_seeds_avg"}
"""A seed ensemble's per-seed lists (kept as lists), by the field its first seed has:
each seed's final PSNR, and each seed's averaged PSNR (records made since f01fd52)."""


def _row(record: RunRecord) -> dict:
    """The table row of a record: its scalar metrics, baselines, CPU model, size, crop."""
    metrics = record.metrics
    row = {k: v for k, v in metrics.items()
           if k not in ("baselines", "released") and not isinstance(v, (dict, list))}
    for name, value in (metrics.get("baselines") or {}).items():
        row[f"baseline_{name}"] = value
    for name, value in (metrics.get("released") or {}).items():
        row[f"released_{name}"] = value
    for field in SEED_LISTS.values():
        if isinstance(metrics.get(field), list):
            row[field] = [math.nan if v is None else float(v) for v in metrics[field]]
    if isinstance(metrics.get("seeds"), list):
        row["n_seeds"] = len(metrics["seeds"])
    machine = metrics.get("machine")
    if isinstance(machine, dict) and machine.get("cpu") and metrics.get("device") == "cpu":
        row["cpu_model"] = str(machine["cpu"])  # CPU results depend on the CPU's kernels
    size = metrics.get("size")
    if isinstance(size, list) and len(size) == 3:
        row["height"], row["width"] = size[1], size[2]
    if "crop" not in row:
        row["crop"] = record.config.get("crop")
    if not row.get("image_id"):
        row["image_id"] = image_id(row.get("image") or record.path.name)
    if not row.get("finished"):
        stamp = (record.path / "metrics.json").stat().st_mtime
        row["finished"] = datetime.fromtimestamp(stamp).isoformat()
    row["record"] = str(record.path)
    return row


def load_records(root="results/runs", experiment=None, profile=None,
                 stop=None) -> pd.DataFrame:
    """All run records under ``root``, one row each.

    Parameters
    ----------
    root : str or Path
        Records root; every directory below it with a ``metrics.json`` is a record
        (hidden directories, e.g. unfinished ``.NAME.tmp-PID``, are ignored).
    experiment : str, optional
        Keep only records of this experiment (its ``name``: 'table_inpainting',
        'fig_kate', ...).
    profile : str, optional
        Keep only records of this profile.
    stop : {'fixed', 'wmv', 'emv'}, optional
        Keep only records of this stopping rule (records without one are 'fixed').

    Returns
    -------
    pandas.DataFrame
        The scalar fields of metrics.json plus ``baseline_<name>`` for each baseline,
        ``released_<name>`` for each released result, ``n_seeds`` (a seed ensemble's
        size), the per-seed lists of :data:`SEED_LISTS` (lists), ``image_id`` (derived
        from ``image`` when absent) and ``record`` (the directory).
    """
    root = Path(root)
    rows = [] if not root.is_dir() else [_row(r) for r in find_records(root)]
    df = pd.DataFrame(rows)
    for col in RECORD_COLUMNS:
        if col not in df:
            df[col] = None
    for col in [c for c in df if c in NUMERIC or c.startswith(("baseline_", "released_"))]:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    if experiment is not None:
        df = df[df["experiment"] == experiment]
    if profile is not None:
        df = df[df["profile"] == profile]
    if stop is not None:
        modes = df["stop"].fillna("fixed") if "stop" in df else pd.Series("fixed", df.index)
        df = df[modes == stop]
    return df.reset_index(drop=True)


def _dataset_of(spec) -> str:
    """Dataset of an image spec when the record lacks one: its last folder but 'x4'-like."""
    folders = [p for p in re.split(r"[/\\]", str(spec))[:-1] if not re.fullmatch(r"x\d+", p)]
    return folders[-1] if folders else ""


def with_datasets(records: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``records`` whose empty ``dataset`` fields name the image's folder."""
    records = records.copy()
    records["dataset"] = [d if isinstance(d, str) and d else _dataset_of(i)
                          for d, i in zip(records["dataset"], records["image"], strict=True)]
    return records


def int_or_none(value):
    """25.0 → 25; NaN/None/'' → None (factor and sigma keys)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x):
        return None
    return int(x) if x == int(x) else x
