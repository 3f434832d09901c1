"""Config helpers: the ``pick`` resolver, config hashing and the config directory (and,
imported, the config schema of :mod:`dip.runs.schema`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dip.launch.device import usable_cores

__all__ = ["CONFIG_DIR", "pick", "part", "config_hash", "auto_stop", "IDENTITY_EXCLUDE",
           "LEGACY_EXCLUDE", "NEUTRAL", "auto_stopping", "job_overrides", "job_number",
           "parallel_jobs"]

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"

# Keys that do not change what a run computes: left out of its identity hash. An
# experiment's ``schedule`` is a per-profile look-up table whose picked values already
# sit in the keys they set (fit.num_iter, crop, ...), so editing another profile's entry
# keeps this profile's records. A dotted key names a key inside a group.
IDENTITY_EXCLUDE = ("out_dir", "records", "progress", "data", "force", "checkpoint_every",
                    "memory_limit_gb", "fast.keep_memory", "schedule", "table")
# The identity before ``schedule`` was left out: records made then are still found.
LEGACY_EXCLUDE = tuple(k for k in IDENTITY_EXCLUDE if k != "schedule")

# Keys at the value that computes what runs computed before the key existed: left out of
# the hash at that value, so that earlier records keep their identity. ``stopping`` only
# matters when ``stop`` is not 'fixed'. ``fast`` at its defaults picks per device what the
# code did before it existed.
# The paper-era switches (docs/faithfulness.md) at today's behaviour are neutral too; a
# dotted key names a key inside a group.
NEUTRAL = {"stop": "fixed", "seeds": 1,
           "fast": {"amp": "off", "channels_last": None, "fused_adam": None, "compile": False,
                    "cuda_graph": None},
           "net.bn_init": "ones", "net.align_corners": False, "fit.final_input": "clean",
           "fit.backtrack": "guard", "pad_image": 0,
           "stopping.cap": None, "stopping.cap_per_side": 24,
           "stopping.unscored": {"patience": 300, "cap": "auto"}}


def pick(table, *keys):
    """Look ``keys`` up in a nested table, descending while the value is a mapping.

    A key that is missing falls back to the table's ``default`` entry; a scalar value
    ends the descent (so ``{paper: {x4: 2000}, smoke: 30}`` serves every factor for
    smoke). Used in configs as ``${pick:${task.iters},${profile.name},x${factor}}``.
    """
    value = table
    for key in keys:
        if not isinstance(value, (dict, DictConfig)):
            break
        if key in value:
            value = value[key]
        elif "default" in value:
            value = value["default"]
        else:
            options = ", ".join(str(k) for k in value)
            raise KeyError(f"no setting for {key!r} (known: {options}); set it explicitly")
    if isinstance(value, (dict, DictConfig)):
        if "default" in value:
            return value["default"]
        raise KeyError(f"setting is still a table after keys {keys}; set it explicitly")
    return value


def part(text: str, index: int, sep: str = "/") -> str:
    """Field ``index`` of ``text`` split on ``sep``: ``${part:set5/baby,1}`` is 'baby'."""
    return str(text).split(sep)[int(index)]


def _parent(data: dict, key: str) -> tuple[dict | None, str]:
    """The dict that holds dotted ``key`` in ``data`` (None when absent), and its last part."""
    *groups, last = key.split(".")
    for group in groups:
        data = data.get(group) if isinstance(data, dict) else None
    return (data if isinstance(data, dict) else None), last


def auto_stop(corrupted, gt) -> str:
    """What ``stop: auto`` means for a run: early stopping ('wmv') when it has no ground
    truth to score against (``corrupted`` without ``gt``), else 'fixed'."""
    return "wmv" if corrupted and gt is None else "fixed"


def auto_stopping(stop: str, stopping: dict, keep=()) -> dict:
    """The ``stopping`` values of a run whose ``stop: auto`` resolved to ``stop``: early
    stopping takes the patience and cap of ``stopping.unscored``, except the keys of
    ``keep`` (the ones the user set); 'fixed' keeps them all."""
    if stop == "fixed":
        return stopping
    unscored = {k: v for k, v in (stopping.get("unscored") or {}).items() if k not in keep}
    return {**stopping, **unscored}


def config_hash(cfg: DictConfig, exclude=IDENTITY_EXCLUDE) -> str:
    """Short sha256 of the resolved config without the keys that do not change results
    (``stop: auto`` counts as what it means: :func:`auto_stop`; the thread count is
    hashed where profiles kept it before ``threads`` became the launcher's,
    ``profile.threads``, and the net's width as ``profile.width_scale``, where it was
    before it became ``net.width_scale``, so earlier records keep their identity; a
    device placed by the launcher counts as the setting it came from,
    ``device_setting``: :func:`dip.launch.device.place_device`)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    if "device_setting" in data:
        data["device"] = data.pop("device_setting")
    if isinstance(data.get("profile"), dict):  # where these lived before: same identities
        data["profile"]["threads"] = data.get("threads")
        if isinstance(data.get("net"), dict) and "width_scale" in data["net"]:
            data["profile"]["width_scale"] = data["net"].pop("width_scale")
    if data.get("stop") == "auto":
        data["stop"] = auto_stop(data.get("corrupted"), data.get("gt"))
        data["stopping"] = auto_stopping(data["stop"], data.get("stopping") or {})
    for key in exclude:
        parent, last = _parent(data, key)
        if parent is not None:
            parent.pop(last, None)
    if data.get("stop", "fixed") == "fixed":
        data.pop("stopping", None)
    for key, value in NEUTRAL.items():
        parent, last = _parent(data, key)
        if parent is not None and last in parent and parent[last] == value:
            parent.pop(last)
    data.pop("hydra", None)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def job_overrides() -> list[str]:
    """The overrides that made this Hydra job (``hydra.overrides.task``); [] outside Hydra."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def job_number() -> int | None:
    """The number of this Hydra multirun job (None outside a multirun)."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    num = HydraConfig.get().job.get("num")
    return None if num is None else int(num)


def parallel_jobs() -> int:
    """How many jobs of this Hydra multirun run at once here (1 outside a multirun or
    for a launcher that runs one job at a time; the batched launcher: one per core)."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return 1
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    if "joblib" in target.lower():
        n = int(launcher.get("n_jobs") or 1)
        return usable_cores() if n < 0 else max(1, n)
    if "dip_batched" in target:
        return usable_cores()
    return 1


for _name, _fn in (("pick", pick), ("part", part)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)

import dip.runs.schema  # noqa: E402,F401  (registers the config schema that conf/config.yaml lists)
