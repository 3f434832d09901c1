"""Image files and pixels: reading, writing and converting images.

Images are float32 tensors of shape C×H×W with values in [0, 1] (C = 1 for grey,
3 for colour), as in the official code (``pil_to_np``: 8-bit values divided by 255).
This module owns the conversions between files, arrays and such tensors: Pillow's
modes (alpha, palettes, bilevel, CMYK, …), 16-bit images (:func:`load_image` reads
16-bit colour at full precision, which Pillow alone cuts to 8 bits) and PNG output
(:func:`save_image`, 8-bit, or 16-bit for the outputs of a 16-bit input:
:func:`bit_depth`; written atomically). Cropping lives in :mod:`dip.data.crops`,
the registry of benchmark files in :mod:`dip.data.registry`.
"""

from __future__ import annotations

import os
import re
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dip.atomic import atomic_target
from dip.errors import DipError, DipNote

__all__ = ["load_image", "save_image", "to_tensor", "bit_depth", "size_wh", "EXAMPLE_NAME"]

EXAMPLE_NAME = "set5/baby.png"
"""A registry name that error messages give as an example."""

_READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def size_wh(image) -> str:
    """The size of an image (a tensor or array whose last two axes are H, W) as messages
    about image files state it: width first, as Pillow and image editors give it, and
    labelled, e.g. ``640×480 (W×H)``."""
    return f"{image.shape[-1]}×{image.shape[-2]} (W×H)"


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
    return to_tensor(array)


def bit_depth(path: str | os.PathLike) -> int:
    """16 when ``path`` is an image file of 16-bit samples (grey ``I;16``, 48/64-bit
    colour), else 8 (also when it is no file: a registry name, ``skimage:NAME``).

    A run's record saves its images at its input's depth (:func:`save_image`), so that a
    16-bit photo is not given back cut to 8 bits.
    """
    path = Path(str(path))
    if not path.is_file():
        return 8
    try:
        with Image.open(path) as img:
            wide = img.mode.startswith("I") or _colour16_rawmode(img) is not None
    except _READ_ERRORS:
        return 8
    return 16 if wide else 8


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


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """An image array as the harness's image tensor.

    Parameters
    ----------
    array : numpy.ndarray
        H×W or H×W×C pixels: uint8 (divided by 255) or floats in [0, 1].

    Returns
    -------
    torch.Tensor
        float32, C×H×W.
    """
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = np.asarray(array, dtype=np.float32)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


# --------------------------------------------------------------------------- writing


def save_image(path: str | os.PathLike, image: torch.Tensor | np.ndarray,
               bits: int = 8) -> Path:
    """Write an image as a PNG of 8 or 16 bits per sample, atomically (temporary file +
    rename).

    Parameters
    ----------
    path : str or path-like
        Destination ``*.png``; missing parent folders are created.
    image : torch.Tensor or numpy.ndarray
        Values in [0, 1] (clipped, then scaled by 255, or 65535, and rounded). A tensor
        is C×H×W or 1×C×H×W; an array is H×W or H×W×C. C is 1, 3 or 4.
    bits : {8, 16}
        Bits per sample: 16 keeps a 16-bit input's precision (:func:`bit_depth`).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise DipError(f"save_image writes PNG files; name the file {path.stem}.png, "
                       f"not {path.name}")
    if bits not in (8, 16):
        raise ValueError(f"bits={bits}: PNG samples here are 8 or 16 bits")
    pixels = _quantised(_channels_last(image), bits)
    with atomic_target(path) as tmp:
        if bits == 8:
            Image.fromarray(pixels).save(tmp, format="PNG")
        else:
            tmp.write_bytes(_png16(pixels))
    return path


def _png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG of uint16 H×W or H×W×C (C = 3, 4) pixels (Pillow writes 16-bit grey
    only): big-endian samples, filter type 0 per row, one zlib stream."""
    h, w = pixels.shape[:2]
    colour = {2: 0, 3: 2, 4: 6}[pixels.ndim if pixels.ndim == 2 else pixels.shape[2]]
    rows = pixels.astype(">u2").reshape(h, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


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


def _quantised(array: np.ndarray, bits: int = 8) -> np.ndarray:
    """[0, 1] floats → uint8 or uint16 (clip, ×255 or ×65535, round half to even)."""
    if not np.isfinite(array).all():
        raise DipError("cannot save an image with NaN or infinite values; "
                       "check the computation that produced it")
    top, dtype = (255.0, np.uint8) if bits == 8 else (65535.0, np.uint16)
    return np.round(np.clip(array, 0.0, 1.0) * top).astype(dtype)
