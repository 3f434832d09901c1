"""Shared fixtures: the shared data root and small synthetic images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared test-image root ($DIP_DATA_ROOT, else ../shared/data beside the clone)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    root = Path(os.environ.get("DIP_DATA_ROOT", default))
    if not root.is_dir():
        pytest.skip(f"no shared data root at {root}; set DIP_DATA_ROOT")
    return root


@pytest.fixture
def tmp_image(tmp_path):
    """Factory writing a small random image and returning its path.

    ``tmp_image(name='image.png', mode='RGB', shape=(12, 16), seed=0, array=None)``:
    ``shape`` is (height, width); ``array`` (uint8/uint16, H×W or H×W×C) replaces the
    random pixels, in which case ``mode`` is only used to convert. Modes: 1, L, LA, P,
    RGB, RGBA, CMYK (save as .tif or .jpg), I;16.
    """

    def make(name="image.png", mode="RGB", shape=(12, 16), seed=0, array=None) -> Path:
        rng = np.random.default_rng(seed)
        if array is None:
            array = _random_pixels(rng, mode, shape)
        img = Image.fromarray(array)
        if img.mode != mode:
            img = img.convert(mode)
        path = tmp_path / name
        img.save(path)
        return path

    return make


def _random_pixels(rng: np.random.Generator, mode: str, shape: tuple[int, int]) -> np.ndarray:
    if mode == "I;16":
        return rng.integers(0, 65536, shape, dtype=np.uint16)
    channels = {"RGB": 3, "RGBA": 4, "P": 3, "CMYK": 3}.get(mode)
    size = shape if channels is None else (*shape, channels)
    return rng.integers(0, 256, size, dtype=np.uint8)


@pytest.fixture
def float64():
    """Tensors default to float64 for the test (equivalence checks without rounding)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
