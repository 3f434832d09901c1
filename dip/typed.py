"""Settings as typed dataclasses: a value converted to its field's annotated type, or one
error that names the field and says what to give.

Used by every dataclass of settings (:class:`dip.fitting.FitSettings`, each task's own
settings in :mod:`dip.problems`) so that ``'0.5'`` becomes 0.5 and ``3`` becomes 3.0 for
a float, the way the config's schema reads a value, without the config library.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing

__all__ = ["SettingError", "convert", "typed_fields", "type_hint", "check_int"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a word"}


class SettingError(ValueError):
    """An invalid setting: ``field``, ``value`` and what to give (``hint``)."""

    def __init__(self, field: str, value, hint: str, word: str = "invalid"):
        self.field, self.value, self.hint, self.word = field, value, hint, word
        super().__init__(f"{field}={value} is {word}; {hint}")


def type_hint(hint) -> str:
    """What to give for a value of type ``hint`` ('an integer', 'a number or null')."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    word = " or ".join(_WORDS.get(a, getattr(a, "__name__", str(a))) for a in args)
    return f"{word} or null" if type(None) in typing.get_args(hint) else word


def _one(kind, value):
    """``value`` as ``kind`` (int, float, bool or str); ValueError when it is not one."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return int(value.strip())
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
    elif kind is str:
        if isinstance(value, (str, int, float)):
            return str(value)
    else:
        return value  # Any, dicts, lists: as they are
    raise ValueError(f"not {kind.__name__}")


def convert(hint, value):
    """``value`` converted to the annotated type ``hint`` (``int``, ``float | None``,
    ...); ValueError when it does not convert."""
    if hint is typing.Any:
        return value
    args = typing.get_args(hint)
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    if union and value is None and type(None) in args:
        return None
    for kind in ([a for a in args if a is not type(None)] if union else [hint]):
        try:
            return _one(typing.get_origin(kind) or kind, value)
        except (ValueError, TypeError):
            continue
    raise ValueError(f"{value!r} is not {type_hint(hint)}")


def typed_fields(obj) -> dict:
    """The fields of dataclass ``obj`` converted to their annotated types;
    :class:`SettingError` names the first field that does not convert (or is NaN)."""
    hints = typing.get_type_hints(type(obj))
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        try:
            out[f.name] = convert(hints[f.name], value)
        except ValueError:
            give = f.metadata.get("give") or type_hint(hints[f.name])
            raise SettingError(f.name, value, f"give {give}") from None
        if isinstance(out[f.name], float) and math.isnan(out[f.name]):
            raise SettingError(f.name, "nan", f"give {f.metadata.get('give') or 'a number'}")
    return out


def check_int(name: str, value: int, minimum: int = 1) -> None:
    """:class:`SettingError` unless the integer ``value`` is at least ``minimum``."""
    if value < minimum:
        raise SettingError(name, value, f"give an integer >= {minimum}" if minimum != 1
                           else "give a positive integer")
