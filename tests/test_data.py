"""Tests of the data layer through dip.data (image I/O, crops, registry) and of dip.data.fetch
(download into a data root; the pooch downloads are in test_fetch.py)."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dip import DipError, data
from dip.data.fetch import derived_image, mirror_url, write_registry
from dip.data.fetch import main as fetch_main

SMALL = "dip_official/inpainting/vase_mask.png"  # 930 bytes, 320×320 L


def pixels(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img)


# --------------------------------------------------------------------------- façade


def test_data_re_exports_the_data_modules():
    from dip import atomic
    from dip.data import crops, images, registry

    assert data.load_image is images.load_image and data.save_image is images.save_image
    assert data.crop_to_multiple is crops.crop_to_multiple
    assert data.resolve is registry.resolve and data.Entry is registry.Entry
    assert data.atomic_target is atomic.atomic_target
    assert all(hasattr(data, name) for name in data.__all__)


# --------------------------------------------------------------------------- load_image


def test_load_grey_keeps_one_channel(tmp_image):
    path = tmp_image(mode="L", shape=(12, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = data.load_image(path)
    assert image.shape == (1, 12, 16) and image.dtype == torch.float32
    assert torch.equal(image[0], torch.from_numpy(pixels(path)).float() / 255)


def test_load_rgb(tmp_image):
    path = tmp_image(mode="RGB", shape=(10, 7))
    image = data.load_image(path)
    assert image.shape == (3, 10, 7)
    assert np.allclose(image.permute(1, 2, 0).numpy(), pixels(path) / 255.0)
    assert 0.0 <= image.min() and image.max() <= 1.0


def test_load_bilevel_is_grey_without_warning(tmp_image):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = data.load_image(tmp_image(mode="1"))
    assert image.shape[0] == 1 and set(image.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("mode, channels", [("RGBA", 3), ("LA", 1)])
def test_load_drops_alpha_with_warning(tmp_image, mode, channels):
    path = tmp_image(mode=mode)
    with pytest.warns(UserWarning, match="alpha channel dropped"):
        image = data.load_image(path)
    assert image.shape[0] == channels
    expected = pixels(path)[..., :channels] / 255.0
    assert np.allclose(image.permute(1, 2, 0).numpy(), expected.reshape(12, 16, channels))


def test_load_palette_colour_and_grey(tmp_image):
    colour = tmp_image("colour.png", mode="P")
    with pytest.warns(UserWarning, match=r"palette \(P\) image converted to RGB"):
        image = data.load_image(colour)
    with Image.open(colour) as img:
        assert np.allclose(image.permute(1, 2, 0).numpy(), np.asarray(img.convert("RGB")) / 255)
    grey = tmp_image("grey.png", mode="P", array=np.arange(48, dtype=np.uint8).reshape(6, 8))
    with pytest.warns(UserWarning, match="converted to grey"):
        image = data.load_image(grey)
    assert image.shape == (1, 6, 8)
    assert torch.allclose(image[0] * 255, torch.arange(48.0).reshape(6, 8))


def test_load_16_bit_scales_by_65535(tmp_image):
    values = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    path = tmp_image(mode="I;16", array=values)
    with pytest.warns(UserWarning, match="65535"):
        image = data.load_image(path)
    assert image.shape == (1, 2, 2)
    assert np.allclose(image[0].numpy(), values / 65535.0)


def test_load_cmyk_becomes_rgb(tmp_image):
    path = tmp_image("cmyk.tif", mode="CMYK")
    with pytest.warns(UserWarning, match="CMYK image converted to RGB"):
        assert data.load_image(path).shape == (3, 12, 16)


def _one_line_error(path, match) -> str:
    with pytest.raises(DipError, match=match) as info:
        data.load_image(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_load_errors(tmp_path, tmp_image):
    message = _one_line_error(tmp_path / "nope.png", "no such file")
    assert "set5/baby.png" in message
    _one_line_error(tmp_path, "is a directory")
    empty = tmp_path / "empty.png"
    empty.touch()
    _one_line_error(empty, r"empty \(0 bytes\)")
    text = tmp_path / "text.png"
    text.write_text("not an image")
    _one_line_error(text, "cannot read image")


def test_truncated_png_fails_at_load(tmp_image):
    path = tmp_image(mode="RGB", shape=(64, 64))
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    _one_line_error(path, "cannot read image")


# --------------------------------------------------------------------------- save_image


@pytest.mark.parametrize("make", [
    lambda a: torch.from_numpy(a).permute(2, 0, 1),
    lambda a: torch.from_numpy(a).permute(2, 0, 1)[None],
    lambda a: a,
])
def test_save_round_trip_rgb(tmp_path, make):
    values = np.random.default_rng(1).integers(0, 256, (5, 6, 3)) / 255.0
    path = data.save_image(tmp_path / "out.png", make(values.astype(np.float32)))
    assert np.array_equal(pixels(path), np.round(values * 255))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_save_grey_clips_and_rounds(tmp_path):
    values = np.array([[-0.5, 0.0, 0.5 / 255 + 1e-4, 1.6 / 255], [0.5, 1.0, 1.5, 2.0]])
    path = data.save_image(tmp_path / "sub" / "grey.png", values)
    assert np.array_equal(pixels(path), [[0, 0, 1, 2], [128, 255, 255, 255]])
    one_channel = data.save_image(tmp_path / "c1.png", torch.full((1, 2, 3), 0.2))
    assert pixels(one_channel).shape == (2, 3)


def test_a_16_bit_input_is_restored_as_16_bit(tmp_path, monkeypatch):
    from conftest import FAST, dip_main

    from dip.data.images import bit_depth

    monkeypatch.chdir(tmp_path)
    y, x = np.mgrid[0:64, 0:64]
    grey = (20000 + 300 * x + 7 * y + 1).astype(np.uint16)  # not multiples of 257
    Image.fromarray(grey).save(tmp_path / "grey.png")  # Pillow: 16-bit grey PNG
    rgb = np.stack([grey, grey[::-1], grey.T], -1) / 65535.0
    data.save_image(tmp_path / "rgb.png", rgb, bits=16)
    assert bit_depth(tmp_path / "grey.png") == bit_depth(tmp_path / "rgb.png") == 16
    with pytest.warns(UserWarning, match="16-bit RGB image"):
        back = data.load_image(tmp_path / "rgb.png").permute(1, 2, 0).numpy()
    assert np.array_equal(np.round(back.astype(np.float64) * 65535), rgb * 65535)
    for name in ("grey", "rgb"):
        assert dip_main(monkeypatch, *FAST, f"image={name}.png", f"out_dir={name}") == 0
    restored = pixels(tmp_path / "grey" / "restored.png")
    assert restored.dtype == np.uint16 and (restored % 257).any()
    for name in ("restored", "restored_avg", "corrupted"):  # colour: 16 bits in IHDR
        assert (tmp_path / "rgb" / f"{name}.png").read_bytes()[24] == 16, name
    assert pixels(tmp_path / "rgb" / "restored.png").shape == (64, 64, 3)


def test_save_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = data.save_image(tmp_path / "keep.png", np.zeros((2, 2)))
    before = path.read_bytes()
    with pytest.raises(DipError, match="NaN"):
        data.save_image(path, np.full((2, 2), np.nan))
    with pytest.raises(DipError, match="shape"):
        data.save_image(path, np.zeros((2, 2, 5)))
    with pytest.raises(DipError, match="keep.png"):
        data.save_image(tmp_path / "keep.jpg", np.zeros((2, 2)))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


# --------------------------------------------------------------------------- crops


def official_crop_image(img: Image.Image, d: int = 32) -> Image.Image:
    """``crop_image`` of the official code (utils/common_utils.py)."""
    new_size = (img.size[0] - img.size[0] % d, img.size[1] - img.size[1] % d)
    bbox = [
        int((img.size[0] - new_size[0]) / 2),
        int((img.size[1] - new_size[1]) / 2),
        int((img.size[0] + new_size[0]) / 2),
        int((img.size[1] + new_size[1]) / 2),
    ]
    return img.crop(bbox)


@pytest.mark.parametrize("height, width, d", [(50, 70, 32), (45, 77, 8), (64, 33, 32), (9, 9, 3)])
def test_crop_to_multiple_matches_official(height, width, d):
    rows = np.arange(height)[:, None].repeat(width, 1)
    cols = np.arange(width)[None, :].repeat(height, 0)
    image = torch.from_numpy(np.stack([rows, cols])).float()
    cropped = data.crop_to_multiple(image, d)
    h, w = height - height % d, width - width % d
    assert cropped.shape == (2, h, w)
    assert cropped[0, 0, 0] == (height - h) // 2 and cropped[1, 0, 0] == (width - w) // 2
    official = official_crop_image(Image.fromarray(rows.astype(np.uint8)), d)
    assert np.array_equal(cropped[0].numpy(), np.asarray(official))
    official = official_crop_image(Image.fromarray(cols.astype(np.uint8)), d)
    assert np.array_equal(cropped[1].numpy(), np.asarray(official))


def test_crop_70x50_offsets_and_batch():
    image = torch.arange(50 * 70.0).reshape(1, 1, 50, 70)
    cropped = data.crop_to_multiple(image, 32)
    assert cropped.shape == (1, 1, 32, 64)
    assert cropped[0, 0, 0, 0] == 9 * 70 + 3  # row offset 9, column offset 3


def test_crop_too_small():
    with pytest.raises(DipError, match=r"image 20×40 is smaller than .* 32×32"):
        data.crop_to_multiple(torch.zeros(3, 20, 40), 32)
    with pytest.raises(DipError, match="positive integer"):
        data.crop_to_multiple(torch.zeros(3, 20, 40), 0)


def test_center_crop():
    image = torch.arange(7 * 10.0).reshape(1, 7, 10)
    square = data.center_crop(image, 4)
    assert square.shape == (1, 4, 4) and square[0, 0, 0] == 1 * 10 + 3
    rect = data.center_crop(image, (7, 5))
    assert rect.shape == (1, 7, 5) and rect[0, 0, 0] == 2
    with pytest.raises(DipError, match="cannot crop image 7×10 to 8×8"):
        data.center_crop(image, 8)


# --------------------------------------------------------------------------- registry


def test_registry_entries():
    entries = data.entries()
    assert len(entries) >= 152
    names = [e.name for e in entries]
    assert len(set(names)) == len(names)
    by_name = dict(zip(names, entries, strict=True))
    for e in entries:
        assert re.fullmatch(r"[0-9a-f]{64}", e.sha256), e.name
        assert e.width > 0 and e.height > 0 and e.bytes > 0
        if e.derived_from is None:
            assert e.url == (f"https://raw.githubusercontent.com/{e.source_repo}/"
                             f"{e.source_commit}/{e.source_path}")
        else:
            assert e.url == "" and by_name[e.derived_from].derived_from is None
    assert by_name["paper/inpainting50/barbara_mask.png"].derived_from == \
        "paper/inpainting50/barbara_masked.png"


def test_registry_is_generated_from_manifest(data_root, tmp_path):
    out = tmp_path / "registry.csv"
    assert write_registry(data_root / "MANIFEST.csv", out) == len(data.entries())
    assert out.read_bytes() == data.REGISTRY_CSV.read_bytes()


def test_list_images():
    names = data.list_images("paper/inpainting50")
    assert len(names) == 33 and names == sorted(names)
    assert "paper/inpainting50/Cameraman256_mask.png" in names
    assert len(data.list_images("paper/denoising")) == 9  # exact: sigma folders excluded
    assert len(data.list_images("paper/denoising/")) == 9
    assert len(data.list_images("dip_official")) == 18
    with pytest.raises(DipError, match="unknown dataset 'set6'.*set5"):
        data.list_images("set6")


def test_list_images_under_root(tmp_path):
    (tmp_path / "set5").mkdir()
    (tmp_path / "set5" / "bird.png").touch()
    assert data.list_images("set5", root=tmp_path) == ["set5/bird.png"]


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("DIP_DATA_ROOT", str(tmp_path / "env"))
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_root() == tmp_path / "env"
    monkeypatch.delenv("DIP_DATA_ROOT")
    monkeypatch.chdir(tmp_path)
    assert data.data_root() == tmp_path / "data"


def test_shared_root_holds_every_registry_file(data_root):
    for e in data.entries():
        if e.derived_from and not (data_root / e.dataset / e.file).exists():
            continue  # made from its sources when read: the next test
        path = data.resolve(e.name, data_root)
        with Image.open(path) as img:
            assert (img.width, img.height, img.mode) == (e.width, e.height, e.mode), e.name
        assert path.stat().st_size == e.bytes


def test_a_derived_file_that_is_not_fetched_is_made_as_dip_fetch_makes_it(data_root):
    made = [e for e in data.entries()
            if e.derived_from and not (data_root / e.dataset / e.file).exists()]
    if not made:
        pytest.skip("the shared root holds every derived file")
    for e in made:
        png = io.BytesIO()
        Image.fromarray(derived_image(e, data_root)).save(png, format="PNG")
        assert hashlib.sha256(png.getvalue()).hexdigest() == e.sha256, e.name
        image = data.read(e.name, root=data_root)
        assert image.shape == (1, e.height, e.width), e.name


def test_resolve_and_read_registry_file(data_root):
    path = data.resolve(SMALL, data_root)
    assert path == data_root / SMALL
    image = data.read(SMALL, root=data_root)
    assert image.shape == (1, 320, 320)
    assert set(image.unique().tolist()) <= {0.0, 1.0}


def test_resolve_errors(tmp_path, data_root):
    with pytest.raises(DipError, match=r"did you mean set5/baby\.png.*dip-fetch --list"):
        data.resolve("set5/babby.png", tmp_path)
    with pytest.raises(DipError, match=r"not found under .*run `dip-fetch set5`.*DIP_DATA_ROOT"):
        data.resolve("set5/baby.png", tmp_path)
    copy = tmp_path / SMALL
    copy.parent.mkdir(parents=True)
    content = bytearray((data_root / SMALL).read_bytes())
    content[len(content) // 2] ^= 0xFF
    copy.write_bytes(bytes(content))
    with pytest.raises(DipError, match=r"sha256 mismatch.*dip-fetch dip_official/inpainting"):
        data.resolve(SMALL, tmp_path)
    assert data.resolve(SMALL, tmp_path, verify=False) == copy


# --------------------------------------------------------------------------- specs


@pytest.mark.parametrize("name", data.BUNDLED)
def test_bundled_loads_offline(name):
    image = data.bundled(name)
    assert image.dtype == torch.float32 and image.shape[0] in (1, 3)
    assert 0.0 <= image.min() and image.max() <= 1.0


def test_bundled_channels_and_errors():
    assert data.bundled("astronaut").shape == (3, 512, 512)
    assert data.read("skimage:camera").shape == (1, 512, 512)
    with pytest.raises(DipError, match="did you mean camera"):
        data.bundled("camra")


def test_read_path_and_unknown_name(tmp_image, tmp_path):
    path = tmp_image(mode="L", shape=(4, 5))
    assert data.read(path).shape == (1, 4, 5)
    assert data.read(str(path)).shape == (1, 4, 5)
    with pytest.raises(DipError, match="unknown image 'paper/inpainting50/barbara_gt.png'"):
        data.read("paper/inpainting50/barbara_gt.png", root=tmp_path)
    with pytest.raises(DipError, match="no such file"):
        data.read(str(tmp_path / "missing.png"))


# --------------------------------------------------------------------------- fetch

FETCHED = ["paper/inpainting50/Cameraman256_masked.png", "paper/inpainting50/house_GT.png"]
DERIVED = "paper/inpainting50/Cameraman256_mask.png"


def make_mirror(data_root: Path, mirror: Path, names=FETCHED) -> Path:
    """Lay out registry files as REPO/COMMIT/PATH under ``mirror``, as on raw GitHub."""
    for name in names:
        e = data.lookup(name)
        dest = mirror / e.source_repo / e.source_commit / e.source_path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_root / name, dest)
    return mirror


def fetch_args(root, mirror):
    return ["paper/inpainting50", "--only", "Cameraman256_mask.png", "house_GT.png",
            "--root", str(root), "--mirror", mirror]


@pytest.mark.parametrize("as_uri", [False, True])
def test_fetch_from_local_mirror(data_root, tmp_path, capsys, as_uri):
    mirror = make_mirror(data_root, tmp_path / "mirror")
    mirror = mirror.as_uri() if as_uri else str(mirror)
    root = tmp_path / "root"
    assert fetch_main(fetch_args(root, mirror)) == 0
    out = capsys.readouterr().out.split("\n")
    assert out[:3] == [f"fetched  {FETCHED[0]}", f"fetched  {FETCHED[1]}", f"derived  {DERIVED}"]
    for name in [*FETCHED, DERIVED]:
        assert data.file_sha256(root / name) == data.lookup(name).sha256
        assert data.resolve(name, root) == root / name
    assert np.array_equal(pixels(root / DERIVED), pixels(data_root / DERIVED))
    assert fetch_main(fetch_args(root, mirror)) == 0
    assert capsys.readouterr().out.split()[::2] == ["ok"] * 3
    assert sorted(p.name for p in (root / "paper/inpainting50").iterdir()) == sorted(
        Path(n).name for n in [*FETCHED, DERIVED])


def test_fetch_hash_mismatch_removes_download(data_root, tmp_path, capsys):
    mirror = make_mirror(data_root, tmp_path / "mirror", FETCHED[1:])
    e = data.lookup(FETCHED[1])
    bad = mirror / e.source_repo / e.source_commit / e.source_path
    bad.write_bytes(bad.read_bytes()[:-1] + b"!")
    root = tmp_path / "root"
    args = ["paper/inpainting50", "--only", "house_GT.png", "--root", str(root)]
    assert fetch_main([*args, "--mirror", str(mirror)]) == 1
    assert "house_GT.png: sha256 mismatch" in capsys.readouterr().err
    assert list((root / "paper/inpainting50").iterdir()) == []


def test_fetch_download_failure_names_url(tmp_path, capsys):
    empty = tmp_path / "mirror"
    empty.mkdir()
    args = ["set5", "--only", "bird.png", "--root", str(tmp_path / "root"), "--mirror", str(empty)]
    assert fetch_main(args) == 1
    err = capsys.readouterr().err
    assert "cannot download file://" in err and "bird.png" in err
    assert fetch_main([*args[:-1], str(tmp_path / "no-such-mirror")]) == 1
    assert "mirror folder" in capsys.readouterr().err


def test_fetch_unknown_dataset_and_file(tmp_path, capsys):
    assert fetch_main(["set6", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "unknown dataset 'set6'" in err and err.count("\n") == 1
    assert fetch_main(["set5", "--only", "nope.png", "--root", str(tmp_path)]) == 1
    assert "nope.png" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    with pytest.raises(SystemExit):
        fetch_main([])


def test_fetch_list(capsys):
    assert fetch_main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(data.datasets())
    assert any(re.match(r"paper/inpainting50 +33 files", line) for line in lines)


def test_mirror_url():
    url = "https://raw.githubusercontent.com/a/b/c0ffee/x/y.png"
    assert mirror_url(url, None) == url
    assert mirror_url(url, "http://host/raw/") == "http://host/raw/a/b/c0ffee/x/y.png"
    assert mirror_url(url, "/m") == "file:///m/a/b/c0ffee/x/y.png"
