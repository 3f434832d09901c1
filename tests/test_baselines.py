"""Classical baselines: each improves on its corrupted input; shapes, masks, registry."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from dip import DipError
from dip.data import load_image
from dip.problems import baselines
from dip.problems import denoising as denoising_module
from dip.problems import inpainting as inpainting_module
from dip.problems import sr as sr_module
from dip.problems.denoising import denoising
from dip.problems.inpainting import inpainting
from dip.problems.metrics import psnr
from dip.problems.sr import sr


def smooth(channels: int = 3, size: int = 64) -> torch.Tensor:
    """A smooth synthetic C×H×W image in [0.1, 0.9]: gradients and low-frequency waves."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size),
                          indexing="ij")
    planes = [0.5 + 0.25 * torch.sin(2 * math.pi * (x + 0.5 * y + k / 3)) + 0.15 * (x - y)
              for k in range(channels)]
    return torch.stack(planes).clamp(0.1, 0.9).float()


def check_output(out: torch.Tensor, problem) -> None:
    assert out.shape == (1, *problem.out_shape)
    assert out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("channels", [1, 3])
def test_nlm_beats_noisy(channels):
    problem = denoising(gt=smooth(channels), sigma=25, seed=1)
    out = denoising_module.nlm(problem)
    check_output(out, problem)
    assert problem.score(out) > problem.score(problem.observation) + 3


@pytest.mark.parametrize("channels", [1, 3])
def test_cbm3d_beats_noisy(channels):
    pytest.importorskip("bm3d")
    problem = denoising(gt=smooth(channels), sigma=25, seed=1)
    out = denoising_module.cbm3d(problem)
    check_output(out, problem)
    assert problem.score(out) > problem.score(problem.observation) + 3


def test_cbm3d_without_bm3d_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # makes `import bm3d` fail
    problem = denoising(gt=smooth(1, 32), sigma=25)
    with pytest.raises(DipError, match=r"pip install -e \.\[bm3d\]"):
        denoising_module.cbm3d(problem)


@pytest.mark.parametrize("channels", [1, 3])
def test_biharmonic_fills_missing_and_keeps_known(channels):
    problem = inpainting(image=smooth(channels), p_missing=0.5, seed=2)
    out = inpainting_module.biharmonic(problem)
    check_output(out, problem)
    known = problem.extras["mask"].bool().expand(channels, -1, -1)
    assert torch.allclose(out[0][known], problem.observation[0][known], atol=1e-6)
    assert float(out[0][~known].mean()) > 0.3  # holes were zeros, now filled
    assert problem.score(out) > problem.score(problem.observation) + 10


@pytest.mark.parametrize("channels", [1, 3])
def test_bicubic_beats_nearest(channels):
    problem = sr(hr=smooth(channels), factor=4)
    near, cubic = sr_module.nearest(problem), sr_module.bicubic(problem)
    check_output(near, problem)
    check_output(cubic, problem)
    corrupted = problem.score(problem.corrupted_view())
    assert problem.score(near) == pytest.approx(corrupted)
    assert problem.score(cubic) > corrupted + 1


def test_wrong_task_is_refused():
    problem = sr(hr=smooth(1, 32), factor=4)
    with pytest.raises(DipError, match="for denoising"):
        denoising_module.nlm(problem)


def test_a_baseline_registered_beside_a_task_is_scored_in_its_records(tmp_path, monkeypatch):
    """A task registers its own baselines (dip.problems.baselines.register) from its own module;
    records of the task score them and save their outputs, nothing else changes."""
    from conftest import make_cfg, smooth_png

    from dip.runs.plan import run

    monkeypatch.setattr(baselines, "BASELINES", dict(baselines.BASELINES))
    monkeypatch.setattr(baselines, "TASK_BASELINES", {k: list(v) for k, v in
                                                      baselines.TASK_BASELINES.items()})
    baselines.register("flat", "fitting")(lambda p: torch.full_like(p.gt, 0.5))
    assert baselines.TASK_BASELINES["fitting"] == ["flat"]
    image = smooth_png(tmp_path / "a.png")
    metrics = run(make_cfg("profile=smoke", "progress=false", "task=fitting",
                           f"image={image}", "gt=" + str(image), "corrupted=true",
                           "fit.num_iter=2", f"out_dir={tmp_path / 'rec'}"))
    gt = load_image(image)[None]
    assert metrics["baselines"] == {"flat": pytest.approx(psnr(torch.full_like(gt, 0.5), gt))}
    assert (tmp_path / "rec" / "baseline_flat.png").is_file()


def test_run_baselines_scores_the_task_baselines(monkeypatch):
    monkeypatch.setitem(baselines.OPTIONAL, "cbm3d", "a_package_that_is_not_installed")
    problem = denoising(gt=smooth(1, 32), sigma=25)
    scores = baselines.run_baselines(problem)
    assert list(scores) == ["nlm"]  # cbm3d left out silently
    assert scores["nlm"] == pytest.approx(problem.score(denoising_module.nlm(problem)))
    upscaling = sr(hr=smooth(3, 32), factor=4)
    assert list(baselines.run_baselines(upscaling, ["bicubic", "nearest"])) == ["bicubic",
                                                                                "nearest"]


def test_run_baselines_without_ground_truth_is_nan():
    problem = denoising(noisy=smooth(1, 32), sigma=25)
    scores = baselines.run_baselines(problem, ["nlm"])
    assert list(scores) == ["nlm"] and math.isnan(scores["nlm"])


def test_run_baselines_unknown_name():
    problem = denoising(gt=smooth(1, 32), sigma=25)
    with pytest.raises(DipError, match="unknown baseline"):
        baselines.run_baselines(problem, ["median"])
