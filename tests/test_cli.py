"""The `dip` command: config composition and a full run per task (bad input: test_bad_input)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_cfg, smooth_png, spec_of
from PIL import Image

from dip.runs.plan import run

KEYS = ["psnr_corrupted", "psnr_final", "psnr_avg", "psnr_oracle", "iter_oracle", "num_iter",
        "seconds", "device", "seed", "profile", "versions", "config_hash", "commit"]


@pytest.mark.parametrize("task", ["denoising", "inpainting", "sr"])
@pytest.mark.parametrize("net", ["skip", "encdec", "resnet", "unet"])
@pytest.mark.parametrize("profile", ["paper", "quick", "smoke"])
def test_every_group_combination_composes_and_builds(task, net, profile):
    cfg = make_cfg(f"task={task}", f"net={net}", f"profile={profile}")
    assert cfg.fit.num_iter >= 1 and cfg.fit.lr > 0
    model = spec_of(cfg).net.build(cfg.fit.input_depth, 3)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_paper_settings_follow_the_official_notebooks():
    den = make_cfg("profile=paper")
    assert (den.fit.num_iter, den.fit.lr, den.fit.exp_weight) == (3000, 0.01, 0.99)
    assert den.fit.reg_noise_std == pytest.approx(1 / 30, rel=1e-5)
    inp = make_cfg("profile=paper", "task=inpainting")
    assert (inp.fit.num_iter, inp.fit.lr, inp.fit.reg_noise_std) == (11000, 0.001, 0.03)
    sr4 = make_cfg("profile=paper", "task=sr", "factor=4")
    sr8 = make_cfg("profile=paper", "task=sr", "factor=8")
    assert (sr4.fit.num_iter, sr4.fit.reg_noise_std) == (2000, 0.03)
    assert (sr8.fit.num_iter, sr8.fit.reg_noise_std) == (4000, 0.05)
    paper_net = spec_of(den).net.build(32, 3)
    assert sum(p.numel() for p in paper_net.parameters()) == 2_217_831
    quick_net = spec_of(make_cfg("profile=quick")).net.build(32, 3)
    assert sum(p.numel() for p in quick_net.parameters()) < 2_217_831 / 3


@pytest.mark.parametrize("task,extra", [
    ("denoising", []),
    ("inpainting", []),
    ("sr", ["factor=2"]),
])
def test_smoke_run_writes_a_complete_record(tmp_path, task, extra):
    image = smooth_png(tmp_path / "img.png")
    out = tmp_path / "run"
    cfg = make_cfg(f"task={task}", "profile=smoke", f"image={image}", f"out_dir={out}",
                   "progress=false", *extra)
    metrics = run(cfg)
    files = {p.name for p in out.iterdir()}
    assert {"restored.png", "restored_avg.png", "corrupted.png", "gt.png", "metrics.json",
            "history.csv", "curves.png", "comparison.png", "config.yaml"} <= files
    saved = json.loads((out / "metrics.json").read_text())
    for key in KEYS:
        assert key in saved, key
    assert saved["num_iter"] == cfg.fit.num_iter == 30
    assert saved["profile"] == "smoke" and saved["device"] == "cpu"
    assert saved["memory_format"] == "nchw"  # a 64² image on the CPU
    assert np.isfinite(saved["psnr_final"]) and saved == {**saved, **{"task": task}}
    assert metrics["psnr_final"] == pytest.approx(saved["psnr_final"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_restoring_an_already_corrupted_image_has_no_ground_truth(tmp_path):
    image = smooth_png(tmp_path / "noisy.png", size=(70, 100))
    out = tmp_path / "run"
    run(make_cfg("profile=smoke", f"image={image}", "corrupted=true", f"out_dir={out}",
                 "progress=false"))
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["psnr_final"] is None and saved["size"] == [3, 64, 96]  # cropped to 32
    assert Image.open(out / "restored.png").size == (96, 64)


def test_same_config_same_output(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    outs = []
    for name in ("a", "b"):
        run(make_cfg("profile=smoke", f"image={image}", f"out_dir={tmp_path / name}",
                     "progress=false", "seed=3"))
        outs.append(np.asarray(Image.open(tmp_path / name / "restored.png")))
    assert np.array_equal(*outs)
