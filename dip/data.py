"""Test images: reading, writing, cropping, and the registry of known files.

Images are float32 tensors of shape C×H×W with values in [0, 1] (C = 1 for grey,
3 for colour), as in the official code (``pil_to_np``: 8-bit values divided by 255).

The benchmark images are never part of the project. ``registry.csv`` (shipped with
the package) lists each file by registry name ``DATASET/FILE`` (for example
``set5/baby.png`` or ``paper/inpainting50/barbara_GT.png``) with its source URL and
SHA-256; the files themselves live under a data root (see :func:`data_root`) laid out
as ``ROOT/DATASET/FILE`` and are downloaded there by ``dip-fetch``. Derived files (masks
made from downloaded images, see :class:`Entry`) are written there by ``dip-fetch`` too.

One entry point reads any image spec: :func:`read`.
"""

from __future__ import annotations

import csv
import difflib
import functools
import hashlib
import os
import posixpath
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dip import DipError, DipNote
from dip.atomic import atomic_target

__all__ = [
    "Entry", "BUNDLED", "load_image", "save_image", "crop_to_multiple", "center_crop",
    "registry", "lookup", "entries_in", "datasets", "data_root", "resolve", "list_images",
    "file_sha256", "bundled", "read", "atomic_target", "image_id",
]

REGISTRY_CSV = Path(__file__).with_name("registry.csv")
ENV_ROOT = "DIP_DATA_ROOT"
EXAMPLE_NAME = "set5/baby.png"

# scikit-image images that ship inside the package (no download needed).
BUNDLED = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel",
           "moon", "page", "rocket", "text")

_READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


