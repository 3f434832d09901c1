"""The Python API: ``dip.restore`` fits what the ``dip`` command fits, and the nets'
presets are the paper's nets of the configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_cfg, smooth_png
from omegaconf import OmegaConf

import dip
from dip import nets
from dip.data import load_image
from dip.runs.plan import prepare, run

SMOKE = ["fit.num_iter=3"]


def test_restore_of_a_file_equals_the_dip_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    smooth_png(tmp_path / "a.png")
    out = dip.restore("a.png", "denoising", profile="smoke", sigma=25, overrides=SMOKE)
    cli = run(make_cfg("profile=smoke", "progress=false", "baselines=false", "image=a.png",
                       "sigma=25", *SMOKE, "out_dir=cli"))
    assert out.image.shape == (3, 64, 64) and out.final.shape == (3, 64, 64)
    assert out.metrics["psnr_final"] == cli["psnr_final"]
    assert out.metrics["psnr_avg"] == cli["psnr_avg"]
    assert not (tmp_path / "records").exists() and not (tmp_path / "results").exists()


def test_restore_writes_a_record_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    smooth_png(tmp_path / "a.png")
    out = dip.restore("a.png", "inpainting", profile="smoke", overrides=SMOKE, out_dir="rec")
    stored = json.loads((tmp_path / "rec" / "metrics.json").read_text())
    assert stored["psnr_avg"] == pytest.approx(out.metrics["psnr_avg"])
    assert "task=inpainting" in stored["overrides"] and "fit.num_iter=3" in stored["overrides"]
    saved = load_image(tmp_path / "rec" / "restored_avg.png")
    assert torch.allclose(saved, out.image, atol=0.5 / 255 + 1e-6)
    with pytest.raises(FileExistsError, match="force=True"):
        dip.restore("a.png", "inpainting", profile="smoke", overrides=SMOKE, out_dir="rec")


def test_restore_of_an_array_in_memory(tmp_path):
    image = load_image(smooth_png(tmp_path / "a.png"))
    hwc = image.permute(1, 2, 0).numpy()
    a = dip.restore(image, "denoising", profile="smoke", sigma=25, overrides=SMOKE)
    b = dip.restore(hwc, "denoising", profile="smoke", sigma=25, overrides=SMOKE)
    assert torch.equal(a.image, b.image) and np.isfinite(a.metrics["psnr_final"])
    with pytest.raises(ValueError, match="give C×H×W or H×W×C"):
        dip.restore(np.zeros((4, 8, 8)), profile="smoke")


def test_the_paper_preset_is_the_configs_net():
    cfg = OmegaConf.to_container(make_cfg().net)
    for key in ("name", "width_scale", "bn_init", "align_corners"):
        cfg.pop(key)
    assert nets.PRESETS["paper"] == ("skip", cfg)
    era = make_cfg("profile=paper").net
    assert nets.PRESETS["paper-2018"][1]["bn_init"] == era.bn_init == "uniform"
    assert nets.PRESETS["paper-2018"][1]["align_corners"] is era.align_corners is True


def test_a_seeded_preset_is_the_runs_net(tmp_path):
    """The quick profile's net of seed 3 is preset('paper', width_scale=0.5, seed=3)."""
    smooth_png(tmp_path / "a.png")
    plan = prepare(make_cfg("profile=quick", f"image={tmp_path / 'a.png'}"), write=False)
    ours = torch.cat([p.flatten() for p in plan.build_net(3).parameters()])
    preset = nets.preset("paper", 32, 3, width_scale=0.5, seed=3)
    assert torch.equal(ours, torch.cat([p.flatten() for p in preset.parameters()]))
    with pytest.raises(dip.DipError, match="unknown preset 'vgg'"):
        nets.preset("vgg")


@pytest.mark.parametrize("call,args", [
    (dict(task="deblur"), ["task=deblur"]),
    (dict(sigmaa=25), ["sigmaa=25"]),
    (dict(fit_lr=0.1), ["fit_lr=0.1"]),
    (dict(overrides=["fit.num_iter=ten"]), ["fit.num_iter=ten"]),
])
def test_a_bad_task_or_setting_is_the_commands_one_line_error(tmp_path, monkeypatch, capsys,
                                                              call, args):
    from conftest import dip_main

    monkeypatch.chdir(tmp_path)
    smooth_png(tmp_path / "a.png")
    with pytest.raises(dip.DipError) as err:
        dip.restore("a.png", **call)
    assert "\n" not in str(err.value)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    assert dip_main(monkeypatch, "image=a.png", *args) == 2
    assert capsys.readouterr().err == f"error: {err.value}\n"


def test_restore_takes_a_non_ascii_path(tmp_path):
    image = smooth_png((tmp_path / "été").mkdir() or tmp_path / "été" / "a.png")
    out = dip.restore(image, profile="smoke", overrides=SMOKE, out_dir=tmp_path / "été" / "o")
    assert json.loads((tmp_path / "été" / "o" / "metrics.json").read_text())["image"] == \
        str(image)
    assert out.image.shape == (3, 64, 64)
