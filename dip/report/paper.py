"""The paper's own numbers (``paper_numbers.csv``) and the matching of image names.

:func:`paper_numbers` reads the CSV; :class:`PaperColumns` looks up one experiment's
numbers for the rows of a table and remembers whether each column used printed or
recomputed values; :func:`match_image` pairs a record's image with the CSV's name for it.
Paper numbers only ever fill a table's ``paper`` group of columns.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dip.errors import DipError
from dip.report.records import int_or_none

__all__ = ["paper_numbers", "default_paper_path", "PaperColumns", "match_image",
           "natural_key", "PAPER_ENV", "PAPER_COLUMNS"]

PAPER_ENV = "DIP_PAPER_NUMBERS"
PAPER_COLUMNS = ["experiment", "dataset", "factor", "image", "method", "psnr_recomputed",
                 "psnr_printed"]


# --- names --------------------------------------------------------------------------

def _loose(name: str) -> str:
    return re.sub(r"\d+$", "", name.casefold())


def match_image(name: str, candidates) -> str | None:
    """The candidate that names the same image as ``name``, or None.

    Tries an exact match, then a case-insensitive one, then one that also ignores
    trailing digits (``cameraman`` ~ ``Cameraman256``); a looser match must be unique.
    """
    candidates = list(dict.fromkeys(candidates))
    if name in candidates:
        return name
    for key in (str.casefold, _loose):
        hits = [c for c in candidates if key(c) == key(name)]
        if len(hits) == 1:
            return hits[0]
    return None


def natural_key(value) -> tuple:
    """Sort key: case-insensitive, numbers by value (set5 < set14, kodim2 < kodim12)."""
    parts = re.split(r"(\d+)", str(value).casefold())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


# --- paper numbers ------------------------------------------------------------------

def default_paper_path() -> Path:
    """``<project root>/../shared/reference/paper_numbers.csv``."""
    root = Path(__file__).resolve().parents[2]
    return root.parent / "shared" / "reference" / "paper_numbers.csv"


def paper_numbers(path=None) -> pd.DataFrame:
    """The paper's per-image PSNRs (paper_numbers.csv).

    Parameters
    ----------
    path : str or Path, optional
        The CSV; default ``$DIP_PAPER_NUMBERS``, else :func:`default_paper_path`.

    Returns
    -------
    pandas.DataFrame
        The CSV's columns plus ``psnr_paper`` (the printed number where the CSV has one,
        else the recomputed one) and ``source`` ('printed' or 'recomputed').

    Raises
    ------
    DipError
        When no file is found.
    """
    if path is None:
        path = os.environ.get(PAPER_ENV) or default_paper_path()
    path = Path(path)
    if not path.is_file():
        raise DipError(f"paper numbers not found at {path}; set {PAPER_ENV}=PATH "
                       "(or --paper PATH) to paper_numbers.csv")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PAPER_COLUMNS if c not in df]
    if missing:
        raise DipError(f"{path} lacks the column(s) {', '.join(missing)}; "
                       "is it paper_numbers.csv?")
    for col in ("factor", "psnr_recomputed", "psnr_printed"):  # Python's exact float parsing
        df[col] = [float(v) if v.strip() else math.nan for v in df[col]]
    printed = df["psnr_printed"].notna()
    df["psnr_paper"] = df["psnr_printed"].where(printed, df["psnr_recomputed"])
    df["source"] = np.where(printed, "printed", "recomputed")
    df.attrs["path"] = str(path)
    return df


class PaperColumns:
    """Look-ups into paper_numbers.csv for one experiment, remembering what was used.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`paper_numbers`.
    experiment : str
        Its ``experiment`` ('inpainting50', 'denoising', 'sr').
    """

    def __init__(self, df: pd.DataFrame, experiment: str):
        self.rows = df[df["experiment"] == experiment]
        self.sources: dict[str, set] = {}

    def value(self, method: str, image: str, factor=None, dataset=None) -> tuple[float, str]:
        """The paper's number and its source ('printed', 'recomputed'); (NaN, '') if none."""
        rows = self.rows[self.rows["method"] == method]
        if factor is not None:
            rows = rows[rows["factor"].map(int_or_none) == factor]
        if dataset is not None and (rows["dataset"] == dataset).any():
            rows = rows[rows["dataset"] == dataset]
        name = match_image(image, rows["image"])
        hit = rows[rows["image"] == name]
        if len(hit) != 1:
            return math.nan, ""
        return float(hit["psnr_paper"].iloc[0]), str(hit["source"].iloc[0])

    def column(self, label: str, methods, images, factors=None, datasets=None) -> list:
        """Values of one paper column, one per row (``methods`` a str or one per row)."""
        n = len(images)
        methods = [methods] * n if isinstance(methods, str) else list(methods)
        factors = [None] * n if factors is None else list(factors)
        datasets = [None] * n if datasets is None else list(datasets)
        out = []
        rows = zip(methods, images, factors, datasets, strict=True)
        for method, image, factor, dataset in rows:
            value, source = self.value(method, image, factor, dataset) if method else (
                math.nan, "")
            if source:
                self.sources.setdefault(label, set()).add(source)
            out.append(value)
        return out

    def note(self) -> str:
        """The footnote saying which paper columns used printed or recomputed numbers."""
        parts = [f"{label}: {' and '.join(sorted(s))}" for label, s in self.sources.items()]
        return ("Paper columns: the number printed in the paper where paper_numbers.csv has "
                "one (psnr_printed), otherwise the PSNR recomputed from the authors' released "
                "results (psnr_recomputed). Used here: " + ("; ".join(parts) or "none") + ".")
