"""The settings of run records, as data: each record's resolved ``config.yaml``, flattened.

:func:`record_settings` gives one row per record and one column per dotted config key
(``fit.lr``, ``net.bn_init``, ...), without the keys that do not change a result (the
seed, where outputs go, progress, the data root, ...; :data:`IGNORED`) and without the
keys at the value that computes what runs computed before the key existed
(:data:`dip.runs.config.NEUTRAL`), so that a record made before a key existed agrees with one
made after. A record without a readable ``config.yaml`` falls back on the ``overrides``
its ``metrics.json`` keeps.

:func:`check_seeds_only` is the paper tables' guard: the records averaged into one table
cell may differ in their seed only; anything else is a study, not a table.

:func:`experiment_names` and :func:`table_block` read the experiment configs
(``conf/experiment/*.yaml``) as written: the names, and the ``table:`` block that declares
an experiment's table (:mod:`dip.report.declared` reads it); :func:`record_config` and
:func:`record_node` read a record's ``config.yaml``. This module is the report's reader of
configs and YAML.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dip.errors import DipError
from dip.runs.config import CONFIG_DIR, IDENTITY_EXCLUDE, NEUTRAL, legacy_layout
from dip.runs.records import RunRecord

__all__ = ["flatten", "parse_overrides", "record_settings", "flat_config", "check_seeds_only",
           "experiment_names", "table_block", "claims_block", "IGNORED", "UNSET",
           "EXPERIMENTS"]

IGNORED = (*IDENTITY_EXCLUDE, "seed", "label", "threads", "baselines", "hydra")
"""Config keys (and groups of keys) that do not change what a run computes: where it
went, how it ran (threads, progress), what else it scored (baselines), its seed."""

UNSET = "unset"  # how a key a record lacks is shown
EXPERIMENTS = CONFIG_DIR / "experiment"  # the experiment configs, one YAML file each
TASKS = CONFIG_DIR / "task"  # the task configs (a task may declare its own table)
CLAIMS = CONFIG_DIR / "claims.yaml"  # the claims scorecard's claims


def flatten(node, prefix: str = "") -> dict:
    """``{'fit': {'lr': 0.01}}`` → ``{'fit.lr': 0.01}`` (lists stay values)."""
    if not isinstance(node, dict) or not node:
        return {prefix: node} if prefix else {}
    out = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _ignored(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in IGNORED)


def flat_config(config: dict) -> dict:
    """The settings of one resolved config: dotted keys, without :data:`IGNORED` keys,
    ``stopping`` when ``stop`` is 'fixed', and the keys at their neutral value; a device
    the launcher placed (``cuda:K``) counts as the setting it came from, as in a run's
    identity (:func:`dip.launch.device.place_device`)."""
    config = legacy_layout(dict(config or {}))  # task settings where old records keep them
    if "device_setting" in config:
        config["device"] = config.pop("device_setting")
    flat = {k: v for k, v in flatten(config).items() if not _ignored(k)}
    if flat.get("stop", "fixed") == "fixed":
        flat = {k: v for k, v in flat.items() if not k.startswith("stopping.")}
    neutral = flatten(NEUTRAL)
    return {k: v for k, v in flat.items() if k not in neutral or neutral[k] != v}


def parse_overrides(overrides: list[str]) -> list[tuple[str, object, bool]]:
    """(key, value, is a sweep) of each override of a record's job, in order, read with
    Hydra's parser; [] when they cannot be parsed."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return []
    return [(o.get_key_element().lstrip("+~"), o.value(), o.is_sweep_override())
            for o in parsed]


def _from_overrides(overrides: list[str]) -> dict:
    """The settings an ``overrides`` list names (a record's job overrides)."""
    return {key: value for key, value, sweep in parse_overrides(overrides) if not sweep}


def _config(folder) -> dict:
    """A record's settings: its ``config.yaml`` flattened, else its overrides."""
    record = RunRecord.load(str(folder))
    if record is None:
        return {}
    return flat_config(record.config or _from_overrides(record.overrides))


def _text(value) -> str:
    if isinstance(value, float) and math.isnan(value):
        return UNSET
    return value if isinstance(value, str) else json.dumps(value, default=str)


