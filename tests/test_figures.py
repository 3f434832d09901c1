"""Figure experiments: targets of Fig. 2, image inputs, resizing, and figures end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_cfg, spec_of
from PIL import Image

from dip import DipError
from dip.problems.fitting import fitting
from dip.problems.noise import signal
from dip.report.grids import FIGURES, build_figure
from dip.runs.config import CONFIG_DIR, LEGACY_EXCLUDE
from dip.runs.inputs import build_input, build_problem
from dip.runs.plan import run
from dip.runs.spec import NetSpec


def _compose(*overrides):
    return make_cfg(*overrides)  # composed once per test session


def test_signals_of_fig2():
    img = torch.rand(3, 16, 20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(signal(img, "image"), img)
    shuffled = signal(img, "shuffled", seed=1)
    assert not torch.equal(shuffled, img)
    # a permutation of pixel positions, the same for every channel
    flat, flat_s = img.reshape(3, -1).T, shuffled.reshape(3, -1).T
    assert sorted(map(tuple, flat.tolist())) == sorted(map(tuple, flat_s.tolist()))
    noisy = signal(img, "noisy", sigma=25, seed=1)
    assert 0.05 < float((noisy - img).std()) < 0.12
    noise = signal(img, "noise", seed=1)
    assert noise.shape == img.shape and 0 <= float(noise.min()) and float(noise.max()) < 1
    assert torch.equal(signal(img, "noise", seed=1), noise)
    with pytest.raises(ValueError, match="unknown signal"):
        signal(img, "stripes")


def test_fitting_problem_is_identity_without_ground_truth():
    target = torch.rand(3, 8, 8)
    p = fitting(target=target)
    assert p.task == "fitting" and p.gt is None and p.out_shape == (3, 8, 8)
    assert torch.equal(p.operator(target[None]), target[None])


def test_min_size_accounts_for_depth_and_filter():
    def min_size(*overrides):
        return NetSpec.read(_compose(*overrides).net).min_size()

    assert min_size("net=skip") == 64          # 2 px at 1/32
    assert min_size("net=encdec", "net.depth=6") == 192   # 5x5: 3 px at 1/64
    assert min_size("net=encdec", "net.depth=2") == 12
    assert min_size("net=resnet") == 1


def test_scale_and_rectangular_crop_resize_image_and_mask(data_root):
    cfg = _compose("experiment=fig_architectures", "profile=quick")
    p = build_problem(spec_of(cfg))
    assert p.out_shape == (3, 192, 320)
    mask = p.extras["mask"]
    assert set(torch.unique(mask).tolist()) == {0.0, 1.0}    # nearest keeps it binary
    assert 0.1 < p.extras["missing"] < 0.4
    with pytest.raises(DipError, match="scale=2"):
        build_problem(spec_of(_compose("experiment=fig_architectures", "scale=2")))


def test_image_input_must_match_the_output(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(a)
    Image.fromarray(np.full((96, 96, 3), 90, np.uint8)).save(b)
    cfg = _compose("task=fitting", f"image={a}", f"input_image={a}", "fit.input_type=image")
    z = build_input(spec_of(cfg), build_problem(spec_of(cfg)))
    assert z.shape == (1, 3, 64, 64)
    plain = spec_of(_compose("task=fitting", f"image={a}"))
    assert build_input(plain, build_problem(spec_of(cfg))) is None
    bad = _compose("task=fitting", f"image={a}", f"input_image={b}", "fit.input_type=image")
    with pytest.raises(DipError, match="input_image is 96×96"):
        build_input(spec_of(bad), build_problem(spec_of(bad)))


def test_flash_run_uses_the_flash_photo_as_input(tmp_path, data_root):
    cfg = _compose("experiment=fig_flash", "profile=smoke", "fit.num_iter=3", "progress=false",
                   f"out_dir={tmp_path / 'rec'}")
    m = run(cfg)
    assert m["task"] == "fitting" and m["label"] == "flash input, no-flash target"
    saved = np.asarray(Image.open(tmp_path / "rec" / "input.png"))
    assert saved.shape == (64, 64, 3)
    assert not np.array_equal(saved, np.asarray(Image.open(tmp_path / "rec" / "corrupted.png")))


def test_figure_settings_are_the_official_ones():
    arch = {a: _compose("experiment=fig_architectures", f"arch={a}", "profile=paper")
            for a in ("encdec6", "encdec2", "resnet8", "unet5")}
    assert [(c.net.name, c.fit.lr) for c in arch.values()] == [
        ("encdec", 0.01), ("encdec", 0.01), ("resnet", 0.001), ("unet", 0.001)]
    assert all((c.fit.num_iter, c.fit.input_depth, c.fit.reg_noise_std) == (3001, 1, 0.0)
               for c in arch.values())
    kate = _compose("experiment=fig_kate", "profile=paper")
    assert (kate.fit.num_iter, kate.fit.lr, kate.net.upsample_mode) == (6001, 0.01, "nearest")
    assert list(kate.net.num_channels_skip) == [128] * 5
    vase = _compose("experiment=fig_vase", "profile=paper")
    assert (vase.fit.input_type, vase.fit.num_iter, list(vase.net.num_channels_skip)) == (
        "meshgrid", 5001, [0] * 5)
    flash = _compose("experiment=fig_flash", "profile=paper")
    assert (flash.fit.lr, flash.fit.num_iter, flash.fit.input_type) == (0.1, 601, "image")
    assert list(flash.net.upsample_mode) == ["nearest"] * 2 + ["bilinear"] * 3
    jpeg = _compose("experiment=fig_jpeg", "profile=paper")
    assert (jpeg.fit.num_iter, jpeg.fit.input_depth, list(jpeg.net.num_channels_skip)) == (
        2400, 3, [0, 0, 0, 4, 4])
    rest = _compose("experiment=fig_restoration", "profile=paper")
    assert (rest.task.p_missing, rest.fit.num_iter, rest.net.downsample_mode) == (0.98, 1000, "avg")


def _dip(*args, cwd, module="dip"):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=900)


SWEEPS = {"fig_architectures": 5, "fig_lr": 2, "fig_prior_curves": 4, "fig_flash": 1}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(SWEEPS))
def test_figure_sweep_end_to_end(tmp_path, data_root, experiment):
    runs = tmp_path / "runs"
    proc = _dip("-m", f"experiment={experiment}", "profile=smoke", "progress=false",
                "fit.num_iter=4", f"records={runs}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    labels = [json.loads((p / "metrics.json").read_text())["label"] for p in runs.iterdir()]
    assert len(set(labels)) == SWEEPS[experiment]
    report = _dip("figure", experiment, "--profile", "smoke", "--root", str(runs), "--out",
                  str(tmp_path / "fig"), cwd=tmp_path, module="dip.report")
    assert report.returncode == 0, report.stderr[-2000:]
    curves = tmp_path / "fig" / f"{experiment}_smoke_curves.png"
    assert Image.open(curves).size[0] > 300
    grid = tmp_path / "fig" / f"{experiment}_smoke.png"
    assert grid.is_file() == (experiment != "fig_prior_curves")


@pytest.mark.parametrize("experiment,labels", [
    ("fig_architectures", ["encdec6", "encdec4", "encdec2", "resnet8", "unet5"]),
    ("fig_prior_curves", ["image", "noisy", "shuffled", "noise"])])
def test_figure_panels_follow_the_declared_sweep_not_the_finishing_order(tmp_path, experiment,
                                                                          labels):
    from dip.report.grids import figure_records, sweep_order

    order = sweep_order(experiment, "quick")
    assert sorted(order.values()) == list(range(len(labels)))
    by_rank = sorted(order, key=order.get)
    # parallel jobs finished last-declared first, plus one run outside the declared sweep
    for i, h in enumerate([*reversed(by_rank), "0123456789ab"]):
        rec = tmp_path / h
        rec.mkdir()
        label = labels[by_rank.index(h)] if h in order else "extra"
        (rec / "metrics.json").write_text(json.dumps({
            "experiment": experiment, "profile": "quick", "config_hash": h, "label": label,
            "finished": f"2026-01-01T00:00:{i:02d}+0000", "image": "x.png"}))
    assert list(figure_records(experiment, "quick", tmp_path).label) == [*labels, "extra"]
    # records stored under the earlier identity (schedule hashed too) keep their places
    legacy = sweep_order(experiment, "quick", LEGACY_EXCLUDE)
    assert sorted(legacy.values()) == list(range(len(labels))) and not set(legacy) & set(order)
    old = tmp_path / "legacy"
    for h, rank in sorted(legacy.items(), key=lambda kv: -kv[1]):
        (old / h).mkdir(parents=True)
        (old / h / "metrics.json").write_text(json.dumps({
            "experiment": experiment, "profile": "quick", "config_hash": h,
            "label": labels[rank], "finished": "2026-01-01T00:00:00+0000", "image": "x.png"}))
    assert list(figure_records(experiment, "quick", old).label) == labels


def test_figure_of_an_unrun_experiment_says_how_to_run_it(tmp_path):
    with pytest.raises(DipError, match="dip -m experiment=fig_kate profile=quick"):
        build_figure("fig_kate", "quick", root=tmp_path)
    with pytest.raises(DipError, match="unknown figure"):
        build_figure("fig_nope", "quick", root=tmp_path)
    with pytest.raises(DipError, match="make table-sr PROFILE=quick"):
        build_figure("table_sr", "quick", root=tmp_path)


def test_every_figure_experiment_is_listed():
    on_disk = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("fig_*.yaml"))
    assert sorted(FIGURES) == on_disk


def test_results_readme_shows_every_table_figure_and_benchmark(tmp_path):
    from dip.report.__main__ import main

    (tmp_path / "tables").mkdir()
    (tmp_path / "figures").mkdir()
    for table in ("table_sr_quick", "table_denoising_quick", "table_denoising_quick_stop-wmv"):
        (tmp_path / "tables" / f"{table}.md").write_text("caption\n\n| a |\n| --- |\n| 1 |\n")
    for name in ("fig_kate_quick.png", "fig_kate_quick_curves.png", "fig_prior_curves_quick_"
                 "curves.png", "table_sr_quick_set5_x4.png", "table_denoising_quick_sigma25.png",
                 "table_denoising_quick_stop-wmv_sigma25.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / "figures" / name)
    (tmp_path / "tables" / "table_sr_quick.json").write_text("{}")
    (tmp_path / "claims_quick.md").write_text("Claims scorecard\n\n| claim |\n| --- |\n")
    Image.new("RGB", (4, 4)).save(tmp_path / "claims_quick.png")
    assert main(["readme", "--results", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text()
    first = text.split("\n## ")[1]  # the scorecard leads, with its figure
    assert first.startswith("Claims scorecard `claims_quick`") and \
        "![claims_quick](claims_quick.png)" in first
    assert "## Table `table_sr_quick`" in text and "| 1 |" in text
    assert "![fig_kate_quick](figures/fig_kate_quick.png)" in text
    assert "![fig_kate_quick_curves](figures/fig_kate_quick_curves.png)" in text
    assert "## Figure `fig_prior_curves_quick`" in text
    # a table's grids sit under that table (the longest matching name), not as figures
    sections = {part.split("`")[1]: part for part in text.split("\n## ")[1:]}
    assert "table_sr_quick_set5_x4.png" in sections["table_sr_quick"]
    assert "table_denoising_quick_sigma25.png" in sections["table_denoising_quick"]
    assert "stop-wmv_sigma25" in sections["table_denoising_quick_stop-wmv"]
    assert "stop-wmv" not in sections["table_denoising_quick"]
    assert "[provenance](tables/table_sr_quick.json)" in sections["table_sr_quick"]
    assert "provenance" not in sections["table_denoising_quick"]
    assert not [s for s in sections if s.startswith("table_") and s not in
                ("table_sr_quick", "table_denoising_quick", "table_denoising_quick_stop-wmv")]


def test_corruptions_do_not_share_the_random_stream_of_the_code():
    from dip.fitting.settings import make_input
    from dip.problems.noise import bernoulli_mask

    z = make_input("noise", 3, (32, 32), generator=torch.Generator().manual_seed(0))
    target = signal(torch.zeros(3, 32, 32), "noise", seed=0)
    assert not torch.allclose(target, z[0] * 10, atol=1e-5)
    mask = bernoulli_mask((32, 32), 0.5, seed=0)
    assert not torch.equal(mask[0], (z[0, 0] * 10 >= 0.5).float())


def test_records_without_the_test_images_get_them_rebuilt_from_the_data_root(
        tmp_path, data_root, monkeypatch):
    """Committed paper-profile records leave gt.png and corrupted.png out (they restate the
    test images): figures rebuild both from the record's config, pixel for pixel."""
    from dip.data import load_image
    from dip.report import grids

    out = tmp_path / "rec"
    run(_compose("experiment=table_inpainting", "profile=smoke", "fit.num_iter=2",
                 "item=house", "progress=false", f"out_dir={out}"))
    stored = {name: load_image(out / name) for name in grids.DATA_PANELS}
    for name in grids.DATA_PANELS:
        (out / name).unlink()
    grids._rebuilt.cache_clear()
    for name in grids.DATA_PANELS:
        assert torch.equal(grids._read(str(out), name), stored[name])
    assert grids._read(str(out), "baseline_none.png") is None  # other files: not rebuilt
    grids._rebuilt.cache_clear()
    monkeypatch.setenv("DIP_DATA_ROOT", str(tmp_path / "nowhere"))
    with pytest.warns(UserWarning, match="could not be rebuilt"):
        assert grids._read(str(out), "gt.png") is None
    grids._rebuilt.cache_clear()


def test_save_figure_is_atomic(tmp_path):
    from dip.plots import plt, save_figure

    path = tmp_path / "fig.png"
    fig, _ = plt.subplots()
    assert save_figure(fig, path) == path and Image.open(path).format == "PNG"
    before = path.read_bytes()

    def broken(target, **kw):  # a save that fails half-way
        Path(target).write_bytes(b"half")
        raise OSError("disk full")

    fig, _ = plt.subplots()
    fig.savefig = broken
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["fig.png"]
