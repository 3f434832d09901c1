"""The names of a table's columns: one group per source, machine-readable in the CSV.

A table's columns come in groups, in this order: ``run`` (this run's record fields, on
this run's images), ``released`` (the compared methods' released whole-image results,
scored through this run's crop), ``paper`` (paper_numbers.csv: whole images) and
``delta`` (this run's column − the paper's, shown only for whole images). A column is
named ``"<group>: <label>"`` in the CSV (``run: DIP final``, ``released: LapSRN``,
``paper: DIP``, ``Δ vs paper: DIP avg``); a column of this run has companions named by a
suffix: ``(std)`` (the sample std over an image's seeds, on image rows) and ``(95% lo)``,
``(95% hi)`` (the bounds of a mean row's interval). :func:`name` makes a name and
:func:`parse` reads it back, so that the renderings find the groups in the CSV's own
names; the row keys (the cells, ``image``, ``seeds``) have no group.
"""

from __future__ import annotations

from dataclasses import dataclass

from dip.report.stats import LEVEL

__all__ = ["GROUPS", "PARTS", "Heading", "name", "parse", "group_title", "SEEDS", "KEY_ORDER"]

GROUPS = {"run": "run", "released": "released", "paper": "paper", "delta": "Δ vs paper"}
"""Group → the prefix of its columns' names."""
PARTS = {"std": "(std)", "lo": f"({LEVEL:.0%} lo)", "hi": f"({LEVEL:.0%} hi)"}
"""Companion of a value column → its suffix: seeds' std, the interval's bounds."""
SEEDS = "seeds"
"""The row-key column that counts the seeds behind each row."""
KEY_ORDER = ("image", SEEDS)
"""The row keys after the cell fields."""
_PREFIXES = {prefix: group for group, prefix in GROUPS.items()}


@dataclass(frozen=True)
class Heading:
    """A column name read back: its group (None for a row key), label and part ('' for
    the value itself, else a key of :data:`PARTS`)."""

    group: str | None
    label: str
    part: str = ""


def name(group: str, label: str, part: str = "") -> str:
    """The CSV name of a column: ``name('run', 'DIP final', 'lo')`` →
    ``'run: DIP final (95% lo)'``."""
    text = f"{GROUPS[group]}: {label}"
    return f"{text} {PARTS[part]}" if part else text


def parse(column: str) -> Heading:
    """The group, label and part of a column name (a row key: no group)."""
    prefix, sep, rest = str(column).partition(": ")
    if not sep or prefix not in _PREFIXES:
        return Heading(None, str(column))
    for part, suffix in PARTS.items():
        if rest.endswith(f" {suffix}"):
            return Heading(_PREFIXES[prefix], rest[:-len(suffix) - 1], part)
    return Heading(_PREFIXES[prefix], rest)


def _crops(crops) -> str:
    return "/".join(f"{c}×{c}" for c in crops)


def group_title(group: str, profile: str | None = None, crops=()) -> str:
    """The title a rendering shows over a group: where its numbers come from and on which
    pixels (``crops``: this run's centre crop sides; none: whole images)."""
    seen = f"centre {_crops(crops)} crops" if crops else "whole images"
    if group == "run":
        return f"this run ({profile}, {seen})" if profile else f"this run ({seen})"
    if group == "released":
        return f"released results (through this run's {_crops(crops)} crops)" if crops \
            else "released results (whole images)"
    if group == "paper":
        return "paper (whole images)"
    return GROUPS[group]
