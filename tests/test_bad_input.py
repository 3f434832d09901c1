"""Bad input through the `dip` command: one clear line, non-zero exit, no record.

Formats that convert safely (16-bit, palette, alpha, CMYK) run with a one-line note.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import dip_cli, smooth_png
from PIL import Image


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    smooth_png(d / "ok.png")
    smooth_png(d / "tiny.png", size=(40, 48))
    smooth_png(d / "eight.png", size=(8, 8))
    smooth_png(d / "big.png", size=(512, 512))
    (d / "empty.png").write_bytes(b"")
    (d / "garbage.png").write_bytes(b"this is not an image at all" * 10)
    whole = (d / "ok.png").read_bytes()
    (d / "truncated.png").write_bytes(whole[:len(whole) // 2])
    Image.fromarray(np.full((48, 48), 255, np.uint8)).save(d / "mask48.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(d / "mask_zero.png")
    grey = np.full((64, 64), 255, np.uint8)
    grey[::2] = 128
    Image.fromarray(grey).save(d / "grey_mask.png")
    # a registry file whose bytes are not the registered ones (a corrupted download)
    (d / "root" / "set5").mkdir(parents=True)
    smooth_png(d / "root" / "set5" / "baby.png")
    (d / "file").write_text("a file, not a folder")
    (d / "nothing_here").mkdir()  # image=DIR restores a folder's images: none here
    # formats that are converted with a note
    rgb = np.asarray(Image.open(d / "ok.png"))
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(d / "grey16.png")
    Image.open(d / "ok.png").convert("P", palette=Image.Palette.ADAPTIVE).save(d / "pal.png")
    Image.open(d / "ok.png").convert("RGBA").save(d / "rgba.png")
    Image.open(d / "ok.png").convert("CMYK").save(d / "cmyk.tif")
    return d


BAD = {
    "missing file": (["image=nope/missing.png"], "no such file"),
    "folder without images": (["image=nothing_here"], "nothing_here holds no images"),
    "zero-byte": (["image=empty.png"], "empty"),
    "unreadable": (["image=garbage.png"], "garbage.png"),
    "truncated png": (["image=truncated.png"], "cannot read image truncated.png"),
    "mask size": (["task=inpainting", "image=ok.png", "mask=mask48.png"], "mask is 48×48"),
    "mask not binary": (["task=inpainting", "image=ok.png", "mask=grey_mask.png"],
                        "binary: 2048 of 4096 pixels are grey (neither black nor white); "
                        "set mask_threshold=0.5"),
    "mask threshold out of range": (["task=inpainting", "image=ok.png", "mask=grey_mask.png",
                                     "mask_threshold=2"], "mask_threshold=2 is invalid"),
    "mask all zero": (["task=inpainting", "image=ok.png", "mask=mask_zero.png"],
                      "no known pixel"),
    "sigma zero": (["image=ok.png", "sigma=0"], "sigma=0"),
    "sigma negative": (["image=ok.png", "sigma=-5"], "sigma=-5"),
    "sigma nan": (["image=ok.png", "sigma=nan"], "sigma=nan"),
    "lr nan": (["image=ok.png", "fit.lr=nan"], "fit.lr=nan"),
    "iterations zero": (["image=ok.png", "fit.num_iter=0"], "fit.num_iter=0"),
    "amp unknown": (["image=ok.png", "fast.amp=fp8"], "fast.amp=fp8 is unknown"),
    "factor fractional": (["task=sr", "image=ok.png", "factor=2.5"], "factor=2.5"),
    "factor one": (["task=sr", "image=ok.png", "factor=1"], "factor=1"),
    "factor not dividing": (["task=sr", "image=ok.png", "factor=3"],
                            "SR factor 3 does not divide"),
    "image too small": (["image=tiny.png"], "image tiny.png is 40×48 (cut to 32×32, a "
                        "multiple of 32), smaller than the skip net's minimum size 64×64"),
    "8x8 image with a 5-scale net": (["image=eight.png"], "image eight.png is 8×8, smaller than "
                                     "the skip net's minimum size 64×64"),
    "crop too small for the net": (["image=ok.png", "crop=50"],
                                   "image ok.png (centre crop 50) is 50×50 (cut to 32×32, a "
                                   "multiple of 32), smaller than"),
    "corrupted registry file": (["image=set5/baby.png", "data.root=root"], "sha256 mismatch"),
    "too large for memory": (["image=big.png", "memory_limit_gb=0.05"],
                             "image 512×512 needs about"),
    "record folder is a file": (["image=ok.png", "out_dir=file/run"],
                                "is a file, not a folder"),
    "unknown stop mode": (["image=ok.png", "stop=oracle"], "stop=oracle"),
    "zero seeds": (["image=ok.png", "seeds=0"], "seeds=0"),
    "unknown task": (["task=deblur"], "deblur"),
    "unknown net": (["net=vgg"], "vgg"),
    "unknown profile": (["profile=fast"], "fast"),
    "unknown key": (["colour=red"], "colour"),
    "unknown nested key": (["fit.learning_rate=0.1"], "learning_rate"),
}


def _check_one_line(case: str, status: int, err: str, out, folder) -> None:
    needle = BAD[case][1]
    assert status != 0
    assert "Traceback" not in err
    assert needle in err, err
    if case == "too large for memory":
        assert "crop=" in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not out.exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp, no ckpt


def _args(case: str, folder):
    args = BAD[case][0]
    out = folder / f"out_{case.replace(' ', '_')}"
    out_args = [] if any(a.startswith("out_dir=") for a in args) else [f"out_dir={out}"]
    return ["profile=smoke", "progress=false", *args, *out_args], out


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_one_clear_line_and_no_output(bad_files, case, monkeypatch, capsys):
    """In this process (``dip``'s main): the error line, the status, nothing written."""
    from conftest import dip_main

    monkeypatch.chdir(bad_files)
    monkeypatch.delenv("DIP_MEMORY_LIMIT_GB", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    args, out = _args(case, bad_files)
    status = dip_main(monkeypatch, *args)
    _check_one_line(case, status, capsys.readouterr().err, out, bad_files)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing file", "sigma zero", "mask size", "unknown key"])
def test_the_dip_process_exits_with_one_line(bad_files, case):
    """The contract of the command itself: a process's exit status and its stderr."""
    args, out = _args(case, bad_files)
    proc = dip_cli(*args, cwd=bad_files)
    _check_one_line(case, proc.returncode, proc.stderr, out, bad_files)


CONVERTED = {
    "16-bit png": ("grey16.png", "16-bit values divided by 65535"),
    "palette": ("pal.png", "palette (P) image converted"),
    "rgba": ("rgba.png", "alpha channel dropped"),
    "cmyk": ("cmyk.tif", "CMYK image converted to RGB"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CONVERTED))
def test_convertible_formats_run_with_a_note(bad_files, case):
    image, note = CONVERTED[case]
    out = bad_files / f"conv_{case.replace(' ', '_')}"
    proc = dip_cli("profile=smoke", f"image={image}", f"out_dir={out}", "fit.num_iter=2",
                   "baselines=false", cwd=bad_files)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and note in notes[0], proc.stderr
    assert json.loads((out / "metrics.json").read_text())["status"] == "ok"


def test_size_mismatches_state_width_by_height(tmp_path, monkeypatch, capsys):
    import torch
    from conftest import dip_main

    from dip import DipError
    from dip.data.masks import half_mask
    from dip.problems.inpainting import inpainting

    monkeypatch.chdir(tmp_path)
    smooth_png(tmp_path / "wide.png", size=(64, 96))  # 96 wide, 64 tall
    Image.fromarray(np.full((96, 64), 255, np.uint8)).save(tmp_path / "tall.png")
    expected = "mask is 64×96 (W×H) but the image is 96×64 (W×H); give a mask of the image's size"
    assert dip_main(monkeypatch, "task=inpainting", "image=wide.png", "mask=tall.png") == 2
    assert capsys.readouterr().err == f"error: {expected}\n"
    with pytest.raises(DipError) as err:
        inpainting(image=torch.zeros(3, 64, 96), mask=torch.ones(1, 96, 64))
    assert str(err.value) == expected
    assert dip_main(monkeypatch, "image=wide.png", "corrupted=true", "gt=tall.png") == 2
    assert capsys.readouterr().err.startswith(
        "error: gt is 64×96 (W×H) but the image is 96×64 (W×H); ")
    with pytest.raises(DipError, match=r"tall.png is 64×96 \(W×H\) but \S*wide.png is "
                                       r"96×64 \(W×H\)"):
        half_mask(tmp_path / "wide.png", tmp_path / "tall.png", "wide")
