"""A config's network and fit settings as objects, for every path that fits.

:func:`build_net` builds ``cfg.net`` at its ``width_scale``, :func:`settings_from` turns
``cfg.fit`` (with stopping, seed, device and the fast paths) into
:class:`~dip.fitting.settings.FitSettings`, and :func:`net_multiple` / :func:`min_size` are the nets
registry's size rules (:func:`dip.nets.size_multiple`) for ``cfg.net``.
"""

from __future__ import annotations

import math
import warnings

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from dip import nets
from dip.errors import DipError, DipNote
from dip.fitting.settings import FitSettings, SettingError
from dip.runs.config import auto_stop, auto_stopping
from dip.runs.schema import CONFIG_KEYS

__all__ = ["stop_mode", "resolve_stop", "given_keys", "explicit_num_iter", "step_cap",
           "build_net", "unused_net_keys", "note_unused_net_keys", "settings_from",
           "net_multiple", "min_size"]


OWN_KEYS = frozenset({"name", "width_scale"})
"""Keys of ``cfg.net`` that choose and scale the net rather than go to its builder."""


def _net_kwargs(net_cfg: DictConfig) -> dict:
    kwargs = OmegaConf.to_container(net_cfg, resolve=True)
    for key in OWN_KEYS:
        kwargs.pop(key, None)
    return kwargs


def net_multiple(net_cfg: DictConfig) -> int:
    """Side length the network's input must be a multiple of (2^number of scales):
    :func:`dip.nets.size_multiple` for ``net_cfg``."""
    return nets.size_multiple(net_cfg.name, **_net_kwargs(net_cfg))


def min_size(net_cfg: DictConfig) -> int:
    """Smallest side the net of ``net_cfg`` accepts (:func:`dip.nets.min_size`)."""
    return nets.min_size(net_cfg.name, **_net_kwargs(net_cfg))


def unused_net_keys(cfg: DictConfig) -> list[str]:
    """Keys of ``cfg.net`` that its builder does not take: settings an experiment wrote
    for its own net (e.g. ``num_channels_skip`` of the skip net) when another net is
    chosen (``net=encdec``). :func:`build_net` leaves them out."""
    return sorted(set(cfg.net) - OWN_KEYS - nets.builder_keys(cfg.net.name))


def note_unused_net_keys(cfg: DictConfig) -> None:
    """A ``note:`` line naming the keys of :func:`unused_net_keys`, if any."""
    unused = unused_net_keys(cfg)
    if unused:
        warnings.warn(f"net={cfg.net.name} does not take {', '.join(unused)} (set for "
                      "another net, e.g. by the experiment); left out", DipNote, stacklevel=2)


def build_net(cfg: DictConfig, num_input_channels: int, num_output_channels: int):
    """Network of ``cfg.net``, widths scaled by ``cfg.net.width_scale`` (the profile's, or
    the experiment's); the keys of :func:`unused_net_keys` are left out. Settings the
    builder refuses (a per-level list of the wrong length, an unknown mode) end as a
    one-line :class:`~dip.DipError`."""
    kwargs = _net_kwargs(cfg.net)
    name = cfg.net.name
    for key in unused_net_keys(cfg):
        kwargs.pop(key)
    scale = float(cfg.net.get("width_scale", 1.0))
    try:
        if scale != 1.0:
            kwargs = nets.scale_width(kwargs, name, scale)
        return nets.build(name, num_input_channels, num_output_channels, **kwargs)
    except ValueError as err:
        raise DipError(f"net={name}: {err}; fix it with net.<key>=... overrides") from None


def stop_mode(cfg: DictConfig) -> str:
    """``cfg.stop``, with 'auto' resolved: early stopping ('wmv') when the run has no
    ground truth to score against (``corrupted=true`` without ``gt=``), else 'fixed'."""
    if str(cfg.stop) != "auto":
        return cfg.stop
    return auto_stop(cfg.corrupted, cfg.get("gt"))


def given_keys(overrides) -> set[str]:
    """The config keys that ``overrides`` (``key=value`` strings, Hydra's syntax) set."""
    if not overrides:
        return set()
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {o.key_or_group for o in parsed}


