"""An experiment's declared sweep: the runs ``conf/experiment/<name>.yaml`` lists in
``hydra.sweeper.params``, read with Hydra's own override parser (choice lists,
``range(...)``, quoted values with commas, lists) in the order Hydra's basic sweeper runs
them (:func:`sweep_runs`, :func:`declared_runs`), and their composed configs
(:func:`sweep_configs`): what a table, a figure or the paper queue expects to find.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

from dip.errors import DipError
from dip.runs import config

__all__ = ["sweep_runs", "declared_runs", "sweep_configs"]

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
    node = OmegaConf.load(config.CONFIG_DIR / "experiment" / f"{experiment}.yaml")
    params = OmegaConf.select(node, "hydra.sweeper.params") or {}
    return sweep_runs({k: params[k] for k in params})


def sweep_configs(experiment: str, profile: str) -> tuple:
    """The composed config of each run of the sweep that ``experiment`` declares, under
    ``profile``, in :func:`sweep_runs` order; empty (and not kept) when the configs cannot
    be composed here (e.g. inside a running Hydra app)."""
    if (experiment, profile) in _CONFIGS:
        return _CONFIGS[experiment, profile]
    runs = declared_runs(experiment)
    try:
        with initialize_config_dir(str(config.CONFIG_DIR), version_base="1.3"):
            configs = tuple(compose("config", overrides=[
                f"experiment={experiment}", f"profile={profile}", *run]) for run in runs)
    except (ValueError, HydraException):
        return ()
    _CONFIGS[experiment, profile] = configs
    return configs
