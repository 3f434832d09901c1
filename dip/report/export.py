"""Run records as committed data: one CSV per experiment and profile, one row per seed.

The records themselves stay on the machine that made them (``results/runs/`` is not
committed: it restates the test images). What a report needs of them is written to
``results/records/<experiment>_<profile>.csv`` (:func:`export_records`), so that the
claims scorecard (:mod:`dip.report.claims`) rebuilds from committed files alone, fitting
nothing. A row is one seed of a run: a seed ensemble (``seeds=K``) gives K rows, each with
its member's final and averaged PSNR and the ensemble's. A fitting run's history adds the
steps it took to reach a PSNR against its target (:data:`LEVELS`).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from dip.atomic import write_text
from dip.report.records import load_records
from dip.runs.records import RunRecord

__all__ = ["export_records", "rows_of", "LEVELS", "FIELDS"]

LEVELS = (20, 25, 30)
"""PSNR against the target (dB) whose first step a run's row keeps (``steps_to_obs_L``;
the run's number of steps plus one when it never got there)."""

FIELDS = ("experiment", "label", "task", "image", "image_id", "dataset", "sigma", "factor",
          "stop", "seed", "member", "psnr_corrupted", "psnr_final", "psnr_avg", "psnr_oracle",
          "iter_oracle", "psnr_stop", "psnr_stop_avg", "iter_stop", "psnr_ensemble",
          "psnr_ensemble_avg", "steps", "num_iter", "status", "profile", "net", "crop_side",
          "device_name", "cpu", "commit", "config_hash")
"""The record fields a row keeps (then every ``baseline_*``, ``released_*`` and
``steps_to_obs_*``)."""


def _steps_to(history: Path, steps: int) -> dict:
    """The first step at which the run's PSNR against its target reached each level."""
    if not history.is_file():
        return {}
    frame = pd.read_csv(history)
    out = {}
    for level in LEVELS:
        hit = frame.loc[frame["psnr_obs"] >= level, "step"]
        out[f"steps_to_obs_{level}"] = int(hit.iloc[0]) if len(hit) else steps + 1
    return out


def rows_of(row: pd.Series) -> list[dict]:
    """The rows of one record (a row of :func:`dip.report.records.load_records`): one per
    seed, the members of a seed ensemble each with its own final and averaged PSNR."""
    base = {k: row.get(k) for k in FIELDS if k in row.index}
    base.update({k: row[k] for k in row.index if k.startswith(("baseline_", "released_"))})
    record = RunRecord.load(row["record"])
    metrics = record.metrics if record is not None else {}
    base["cpu"] = (metrics.get("machine") or {}).get("cpu")
    base["crop_side"] = _crop_side(record.config if record is not None else {})
    base.update(_steps_to(Path(row["record"]) / "history.csv", int(row.get("steps") or 0)))
    seeds = metrics.get("seeds") or [row.get("seed")]
    finals = metrics.get("psnr_seeds") or [row.get("psnr_final")]
    averaged = metrics.get("psnr_seeds_avg") or [row.get("psnr_avg") if len(seeds) == 1
                                                 else math.nan] * len(seeds)
    return [{**base, "seed": int(seed), "member": k, "psnr_final": final, "psnr_avg": avg}
            for k, (seed, final, avg) in enumerate(zip(seeds, finals, averaged, strict=True))]


def _crop_side(config: dict):
    crop = config.get("crop")
    return crop if crop is None or isinstance(crop, int) else "x".join(map(str, crop))


def export_records(root="results/runs", profile: str = "quick",
                   out="results/records") -> list[Path]:
    """Write ``<out>/<experiment>_<profile>.csv`` for each experiment with records of
    ``profile`` under ``root`` (rows sorted, so the same records give the same bytes);
    returns the paths."""
    records = load_records(root, profile=profile)
    paths = []
    if records.empty or "experiment" not in records:
        return paths
    for experiment, part in records.groupby("experiment", sort=True):
        rows = [r for _, row in part.iterrows() for r in rows_of(row)]
        frame = pd.DataFrame(rows).dropna(axis=1, how="all")  # other tasks' baselines
        first = [c for c in FIELDS if c in frame]
        rest = sorted(c for c in frame if c not in first)
        keys = [c for c in ("stop", "label", "dataset", "factor", "sigma", "image_id", "seed",
                            "member") if c in frame]
        frame = frame[first + rest].sort_values(keys, kind="stable", na_position="first")
        path = Path(out) / f"{experiment}_{profile}.csv"
        write_text(path, frame.to_csv(index=False, float_format="%.10g"))
        paths.append(path)
    return paths
