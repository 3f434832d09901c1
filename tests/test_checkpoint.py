"""Checkpoints: a fit interrupted after a checkpoint resumes to the uninterrupted result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import Crash, CrashAt, NanAt, same, settings, small_net, smooth_image, smooth_png
from PIL import Image

from dip import DipError
from dip.fitting.checkpoint import Checkpoint, discard, load_checkpoint
from dip.fitting.loop import fit
from dip.fitting.monitors import History
from dip.fitting.step import default_monitors
from dip.problems.denoising import denoising


def run_fit(s, path=None, every=10, crash_at=None, nan_calls=()):
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    torch.manual_seed(s.seed)
    net = small_net()
    if nan_calls:
        net = NanAt(net, nan_calls)
    monitors = default_monitors(problem, s)
    if crash_at is not None:
        monitors.insert(0, CrashAt(crash_at))
    if path is not None:
        monitors.append(Checkpoint(path, every, key="test"))
    return fit(net, problem, s, monitors, resume=None if path is None else
               load_checkpoint(path, key="test"))


@pytest.mark.parametrize("stop", ["fixed", "wmv", "emv"])
def test_resumed_fit_is_bit_identical(tmp_path, stop):
    s = settings(num_iter=45, reg_noise_std=0.03, seed=3, stop=stop, stop_window=5,
                 stop_patience=1000, stop_alpha=0.2)
    reference = run_fit(s)
    path = tmp_path / "run.ckpt.pt"
    with pytest.raises(Crash):
        run_fit(s, path, every=10, crash_at=27)
    assert torch.load(path, weights_only=False)["completed"] == 20
    resumed = run_fit(s, path, every=10)
    assert resumed.resumed_at == 20 and reference.resumed_at is None
    same(resumed, reference)
    assert not list(tmp_path.glob("*.tmp-*"))  # saves are atomic


def test_resume_keeps_the_backtracking_state(tmp_path):
    s = settings(num_iter=40, seed=1)
    nans = {12, 25, 26}  # forward calls that return NaN: rollbacks before and after the save
    reference = run_fit(s, nan_calls=nans)
    path = tmp_path / "run.ckpt.pt"
    with pytest.raises(Crash):
        run_fit(s, path, every=10, crash_at=21, nan_calls=nans)
    # the resumed process counts forward calls afresh: shift the NaNs by the calls done
    # before the checkpoint (20 steps + 1 rollback)
    resumed = run_fit(s, path, every=10, nan_calls={n - 21 for n in nans if n > 20})
    assert reference.backtracks == resumed.backtracks == 3
    same(resumed, reference)


def test_a_finished_fit_resumes_to_its_result_without_stepping(tmp_path):
    s = settings(num_iter=15, seed=2, stop="wmv", stop_window=3, stop_patience=4)
    path = tmp_path / "run.ckpt.pt"
    first = run_fit(s, path, every=100)  # saved once, at the end
    again = run_fit(s, path, every=100)
    assert again.resumed_at == first.steps
    same(again, first)


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    path = tmp_path / "run.ckpt.pt"
    run_fit(settings(num_iter=3), path, every=1)
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    s = settings(num_iter=3)
    with pytest.raises(DipError, match="another run"):
        load_checkpoint(path, key="other")
    other = load_checkpoint(path)  # no key: the caller vouches for it
    with pytest.raises(DipError, match="has no state for History#1"):  # other monitors
        fit(small_net(), problem, s, [History(10), History(5)], resume=other)
    discard(path)
    assert not path.exists()


def test_a_failed_save_warns_and_the_fit_goes_on(tmp_path):
    (tmp_path / "a-file").write_text("")
    path = tmp_path / "a-file" / "run.ckpt.pt"  # its folder cannot be made
    with pytest.warns(UserWarning, match="without checkpoints"):
        result = run_fit(settings(num_iter=5), path, every=2)
    assert result.steps == 5 and not path.exists()


# ------------------------------------------------------- a killed `dip` process resumes

def dip_run(args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "dip", "progress=false", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    image = smooth_png(tmp_path / "img.png", size=(32, 32))
    args = ["profile=smoke", f"image={image}", "net.num_channels_down=[64,64]",
            "net.num_channels_up=[64,64]", "net.num_channels_skip=[32,32]", "fit.num_iter=200",
            "checkpoint_every=20", "stop=wmv", "stopping.window=10", "stopping.patience=1000",
            "baselines=false", "seed=4"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full = dip_run([*args, f"out_dir={tmp_path / 'a' / 'run'}"], tmp_path)
    assert full.wait(timeout=300) == 0, full.stderr.read()

    out = tmp_path / "b" / "run"
    victim = dip_run([*args, f"out_dir={out}"], tmp_path)
    deadline = time.monotonic() + 240
    while not list(out.glob(".*.ckpt.pt")):
        assert victim.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert not (out / "metrics.json").exists()  # killed mid-run: no record

    resumed = dip_run([*args, f"out_dir={out}"], tmp_path)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert "resumed from step" in resumed.stdout.read()
    a = json.loads((tmp_path / "a" / "run" / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert a["resumed_at"] is None and b["resumed_at"] >= 20
    for key in ("psnr_final", "psnr_avg", "psnr_oracle", "iter_oracle", "psnr_stop",
                "iter_stop", "steps", "status", "config_hash"):
        assert a[key] == b[key], key
    for name in ("restored.png", "restored_avg.png", "restored_stop.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / "run" / name)),
                              np.asarray(Image.open(out / name))), name
    assert not list((tmp_path / "b").glob(".*")) and not list(out.glob(".*"))  # deleted