def record_settings(records: pd.DataFrame) -> pd.DataFrame:
    """One row per record (same index as ``records``), one column per setting.

    Parameters
    ----------
    records : pandas.DataFrame
        :func:`dip.report.records.load_records` (its ``record`` column: the folders).

    Returns
    -------
    pandas.DataFrame
        The settings as text (strings as they are, other values as JSON: ``0.01``,
        ``null``, ``[1, 2]``); NaN where a record lacks the key.
    """
    rows = [{k: _text(v) for k, v in _config(r).items()} for r in records["record"]]
    return pd.DataFrame(rows, index=records.index)


def check_seeds_only(records: pd.DataFrame, settings: pd.DataFrame, keys: list[str],
                     what: str, root) -> None:
    """Refuse to average records of one table cell that differ in more than the seed.

    Parameters
    ----------
    records : pandas.DataFrame
        The records of one table.
    settings : pandas.DataFrame
        :func:`record_settings` of ``records``.
    keys : list of str
        The columns of ``records`` that make a table cell (block and ``image_id``).
    what : str
        The table, for the message: 'table_sr (quick)'.
    root : path-like
        The records root, for the message.

    Raises
    ------
    DipError
        Naming each setting that differs and its values, in the records' order.
    """
    if records.empty or settings.empty:
        return
    cells = records.groupby(keys, dropna=False, sort=False).ngroup()
    counts = settings.fillna(UNSET).groupby(cells).nunique()
    mixed = counts.loc[(counts > 1).any(axis=1)]
    if mixed.empty:
        return
    cell = mixed.index[0]
    columns = [c for c in mixed if mixed.loc[cell, c] > 1]
    part = settings.fillna(UNSET)[cells == cell]
    differ = " and ".join(f"{c} ({', '.join(dict.fromkeys(part[c]))})" for c in columns)
    raise DipError(f"the records of {what} differ in {differ} for the same image; a table "
                   "averages seeds only: make a study instead: python -m dip.report study "
                   f"--root {root}")


# --- experiment configs ---------------------------------------------------------------

def experiment_names() -> list[str]:
    """The experiments (``conf/experiment/<name>.yaml``) and the tables that tasks declare
    in their own config (``table_<task>``: ``task.table`` in ``conf/task/<task>.yaml``,
    run by ``conf/experiment/table_task.yaml``), sorted."""
    names = {p.stem for p in EXPERIMENTS.glob("*.yaml")}
    names |= {f"table_{p.stem}" for p in TASKS.glob("*.yaml") if _task_table(p) is not None}
    return sorted(names)


def _load(path: Path):
    try:
        return OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError, yaml.YAMLError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DipError(f"cannot read {path}: {first}") from err


def _task_table(path: Path) -> dict | None:
    """The ``task.table`` block of a task's config, without its ``runs`` (None if none)."""
    node = OmegaConf.select(_load(path), "task.table")
    if node is None:
        return None
    block = OmegaConf.to_container(node, resolve=False)
    block.pop("runs", None)
    return block


def table_block(experiment: str) -> dict | None:
    """The ``table:`` block of ``conf/experiment/<experiment>.yaml`` as plain data, as
    written (not composed: it is the same under every profile), or for ``table_<task>``
    without such a file the ``task.table`` block of ``conf/task/<task>.yaml``; None when
    there is none.

    Raises
    ------
    DipError
        When the file is missing or is not valid YAML.
    """
    path = EXPERIMENTS / f"{experiment}.yaml"
    task = TASKS / f"{experiment.removeprefix('table_')}.yaml"
    if not path.is_file() and experiment.startswith("table_") and task.is_file():
        return _task_table(task)
    spec = _load(path)
    block = spec.get("table") if OmegaConf.is_dict(spec) else None
    return None if block is None else OmegaConf.to_container(block, resolve=False)


def claims_block(path=None) -> list[dict]:
    """The ``claims:`` list of ``conf/claims.yaml`` (or ``path``) as plain data."""
    node = _load(Path(path) if path is not None else CLAIMS)
    claims = OmegaConf.select(node, "claims")
    if claims is None or not OmegaConf.is_list(claims):
        raise DipError(f"{path or CLAIMS} has no claims: list; see its first comment")
    return OmegaConf.to_container(claims, resolve=False)
