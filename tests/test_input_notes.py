"""What the harness changes on the user's behalf is said (a note), and what it cannot use is
refused with the sizes that matter: 16-bit colour images, cuts to the net's size multiple,
ignored masks, too-small images, and grey masks rounded with ``mask_threshold``."""

from __future__ import annotations

import json
import math
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_cfg, smooth_png, spec_of
from PIL import Image

from dip import DipError, DipNote, data
from dip.data import images
from dip.problems.inpainting import inpainting
from dip.problems.task import settings_of
from dip.runs.inputs import build_problem
from dip.runs.plan import run

SKIP = "(a multiple of 32, the skip net's size multiple)"


def png16(path: Path, pixels: np.ndarray, row_filter: int = 4) -> Path:
    """Write a real 16-bit-per-channel RGB or RGBA PNG (Pillow cannot write one).

    Every row uses ``row_filter`` (0 none, 1 sub, 2 up, 4 Paeth), so that reading it back
    exercises the PNG filters on 6- or 8-byte pixels.
    """
    h, w, c = pixels.shape
    rows = np.frombuffer(pixels.astype(">u2").tobytes(), np.uint8).reshape(h, -1).astype(int)
    bpp = 2 * c
    out = []
    for y in range(h):
        x = rows[y]
        up = rows[y - 1] if y else np.zeros_like(x)
        left = np.concatenate([np.zeros(bpp, int), x[:-bpp]])
        corner = np.concatenate([np.zeros(bpp, int), up[:-bpp]])
        if row_filter == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, corner))
        else:
            pred = {0: 0 * x, 1: left, 2: up}[row_filter]
        out.append(bytes([row_filter]) + ((x - pred) % 256).astype(np.uint8).tobytes())

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    header = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"".join(out))) + chunk(b"IEND", b""))
    return path


