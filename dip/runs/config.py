"""The config: composing it, its resolvers, and a run's identity.

Owns the config directory and :func:`compose_config` (the short spellings of the task's
settings, ``sigma=25`` for ``task.sigma=25``: :func:`spelled`), the ``pick`` and
``part`` resolvers, what Hydra says about the running job (:func:`job_overrides`,
:func:`job_number`, :func:`parallel_jobs`), and a run's identity: :func:`identify`
resolves what it depends on (the device a sweep placed it on, threads, ``stop=auto``),
:func:`config_hash` hashes it, :func:`record_dir` finds its record folder. Importing it
registers the config's schema (:mod:`dip.runs.schema`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from dip.errors import DipError
from dip.launch.device import spread_device, thread_count, usable_cores
from dip.problems import task as tasks
from dip.runs.schema import one_line
from dip.runs.spec import LEGACY_TASK_KEYS

__all__ = ["CONFIG_DIR", "pick", "part", "config_hash", "auto_stop", "IDENTITY_EXCLUDE",
           "LEGACY_EXCLUDE", "NEUTRAL", "auto_stopping", "job_overrides", "job_number",
           "parallel_jobs", "legacy_layout", "spelled", "unspelled", "compose_config",
           "with_values", "identify", "place_device", "resolve_threads", "resolve_stop",
           "given_keys", "explicit_num_iter", "record_dir", "override_values"]

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"

# Keys that do not change what a run computes: left out of its identity hash. An
# experiment's ``schedule`` is a per-profile look-up table whose picked values already
# sit in the keys they set (fit.num_iter, crop, ...), so editing another profile's entry
# keeps this profile's records. A table's declaration (``table``, a task's ``task.table``)
# and the compared methods' results scored beside a run (``released``) are no part of what
# it computes either, nor is what watches it (snapshots, a logger). A dotted key names a
# key inside a group.
IDENTITY_EXCLUDE = ("out_dir", "records", "progress", "data", "force", "checkpoint_every",
                    "memory_limit_gb", "fast.keep_memory", "schedule", "table", "task.table",
                    "released", "snapshot_every", "snapshot_limit", "snapshot_side", "logger")
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


def legacy_layout(data: dict) -> dict:
    """``data`` (a resolved config) with the task settings that once were top-level keys
    of every run back there (:data:`dip.runs.spec.LEGACY_TASK_KEYS`, their defaults
    then where the task has no such setting): the layout a run's identity hashes, so
    that moving them into the task's group kept every record's identity. An old
    record's config is returned as it is."""
    task = data.get("task")
    if not isinstance(task, dict):
        return data
    data = {**data, "task": dict(task)}
    for key, default in LEGACY_TASK_KEYS.items():
        if key in data["task"]:
            data[key] = data["task"].pop(key)
        elif key not in data:
            data[key] = default
    return data


def config_hash(cfg, exclude=IDENTITY_EXCLUDE) -> str:
    """Short sha256 of the resolved config (a DictConfig or a resolved dict) without the
    keys that do not change results (``stop: auto`` counts as what it means:
    :func:`auto_stop`; the thread count is hashed where profiles kept it before
    ``threads`` became the launcher's, ``profile.threads``, the net's width as
    ``profile.width_scale``, and the task's settings as top-level keys
    (:func:`legacy_layout`), where each was before, so earlier records keep their
    identity; a device placed by the launcher counts as the setting it came from,
    ``device_setting``: :func:`place_device`)."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else \
        json.loads(json.dumps(dict(cfg), default=str))
    data = legacy_layout(data)
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



# --- composing ------------------------------------------------------------------------

def spelled(overrides) -> list[str]:
    """``overrides`` with the short spelling of a task's setting (``sigma=25``,
    ``factor=8``, ``mask=m.png``: :func:`dip.problems.task.setting_names`) written as
    the task group's key (``task.sigma=25``; a setting the chosen task does not have is
    then one line naming the tasks that have it: :func:`dip.runs.schema.one_line`)."""
    names = tasks.setting_names()
    out = []
    for item in overrides:
        key, eq, value = str(item).partition("=")
        bare = key.lstrip("+~")
        if eq and bare in names:
            item = f"{key[:len(key) - len(bare)]}task.{bare}={value}"
        out.append(item)
    return out


def unspelled(overrides) -> list[str]:
    """The inverse of :func:`spelled`: ``task.sigma=25`` → ``sigma=25`` (how a record
    keeps the overrides that made it)."""
    names = tasks.setting_names()
    out = []
    for item in overrides:
        key, eq, value = str(item).partition("=")
        bare = key.lstrip("+~")
        if eq and bare.startswith("task.") and bare[5:] in names:
            item = f"{key[:len(key) - len(bare)]}{bare[5:]}={value}"
        out.append(item)
    return out


def compose_config(*overrides: str) -> DictConfig:
    """The ``dip`` command's config for ``overrides`` (``key=value`` strings, short
    spellings allowed); a composition error is the command's one-line DipError."""
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            return compose("config", overrides=spelled(overrides))
    except HydraException as err:
        raise DipError(one_line(err)) from None