def explicit_num_iter(cfg: DictConfig, given=()) -> bool:
    """Whether ``fit.num_iter`` was set by the user: given as an override, or a plain
    number in the composed config (every config of the project sets it through an
    interpolation of its profile's schedule)."""
    return "fit.num_iter" in given or not OmegaConf.is_interpolation(cfg.fit, "num_iter")


def resolve_stop(cfg: DictConfig, given=()) -> DictConfig:
    """``cfg`` with ``stop: auto`` replaced by :func:`stop_mode` (in place), before the
    run's identity is taken: a run with ground truth keeps 'fixed' and its identity; one
    without stops early with the patience and cap of ``stopping.unscored``, except for
    the settings the user gave (``given``: the overridden keys): an explicit
    ``stopping.patience`` or ``stopping.cap`` is kept, and an explicit ``fit.num_iter``
    is the cap (:func:`explicit_num_iter`)."""
    if str(cfg.stop) == "auto":
        stop = stop_mode(cfg)
        keep = {k.split(".", 1)[1] for k in given if k.startswith("stopping.")}
        if explicit_num_iter(cfg, given) and "cap" not in keep:
            keep.add("cap")
            with open_dict(cfg):
                cfg.stopping.cap = None  # null: the cap is fit.num_iter
        values = auto_stopping(stop, OmegaConf.to_container(cfg.stopping), keep)
        with open_dict(cfg):
            cfg.stop = stop
            for key, value in values.items():
                cfg.stopping[key] = value
    return cfg


def step_cap(cfg: DictConfig, size=None) -> int:
    """The most steps a run takes: ``fit.num_iter``, or for a run that stops early
    (``stop`` not 'fixed') ``stopping.cap`` when set: N steps, or 'auto':
    ``stopping.cap_per_side`` steps per pixel of the side √(H·W) of the fitted image
    ``size`` = (H, W) (larger images peak later: docs/experiments.md#without-ground-truth;
    without ``size``, ``fit.num_iter``)."""
    cap = cfg.stopping.get("cap") if stop_mode(cfg) != "fixed" else None
    if cap is None or (str(cap) == "auto" and size is None):
        return int(cfg.fit.num_iter)
    if str(cap) == "auto":
        per_side = cfg.stopping.cap_per_side
        if not per_side > 0:
            raise DipError(f"stopping.cap_per_side={per_side} is invalid; give a positive "
                           "number of steps per pixel of the image's side")
        return max(1, round(per_side * math.sqrt(size[0] * size[1])))
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise DipError(f"stopping.cap={cap} is invalid; give null (fit.num_iter), a positive "
                       "number of steps or auto (by the image's size)")
    return cap


def settings_from(cfg: DictConfig, seed: int | None = None, size=None) -> FitSettings:
    """:class:`~dip.fitting.settings.FitSettings` from ``cfg.fit`` plus stopping, seed, device,
    progress and the fast paths (``cfg.fast``); an invalid value (FitSettings checks them) is a
    one-line :class:`~dip.DipError` that names its config key.

    ``seed`` overrides ``cfg.seed`` (the members of a seed ensemble); ``size``, the fitted
    image's (H, W), sets the cap of an early-stopped run (:func:`step_cap`).
    """
    values = OmegaConf.to_container(cfg.fit, resolve=True)
    values["num_iter"] = step_cap(cfg, size)
    values.update(OmegaConf.to_container(cfg.fast, resolve=True) if "fast" in cfg else {})
    stopping = cfg.stopping
    try:
        return FitSettings(**values, stop=stop_mode(cfg), stop_window=stopping.window,
                           stop_patience=stopping.patience, stop_alpha=stopping.alpha,
                           seed=int(cfg.seed if seed is None else seed),
                           device=str(cfg.device), progress=bool(cfg.progress))
    except SettingError as err:
        key = CONFIG_KEYS.get(err.field, f"fit.{err.field}")
        raise DipError(f"{key}={err.value} is {err.word}; {err.hint}") from None
