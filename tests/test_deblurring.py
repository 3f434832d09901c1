"""Deblurring, the worked example of a task: the blur equals scipy's, the baselines
deconvolve with the blur's own borders, and the task runs through every front door."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.ndimage as ndimage
import torch
from conftest import FAST, make_cfg, smooth_png, spec_of
from skimage import restoration

import dip
from dip import DipError
from dip.data.crops import center_crop
from dip.data.specs import read
from dip.problems.deblurring import GaussianBlur, deblurring, richardson_lucy, wiener
from dip.runs.plan import run


def test_the_blur_is_scipys_gaussian_filter_with_mirrored_borders():
    x = torch.rand(1, 2, 20, 24, dtype=torch.float64)
    ours = GaussianBlur(1.6).double()(x)[0].numpy()
    ref = np.stack([ndimage.gaussian_filter(x[0, c].numpy(), 1.6, mode="mirror",
                                            truncate=3.0) for c in range(2)])
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_the_observation_is_the_blurred_image_plus_seeded_noise():
    gt = torch.rand(3, 32, 32)
    problem = deblurring(gt=gt, blur_sigma=1.6, noise_std=0.01, seed=4)
    noise = problem.observation - GaussianBlur(1.6)(gt[None])
    assert 0.008 < float(noise.std()) < 0.012
    assert torch.equal(problem.observation, deblurring(gt=gt, seed=4).observation)
    assert not torch.equal(problem.observation, deblurring(gt=gt, seed=5).observation)
    clean = deblurring(gt=gt, noise_std=0.0)
    assert torch.equal(clean.observation, clean.operator(clean.gt))


def _frame(x: torch.Tensor, width: int = 8) -> torch.Tensor:
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[..., width:-width, width:-width] = False
    return x[mask]


def _db(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * float(torch.log10(((a - b) ** 2).mean()))


@pytest.mark.parametrize("baseline", [richardson_lucy, wiener])
def test_the_baselines_deconvolve_up_to_the_borders(baseline):
    """Better than the blurred input everywhere, its 8-pixel frame included, and far
    better at the frame than scikit-image's own borders (zeros for Richardson-Lucy,
    circular for Wiener)."""
    problem = deblurring(gt=center_crop(read("skimage:camera"), 96), seed=0)
    out = baseline(problem)
    blurred = problem.observation
    assert problem.score(out) > problem.score(blurred) + 2
    assert _db(_frame(out), _frame(problem.gt)) > _db(_frame(blurred), _frame(problem.gt)) + 2
    k = problem.operator.kernel.double().numpy()
    plane = problem.observation[0, 0].double().numpy()
    raw = (restoration.richardson_lucy(plane, np.outer(k, k), num_iter=30)
           if baseline is richardson_lucy else
           restoration.unsupervised_wiener(plane, np.outer(k, k), rng=0)[0])
    naive = torch.from_numpy(raw).float()[None, None]
    assert _db(_frame(out), _frame(problem.gt)) > _db(_frame(naive), _frame(problem.gt)) + 5


def test_a_deblurring_run_writes_its_record_with_its_settings(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    metrics = run(make_cfg(*FAST, "task=deblurring", f"image={image}", "blur_sigma=2.0",
                           "baselines=true", f"out_dir={tmp_path / 'run'}"))
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == saved["task"] == "deblurring"
    assert (saved["blur_sigma"], saved["noise_std"]) == (2.0, 0.01)
    assert set(saved["baselines"]) == {"richardson_lucy", "wiener"}
    assert (tmp_path / "run" / "baseline_wiener.png").is_file()


def test_restore_takes_deblurring_and_its_settings_by_keyword():
    out = dip.restore("skimage:camera", "deblurring", profile="smoke", crop=64,
                      noise_std=0.02, overrides=["fit.num_iter=3"])
    assert out.image.shape == (1, 64, 64) and out.metrics["noise_std"] == 0.02
    assert np.isfinite(out.metrics["psnr_final"])


@pytest.mark.parametrize("setting,message", [
    ("blur_sigma=0", "blur_sigma=0 is invalid; give a std in pixels > 0"),
    ("noise_std=-1", "noise_std=-1 is invalid; give a std >= 0"),
    ("blur_sigma=wide", "blur_sigma=wide is invalid; give a std in pixels > 0"),
])
def test_bad_settings_are_one_line(setting, message):
    with pytest.raises(DipError, match=message):
        spec_of(make_cfg(*FAST, "task=deblurring", setting))


def test_the_task_declares_its_own_table_and_experiment():
    """`make table-deblurring` needs no experiment file: conf/experiment/table_task.yaml
    runs the images the task's config names, and the report reads its declaration."""
    from dip.report.declared import table_experiments, table_spec

    assert "table_deblurring" in table_experiments()
    spec = table_spec("deblurring")
    assert [c.record for c in spec.columns] == ["psnr_corrupted", "baseline_richardson_lucy",
                                                "baseline_wiener", "psnr_final", "psnr_avg"]
    cfg = make_cfg("experiment=table_task", "task=deblurring", "profile=quick")
    assert (cfg.name, cfg.image, cfg.crop) == ("table_deblurring", "set12/01.png", 128)


@pytest.mark.slow
def test_make_table_deblurring_builds_a_table_from_its_declaration(tmp_path, data_root):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        ["make", "-s", "table-deblurring", "PROFILE=smoke", "JOBS=1",
         "ARGS=item=01.png,07.png fit.num_iter=3", f"RECORDS={tmp_path / 'runs'}",
         f"TABLES={tmp_path / 'tables'}", f"FIGS={tmp_path / 'figs'}",
         f"BIN={Path(sys.executable).parent}", f"STAMP={sys.executable}"],
        cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    table = (tmp_path / "tables" / "table_deblurring_smoke.csv").read_text()
    assert "Richardson-Lucy" in table and "01" in table and "07" in table
    assert (tmp_path / "figs" / "table_deblurring_smoke.png").is_file()
