"""A folder of images: ``dip image=DIR`` (in one process, then a study table) and
``dip -m image=DIR`` (a sweep over the images); ``mask=DIR`` pairs masks by file stem."""

from __future__ import annotations

import json

import pytest
from conftest import FAST, dip_main, smooth_png
from hydra.core.override_parser.overrides_parser import OverridesParser
from PIL import Image

from dip import DipError
from dip.cli.folder import expand_argv
from dip.data.folders import images_in, paired_mask


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    smooth_png(tmp_path / "photos" / "b.png")
    smooth_png(tmp_path / "photos" / "a.jpg", channels=1)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    return tmp_path


def _records(root) -> dict:
    out = {}
    for path in root.iterdir():
        if (path / "metrics.json").is_file():
            m = json.loads((path / "metrics.json").read_text())
            out[m["image"]] = m
    return out


def test_images_of_a_folder_are_its_image_files_sorted(folder):
    assert [p.name for p in images_in(folder / "photos")] == ["a.jpg", "b.png"]
    (folder / "empty").mkdir()
    with pytest.raises(DipError, match="holds no images"):
        images_in(folder / "empty")


def test_a_folder_restores_each_image_and_ends_with_a_study(folder, monkeypatch, capsys):
    status = dip_main(monkeypatch, *FAST, "image=photos", "records=recs")
    out = capsys.readouterr().out
    assert status == 0
    records = _records(folder / "recs")
    assert sorted(records) == ["photos/a.jpg", "photos/b.png"]
    assert records["photos/a.jpg"]["overrides"][-1] == "image=photos/a.jpg"
    assert "[image=photos/a.jpg] denoising of photos/a.jpg" in out
    assert "study" in out.lower()
    assert (folder / "recs" / "studies" / "photos_smoke" / "study.csv").is_file()
    assert not (folder / "results").exists()  # the study goes beside the records


def test_one_bad_image_fails_alone(folder, monkeypatch, capsys):
    (folder / "photos" / "c.png").write_bytes(b"not a png")
    status = dip_main(monkeypatch, *FAST, "image=photos", "records=recs")
    err = capsys.readouterr().err
    assert status == 2 and "error: [image=photos/c.png]" in err
    assert "1 of 3 images failed: c.png" in err
    assert sorted(_records(folder / "recs")) == ["photos/a.jpg", "photos/b.png"]


def test_masks_are_paired_by_stem_and_a_missing_one_fails_alone(folder, monkeypatch, capsys):
    (folder / "masks").mkdir()
    Image.new("L", (64, 64), 255).save(folder / "masks" / "a_mask.png")
    assert paired_mask(folder / "masks", "photos/a.jpg").name == "a_mask.png"
    status = dip_main(monkeypatch, *FAST, "task=inpainting", "image=photos", "mask=masks",
                      "records=recs")
    err = capsys.readouterr().err
    assert status == 2 and "no mask for b.png in masks (looked for b.* and b_mask.*)" in err
    records = _records(folder / "recs")
    assert list(records) == ["photos/a.jpg"]
    assert records["photos/a.jpg"]["psnr_corrupted"] is None  # all known: an infinite PSNR


def test_a_multirun_over_a_folder_is_a_sweep_of_its_images(folder, monkeypatch):
    (folder / "photos" / "it's, odd.png").write_bytes((folder / "photos" / "b.png").read_bytes())
    argv = expand_argv(["dip", "-m", "image=photos", "sigma=25"])
    value = OverridesParser.create().parse_overrides([argv[2]])[0]
    assert [v.text for v in value.sweep_iterator()] == ["photos/a.jpg", "photos/b.png",
                                                   "photos/it's, odd.png"]
    assert expand_argv(["dip", "image=photos"]) == ["dip", "image=photos"]
    assert dip_main(monkeypatch, "-m", *FAST, "image=photos", "records=recs") == 0
    assert len(_records(folder / "recs")) == 3
