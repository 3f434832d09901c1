"""The registry of benchmark images, the data root, and image specs.

The benchmark images are never part of the project. ``registry.csv`` (shipped with
the package) lists each file by registry name ``DATASET/FILE`` (for example
``set5/baby.png`` or ``paper/inpainting50/barbara_GT.png``) with its source URL and
SHA-256; the files themselves live under a data root (see :func:`data_root`) laid out
as ``ROOT/DATASET/FILE`` and are downloaded there by ``dip-fetch`` (:mod:`dip.data.fetch`).
Derived files (masks made from downloaded images, see :class:`Entry`) are written there
by ``dip-fetch`` too.

This module owns the registry (:class:`Entry`, :func:`lookup`, :func:`datasets`,
:func:`entries_in`, :func:`list_images`), finding and verifying files under the data root
(:func:`data_root`, :func:`resolve`, :func:`file_sha256`); :mod:`dip.data.specs` reads
any image spec (bundled scikit-image images, registry names, paths).
"""

from __future__ import annotations

import csv
import difflib
import functools
import hashlib
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from dip.errors import DipError

__all__ = [
    "Entry", "BUNDLED", "REGISTRY_CSV", "ENV_ROOT", "entries", "clear_cache", "lookup",
    "entries_in", "datasets", "data_root", "resolve", "list_images", "file_sha256",
    "image_id", "is_registered",
]

REGISTRY_CSV = Path(__file__).with_name("registry.csv")
ENV_ROOT = "DIP_DATA_ROOT"

# scikit-image images that ship inside the package (no download needed).
BUNDLED = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel",
           "moon", "page", "rocket", "text")


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Entry:
    """One registered image file.

    ``derived_from`` is the registry name of the source of a derived file, or None for a
    downloaded file. A derived file is a mask (255 = known pixel, 0 = missing) made by
    ``dip-fetch`` with one of two rules, written in the registry's ``source_path``:

    - ``SOURCE != 0``: 255 where the source pixel is non-zero (any channel), else 0.
    - ``SOURCE != 0 or half(GT == 0)``: as above, and a pixel where the source is 0 and
      the ground truth ``gt_from`` is 0 too (its value cannot tell known from missing) is
      known with probability 1/2, drawn with a fixed seed (:func:`dip.data.masks.half_mask`).

    Source names are relative to the entry's dataset (``../`` climbs one level). Sizes
    are in pixels, ``bytes`` is the file size.
    """

    dataset: str
    file: str
    sha256: str
    url: str
    source_repo: str
    source_path: str
    source_commit: str
    width: int
    height: int
    mode: str
    bytes: int
    derived_from: str | None = None
    gt_from: str | None = None

    @property
    def name(self) -> str:
        """Registry name ``DATASET/FILE``."""
        return f"{self.dataset}/{self.file}"

    @property
    def sources(self) -> list[str]:
        """Registry names this entry is made from ([] for a downloaded file)."""
        return [n for n in (self.derived_from, self.gt_from) if n]


def entries() -> list[Entry]:
    """All registered files, in registry order."""
    return list(_load_registry())


@functools.lru_cache(maxsize=1)
def _load_registry() -> tuple[Entry, ...]:
    """Entries of :data:`REGISTRY_CSV`, read once (``cache_clear()`` after changing it)."""
    with open(REGISTRY_CSV, newline="") as f:
        return tuple(_entry(row) for row in csv.DictReader(f))


# Derivation rules of the registry's ``source_path`` (see :class:`Entry`).
_NONZERO = re.compile(r"(\S+) != 0")
_HALF = re.compile(r"(\S+) != 0 or half\((\S+) == 0\)")


def _entry(row: dict[str, str]) -> Entry:
    """Entry of a registry CSV row (a derived row's sources parsed from its rule)."""
    derived_from = gt_from = None
    if row["source_repo"] == "derived":
        rule = row["source_path"]
        match = _NONZERO.fullmatch(rule) or _HALF.fullmatch(rule)
        if match is None:
            raise DipError(f"registry row {row['dataset']}/{row['file']} has an unknown "
                           f"derivation {rule!r}; update dip")
        derived_from = _relative(row["dataset"], match.group(1))
        if match.re is _HALF:
            gt_from = _relative(row["dataset"], match.group(2))
    return Entry(
        dataset=row["dataset"], file=row["file"], sha256=row["sha256"], url=row["url"],
        source_repo=row["source_repo"], source_path=row["source_path"],
        source_commit=row["source_commit"], width=int(row["width"]),
        height=int(row["height"]), mode=row["mode"], bytes=int(row["bytes"]),
        derived_from=derived_from, gt_from=gt_from)


def _relative(dataset: str, file: str) -> str:
    """Registry name of ``file`` (relative to ``dataset``; ``../`` climbs one level)."""
    return posixpath.normpath(f"{dataset}/{file}")


