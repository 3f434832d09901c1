"""An experiment's records in the order its sweep declares its runs.

:func:`sweep_order` maps the config hash of each run that an experiment declares
(:func:`dip.runs.experiments.sweep_configs`) to its place, and :func:`figure_records` puts a
figure's records in that order.
"""

from __future__ import annotations

import pandas as pd

from dip.errors import DipError
from dip.report.records import load_records
from dip.runs.config import IDENTITY_EXCLUDE, LEGACY_EXCLUDE, config_hash
from dip.runs.experiments import sweep_configs

__all__ = ["sweep_order", "figure_records"]


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