# --------------------------------------------------------------------------- reading


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image file as a float tensor.

    Grey images (modes 1, L) keep one channel. Other modes are converted with a
    one-line ``UserWarning``: alpha (RGBA, LA, PA) is dropped, palette images (P)
    become RGB (or grey when every palette colour is grey), 16-bit images (I;16, I,
    and 16-bit RGB/RGBA, which Pillow alone would cut to 8 bits) are divided by 65535,
    and CMYK/YCbCr/LAB/HSV become RGB (a :class:`~dip.DipNote`, a ``UserWarning``).
    EXIF orientation is ignored, as in the official code.

    Parameters
    ----------
    path : str or path-like
        Image file (any format Pillow reads).

    Returns
    -------
    torch.Tensor
        float32, shape C×H×W with C in {1, 3}, values in [0, 1].

    Raises
    ------
    DipError
        If the file is missing, a directory, empty, or not a complete readable image.
    """
    path = Path(path)
    _check_file(path)
    try:
        with Image.open(path) as img:
            wide = _colour16_rawmode(img)
            img.load()
            array, note = _to_array(img) if wide is None else _colour16(path, img, wide)
    except _READ_ERRORS as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DipError(f"cannot read image {path}: {reason}; "
                       "check that it is a complete image file (re-download or re-save it)"
                       ) from None
    if note:
        warnings.warn(f"{path}: {note}", DipNote, stacklevel=2)
    return _to_tensor(array)


def _check_file(path: Path) -> None:
    """Raise DipError unless ``path`` is a non-empty regular file."""
    if not path.exists():
        raise DipError(f"no such file: {path}; check the path or use a registry name "
                       f"such as {EXAMPLE_NAME}")
    if path.is_dir():
        raise DipError(f"{path} is a directory, not an image; give the path of an image file")
    if path.stat().st_size == 0:
        raise DipError(f"{path} is empty (0 bytes); re-download or re-create it")


def _to_array(img: Image.Image) -> tuple[np.ndarray, str | None]:
    """Pixels as an H×W or H×W×3 array (uint8, or float in [0, 1] if 16-bit) and a note.

    The note (None if nothing was changed) says how the mode was converted.
    """
    mode = img.mode
    if mode in ("L", "RGB"):
        return np.asarray(img), None
    if mode == "1":
        return np.asarray(img.convert("L")), None
    if mode in ("LA", "RGBA", "PA") or (mode == "P" and "transparency" in img.info):
        return _drop_alpha(img), f"{mode} image: alpha channel dropped (not composited)"
    if mode == "P":
        array = _grey_if_equal(np.asarray(img.convert("RGB")))
        return array, f"palette (P) image converted to {'grey' if array.ndim == 2 else 'RGB'}"
    if mode.startswith("I"):
        values = np.asarray(img).astype(np.float64) / 65535.0
        return np.clip(values, 0.0, 1.0), f"{mode} image: 16-bit values divided by 65535"
    if mode == "F":
        raise ValueError("floating-point (mode F) images are not supported; save it as 8-bit")
    return np.asarray(img.convert("RGB")), f"{mode} image converted to RGB"


def _colour16_rawmode(img: Image.Image) -> str | None:
    """Pillow's raw mode (e.g. ``'RGB;16B'``) of a 16-bit-per-channel RGB/RGBA image, else None.

    Pillow has no 16-bit colour mode: it reads such a file (a 48-bit PNG, a 16-bit TIFF)
    as 8-bit RGB(A), keeping each sample's high byte. Call before ``load()`` (which
    empties ``img.tile``).
    """
    if img.mode not in ("RGB", "RGBA") or not img.tile:
        return None
    args = img.tile[0].args if hasattr(img.tile[0], "args") else img.tile[0][3]
    raw = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else None
    return raw if isinstance(raw, str) and ";16" in raw else None


def _colour16(path: Path, img: Image.Image, raw: str) -> tuple[np.ndarray, str]:
    """Full-precision pixels (float in [0, 1]) of a loaded 16-bit RGB(A) image, and a note.

    Pillow's 8-bit read holds the high bytes; the low bytes are read by decoding the file
    again with the raw mode of the other byte order (Pillow's own decoder, so PNG filters
    and interlacing are handled as usual). Where that is not possible the 8-bit read is
    kept and the note says the image was reduced to 8 bits per channel.
    """
    high = np.asarray(img)[..., :3]
    alpha = " alpha channel dropped (not composited);" if img.mode == "RGBA" else ""
    low = _low_bytes(path, raw)
    if low is None or low.shape[:2] != high.shape[:2]:
        return high, (f"16-bit {img.mode} image:{alpha} reduced to 8 bits per channel "
                      "(its low bytes could not be read)")
    values = (high.astype(np.float64) * 256 + low[..., :3]) / 65535.0
    return values, f"16-bit {img.mode} image:{alpha} 16-bit values divided by 65535"


def _low_bytes(path: Path, raw: str) -> np.ndarray | None:
    """The low byte of each sample of a 16-bit RGB(A) file read as ``raw`` (None if unreadable).

    Pillow's ``…;16B`` unpacker keeps byte 0 of each big-endian sample and ``…;16L`` byte
    1 of each little-endian one, i.e. both the high byte; the other order's unpacker thus
    reads the low byte.
    """
    match = re.fullmatch(r"(RGBA?);16([BLN])", raw)
    if match is None:
        return None
    order = match.group(2) if match.group(2) != "N" else sys.byteorder[0].upper()
    other = f"{match.group(1)};16{'L' if order == 'B' else 'B'}"

    def swapped(tile):
        args = tile.args if hasattr(tile, "args") else tile[3]
        if args != raw and not (isinstance(args, tuple) and args and args[0] == raw):
            raise ValueError(f"mixed raw modes {args!r}")
        args = other if isinstance(args, str) else (other, *args[1:])
        return tile._replace(args=args) if hasattr(tile, "_replace") else (*tile[:3], args)

    try:
        with Image.open(path) as img:
            img.tile = [swapped(tile) for tile in img.tile]
            img.load()
            return np.asarray(img)
    except _READ_ERRORS:
        return None


def _drop_alpha(img: Image.Image) -> np.ndarray:
    """Colour (or grey, for LA and grey palettes) channels of an image with alpha."""
    if img.mode == "LA":
        return np.asarray(img)[..., 0]
    rgb = np.asarray(img.convert("RGBA"))[..., :3]
    return rgb if img.mode == "RGBA" else _grey_if_equal(rgb)


def _grey_if_equal(rgb: np.ndarray) -> np.ndarray:
    """One channel if R = G = B everywhere, else ``rgb`` unchanged."""
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    return np.ascontiguousarray(rgb[..., 0]) if grey else rgb


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """H×W(×C) uint8/bool (scaled by 1/255) or float [0, 1] array → float32 C×H×W tensor."""
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = np.asarray(array, dtype=np.float32)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


# --------------------------------------------------------------------------- writing


def save_image(path: str | os.PathLike, image: torch.Tensor | np.ndarray) -> Path:
    """Write an image as an 8-bit PNG, atomically (temporary file + rename).

    Parameters
    ----------
    path : str or path-like
        Destination ``*.png``; missing parent folders are created.
    image : torch.Tensor or numpy.ndarray
        Values in [0, 1] (clipped, then scaled by 255 and rounded). A tensor is
        C×H×W or 1×C×H×W; an array is H×W or H×W×C. C is 1, 3 or 4.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise DipError(f"save_image writes PNG files; name the file {path.stem}.png, "
                       f"not {path.name}")
    pixels = _to_uint8(_channels_last(image))
    with atomic_target(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return path


def _channels_last(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """H×W or H×W×C float array from a C×H×W / 1×C×H×W tensor or an H×W(×C) array."""
    if isinstance(image, torch.Tensor):
        array = image.detach().cpu().float().numpy()
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        if array.ndim == 3:
            array = array.transpose(1, 2, 0)
    else:
        array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise DipError(f"cannot save an image of shape {tuple(image.shape)}; "
                       "give a C×H×W tensor or an H×W(×C) array with C in 1, 3, 4")
    return array


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8 (clip, ×255, round half to even)."""
    if not np.isfinite(array).all():
        raise DipError("cannot save an image with NaN or infinite values; "
                       "check the computation that produced it")
    return np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)


# --------------------------------------------------------------------------- cropping


def crop_to_multiple(image: torch.Tensor, d: int) -> torch.Tensor:
    """Centre-crop so that height and width are multiples of ``d``.

    Same box as the official ``crop_image``: new sizes H' = H − H mod d and
    W' = W − W mod d, top-left corner (floor((H − H')/2), floor((W − W')/2)).

    Parameters
    ----------
    image : torch.Tensor
        Shape ...×H×W (e.g. C×H×W or 1×C×H×W); the last two axes are cropped.
    d : int
        Divisor in pixels (≥ 1), typically 2^(number of downsampling stages).

    Returns
    -------
    torch.Tensor
        A view of ``image`` of shape ...×H'×W'.
    """
    if int(d) != d or d < 1:
        raise DipError(f"crop multiple must be a positive integer, got {d!r}")
    h, w = image.shape[-2:]
    if h < d or w < d:
        raise DipError(f"image {h}×{w} is smaller than the network's minimum size {d}×{d}; "
                       "use a larger image or a shallower net")
    return _crop(image, h - h % d, w - w % d)


def center_crop(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Centre-crop to ``size`` (same corner convention as :func:`crop_to_multiple`).

    Parameters
    ----------
    image : torch.Tensor
        Shape ...×H×W; the last two axes are cropped.
    size : int or (int, int)
        Output side in pixels, or (height, width).

    Returns
    -------
    torch.Tensor
        A view of ``image`` of shape ...×h×w.
    """
    new_h, new_w = (size, size) if isinstance(size, int) else size
    h, w = image.shape[-2:]
    if new_h > h or new_w > w or new_h < 1 or new_w < 1:
        raise DipError(f"cannot crop image {h}×{w} to {new_h}×{new_w}; "
                       "use a crop size between 1 and the image size")
    return _crop(image, new_h, new_w)


def _crop(image: torch.Tensor, new_h: int, new_w: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    top, left = (h - new_h) // 2, (w - new_w) // 2
    return image[..., top:top + new_h, left:left + new_w]


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
      known with probability 1/2, drawn with a fixed seed (:func:`dip.fetch.half_mask`).

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


def registry() -> list[Entry]:
    """All registered files, in registry order."""
    return list(_load_registry())


@functools.lru_cache(maxsize=1)
def _load_registry() -> tuple[Entry, ...]:
    with open(REGISTRY_CSV, newline="") as f:
        return tuple(_entry(row) for row in csv.DictReader(f))


# Derivation rules of the registry's ``source_path`` (see :class:`Entry`).
_NONZERO = re.compile(r"(\S+) != 0")
_HALF = re.compile(r"(\S+) != 0 or half\((\S+) == 0\)")


def _entry(row: dict[str, str]) -> Entry:
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
    return {entry.name: entry for entry in _load_registry()}


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
        made = [n for n in (entry.derived_from, entry.gt_from) if n]
        how = f" (it makes the file from {' and '.join(made)})" if made else ""
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


# --------------------------------------------------------------------------- specs


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
    return _to_tensor(array)


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
    if isinstance(spec, str) and spec in _by_name():
        entry = lookup(spec)
        if entry.derived_from and not (data_root(root) / entry.dataset / entry.file).exists():
            from dip.fetch import derived_image  # not fetched: made from its sources

            return _to_tensor(derived_image(entry, root))
        return load_image(resolve(spec, root))
    if isinstance(spec, str) and not Path(spec).exists() and _looks_registered(spec):
        lookup(spec)  # raises with close matches
    return load_image(spec)


def image_id(spec: str | os.PathLike) -> str:
    """Short name of an image spec, as the paper's tables name images.

    Drops folders, the extension and the suffixes ``_GT``, ``_noisy``, ``_mask``,
    ``_mask_half`` and ``_masked``: ``'paper/inpainting50/Cameraman256_GT.png'`` →
    ``'Cameraman256'``, ``'skimage:coffee'`` → ``'coffee'``.
    """
    stem = Path(str(spec).removeprefix("skimage:")).stem
    return re.sub(r"_(GT|noisy|masked|mask|mask_half)$", "", stem)


def _looks_registered(spec: str) -> bool:
    top = spec.split("/", 1)[0]
    return "/" in spec and any(d.split("/", 1)[0] == top for d in datasets())
