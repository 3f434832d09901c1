"""The settings of a study: each record's values and the keys that tell the runs apart.

:func:`load_study` reads the records of one profile with their flattened configs and
overrides; :func:`varying_keys` finds the keys whose values differ (overrides first, never
the seed, outputs or keys that follow from the image or another key);
:func:`setting_labels` names each record's setting (``fit.lr=0.01, net.depth=4``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dip.errors import DipError
from dip.report.configs import IGNORED, UNSET, flatten, parse_overrides
from dip.report.records import load_records
from dip.runs.records import RunRecord

__all__ = ["load_study", "varying_keys", "setting_text", "setting_order", "settings_of",
           "setting_labels", "STUDY_IGNORED", "UNSET", "ALL"]

STUDY_IGNORED = (*IGNORED, "device", "device_setting", "image")
"""Keys that are never a setting of a study: those of :data:`dip.report.configs.IGNORED`
(seed, outputs, progress, threads, data root, hydra, ...), the device (and the setting a
placed one came from), and the image (the rows of a study)."""
ALL = "all runs"  # the label of the one setting when nothing varies


def _ignored(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in STUDY_IGNORED)


def setting_text(value) -> str:
    """A setting's value as text: 0.01 → '0.01', 4 → '4', None → 'null', [1, 2] → '[1, 2]'."""
    if isinstance(value, float) and math.isnan(value):
        return UNSET
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _record_values(folder) -> tuple[dict, list]:
    """The flattened resolved config of a record (:class:`dip.runs.records.RunRecord`),
    completed by its job's overrides, and the keys those overrides name (``net=encdec``
    names ``net.name``)."""
    record = RunRecord.load(folder)
    values = flatten(record.config if record is not None else {})
    overrides = record.overrides if record is not None else []
    named = []
    for key, value, sweep in parse_overrides(overrides):
        key = f"{key}.name" if key not in values and f"{key}.name" in values else key
        if key not in values and not sweep:
            values[key] = value
        named.append(key)
    return values, named


def load_study(root, profile: str | None = None, only=None
               ) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """The records of one profile under ``root`` (:func:`~dip.report.records.load_records`),
    their settings (a row per record, a column per dotted config key, NaN where a record
    lacks it) and the keys their ``overrides`` name, in order; a :class:`~dip.DipError`
    when none is readable, or several profiles are found and none chosen. ``only``: keep
    just these record folders."""
    records = load_records(root)
    if only is not None and not records.empty:
        keep = {str(Path(p).resolve()) for p in only}
        mask = [str(Path(r).resolve()) in keep for r in records["record"]]
        records = records[mask].reset_index(drop=True)
    if records.empty:
        raise DipError(f"no readable run records under {root}; run a sweep with "
                       f"`dip -m ... records={root}` first, or point --root at one")
    found = sorted(records["profile"].dropna().astype(str).unique())
    if profile is None and len(found) > 1:
        raise DipError(f"{root} holds records of profiles {' and '.join(found)}; "
                       "choose one with --profile")
    if profile is not None:
        records = records[records["profile"] == profile].reset_index(drop=True)
        if records.empty:
            raise DipError(f"no records of profile {profile} under {root}; it holds "
                           f"profiles {', '.join(found) or '(none named)'}")
    pairs = [_record_values(r) for r in records["record"]]
    values = pd.DataFrame([p[0] for p in pairs], index=records.index, dtype=object)
    return records, values, list(dict.fromkeys(k for p in pairs for k in p[1]))


def _function_of(text: pd.DataFrame, key: str, by: list[str]) -> bool:
    """Whether ``key`` takes one value within each group of equal ``by`` values."""
    return bool(text.groupby(by)[key].nunique().max() <= 1)


def varying_keys(values: pd.DataFrame, images, named=()) -> list[str]:
    """The settings that tell the records apart.

    Parameters
    ----------
    values : pandas.DataFrame
        One row per record, one column per dotted config key (:func:`load_study`).
    images : sequence
        Each record's image (the rows of a study: a key that follows from the image is
        not a setting).
    named : sequence of str
        Keys the jobs' overrides name, in their order; they come first and are preferred
        over keys derived from them.

    Returns
    -------
    list of str
        Keys whose values differ across records, without :data:`STUDY_IGNORED`, keys that
        follow from the image, and keys that follow from a preferred key (the named
        ones, then ``*.name`` keys, then the rest in config order) with the image.
    """
    text = values.apply(lambda col: col.map(setting_text)).fillna(UNSET)
    text["\0image"] = list(images)
    varying = [k for k in values if not _ignored(k) and text[k].nunique() > 1]
    named = list(named)
    order = sorted(varying, key=lambda k: (k not in named, named.index(k) if k in named
                                           else not k.endswith(".name"), varying.index(k)))
    kept: list[str] = []
    for key in order:
        if _function_of(text, key, ["\0image"]):
            continue
        overrides = [k for k in kept if k in named]
        if key not in named and overrides and _function_of(text, key, ["\0image",
                                                                       *overrides]):
            continue
        if any(_function_of(text, key, ["\0image", k]) for k in kept):
            continue
        kept.append(key)
    return sorted(kept, key=order.index)


def setting_order(value):
    """Sort key of a setting's value: numbers by value, then text in natural order (the
    numbers within it by value: 'encdec2' < 'encdec10'), then unset values."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return (0, float(value), ()) if not math.isnan(value) else (2, 0.0, ())
    parts = re.split(r"(\d+)", setting_text(value))
    return (1, 0.0, tuple(int(p) if i % 2 else p for i, p in enumerate(parts)))


def settings_of(values: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per setting, sorted, indexed by its label ('fit.lr=0.01, net.depth=4')."""
    labels = setting_labels(values, keys)
    settings = values.reindex(columns=keys).assign(setting=labels).drop_duplicates("setting")
    settings = settings.set_index("setting")
    ordered = sorted(settings.index,
                     key=lambda s: [setting_order(v) for v in settings.loc[s, keys]])
    return settings.loc[ordered]


def setting_labels(values: pd.DataFrame, keys: list[str]) -> pd.Series:
    if not keys:
        return pd.Series(ALL, index=values.index)
    parts = values.reindex(columns=keys)
    return parts.apply(lambda row: ", ".join(f"{k}={setting_text(row[k])}" for k in keys), axis=1)