@functools.lru_cache(maxsize=1)
def _by_name() -> dict[str, Entry]:
    """Entries by registry name (``cache_clear()`` with :func:`_load_registry`)."""
    return {entry.name: entry for entry in _load_registry()}


def clear_cache() -> None:
    """Read :data:`REGISTRY_CSV` again at the next look-up (after changing or replacing it)."""
    _load_registry.cache_clear()
    _by_name.cache_clear()


def is_registered(name: str) -> bool:
    """Whether ``name`` is a registry name (``DATASET/FILE``)."""
    return name in _by_name()


def lookup(name: str) -> Entry:
    """Registry entry of ``name`` (``DATASET/FILE``); DipError with suggestions if unknown."""
    entry = _by_name().get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(_by_name()), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise DipError(f"unknown image {name!r}; {hint}run `dip-fetch --list` to see datasets")
    return entry


def datasets() -> list[str]:
    """Dataset names (registry folders such as ``set5`` or ``paper/inpainting50``), sorted."""
    return sorted({entry.dataset for entry in _load_registry()})


def entries_in(dataset: str, nested: bool = True) -> list[Entry]:
    """Entries of a dataset and, if ``nested``, of every dataset under it as a prefix.

    For example ``'paper'`` gives all ``paper/...`` datasets, and ``'paper/denoising'``
    gives ``paper/denoising`` plus ``paper/denoising/sigma25`` and ``.../sigma50``
    (only the first with ``nested=False``). Raises DipError (with close dataset names)
    if nothing matches.
    """
    dataset = dataset.strip("/")
    found = [e for e in _load_registry() if e.dataset == dataset
             or (nested and e.dataset.startswith(dataset + "/"))]
    if not found:
        close = difflib.get_close_matches(dataset, datasets(), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise DipError(f"unknown dataset {dataset!r}; {hint}run `dip-fetch --list` "
                       "to see datasets")
    return found


def list_images(dataset: str, root: str | os.PathLike | None = None) -> list[str]:
    """Registry names of a dataset (or of all datasets under a prefix), sorted.

    Parameters
    ----------
    dataset : str
        Dataset name such as ``'paper/inpainting50'`` (that dataset only, not the ones
        nested under it), or a prefix such as ``'paper'`` (every dataset under it).
    root : str or path-like, optional
        If given, keep only names whose file exists under this data root (not verified).

    Returns
    -------
    list of str
        Names ``DATASET/FILE``.
    """
    entries = entries_in(dataset, nested=dataset.strip("/") not in datasets())
    if root is not None:
        entries = [e for e in entries if (Path(root) / e.dataset / e.file).is_file()]
    return sorted(e.name for e in entries)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Folder that holds the registry files as ``ROOT/DATASET/FILE``.

    The first of: ``root`` if given, the environment variable ``DIP_DATA_ROOT``,
    ``./data`` under the current working directory. The folder may not exist yet.
    """
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_ROOT):
        return Path(os.environ[ENV_ROOT]).expanduser()
    return Path.cwd() / "data"


def resolve(name: str, root: str | os.PathLike | None = None, verify: bool = True) -> Path:
    """Path of a registry file under the data root, checked against its SHA-256.

    Parameters
    ----------
    name : str
        Registry name ``DATASET/FILE``, e.g. ``'dip_official/inpainting/kate.png'``.
    root : str or path-like, optional
        Data root; see :func:`data_root`.
    verify : bool
        Compare the file's SHA-256 with the registry (computed once per process for a
        given path, modification time and size).

    Returns
    -------
    pathlib.Path
        ``ROOT/DATASET/FILE``.
    """
    entry = lookup(name)
    root = data_root(root)
    path = root / entry.dataset / entry.file
    if not path.is_file():
        how = f" (it makes the file from {' and '.join(entry.sources)})" if entry.sources else ""
        raise DipError(f"{name} not found under {root}; run `dip-fetch {entry.dataset}`"
                       f"{how} or set {ENV_ROOT}")
    if verify and file_sha256(path) != entry.sha256:
        raise DipError(f"{path}: sha256 mismatch (corrupted or modified file); "
                       f"delete it and run `dip-fetch {entry.dataset}`")
    return path


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, cached per (absolute path, mtime in ns, size)."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def image_id(spec: str | os.PathLike) -> str:
    """Short name of an image spec, as the paper's tables name images.

    Drops folders, the extension and the suffixes ``_GT``, ``_noisy``, ``_mask``,
    ``_mask_half`` and ``_masked``: ``'paper/inpainting50/Cameraman256_GT.png'`` →
    ``'Cameraman256'``, ``'skimage:coffee'`` → ``'coffee'``.
    """
    stem = Path(str(spec).removeprefix("skimage:")).stem
    return re.sub(r"_(GT|noisy|masked|mask|mask_half)$", "", stem)
