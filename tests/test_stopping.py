"""Early stopping without ground truth: ES-WMV and ES-EMV on synthetic output sequences."""

import math

import pytest
import torch
from conftest import settings, small_net, smooth_image

from dip.fitting.loop import fit
from dip.fitting.monitors import StepInfo
from dip.fitting.stopping import EMV, WMV, make_stopper
from dip.problems.denoising import denoising


def feed(monitor, outputs):
    """Run a monitor over a sequence of outputs; return the info and the step it stopped at."""
    info = StepInfo(problem=None, net=None, optimizer=None)
    for step, out in enumerate(outputs):
        info.begin(step, out, None, torch.tensor(0.0))
        monitor.on_step(info)
        if info.status != "ok":
            return info, step
    return info, None


def valley(n, centre, shape=(1, 2, 4, 4), seed=0):
    """Outputs whose spread around a fixed image is smallest at step ``centre``."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(shape, generator=g)
    return [base + (0.05 + abs(t - centre) / n) * torch.randn(shape, generator=g)
            for t in range(n)]


def window_variance(outputs, t, w):
    x = torch.stack(outputs[t - w + 1:t + 1]).double().reshape(w, -1)
    return float(((x - x.mean(0)) ** 2).sum(1).mean() / x.shape[1])


def test_wmv_matches_the_windowed_variance_and_keeps_its_minimum():
    outputs, w = valley(120, centre=60), 10
    wmv = WMV(window=w, patience=1000)
    values = []
    info = StepInfo(problem=None, net=None, optimizer=None)
    for step, out in enumerate(outputs):
        info.begin(step, out, None, torch.tensor(0.0))
        wmv.on_step(info)
        values.append(wmv.last_value)
    assert values[:w - 1] == [None] * (w - 1)  # undefined until the window is full
    brute = [window_variance(outputs, t, w) for t in range(w - 1, len(outputs))]
    assert values[w - 1:] == pytest.approx(brute, rel=1e-9, abs=1e-12)
    best = w - 1 + min(range(len(brute)), key=brute.__getitem__)
    assert wmv.best_step == best and 60 <= best <= 60 + w  # the window straddles the valley
    assert torch.equal(wmv.best, outputs[best])
    assert info.status == "ok"


def test_wmv_stops_after_patience_steps_without_a_new_minimum():
    outputs, w, p = valley(200, centre=50), 10, 30
    wmv = WMV(window=w, patience=p)
    info, stopped = feed(wmv, outputs)
    assert stopped == wmv.best_step + p
    assert info.status == "stopped"
    assert 50 <= wmv.best_step <= 60


def test_wmv_skips_rolled_back_steps():
    wmv = WMV(window=2, patience=5)
    info = StepInfo(problem=None, net=None, optimizer=None)
    info.begin(0, torch.zeros(1, 1, 2, 2), None, torch.tensor(0.0))
    info.rollback = True
    wmv.on_step(info)
    assert wmv.last_value is None and wmv._count == 0


def test_emv_recurrence_matches_a_hand_computation():
    # alpha 0.5 (warm-up 2 steps), N = 2 values:
    # x0 = (0, 0): ema = (0, 0), emv = 0
    # x1 = (2, 0): δ = (2, 0), ema = (1, 0), emv = 0.5·(0 + 0.5·4/2) = 0.5
    # x2 = (2, 2): δ = (1, 2), ema = (1.5, 1), emv = 0.5·(0.5 + 0.5·5/2) = 0.875
    # x3 = (1.5, 1): δ = (0, 0), ema unchanged, emv = 0.5·0.875 = 0.4375
    xs = [torch.tensor(v).reshape(1, 1, 1, 2) for v in
          ([0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [1.5, 1.0])]
    emv = EMV(alpha=0.5, patience=10)
    seen = []
    info = StepInfo(problem=None, net=None, optimizer=None)
    for step, x in enumerate(xs):
        info.begin(step, x, None, torch.tensor(0.0))
        emv.on_step(info)
        seen.append((emv.last_value, emv._emv))
    assert [s[1] for s in seen] == pytest.approx([0.0, 0.5, 0.875, 0.4375])
    assert [s[0] for s in seen] == [None, None, pytest.approx(0.875), pytest.approx(0.4375)]
    assert emv._ema.flatten().tolist() == [1.5, 1.0]
    assert emv.best_step == 3 and torch.equal(emv.best, xs[3])


def test_emv_stops_near_the_valley():
    emv = EMV(alpha=0.1, patience=40)
    info, stopped = feed(emv, valley(300, centre=100))
    assert info.status == "stopped" and stopped == emv.best_step + 40
    assert 80 <= emv.best_step <= 130


def test_make_stopper():
    assert make_stopper("fixed") is None
    assert isinstance(make_stopper("wmv", window=7), WMV)
    assert isinstance(make_stopper("emv", alpha=0.2), EMV)
    with pytest.raises(ValueError, match="unknown stop mode"):
        make_stopper("oracle")


def test_fit_with_wmv_ends_patience_steps_after_the_detected_point():
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    torch.manual_seed(0)
    result = fit(small_net(), problem, settings(num_iter=400, reg_noise_std=0.03, stop="wmv",
                                                stop_window=10, stop_patience=20))
    assert result.status == "stopped"
    assert result.steps == result.iter_stop + 20 + 1 < 400  # the stopping step still updates
    assert result.stop.shape == result.final.shape
    assert math.isfinite(problem.score(result.stop))


def test_fixed_schedule_reports_the_final_output_as_the_stop():
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    torch.manual_seed(0)
    result = fit(small_net(), problem, settings(num_iter=12))
    assert result.iter_stop == result.steps == 12 and result.status == "ok"
    assert torch.equal(result.stop, result.final)


def test_the_averaged_output_at_the_stop_is_kept(tmp_path):
    """stop=wmv keeps the running average at the detected step beside the raw output;
    a record scores and saves both."""
    from conftest import make_cfg, smooth_png

    from dip.runs.plan import run

    image = smooth_png(tmp_path / "a.png")
    m = run(make_cfg("profile=smoke", "progress=false", "baselines=false", f"image={image}",
                     "fit.num_iter=30", "stop=wmv", "stopping.window=3",
                     "stopping.patience=5", f"out_dir={tmp_path / 'rec'}"))
    assert m["status"] == "stopped" and m["iter_stop"] < m["steps"]
    assert m["psnr_stop_avg"] != m["psnr_stop"] and m["psnr_stop_avg"] != m["psnr_avg"]
    assert (tmp_path / "rec" / "restored_stop_avg.png").is_file()
    fixed = run(make_cfg("profile=smoke", "progress=false", "baselines=false",
                         f"image={image}", "fit.num_iter=3", f"out_dir={tmp_path / 'f'}"))
    assert fixed["psnr_stop_avg"] == fixed["psnr_avg"]
