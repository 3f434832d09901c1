"""A run's settings, read once from its resolved config into typed, frozen parts.

:meth:`RunSpec.read` turns a resolved config (the plain dict of ``config.yaml``, a new
run's or an old record's) into a :class:`RunSpec`: the task and its own settings
(:mod:`dip.problems.task`), the inputs, the net (:class:`NetSpec`), the fit, stopping and
fast-path settings, the device and threads, the seeds and where the record goes. Every
value is converted to its type and checked here, each bad one a one-line
:class:`~dip.DipError`; below this, nothing reads a config.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from torch import nn

from dip import nets
from dip.errors import DipError, DipNote
from dip.fitting.settings import FitSettings
from dip.problems import task as tasks
from dip.typed import SettingError, typed_fields

__all__ = ["RunSpec", "NetSpec", "RunKeys", "CONFIG_KEYS", "LEGACY_TASK_KEYS", "task_values",
           "invalid"]

FAST_KEYS = ("amp", "channels_last", "compile", "fused_adam", "cuda_graph", "keep_memory")
CONFIG_KEYS = {"stop": "stop", "stop_window": "stopping.window",
               "stop_patience": "stopping.patience", "stop_alpha": "stopping.alpha",
               "seed": "seed", "device": "device", "progress": "progress",
               "snapshot_every": "snapshot_every", "snapshot_limit": "snapshot_limit",
               "snapshot_side": "snapshot_side",
               **{k: f"fast.{k}" for k in FAST_KEYS}}
"""FitSettings field → the config key it comes from (others: ``fit.<field>``)."""

LEGACY_TASK_KEYS = {"sigma": 25, "p_missing": 0.5, "factor": 4, "signal": "image",
                    "mask": None, "mask_threshold": None}
"""Task settings that once were top-level keys of every run (with their defaults then):
an old record's config holds them there, and a run's identity hashes them there."""

OWN_NET_KEYS = frozenset({"name", "width_scale"})
"""Keys of ``net`` that choose and scale the net rather than go to its builder."""


def _key(default, give: str | None = None):
    return field(default=default, metadata={"give": give} if give else {})


@dataclass
class RunKeys:
    """Types of the run's own top-level keys (``conf/config.yaml`` says what each is) and,
    where the type says too little, what to give (:func:`invalid`)."""

    pad_image: int | None = _key(0, "the pixels of reflection padding (an integer >= 0, "
                                    "e.g. pad_image=1; 0 = none)")
    scale: float | None = _key(None, "a downscaling factor in (0, 1]")
    corrupted: bool = False
    seed: int = 0
    seeds: int = _key(1, "a positive integer")
    checkpoint_every: int = _key(0, "an integer >= 0")
    snapshot_every: int = 0  # its range: FitSettings
    snapshot_limit: int = 64
    snapshot_side: int = 256
    memory_limit_gb: float | None = _key(None, "a positive number of GB or null (the free "
                                               "memory)")
    progress: bool = True
    baselines: bool = True
    force: bool = False


def invalid(key: str, value) -> DipError:
    """The one-line error of a run key's invalid value: ``key=value is invalid; give
    ...``, the same whether its type or its range is wrong."""
    f = {f.name: f for f in dataclasses.fields(RunKeys)}[key]
    return DipError(f"{key}={value} is invalid; give {f.metadata.get('give')}")


def _run_keys(config: Mapping) -> RunKeys:
    """The run's own keys, typed (:class:`RunKeys`); the first bad one as one line."""
    names = {f.name for f in dataclasses.fields(RunKeys)}
    try:
        keys = RunKeys(**{k: config[k] for k in names if k in config})
        return RunKeys(**typed_fields(keys))
    except SettingError as err:
        raise DipError(str(err)) from None


def task_values(config: Mapping) -> dict:
    """The task's own settings in ``config``: its ``task`` node, and, in an old record's
    config, the task settings it kept at the top level (:data:`LEGACY_TASK_KEYS`)."""
    legacy = {k: config[k] for k in LEGACY_TASK_KEYS if k in config}
    return {**legacy, **dict(config.get("task") or {})}


@dataclass(frozen=True)
class NetSpec:
    """The network of a run: the builder ``name`` of :mod:`dip.nets`, its keyword
    arguments and the factor of its channel widths. Keys the builder does not take
    (set for another net, e.g. by an experiment) are left out, in ``unused``."""

    name: str
    kwargs: Mapping = field(default_factory=dict)
    width_scale: float = 1.0
    unused: tuple[str, ...] = ()

    @classmethod
    def read(cls, node: Mapping) -> NetSpec:
        """The net of a config's ``net`` node."""
        name = str(node["name"])
        given = {k: v for k, v in node.items() if k not in OWN_NET_KEYS}
        keys = nets.builder_keys(name)
        unused = tuple(sorted(set(given) - keys))
        kwargs = {k: v for k, v in given.items() if k in keys}
        return cls(name, MappingProxyType(kwargs), float(node.get("width_scale", 1.0)), unused)

    def build(self, num_input_channels: int, num_output_channels: int) -> nn.Module:
        """The net, widths scaled; settings the builder refuses end as one line."""
        kwargs = dict(self.kwargs)
        try:
            if self.width_scale != 1.0:
                kwargs = nets.scale_width(kwargs, self.name, self.width_scale)
            return nets.build(self.name, num_input_channels, num_output_channels, **kwargs)
        except ValueError as err:
            raise DipError(f"net={self.name}: {err}; fix it with net.<key>=... overrides"
                           ) from None

    def multiple(self) -> int:
        """Side the net's input must be a multiple of (2^number of scales)."""
        return nets.size_multiple(self.name, **self.kwargs)

    def min_size(self) -> int:
        """Smallest side the net accepts."""
        return nets.min_size(self.name, **self.kwargs)

    def note_unused(self) -> None:
        """A ``note:`` line naming the keys left out, if any."""
        if self.unused:
            warnings.warn(f"net={self.name} does not take {', '.join(self.unused)} (set for "
                          "another net, e.g. by the experiment); left out", DipNote,
                          stacklevel=2)


