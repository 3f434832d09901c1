"""Folders of images: which files of a folder are images, and which mask of a folder
pairs with an image (the same file stem, or the stem with ``_mask``)."""

from __future__ import annotations

from pathlib import Path

from dip.errors import DipError

__all__ = ["IMAGE_SUFFIXES", "images_in", "is_folder", "paired_mask"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""The files of a folder that are restored (case-insensitive)."""


def is_folder(spec) -> bool:
    """Whether an ``image=`` / ``mask=`` value names a folder."""
    return spec is not None and str(spec).strip() != "" and Path(str(spec)).is_dir()


def images_in(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name; DipError when none."""
    found = sorted(p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith("."))
    if not found:
        raise DipError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); give a "
                       "folder of images or one image file")
    return found


def paired_mask(mask_folder: str | Path, image: str | Path) -> Path:
    """The mask of ``image`` in ``mask_folder``: the image file of the same stem, or of the
    stem with ``_mask`` added; DipError naming what was looked for when there is none."""
    stem = Path(str(image)).stem
    for candidate in images_in(mask_folder):
        if candidate.stem in (stem, f"{stem}_mask"):
            return candidate
    raise DipError(f"no mask for {Path(str(image)).name} in {mask_folder} (looked for "
                   f"{stem}.* and {stem}_mask.*); add it, or give mask=FILE")
