"""Image specs: the one entry point that reads any image a run names (:func:`read`):
a bundled scikit-image image (``skimage:NAME``, :func:`bundled`), a registry name under
the data root (:mod:`dip.data.registry`; a derived mask that is not there is made in
memory: :mod:`dip.data.masks`) or a file path (:func:`dip.data.images.load_image`)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import torch

from dip.data.images import load_image, to_tensor
from dip.data.masks import derived_image
from dip.data.registry import BUNDLED, data_root, datasets, is_registered, lookup, resolve
from dip.errors import DipError

__all__ = ["bundled", "read"]


def bundled(name: str) -> torch.Tensor:
    """A scikit-image sample image that ships with the package (no download).

    Parameters
    ----------
    name : str
        One of :data:`BUNDLED`, e.g. ``'astronaut'`` (512×512 RGB) or ``'camera'``
        (512×512 grey).

    Returns
    -------
    torch.Tensor
        float32, C×H×W, values in [0, 1].
    """
    if name not in BUNDLED:
        close = difflib.get_close_matches(name, BUNDLED, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise DipError(f"unknown bundled image {name!r}; {hint}choose one of "
                       f"{', '.join(BUNDLED)}")
    import skimage.data

    try:
        array = getattr(skimage.data, name)()
    except Exception as err:  # skimage may need an optional download for some images
        raise DipError(f"scikit-image cannot load {name!r} offline ({type(err).__name__}); "
                       "use another bundled image or a registry image") from None
    return to_tensor(array)


def read(spec: str | os.PathLike, root: str | os.PathLike | None = None) -> torch.Tensor:
    """Read an image from a spec string: bundled, registry or file.

    Parameters
    ----------
    spec : str or path-like
        ``'skimage:NAME'`` → :func:`bundled` (e.g. ``'skimage:astronaut'``);
        a registry name ``'DATASET/FILE'`` (e.g. ``'set5/baby.png'``) → the verified
        file under the data root (a derived file that is not there is made in memory from
        its verified sources, as ``dip-fetch`` would make it); anything else → a file
        path for :func:`load_image`.
        A missing path that starts with a dataset name is reported as an unknown
        registry name, with suggestions.
    root : str or path-like, optional
        Data root for registry names; see :func:`data_root`.

    Returns
    -------
    torch.Tensor
        float32, C×H×W, values in [0, 1].
    """
    if isinstance(spec, str) and spec.startswith("skimage:"):
        return bundled(spec.removeprefix("skimage:"))
    if isinstance(spec, str) and is_registered(spec):
        entry = lookup(spec)
        if entry.derived_from and not (data_root(root) / entry.dataset / entry.file).exists():
            return to_tensor(derived_image(entry, root))
        return load_image(resolve(spec, root))
    if isinstance(spec, str) and not Path(spec).exists() and _looks_registered(spec):
        lookup(spec)  # raises with close matches
    return load_image(spec)


def _looks_registered(spec: str) -> bool:
    """Whether ``spec`` starts with a registry dataset's top folder (``set5/…``)."""
    top = spec.split("/", 1)[0]
    return "/" in spec and any(d.split("/", 1)[0] == top for d in datasets())