@dataclass(frozen=True)
class RunSpec:
    """Everything a run's config says, typed (see the module's docstring).

    ``released``: name → image spec of the compared methods' released results for this
    image (scored through the run's crop: :func:`dip.runs.inputs.released_scores`).
    ``logger``: what watches the run as it goes (``name``: none or tensorboard, its
    ``dir`` and ``every``: :mod:`dip.fitting.tensorboard`).
    ``config`` is the resolved config as ``config.yaml`` holds it; ``identity`` the
    run's config hash (:func:`dip.runs.config.config_hash`) and ``home`` its record
    folder, when the spec is a new run's (else empty).
    """

    config: Mapping
    task: str
    settings: Any
    net: NetSpec
    keys: RunKeys
    image: str
    gt: str | None
    crop: Any
    input_image: str | None
    data_root: str
    fit: Mapping
    fast: Mapping
    stop: str
    stopping: Mapping
    device: str
    threads: int | None
    profile: str
    name: str | None = None
    label: str | None = None
    dataset: str | None = None
    out_dir: str | None = None
    records: str = "results/runs"
    released: Mapping = field(default_factory=dict)
    logger: Mapping = field(default_factory=lambda: MappingProxyType({"name": "none"}))
    identity: str = ""
    home: Path | None = None

    @classmethod
    def read(cls, config: Mapping, identity: str = "", home: Path | None = None) -> RunSpec:
        """The spec of a resolved config (checked: a one-line DipError for a bad value)."""
        keys = _run_keys(config)
        task = str(config["task"]["name"])
        settings = tasks.settings_of(task, task_values(config), keys.corrupted)
        get = config.get
        return cls(
            config=MappingProxyType(dict(config)), task=task, settings=settings,
            net=NetSpec.read(config["net"]), keys=keys, image=str(get("image")),
            gt=get("gt"), crop=get("crop"), input_image=get("input_image"),
            data_root=str((get("data") or {}).get("root", "data")),
            fit=MappingProxyType(dict(get("fit") or {})),
            fast=MappingProxyType(dict(get("fast") or {})), stop=str(get("stop", "fixed")),
            stopping=MappingProxyType(dict(get("stopping") or {})),
            device=str(get("device", "auto")), threads=get("threads"),
            profile=str((get("profile") or {}).get("name", "")), name=get("name"),
            label=get("label"), dataset=get("dataset"), out_dir=get("out_dir"),
            records=str(get("records", "results/runs")),
            released=MappingProxyType(dict(get("released") or {})),
            logger=MappingProxyType(dict(get("logger") or {"name": "none"})),
            identity=identity, home=home)

    @property
    def seeds(self) -> list[int]:
        """The seeds fitted: ``seed``, ``seed + 1``, ... (``seeds`` of them)."""
        return [self.keys.seed + k for k in range(self.keys.seeds)]

    def record_fields(self) -> dict:
        """The task's own fields of a record's metrics (the noise level, the SR factor)."""
        fields = tasks.get(self.task).fields
        return {} if fields is None else fields(self.settings)

    def step_cap(self, size=None) -> int:
        """The most steps a run takes: ``fit.num_iter``, or for a run that stops early
        ``stopping.cap`` when set: N steps, or 'auto': ``stopping.cap_per_side`` steps
        per pixel of the side √(H·W) of the fitted image ``size`` = (H, W) (larger images
        peak later: docs/experiments.md#without-ground-truth; without ``size``,
        ``fit.num_iter``)."""
        cap = self.stopping.get("cap") if self.stop != "fixed" else None
        if cap is None or (str(cap) == "auto" and size is None):
            return int(self.fit["num_iter"])
        if str(cap) == "auto":
            per_side = self.stopping.get("cap_per_side", 24)
            if not per_side > 0:
                raise DipError(f"stopping.cap_per_side={per_side} is invalid; give a positive "
                               "number of steps per pixel of the image's side")
            return max(1, round(per_side * math.sqrt(size[0] * size[1])))
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise DipError(f"stopping.cap={cap} is invalid; give null (fit.num_iter), a "
                           "positive number of steps or auto (by the image's size)")
        return cap

    def settings_for(self, seed: int | None = None, size=None) -> FitSettings:
        """:class:`~dip.fitting.FitSettings` of one seed (default the run's ``seed``),
        the cap of an early-stopped run set by the fitted image's ``size`` (H, W); an
        invalid value is a one-line DipError that names its config key."""
        values = {**self.fit, "num_iter": self.step_cap(size), **self.fast}
        s = self.stopping
        try:
            return FitSettings(**values, stop=self.stop, stop_window=s.get("window", 100),
                               stop_patience=s.get("patience", 1000),
                               stop_alpha=s.get("alpha", 0.1),
                               seed=self.keys.seed if seed is None else int(seed),
                               device=self.device, progress=self.keys.progress,
                               snapshot_every=self.keys.snapshot_every,
                               snapshot_limit=self.keys.snapshot_limit,
                               snapshot_side=self.keys.snapshot_side)
        except SettingError as err:
            key = CONFIG_KEYS.get(err.field, f"fit.{err.field}")
            raise DipError(f"{key}={err.value} is {err.word}; {err.hint}") from None
