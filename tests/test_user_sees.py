"""What a user sees: their settings honoured, one announcement before the first step, a
summary whose numbers agree, the baselines beside DIP, and failure as an exit status."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import dip_cli, make_cfg, smooth_png, spec_of
from PIL import Image

from dip.cli.main import summary
from dip.fitting.loop import fit
from dip.fitting.monitors import Progress
from dip.fitting.settings import FitSettings
from dip.fitting.step import default_monitors
from dip.launch.sweep import EXIT_DIVERGED, EXIT_FAILED, exit_status_of
from dip.problems.problem import Problem
from dip.runs.announce import announce
from dip.runs.config import identify
from dip.runs.plan import prepare, run

UNSCORED = ["image=skimage:camera", "corrupted=true", "progress=false"]


@pytest.mark.parametrize("given,cap,patience", [
    ([], 3072, 300),                           # automatic: 24 steps a pixel of 128²'s side
    (["fit.num_iter=1000"], 1000, 300),        # the user's number is the cap
    (["stopping.patience=50"], 3072, 50),      # the user's patience is kept
    (["stopping.cap=700"], 700, 300),
    (["fit.num_iter=900", "stopping.cap=700"], 700, 300),  # both given: the cap's own key
])
def test_a_setting_the_user_gives_is_the_setting_used(given, cap, patience):
    cfg = make_cfg(*UNSCORED, *given)
    identify(cfg, given)
    assert cfg.stop == "wmv"
    assert spec_of(cfg).step_cap((128, 128)) == cap and cfg.stopping.patience == patience


def test_an_explicit_num_iter_caps_a_run_without_ground_truth_end_to_end(tmp_path):
    image = smooth_png(tmp_path / "noisy.png")
    cfg = make_cfg("profile=quick", "net.width_scale=0.125", "threads=1", "baselines=false",
                   "progress=false", f"image={image}", "corrupted=true", "fit.num_iter=7",
                   f"out_dir={tmp_path / 'run'}")
    metrics = run(cfg)  # no overrides list: the number in the config is plain, so explicit
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["num_iter"] == saved["num_iter"] == metrics["steps"] == 7


def test_the_announcement_says_what_how_where_and_how_long(tmp_path):
    image = smooth_png(tmp_path / "noisy.png")
    plan = prepare(make_cfg("profile=smoke", f"image={image}", "corrupted=true", "threads=1",
                            "stopping.unscored.cap=auto", "progress=false"), [], write=False)
    line = announce(plan, per_step=0.5)
    assert "\n" not in line
    for part in (f"denoising of {image}", "64×64 pixels, H×W, 3 channels", "net skip",
                 "smoke profile", "wmv early stopping (patience 300)",
                 "at most 1536 steps (automatic: 24 per pixel of the image's side; "
                 "fit.num_iter=N sets it)", "on cpu with 1 thread", "up to 13 min (0.5 s a step)"):
        assert part in line, part
    fixed = prepare(make_cfg("profile=smoke", f"image={image}", "fit.num_iter=40", "seeds=2",
                             "progress=false"), [], write=False)
    timed = announce(fixed)  # the steps of a throw-away fit are timed
    assert "40 steps × 2 seeds" in timed and "about" in timed
    assert 0 < float(timed.split("(")[-1].split(" s a step")[0]) < 10


def test_a_resumed_progress_bar_continues_from_the_resumed_step(tmp_path):
    from dip.fitting.checkpoint import Checkpoint, load_checkpoint
    from dip.nets import build
    from dip.problems.operators import Identity

    gt = torch.rand(1, 3, 32, 32)
    problem = Problem("denoising", gt.clone(), Identity(), (3, 32, 32), gt=gt)
    s = FitSettings(num_iter=10, progress=True, record_every=1, backtrack_drop_db=1e9)
    path = tmp_path / "ckpt.pt"
    torch.manual_seed(0)
    first = default_monitors(problem, s) + [Checkpoint(path, 3)]
    fit(build("skip", 32, 3, num_channels_down=[4, 4], num_channels_up=[4, 4],
              num_channels_skip=[2, 2]), problem, FitSettings(**{**vars(s), "num_iter": 6}),
        first)  # stands for a fit killed after 6 of its 10 steps
    state = load_checkpoint(path)
    assert state is not None
    bar = Progress(10)
    torch.manual_seed(0)
    net = build("skip", 32, 3, num_channels_down=[4, 4], num_channels_up=[4, 4],
                num_channels_skip=[2, 2])
    monitors = [m if not isinstance(m, Progress) else bar for m in default_monitors(problem, s)]
    fit(net, problem, s, monitors, resume=state)
    assert state["completed"] == 6
    assert bar.bar.initial == state["completed"] and bar.bar.n == 10


def test_the_oracle_is_never_below_the_final_output():
    from dip.fitting.monitors import Oracle
    from dip.fitting.step import best_output

    gt = torch.rand(1, 3, 8, 8)
    problem = Problem("denoising", gt.clone(), torch.nn.Identity(), (3, 8, 8), gt=gt)
    oracle = Oracle()
    oracle.best, oracle.best_score, oracle.best_step = torch.zeros_like(gt), 3.0, 5
    best, step = best_output(problem, oracle, gt * 0.99, 40)  # the final output is better
    assert step == 40 and torch.equal(best, gt * 0.99)
    best, step = best_output(problem, oracle, torch.ones_like(gt) * 9, 40)
    assert step == 5 and torch.equal(best, oracle.best)
    assert best_output(Problem("denoising", gt, torch.nn.Identity(), (3, 8, 8)), oracle,
                       gt, 40) == (None, None)


def test_the_summary_names_each_output_and_the_baseline_beside_dip(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    out = tmp_path / "run"
    metrics = run(make_cfg("profile=smoke", f"image={image}", f"out_dir={out}",
                           "progress=false", "fit.num_iter=12"))
    assert metrics["psnr_oracle"] >= max(metrics["psnr_final"], -np.inf)
    text = summary(metrics)
    assert f"DIP final {metrics['psnr_final']:.2f} dB" in text
    assert f"averaged {metrics['psnr_avg']:.2f} dB" in text
    assert f"best output seen {metrics['psnr_oracle']:.2f} dB" in text
    assert f"NLM {metrics['baselines']['nlm']:.2f} dB" in text
    assert "(restored.png: the final output)" in text
    # the comparison figure has one more panel than without baselines: NLM's
    with_nlm = np.asarray(Image.open(out / "comparison.png")).shape[1]
    run(make_cfg("profile=smoke", f"image={image}", f"out_dir={tmp_path / 'plain'}",
                 "progress=false", "fit.num_iter=12", "baselines=false"))
    without = np.asarray(Image.open(tmp_path / "plain" / "comparison.png")).shape[1]
    assert with_nlm > without * 1.1


def test_a_run_at_its_cap_does_not_claim_an_early_stop():
    base = {"task": "denoising", "image": "x.png", "psnr_final": float("nan"), "stop": "wmv",
            "psnr_stop": float("nan"), "num_iter": 3072, "steps": 3072, "seconds": 9.0,
            "device": "cpu", "out_dir": "o", "restored": "average"}
    capped = summary({**base, "status": "ok", "iter_stop": 3031})
    assert "wmv found no stopping point before the cap of 3072 steps" in capped
    assert "stop at step" not in capped and "status" not in capped
    stopped = summary({**base, "status": "stopped", "steps": 1300, "iter_stop": 1000})
    assert "wmv stopped the run after 1300 steps; its output is step 1000's" in stopped


def test_exit_statuses_of_several_runs():
    assert exit_status_of(["ok", "skipped"]) == 0
    assert exit_status_of(["ok", "diverged"]) == EXIT_DIVERGED == 3
    assert exit_status_of(["diverged", "failed"]) == EXIT_FAILED == 2


@pytest.mark.slow
def test_a_diverged_run_exits_non_zero_after_announcing_itself(tmp_path):
    smooth_png(tmp_path / "img.png")
    proc = dip_cli("image=img.png", "profile=smoke", "fit.lr=1e9", "fit.num_iter=30",
                   "fit.max_backtracks=3", "out_dir=run", cwd=tmp_path)
    assert proc.returncode == EXIT_DIVERGED, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("denoising of img.png (64×64 pixels") and "30 steps" in lines[0]
    assert "status diverged (exit status 3)" in lines[1]
    assert (tmp_path / "run" / "metrics.json").is_file()  # the record is kept
