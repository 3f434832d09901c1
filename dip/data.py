"""The data layer under one name: a façade that re-exports it.

The data layer lives in small modules, each owning one thing:

- :mod:`dip.images`: image files and pixels (:func:`load_image`, :func:`save_image`,
  16-bit images, mode conversions);
- :mod:`dip.crops`: centre crops (:func:`crop_to_multiple`, :func:`center_crop`);
- :mod:`dip.registry`: the registry of benchmark files, the data root and image specs
  (:class:`Entry`, :func:`lookup`, :func:`resolve`, :func:`read`, :func:`image_id`, …);
- :mod:`dip.atomic`: atomic writes (:func:`atomic_target`).

``from dip.data import NAME`` keeps working for every name this module held before the
split. Setting a name here (``monkeypatch.setattr(dip.data, NAME, value)``) sets it in
each of those modules that holds it, where their functions look it up (deleting it
restores theirs); reading a name that is not re-exported (such as ``_load_registry``)
reads it from the module that holds it.
"""

from __future__ import annotations

import sys
import types

from dip import atomic as _atomic
from dip import crops as _crops
from dip import images as _images
from dip import registry as _registry
from dip.atomic import atomic_target
from dip.crops import center_crop, crop_to_multiple
from dip.images import EXAMPLE_NAME, load_image, save_image
from dip.registry import (
    BUNDLED,
    ENV_ROOT,
    REGISTRY_CSV,
    Entry,
    bundled,
    data_root,
    datasets,
    entries_in,
    file_sha256,
    image_id,
    list_images,
    lookup,
    read,
    registry,
    resolve,
)

__all__ = [
    "Entry", "BUNDLED", "load_image", "save_image", "crop_to_multiple", "center_crop",
    "registry", "lookup", "entries_in", "datasets", "data_root", "resolve", "list_images",
    "file_sha256", "bundled", "read", "atomic_target", "image_id",
    "REGISTRY_CSV", "ENV_ROOT", "EXAMPLE_NAME",
]

_OWNERS = (_images, _crops, _registry, _atomic)


def __getattr__(name: str):
    """A name of the data-layer modules that is not re-exported (e.g. ``_low_bytes``)."""
    if not name.startswith("__"):
        for module in _OWNERS:
            if name in vars(module):
                return vars(module)[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_SHADOWED: dict[tuple[types.ModuleType, str], object] = {}
"""The data-layer modules' own values of names set through this module."""


def _holders(name: str) -> list[types.ModuleType]:
    """Data-layer modules whose namespace holds ``name`` (none for dunder names)."""
    return [] if name.startswith("__") else [m for m in _OWNERS if name in vars(m)]


class _Facade(types.ModuleType):
    """Module type of :mod:`dip.data`: a name set here is set where it is looked up.

    Deleting a name that was set here (as ``monkeypatch`` undoes a patch of a name that
    is not re-exported) gives the modules that hold it their own value back.
    """

    def __setattr__(self, name: str, value) -> None:
        """Set ``name`` in each data-layer module that holds it (keeping their own value)."""
        holders = _holders(name)
        for module in holders:
            _SHADOWED.setdefault((module, name), vars(module)[name])
            setattr(module, name, value)
        if name in vars(self) or not holders:
            super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        """Give the modules that hold ``name`` their own value back."""
        shadowed = [key for key in _SHADOWED if key[1] == name]
        for module, _ in shadowed:
            setattr(module, name, _SHADOWED.pop((module, name)))
        if name in vars(self) or not shadowed:
            super().__delattr__(name)


sys.modules[__name__].__class__ = _Facade
