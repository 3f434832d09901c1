"""The runs an experiment's sweep declares, in their declared order, and its records so.

An experiment (``conf/experiment/*.yaml``) declares its sweep in
``hydra.sweeper.params``; :func:`sweep_runs` reads it with Hydra's own override parser
(choice lists, ``range(...)``, quoted values with commas, lists), in the order Hydra's
basic sweeper runs it; :func:`sweep_order` maps each run's config hash to its place, and
:func:`figure_records` puts a figure's records in that order.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

from dip.errors import DipError
from dip.report.records import load_records
from dip.runs.config import CONFIG_DIR, IDENTITY_EXCLUDE, LEGACY_EXCLUDE, config_hash

__all__ = ["sweep_runs", "declared_runs", "sweep_configs", "sweep_order", "figure_records"]

_CONFIGS: dict[tuple[str, str], tuple] = {}  # composed once per process


def sweep_runs(params: Mapping) -> list[list[str]]:
    """The overrides of each run of a sweep, in the order Hydra's basic sweeper runs them.

    Parameters
    ----------
    params : mapping
        ``hydra.sweeper.params``: key → sweep (``"a,b"``, ``"range(3)"``,
        ``"'x,y',z"``, ``"[1,2],[3]"``) or a single value.

    Returns
    -------
    list of list of str
        One list of ``key=value`` overrides per run (the last key varies fastest); values
        as Hydra writes them back (quoted where they need it).

    Raises
    ------
    DipError
        When a sweep cannot be parsed or listed (e.g. an ``interval(...)``).
    """
    try:
        overrides = OverridesParser.create().parse_overrides(
            [f"{k}={v}" for k, v in params.items()])
        choices = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
                   if o.is_sweep_override() else
                   [f"{o.get_key_element()}={o.get_value_element_as_str()}"]
                   for o in overrides]
    except (HydraException, ValueError, TypeError) as err:
        raise DipError(f"cannot list the sweep {dict(params)}: {err}; use choices "
                       "(a,b), range(...) or lists") from err
    return [list(run) for run in itertools.product(*choices)]


def declared_runs(experiment: str) -> list[list[str]]:
    """The overrides of each run that ``experiment``'s sweep declares
    (``hydra.sweeper.params`` of ``conf/experiment/<experiment>.yaml``), in
    :func:`sweep_runs` order."""
    spec = OmegaConf.load(CONFIG_DIR / "experiment" / f"{experiment}.yaml")
    params = OmegaConf.select(spec, "hydra.sweeper.params") or {}
    return sweep_runs({k: params[k] for k in params})


def sweep_configs(experiment: str, profile: str) -> tuple:
    """The composed config of each run of the sweep that ``experiment`` declares, under
    ``profile``, in :func:`sweep_runs` order; empty (and not kept) when the configs cannot
    be composed here (e.g. inside a running Hydra app)."""
    if (experiment, profile) in _CONFIGS:
        return _CONFIGS[experiment, profile]
    runs = declared_runs(experiment)
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            configs = tuple(compose("config", overrides=[
                f"experiment={experiment}", f"profile={profile}", *run]) for run in runs)
    except (ValueError, HydraException):
        return ()
    _CONFIGS[experiment, profile] = configs
    return configs


def sweep_order(experiment: str, profile: str,
                exclude=IDENTITY_EXCLUDE) -> dict[str, int]:
    """Config hash → position of each run of the sweep that ``experiment`` declares
    (``hydra.sweeper.params``, in :func:`sweep_runs` order) under ``profile``, hashed
    without the keys ``exclude`` (:data:`dip.runs.config.LEGACY_EXCLUDE`: the earlier identity).

    Empty when the configs cannot be composed here (e.g. inside a running Hydra app).
    """
    return {config_hash(cfg, exclude=exclude): i
            for i, cfg in enumerate(sweep_configs(experiment, profile))}


def figure_records(experiment: str, profile: str, root="results/runs") -> pd.DataFrame:
    """Records of one figure experiment and profile: the runs of its declared sweep in
    the sweep's order (:func:`sweep_order`), then any others in the order they finished."""
    df = load_records(root, profile=profile)
    df = df[df["experiment"] == experiment]
    if df.empty:
        raise DipError(f"no records of {experiment} with profile {profile} under {root}; "
                       f"run `dip -m experiment={experiment} profile={profile}` first")
    df = df.sort_values("finished", kind="stable")
    order = sweep_order(experiment, profile)
    # records made under the earlier identity take the same places
    ranks = {**sweep_order(experiment, profile, LEGACY_EXCLUDE), **order} if order else {}
    rank = df["config_hash"].map(ranks).fillna(len(order)) if "config_hash" in df else 0
    return df.assign(_rank=rank).sort_values("_rank", kind="stable").drop(
        columns="_rank").reset_index(drop=True)