def with_values(cfg: DictConfig, **values) -> DictConfig:
    """A copy of ``cfg`` with top-level ``values`` set (e.g. one image of a folder)."""
    copy = cfg.copy()
    with open_dict(copy):
        for key, value in values.items():
            copy[key] = value
    return copy


# --- a run's identity -----------------------------------------------------------------

def override_values(overrides) -> dict:
    """``{key: value}`` of the ``overrides`` that change what a run computes (not
    :data:`IDENTITY_EXCLUDE`'s keys, nor Hydra's), as Hydra parses them (``fit.lr=0.01`` →
    0.01, ``arch=encdec6`` → 'encdec6'; a list or a deletion as its text): a sweep's
    hyperparameters (:mod:`dip.fitting.tensorboard`)."""
    values = {}
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        key = o.get_key_element().lstrip("+~")
        if key.startswith("hydra") or any(key == k or key.startswith(f"{k}.")
                                          for k in IDENTITY_EXCLUDE):
            continue
        value = o.value() if not o.is_delete() else None
        values[key] = value if isinstance(value, (bool, int, float, str)) else \
            o.get_value_element_as_str()
    return values


def given_keys(overrides) -> set[str]:
    """The config keys that ``overrides`` (``key=value`` strings, Hydra's syntax) set."""
    if not overrides:
        return set()
    parsed = OverridesParser.create().parse_overrides(spelled(overrides))
    return {o.key_or_group for o in parsed}


def explicit_num_iter(cfg: DictConfig, given=()) -> bool:
    """Whether ``fit.num_iter`` was set by the user: given as an override, or a plain
    number in the composed config (every config of the project sets it through an
    interpolation of its profile's schedule)."""
    return "fit.num_iter" in given or not OmegaConf.is_interpolation(cfg.fit, "num_iter")


def resolve_stop(cfg: DictConfig, given=()) -> DictConfig:
    """``cfg`` with ``stop: auto`` replaced by what it means (in place; :func:`auto_stop`),
    before the run's identity is taken: a run with ground truth keeps 'fixed' and its
    identity; one without stops early with the patience and cap of
    ``stopping.unscored``, except for the settings the user gave (``given``: the
    overridden keys): an explicit ``stopping.patience`` or ``stopping.cap`` is kept, and
    an explicit ``fit.num_iter`` is the cap (:func:`explicit_num_iter`)."""
    if str(cfg.stop) == "auto":
        stop = auto_stop(cfg.corrupted, cfg.get("gt"))
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


def place_device(cfg: DictConfig, job: int | None = None, jobs: int | None = None
                 ) -> DictConfig:
    """``cfg`` with its device placed among the visible GPUs (in place;
    :func:`dip.launch.device.spread_device`): ``device`` says the GPU (recorded),
    ``device_setting`` what was asked (hashed). ``job``: the run's number in its sweep
    (default: the Hydra job's); ``jobs``: runs side by side (default: Hydra's)."""
    setting = str(cfg.get("device", "auto"))
    job = job_number() if job is None else job
    if job is None:
        return cfg
    device = spread_device(setting, job, parallel_jobs() if jobs is None else jobs)
    if device != setting:
        with open_dict(cfg):
            cfg.device = device
            cfg.device_setting = setting
    return cfg


def resolve_threads(cfg: DictConfig, jobs: int | None = None) -> DictConfig:
    """``cfg`` with ``threads: auto`` replaced by the count this run uses (in place;
    :func:`dip.launch.device.thread_count`), before the run's identity is taken, so the
    record keeps it: CPU runs with other thread counts (whose numbers differ in the last
    digits) are other runs. ``jobs``: runs side by side (default: Hydra's)."""
    if str(cfg.get("threads")) == "auto":
        with open_dict(cfg):
            cfg.threads = thread_count(str(cfg.device),
                                       parallel_jobs() if jobs is None else jobs)
    return cfg


def record_dir(cfg: DictConfig) -> Path:
    """Where a run's record goes: ``out_dir`` if set, else ``records/<config hash>``.

    A record stored under the hash of the earlier identity (:data:`LEGACY_EXCLUDE`), and
    not under the current one, is used where it is: a resumed sweep skips it, and a
    forced rerun replaces it rather than adding a second record that a table would count
    twice.
    """
    if cfg.out_dir is not None:
        return Path(cfg.out_dir)
    out = Path(cfg.records) / config_hash(cfg)
    if (out / "metrics.json").is_file():
        return out
    legacy = Path(cfg.records) / config_hash(cfg, exclude=LEGACY_EXCLUDE)
    return legacy if (legacy / "metrics.json").is_file() else out


def identify(cfg: DictConfig, overrides=()) -> Path:
    """Resolve what a run's identity depends on (in place) and return its record folder:
    the GPU of a sweep's run (recorded, not hashed), the thread count (the record keeps
    it) and ``stop=auto`` (early stopping without ground truth; the settings that
    ``overrides`` give are kept: :func:`resolve_stop`)."""
    place_device(cfg)
    resolve_threads(cfg)
    resolve_stop(cfg, given_keys(overrides))
    return record_dir(cfg)


for _name, _fn in (("pick", pick), ("part", part)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
