"""The data layer under one name: a façade that re-exports it.

The data layer lives in small modules, each owning one thing:

- :mod:`dip.images`: image files and pixels (:func:`load_image`, :func:`save_image`,
  16-bit images, mode conversions);
- :mod:`dip.crops`: centre crops (:func:`crop_to_multiple`, :func:`center_crop`);
- :mod:`dip.registry`: the registry of benchmark files, the data root and image specs
  (:class:`Entry`, :func:`lookup`, :func:`resolve`, :func:`read`, :func:`image_id`, …);
- :mod:`dip.atomic`: atomic writes (:func:`atomic_target`).

``from dip.data import NAME`` keeps working for every public name this module held
before the split; to change a module's behaviour (e.g. in a test), patch the module that
holds the name.
"""

from __future__ import annotations

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
