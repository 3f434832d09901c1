"""Centre crops of image tensors, with the official code's box convention.

The nets need sides that are multiples of 2^(downsampling stages) (:func:`crop_to_multiple`);
experiments may also crop to a fixed size (:func:`center_crop`). Both return views and
place the box as the official ``crop_image`` does.
"""

from __future__ import annotations

import torch

from dip.errors import DipError

__all__ = ["crop_to_multiple", "center_crop"]


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
    """View of the centred ``new_h``×``new_w`` box (top-left corner rounded down)."""
    h, w = image.shape[-2:]
    top, left = (h - new_h) // 2, (w - new_w) // 2
    return image[..., top:top + new_h, left:left + new_w]
