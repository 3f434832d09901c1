"""The config's schema: the types of its values, checked before anything runs.

- ``fit``, ``stopping`` and ``fast`` are structured configs whose fields, types and
  defaults are :class:`~dip.fitting.settings.FitSettings`' own (:data:`CONFIG_KEYS` says where
  each field lives), registered in Hydra's ConfigStore as ``schema`` and listed first in
  ``conf/config.yaml``'s defaults: a value of the wrong type or an unknown key is refused
  when the config is composed, naming its key (``dip fit.lr=abc``, ``dip fit.lrr=0.1``).
- The run's own keys (``seeds``, ``pad_image``, ...) and each task's settings are typed
  when a run's spec is read (:class:`dip.runs.spec.RunSpec`); the values of a config,
  and so the runs' identities, stay as written.

Ranges and choices are checked where the values are used (FitSettings, the tasks).
:func:`one_line` turns Hydra's composition errors into the one line the CLI prints;
:func:`quote_overrides` quotes the values that Hydra's grammar takes only in quotes (paths
with non-ASCII characters), so that they work as written.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig

from dip.fitting.settings import FitSettings
from dip.problems import task as tasks
from dip.runs.spec import CONFIG_KEYS

__all__ = ["FitNode", "StoppingNode", "FastNode", "one_line", "quote_overrides"]
def _node(name: str, node: str, extra: tuple = ()) -> type:
    """A dataclass of the FitSettings fields that live under config node ``node``, named
    as the config names them, with FitSettings' types and defaults (then ``extra``: the
    node's keys that are not settings of a fit)."""
    hints = typing.get_type_hints(FitSettings)
    fields = list(extra)
    for f in dataclasses.fields(FitSettings):
        key = CONFIG_KEYS.get(f.name, f"fit.{f.name}")
        parent, _, leaf = key.rpartition(".")
        if parent == node:
            fields.append((leaf, hints[f.name], dataclasses.field(default=f.default)))
    return dataclasses.make_dataclass(name, fields)


FitNode = _node("FitNode", "fit")
StoppingNode = _node("StoppingNode", "stopping", (
    ("cap", typing.Any, dataclasses.field(default=None)),  # null | N | auto: dip.runs.spec
    ("cap_per_side", float, dataclasses.field(default=24.0)),
    ("unscored", dict[str, typing.Any], dataclasses.field(default_factory=dict))))
FastNode = _node("FastNode", "fast")

ConfigStore.instance().store(name="schema", node={"fit": FitNode, "stopping": StoppingNode,
                                                  "fast": FastNode})


def one_line(err: BaseException) -> str:
    """The one line of a Hydra composition error: the override or key, what is wrong with
    it and, where Hydra lists them, the options (its own text spans several lines)."""
    text = str(err).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    head = lines[0] if lines else type(err).__name__
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause).strip():
        reason = str(cause).strip().splitlines()[0]
        if reason not in head:
            head = f"{head.rstrip('.')}: {reason}"
    if "Available options in" in text:
        start = next(i for i, line in enumerate(lines) if line.startswith("Available options"))
        options = [line for line in lines[start + 1:] if not line.startswith(
            ("Config search path", "provider="))]
        head += f"; choose one of {', '.join(options)}"
    elif "not in struct" in head or "not in '" in head:
        other = _other_task(cause)
        head = other if other else head + _key_hint(cause)
    elif "token recognition error" in head and not head.isascii():
        override = lines[0].partition(": ")[2]
        key, _, value = override.partition("=")
        head = (f"{override}: Hydra reads non-ASCII characters only in quotes; quote the "
                f"value (in the shell: \"{key}='{value}'\")")
    elif "override_grammar" in text:
        head += " (the override syntax: https://hydra.cc/docs/advanced/override_grammar/basic)"
    return head


def _other_task(cause) -> str | None:
    """The line for another task's setting given to this one (``mask=`` with
    ``task=denoising``: the key is missing from the task's node), else None."""
    node, key = getattr(cause, "parent_node", None), getattr(cause, "key", None)
    full = str(getattr(cause, "full_key", ""))
    if not (isinstance(node, DictConfig) and full == f"task.{key}" and "name" in node):
        return None
    users = [name for name in tasks.names() if key in tasks.setting_names(name)]
    if not users:
        return None
    which = " or ".join(f"task={u}" for u in users)
    return (f"{key}= is not a setting of task={node['name']} (its settings: "
            f"{', '.join(sorted(tasks.setting_names(node['name']))) or 'none'}); it is one "
            f"of {which}")


def _key_hint(cause) -> str:
    """The hint of an unknown key (OmegaConf's error ``cause`` names it and its node):
    the closest key of the composed config's node (or, at the top, of the nodes below
    it: ``fit_lr`` → ``fit.lr``), else how to list the keys or add a new one."""
    node, key = getattr(cause, "parent_node", None), getattr(cause, "key", None)
    if isinstance(node, DictConfig) and isinstance(key, str):
        items = [(str(k), v) for k, v in node.items_ex(resolve=False) if k != "hydra"]
        keys = [k for k, _ in items] + [f"{k}.{sub}" for k, v in items
                                        if isinstance(v, DictConfig) for sub in v.keys()]
        close = difflib.get_close_matches(key, keys, n=1)
        if close:
            parent = str(getattr(cause, "full_key", "")).rpartition(".")[0]
            name = f"{parent + '.' if parent else ''}{close[0]}"
            if name.startswith("task.") and name[5:] in tasks.setting_names():
                name = name[5:]  # its short spelling
            return f"; did you mean {name}?"
    return "; `dip --cfg job` lists the keys (a new key needs a leading +)"


_KEY = re.compile(r"[+~]{0,2}[A-Za-z_][\w.@/-]*")


def _quoted(key: str, value: str) -> str | None:
    """``value`` single-quoted for Hydra, when the override ``key='value'`` gives back
    exactly ``value`` (else None)."""
    text = "'" + value.replace("'", "\\'") + "'"
    try:
        parsed = OverridesParser.create().parse_override(f"{key}={text}")
    except HydraException:
        return None
    return text if not parsed.is_sweep_override() and parsed.value() == value else None


def quote_overrides(args: Sequence[str], sweeps: bool = False) -> list[str]:
    """``args`` with the values that Hydra's override grammar lexes only in quotes quoted.

    Unquoted, a value with a non-ASCII character (``image=/tmp/é/photo.png``) is a lexer
    error; quoted (``image='/tmp/é/photo.png'``) it is the path as written. Such a
    ``key=value`` is quoted when the quoted override gives back exactly the value;
    ``sweeps`` (``-m``): a value with commas is a sweep, each element quoted. Anything
    else (flags, quoted or ASCII values) is left as it is.
    """
    out = []
    for arg in args:
        key, eq, value = arg.partition("=")
        if eq and _KEY.fullmatch(key) and not value.isascii() and value[:1] not in "'\"":
            parts = value.split(",") if sweeps else [value]
            quoted = [_quoted(key, part) for part in parts]
            if None not in quoted:
                arg = f"{key}={','.join(quoted)}"
        out.append(arg)
    return out