def no_notes(fn, *args):
    """``fn(*args)``, asserting that it emits no DipNote."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args)
    notes = [str(w.message) for w in caught if issubclass(w.category, DipNote)]
    assert not notes, notes
    return result


def pixels16(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, shape).astype(np.uint16)


# --------------------------------------------------------------------------- 16-bit colour


@pytest.mark.parametrize("row_filter", [0, 1, 2, 4])
def test_16_bit_rgb_png_is_read_at_full_precision(tmp_path, row_filter):
    values = pixels16((9, 11, 3))
    path = png16(tmp_path / "deep.png", values, row_filter)
    with Image.open(path) as img:  # what Pillow alone gives: 8-bit RGB, the high bytes
        assert img.mode == "RGB" and np.array_equal(np.asarray(img), values >> 8)
    with pytest.warns(DipNote, match=r"deep\.png: 16-bit RGB image: 16-bit values divided by "
                                     r"65535$"):
        image = data.load_image(path)
    assert image.shape == (3, 9, 11) and image.dtype == torch.float32
    assert np.allclose(image.permute(1, 2, 0).numpy(), values / 65535.0, rtol=0, atol=1e-7)


def test_16_bit_rgba_png_drops_alpha_and_keeps_precision(tmp_path):
    values = pixels16((6, 5, 4), seed=1)
    path = png16(tmp_path / "deep_alpha.png", values)
    with pytest.warns(DipNote, match=r"16-bit RGBA image: alpha channel dropped \(not "
                                     r"composited\); 16-bit values divided by 65535"):
        image = data.load_image(path)
    assert np.allclose(image.permute(1, 2, 0).numpy(), values[..., :3] / 65535.0, atol=1e-7)


def test_16_bit_rgb_tiff_is_read_at_full_precision(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    values = pixels16((7, 8, 3), seed=2)
    for compression in (None, "zlib"):
        path = tmp_path / f"deep_{compression}.tif"
        tifffile.imwrite(path, values, photometric="rgb", compression=compression)
        with pytest.warns(DipNote, match="16-bit RGB image: 16-bit values divided by 65535"):
            image = data.load_image(path)
        assert np.allclose(image.permute(1, 2, 0).numpy(), values / 65535.0, atol=1e-7)


def test_16_bit_rgb_without_its_low_bytes_is_reduced_with_a_note(tmp_path, monkeypatch):
    values = pixels16((4, 6, 3), seed=3)
    path = png16(tmp_path / "deep.png", values)
    monkeypatch.setattr(images, "_low_bytes", lambda path, raw: None)
    with pytest.warns(DipNote, match=r"deep\.png: 16-bit RGB image: reduced to 8 bits per "
                                     r"channel"):
        image = data.load_image(path)
    assert torch.equal(image, torch.from_numpy((values >> 8).astype(np.float32) / 255)
                       .permute(2, 0, 1))


def test_8_bit_rgb_has_no_note(tmp_path):
    no_notes(data.load_image, smooth_png(tmp_path / "plain.png"))


def test_a_16_bit_rgb_image_runs_through_build_problem(tmp_path):
    values = (np.asarray(Image.open(smooth_png(tmp_path / "s.png"))).astype(np.uint16) * 257)
    path = png16(tmp_path / "deep.png", values)
    with pytest.warns(DipNote, match="16-bit RGB image: 16-bit values divided by 65535"):
        problem = build_problem(spec_of(make_cfg("profile=smoke", f"image={path}")))
    assert torch.allclose(problem.gt[0], torch.from_numpy(values / 65535.0).float()
                          .permute(2, 0, 1))


# --------------------------------------------------------------------------- cuts to the net


def test_crop_cut_to_the_net_multiple_is_noted(tmp_path):
    image = smooth_png(tmp_path / "img.png", size=(120, 130))
    with pytest.warns(DipNote, match=re.escape(f"crop=100 cut to 96×96 {SKIP}")):
        problem = build_problem(spec_of(make_cfg("profile=smoke", f"image={image}", "crop=100")))
    assert problem.out_shape == (3, 96, 96)
    with pytest.warns(DipNote, match=re.escape(f"crop=[100, 120] cut to 96×96 {SKIP}")):
        build_problem(spec_of(make_cfg("profile=smoke", f"image={image}", "crop=[100,120]")))


def test_whole_image_cut_to_the_net_multiple_is_noted(tmp_path):
    image = smooth_png(tmp_path / "wide.png", size=(70, 100))
    with pytest.warns(DipNote, match=re.escape(f"image {image} is 70×100, cut to 64×96 {SKIP}")):
        problem = build_problem(spec_of(make_cfg("profile=smoke", f"image={image}")))
    assert problem.out_shape == (3, 64, 96)


@pytest.mark.parametrize("extra", [[], ["crop=64"], ["crop=[64,96]"], ["task=inpainting"],
                                   ["task=sr", "factor=2"], ["net=resnet"]])
def test_nothing_cut_nothing_noted(tmp_path, extra):
    image = smooth_png(tmp_path / "img.png", size=(64, 96))
    no_notes(lambda cfg: build_problem(spec_of(cfg)),
             make_cfg("profile=smoke", f"image={image}", *extra))


def test_sr_cuts_name_the_factor(tmp_path):
    image = smooth_png(tmp_path / "img.png", size=(100, 130))
    with pytest.warns(DipNote, match=re.escape("is 100×130, cut to 96×96 (a multiple of 96, "
                                               "for the skip net's size multiple 32 and the "
                                               "SR factor 3)")):
        build_problem(spec_of(make_cfg("profile=smoke", f"image={image}", "task=sr", "factor=3")))
    lr = smooth_png(tmp_path / "lr.png", size=(20, 30))
    with pytest.warns(DipNote, match=re.escape("is 20×30, cut to 16×24 (a multiple of 8, so "
                                               "that ×4 it is a multiple of 32")):
        problem = build_problem(spec_of(make_cfg("profile=smoke", f"image={lr}", "task=sr",
                                         "factor=4", "corrupted=true")))
    assert problem.out_shape == (3, 64, 96)


# --------------------------------------------------------------------------- too small


@pytest.mark.parametrize("size, extra, message", [
    ((40, 48), [], "image {} is 40×48 (cut to 32×32, a multiple of 32), smaller than the "
                   "skip net's minimum size 64×64; use a larger image or a net with fewer "
                   "scales"),
    ((8, 8), [], "image {} is 8×8, smaller than the skip net's minimum size 64×64"),
    ((64, 64), ["crop=50"], "image {} (centre crop 50) is 50×50 (cut to 32×32, a multiple of "
                            "32), smaller than the skip net's minimum size 64×64; use crop=64 "
                            "or larger, or a net with fewer scales"),
    ((100, 100), ["scale=0.5"], "image {} (scaled by 0.5) is 50×50 (cut to 32×32, a multiple "
                                "of 32), smaller than"),
    ((12, 12), ["task=sr", "factor=4", "corrupted=true"],
     "image {} is 12×12 (cut to 8×8, a multiple of 8), 32×32 once upscaled ×4, smaller than "
     "the skip net's minimum size 64×64"),
    ((40, 40), ["task=sr", "factor=2"], "image {} is 40×40 (cut to 32×32, a multiple of 32), "
                                        "smaller than"),
])
def test_too_small_images_give_their_size_and_the_minimum(tmp_path, size, extra, message):
    image = smooth_png(tmp_path / "small.png", size=size)
    with pytest.raises(DipError, match=re.escape(message.format(image))) as info:
        build_problem(spec_of(make_cfg("profile=smoke", f"image={image}", *extra)))
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- masks


@pytest.mark.parametrize("task", [["task=denoising"], ["task=sr", "factor=2"],
                                  ["task=fitting"]])
def test_a_mask_for_another_task_is_one_line_naming_the_task_that_takes_it(tmp_path, task):
    image = smooth_png(tmp_path / "img.png")
    name = task[0].split("=")[1]
    with pytest.raises(DipError, match=re.escape(f"mask= is not a setting of task={name} (its "
                                                 "settings: ")) as err:
        make_cfg("profile=smoke", f"image={image}", "mask=nowhere.png", *task)
    assert str(err.value).endswith("it is one of task=inpainting")
    with pytest.warns(DipNote, match=re.escape(f"mask= is ignored by task={name} (only "
                                               "inpainting uses it)")):  # set by a config
        settings_of(name, {"mask": "nowhere.png"})


def test_mask_threshold_without_a_mask_is_noted_as_ignored(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    with pytest.warns(DipNote, match=r"mask_threshold=0\.5 is ignored: no mask= is given"):
        build_problem(spec_of(make_cfg("profile=smoke", f"image={image}", "task=inpainting",
                               "mask_threshold=0.5")))


def soft_mask(path: Path, size=64) -> tuple[Path, np.ndarray]:
    """A white disc on black with an anti-aliased (grey) edge, as an editor draws it."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    r = np.hypot(y - size / 2, x - size / 2)
    values = np.round(np.clip(size / 3 - r + 0.5, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(values).save(path)
    return path, values


@pytest.mark.parametrize("level", ["0", "1", "1.5", "-0.2", "abc", "nan", "true", "[0.5]"])
def test_mask_threshold_must_be_a_level_in_0_1(tmp_path, level):
    image = smooth_png(tmp_path / "img.png")
    mask, _ = soft_mask(tmp_path / "m.png")
    with pytest.raises(DipError, match=r"mask_threshold=\S+ is invalid; give a level in "
                                       r"\(0, 1\)"):
        build_problem(spec_of(make_cfg("profile=smoke", f"image={image}", "task=inpainting",
                               f"mask={mask}", f"mask_threshold={level}")))


def test_grey_mask_is_refused_with_the_way_out(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    mask, values = soft_mask(tmp_path / "m.png")
    grey = int(((values != 0) & (values != 255)).sum())
    with pytest.raises(DipError, match=re.escape(
            f"mask {mask} is not binary: {grey} of 4096 pixels are grey (neither black nor "
            "white); set mask_threshold=0.5 to round them")):
        build_problem(spec_of(make_cfg("profile=smoke", f"image={image}", "task=inpainting",
                               f"mask={mask}")))


@pytest.mark.parametrize("level", [0.5, 0.9])
def test_mask_threshold_rounds_grey_pixels_with_a_count(tmp_path, level):
    image = smooth_png(tmp_path / "img.png")
    mask, values = soft_mask(tmp_path / "m.png")
    grey = int(((values != 0) & (values != 255)).sum())
    assert 0 < grey < 4096
    with pytest.warns(DipNote, match=re.escape(f"m.png: binarised at {level}; {grey} of 4096 "
                                               "pixels were grey and were rounded")):
        problem = build_problem(spec_of(make_cfg(
            "profile=smoke", f"image={image}", "task=inpainting", f"mask={mask}",
            f"mask_threshold={level}")))
    known = problem.extras["mask"][0].numpy()
    assert set(np.unique(known)) == {0.0, 1.0}
    assert np.array_equal(known, (values / 255.0 >= level).astype(np.float32))


def test_a_binary_mask_with_a_threshold_has_no_note(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    values = np.zeros((64, 64), np.uint8)
    values[16:48, 8:40] = 255
    Image.fromarray(values).save(tmp_path / "m.png")
    problem = no_notes(lambda cfg: build_problem(spec_of(cfg)), make_cfg(
        "profile=smoke", f"image={image}", "task=inpainting", f"mask={tmp_path / 'm.png'}",
        "mask_threshold=0.5"))
    assert np.array_equal(problem.extras["mask"][0].numpy(), values / 255.0)


def test_inpainting_api_still_refuses_a_grey_mask():
    mask = torch.ones(1, 8, 8)
    mask[0, 0, :3] = 0.5
    with pytest.raises(DipError, match=r"mask is not binary: 3 of 64 values .*"
                                       r"mask_threshold=0\.5"):
        inpainting(image=torch.rand(3, 8, 8), mask=mask)


def test_a_jpeg_mask_runs_with_mask_threshold(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    values = np.zeros((64, 64, 3), np.uint8)
    values[12:52, 20:44] = 255  # an RGB mask, saved lossily
    Image.fromarray(values).save(tmp_path / "m.jpg", quality=70)
    with Image.open(tmp_path / "m.jpg") as jpg:
        grey = int(((np.asarray(jpg).min(-1) != 0) & (np.asarray(jpg).min(-1) != 255)).sum())
    assert grey > 0  # JPEG ringing: grey pixels around the edges
    args = ["profile=smoke", f"image={image}", "task=inpainting", f"mask={tmp_path / 'm.jpg'}",
            "fit.num_iter=2", "baselines=false", "progress=false"]
    with pytest.raises(DipError, match="not binary"):
        run(make_cfg(*args, f"out_dir={tmp_path / 'refused'}"))
    assert not (tmp_path / "refused").exists()
    out = tmp_path / "run"
    with pytest.warns(DipNote, match=re.escape(f"m.jpg: binarised at 0.5; {grey} of 4096 "
                                               "pixels were grey and were rounded")):
        metrics = run(make_cfg(*args, "mask_threshold=0.5", f"out_dir={out}"))
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["status"] == "ok" and math.isfinite(metrics["psnr_final"])
    known = np.asarray(Image.open(out / "corrupted.png")).max(-1) > 0  # image × mask
    assert known.mean() == pytest.approx(40 * 24 / 4096, abs=0.01)
    assert not known[:10].any() and known[14:50, 22:42].all()
