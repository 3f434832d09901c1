"""Derived registry files: the masks made from downloaded images.

Some registry entries (:class:`dip.data.registry.Entry` with ``derived_from``) are not
downloaded but made from other registry files, with the rule their registry row names:
:func:`derive_mask` (known where the source is non-zero) or :func:`half_mask` (the
paper-era inpainting masks, where pixels that are 0 in both the masked image and its
ground truth are known with probability 1/2). ``dip-fetch`` writes them into the data
root; :func:`dip.data.specs.read` makes one in memory when it is not there.
"""

from __future__ import annotations

import os
import zlib

import numpy as np
from PIL import Image

from dip.data.images import size_wh
from dip.data.registry import Entry, image_id, resolve
from dip.errors import DipError

__all__ = ["derived_image", "derive_mask", "half_mask", "HALF_SEED"]


def derived_image(entry: Entry, root: str | os.PathLike | None = None) -> np.ndarray:
    """The mask of a derived registry ``entry``, made from its verified sources under
    ``root``: :func:`derive_mask` of its source, or :func:`half_mask` of its source and
    ground truth (the rule its registry row names)."""
    try:
        sources = [resolve(name, root) for name in entry.sources]
    except DipError as err:
        raise DipError(f"cannot make {entry.name}: {err}") from None
    if entry.gt_from is None:
        return derive_mask(sources[0])
    return half_mask(sources[0], sources[1], image_id(entry.derived_from))


def derive_mask(source: str | os.PathLike) -> np.ndarray:
    """uint8 H×W mask of an image file: 255 where the pixel is non-zero (any channel), else 0."""
    with Image.open(source) as img:
        pixels = np.asarray(img)
    nonzero = pixels != 0
    if nonzero.ndim == 3:
        nonzero = nonzero.any(axis=2)
    return np.where(nonzero, 255, 0).astype(np.uint8)


HALF_SEED = 2018
"""Seed of :func:`half_mask` (with a key per image)."""


def half_mask(masked: str | os.PathLike, gt: str | os.PathLike, image: str) -> np.ndarray:
    """uint8 H×W mask of a released masked image: 255 = known, 0 = missing.

    A pixel is known where ``masked`` is non-zero (any channel), missing where it is 0
    and ``gt`` is not. Where both are 0 the released image cannot tell: such a pixel is
    known with probability 1/2, independently, drawn as follows (the same on every
    platform and NumPy version, since a bit generator's raw stream is fixed):
    ``numpy.random.default_rng([HALF_SEED, zlib.crc32(image.encode())])`` (PCG64 seeded
    through SeedSequence) gives one raw 64-bit word per pixel, in row-major order
    (``bit_generator.random_raw(H * W)``); the pixel is known when the word's top bit
    is 1. Every pixel gets a word, so a pixel's draw does not depend on the others.

    Parameters
    ----------
    masked, gt : str or path-like
        The released masked image and its ground truth (same size).
    image : str
        The image's name, the key of its draws (e.g. ``'peppers256'``, its
        :func:`~dip.data.registry.image_id`).

    Returns
    -------
    numpy.ndarray
        uint8 H×W, values 0 and 255.
    """
    known = derive_mask(masked) != 0
    dark = derive_mask(gt) == 0
    if dark.shape != known.shape:
        raise DipError(f"{gt} is {size_wh(dark)} but {masked} is {size_wh(known)}; give the "
                       "ground truth of the image")
    rng = np.random.default_rng([HALF_SEED, zlib.crc32(image.encode())])
    heads = (rng.bit_generator.random_raw(known.size) >> np.uint64(63)).astype(bool)
    known |= ~known & dark & heads.reshape(known.shape)
    return np.where(known, 255, 0).astype(np.uint8)
