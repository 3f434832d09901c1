"""Data: the images a run reads and writes, and where benchmark images come from.

- :mod:`~dip.data.images`: image files and pixels (:func:`load_image`, :func:`save_image`,
  16-bit images, mode conversions);
- :mod:`~dip.data.crops`: centre crops (:func:`crop_to_multiple`, :func:`center_crop`);
- :mod:`~dip.data.registry`: the registry of benchmark files and the data root
  (:class:`Entry`, :func:`lookup`, :func:`resolve`, :func:`image_id`, …);
- :mod:`~dip.data.masks`: the registry's derived masks;
- :mod:`~dip.data.specs`: reading any image spec (:func:`read`, :func:`bundled`);
- :mod:`~dip.data.folders`: the images of a folder and the masks that pair with them;
- :mod:`~dip.data.fetch`: ``dip-fetch``, hash-checked downloads (pooch).

May import only the shared modules (:mod:`dip.errors`, :mod:`dip.atomic`). This module
re-exports the public names; to change a module's behaviour (e.g. in a test), patch the
module that holds the name.
"""

from __future__ import annotations

from dip.atomic import atomic_target
from dip.data.crops import center_crop, crop_to_multiple
from dip.data.images import EXAMPLE_NAME, load_image, save_image
from dip.data.registry import (
    BUNDLED,
    ENV_ROOT,
    REGISTRY_CSV,
    Entry,
    data_root,
    datasets,
    entries,
    entries_in,
    file_sha256,
    image_id,
    list_images,
    lookup,
    resolve,
)
from dip.data.specs import bundled, read

__all__ = [
    "Entry", "BUNDLED", "load_image", "save_image", "crop_to_multiple", "center_crop",
    "entries", "lookup", "entries_in", "datasets", "data_root", "resolve", "list_images",
    "file_sha256", "bundled", "read", "atomic_target", "image_id",
    "REGISTRY_CSV", "ENV_ROOT", "EXAMPLE_NAME",
]
