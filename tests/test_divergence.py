"""A run whose output fits its observation far worse than a flat image is 'diverged':
in fit, in the grouped batched engine, in the record and in the paper tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import (
    PAPER_CSV,
    body,
    make_cfg,
    needs_paper,
    settings,
    small_net,
    smooth_image,
    smooth_png,
    write_record,
)
from PIL import Image

from dip.fitting.batched import fit_batched
from dip.fitting.divergence import FLAT_MARGIN_DB, worse_than_flat
from dip.fitting.loop import fit
from dip.problems.denoising import denoising
from dip.problems.inpainting import inpainting
from dip.problems.sr import sr
from dip.report import tables
from dip.runs.plan import run

PROBLEMS = {
    "denoising": lambda gt: denoising(gt=gt, sigma=25, seed=0),
    "inpainting": lambda gt: inpainting(image=gt, p_missing=0.5, seed=0),
    "sr": lambda gt: sr(hr=gt, factor=2),
}


def _smoke(tmp_path, name, *overrides):
    image = smooth_png(tmp_path / "img.png")
    out = tmp_path / name
    run(make_cfg("profile=smoke", f"image={image}", f"out_dir={out}", "progress=false",
                 "baselines=false", *overrides))
    return json.loads((out / "metrics.json").read_text())


def test_a_blown_up_run_is_diverged_in_its_record(tmp_path):
    saved = _smoke(tmp_path, "lr", "fit.lr=1e6", "fit.num_iter=20")
    assert saved["status"] == "diverged"
    assert saved["psnr_obs_final"] < 8  # saturated output; a flat image gets ~10.6 dB


@pytest.mark.parametrize("task,extra", [("denoising", []), ("inpainting", []),
                                        ("sr", ["factor=2"])])
def test_a_normal_smoke_run_stays_ok(tmp_path, task, extra):
    saved = _smoke(tmp_path, task, f"task={task}", *extra)
    assert saved["status"] == "ok"


@pytest.mark.parametrize("task,extra", [("denoising", []), ("inpainting", []),
                                        ("sr", ["factor=2"])])
def test_a_short_fit_of_a_dark_low_contrast_image_is_not_diverged(tmp_path, task, extra):
    # its flat image is within a few dB of the observation, and the output, still near
    # its start, far below that: not worse than flat *and* worse than where it started
    dark = (np.asarray(Image.open(smooth_png(tmp_path / "src.png")), float) * 0.1 + 20)
    Image.fromarray(dark.round().astype(np.uint8)).save(tmp_path / "dark.png")
    out = tmp_path / "run"
    run(make_cfg("profile=smoke", f"image={tmp_path / 'dark.png'}", f"out_dir={out}",
                 "progress=false", "baselines=false", f"task={task}", *extra))
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["status"] == "ok"


def _flat(problem, shift=0.0):
    """The least-squares flat image of ``problem`` (per channel), plus ``shift``."""
    a1 = problem.operator(torch.ones(1, *problem.out_shape))
    c = (a1 * problem.observation).sum((0, 2, 3)) / (a1 * a1).sum((0, 2, 3))
    return (c + shift).view(1, -1, 1, 1).expand(1, *problem.out_shape).contiguous()


@pytest.mark.parametrize("task", sorted(PROBLEMS))
def test_the_flat_image_at_c_is_the_reference(task):
    problem = PROBLEMS[task](smooth_image(size=32))
    assert not worse_than_flat(problem, _flat(problem), margin_db=1e-6)
    assert worse_than_flat(problem, _flat(problem, 0.05), margin_db=1e-6)  # c is the best
    assert not worse_than_flat(problem, _flat(problem, 0.05))  # within the margin
    if task == "inpainting":  # c is the mean of the known pixels
        mask = problem.extras["mask"].bool().expand(3, 32, 32)
        known = problem.observation[0][mask].view(3, -1).mean(1)
        torch.testing.assert_close(_flat(problem)[0, :, 0, 0], known)


@pytest.mark.parametrize("task", sorted(PROBLEMS))
def test_a_saturated_random_output_is_worse_than_flat(task):
    problem = PROBLEMS[task](smooth_image(size=32))
    g = torch.Generator().manual_seed(0)
    saturated = (torch.rand(1, *problem.out_shape, generator=g) > 0.5).float()
    assert worse_than_flat(problem, saturated)
    assert not worse_than_flat(problem, problem.gt)  # the truth is far better than flat
    assert worse_than_flat(problem, torch.full((1, *problem.out_shape), math.nan))
    assert FLAT_MARGIN_DB == 3.0


def test_the_grouped_engine_agrees_with_fit():
    sets = [settings(num_iter=10, lr=lr, seed=k, backtrack_drop_db=math.inf)
            for k, lr in enumerate((1e6, 0.01))]

    def problems():
        return [denoising(gt=smooth_image(seed=k), sigma=25, seed=k) for k in range(2)]

    def nets():
        torch.manual_seed(0)
        return [small_net() for _ in sets]

    single = [fit(n, p, s) for n, p, s in zip(nets(), problems(), sets, strict=True)]
    grouped = fit_batched(nets(), problems(), sets, engine="grouped")
    assert [r.status for r in single] == [r.status for r in grouped] == ["diverged", "ok"]
    assert single[0].backtracks == 0 and bool(torch.isfinite(single[0].final).all())
    assert worse_than_flat(problems()[0], grouped[0].final)  # the flat-image rule said so


@needs_paper
def test_tables_mark_diverged_runs(tmp_path):
    root = tmp_path / "runs"
    common = dict(experiment="table_denoising", task="denoising", sigma=25)
    for image, seed, final, status in (("F16", 0, 5.0, "diverged"), ("F16", 1, 29.0, "ok"),
                                       ("kodim01", 0, 28.0, "ok"), ("kodim02", 0, 27.0, None)):
        extra = {} if status is None else {"status": status}
        record = write_record(root, f"{image}-{seed}", image=f"{image}.png", seed=seed,
                              psnr_final=final, psnr_avg=final, **common, **extra)
        if status is None:  # an older record without a status field counts as ok
            path = record / "metrics.json"
            path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items()
                                        if k != "status"}))
    df = tables.table("denoising", "quick", root=root, paper=PAPER_CSV)
    assert list(df["image"]) == ["F16", "kodim01", "kodim02", "mean"]
    assert df.attrs["diverged"] == [1, 0, 0, 1]  # the mean row averages F16 in
    assert body(df).set_index("image").loc["F16", "run: DIP final"] == 17.0
    lines = tables.markdown(df).splitlines()
    f16, kodim = (next(ln for ln in lines if ln.startswith(f"| 25 | {i} ")) for i in
                  ("F16", "kodim01"))
    assert "| 17.00 ± 16.97† |" in f16 and "†" not in kodim
    assert f"| {df.loc[0, 'run: noisy']:.2f} |" in f16  # only the DIP values are marked
    assert "†" in next(ln for ln in lines if "mean" in ln)
    assert any(ln.startswith("- † diverged: 1 run(s) (status diverged") for ln in lines)
    assert r"17.00 $\pm$ 16.97$^\dagger$" in tables.latex(df)
    clean = tmp_path / "clean"
    write_record(clean, "F16", image="F16.png", psnr_final=29.0, **common)
    ok = tables.table("denoising", "quick", root=clean, paper=PAPER_CSV)
    assert ok.attrs["diverged"] == [0, 0] and "†" not in tables.markdown(ok)
