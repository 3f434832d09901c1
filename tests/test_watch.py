"""Watching a fit: snapshots, the record's filmstrip and GIF, TensorBoard events."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from conftest import (
    FAST,
    Crash,
    CrashAt,
    dip_main,
    make_cfg,
    same,
    settings,
    small_net,
    smooth_image,
    smooth_png,
)
from PIL import Image

from dip import DipError
from dip.fitting.checkpoint import Checkpoint, load_checkpoint
from dip.fitting.loop import fit
from dip.fitting.snapshots import to_pixels
from dip.fitting.step import default_monitors
from dip.problems.denoising import denoising
from dip.runs.config import config_hash
from dip.runs.film import STRIP_FRAMES, strip_frames


def _fit(s, path=None, crash_at=None, extra=()):
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    torch.manual_seed(s.seed)
    monitors = default_monitors(problem, s) + list(extra)
    if crash_at is not None:
        monitors.insert(0, CrashAt(crash_at))
    if path is not None:
        monitors.append(Checkpoint(path, 10, key="test"))
    resume = None if path is None else load_checkpoint(path, key="test")
    return fit(small_net(), problem, s, monitors, resume=resume)


def _frames(result):
    return [(f.step, f.psnr, f.pixels.tobytes()) for f in result.snapshots]


def test_snapshots_change_nothing_and_come_every_n_steps():
    plain = _fit(settings(num_iter=30, reg_noise_std=0.03))
    watched = _fit(settings(num_iter=30, reg_noise_std=0.03, snapshot_every=4))
    same(watched, plain)
    assert plain.snapshots == []
    assert [f.step for f in watched.snapshots] == list(range(0, 30, 4))
    first = watched.snapshots[0]
    assert first.pixels.shape == (32, 32, 3) and first.pixels.dtype == np.uint8
    assert first.psnr == pytest.approx(watched.history["psnr_gt"].iloc[0], abs=1e-9)


def test_past_the_limit_every_other_snapshot_goes_and_the_period_doubles():
    result = _fit(settings(num_iter=40, snapshot_every=2, snapshot_limit=5))
    steps = [f.step for f in result.snapshots]
    assert len(steps) <= 5 and steps[0] == 0
    assert len(set(np.diff(steps))) == 1  # still evenly spaced
    assert steps == [0, 8, 16, 24, 32]  # 2 → 4 → 8


def test_a_large_output_is_kept_downscaled():
    x = torch.rand(1, 3, 600, 300)
    px = to_pixels(x, side=256)
    assert px.shape == (256, 128, 3)
    assert to_pixels(x[:, :, :100, :50], side=256).shape == (100, 50, 3)


def test_a_resumed_fit_keeps_its_snapshots_without_gap_or_duplicate(tmp_path):
    s = settings(num_iter=45, reg_noise_std=0.03, seed=3, snapshot_every=3)
    reference = _fit(s)
    path = tmp_path / "run.ckpt.pt"
    with pytest.raises(Crash):
        _fit(s, path, crash_at=27)
    resumed = _fit(s, path)
    assert resumed.resumed_at == 20
    assert _frames(resumed) == _frames(reference)  # the same steps, the same pixels


def test_a_checkpoint_without_snapshots_resumes_with_them(tmp_path):
    path = tmp_path / "run.ckpt.pt"
    with pytest.raises(Crash):
        _fit(settings(num_iter=30), path, crash_at=15)
    resumed = _fit(settings(num_iter=30, snapshot_every=5), path)
    assert [f.step for f in resumed.snapshots] == [10, 15, 20, 25]


def test_the_filmstrip_picks_evenly_spaced_frames_first_and_last():
    frames = _fit(settings(num_iter=40, snapshot_every=1, snapshot_limit=64)).snapshots
    picked = strip_frames(frames)
    assert len(picked) == STRIP_FRAMES
    assert picked[0].step == 0 and picked[-1].step == frames[-1].step


def test_a_record_has_its_filmstrip_and_gif(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image = smooth_png(tmp_path / "a.png")
    assert dip_main(monkeypatch, *FAST, f"image={image}", "fit.num_iter=9", "snapshot_every=2",
                    "stop=wmv", "stopping.window=2", "stopping.patience=100",
                    "records=recs") == 0
    (record,) = (tmp_path / "recs").iterdir()
    assert Image.open(record / "filmstrip.png").size[0] > 400
    gif = Image.open(record / "evolution.gif")
    assert gif.n_frames == 5 + 1  # steps 0, 2, 4, 6, 8, then the final output
    metrics = json.loads((record / "metrics.json").read_text())
    assert metrics["psnr_final"] is not None


def test_snapshots_are_off_in_smoke_and_no_part_of_a_run_identity():
    off = make_cfg("profile=smoke")
    assert off.snapshot_every == 0 and make_cfg("profile=quick").snapshot_every > 0
    on = make_cfg("profile=smoke", "snapshot_every=7", "snapshot_side=64",
                  "logger=tensorboard")
    assert config_hash(on) == config_hash(off)


def test_a_bad_snapshot_setting_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert dip_main(monkeypatch, *FAST, "snapshot_every=-1") == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: snapshot_every=-1 is invalid; give an integer >= 0"


# --- TensorBoard ----------------------------------------------------------------------

def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _hparams(acc) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: v.string_value if v.HasField("string_value") else v.number_value
            for k, v in info.hparams.items()}


def test_tensorboard_events_hold_the_curves_and_snapshots(tmp_path):
    pytest.importorskip("tensorboard")
    from dip.fitting.tensorboard import TensorBoard

    s = settings(num_iter=20, snapshot_every=5, stop="wmv", stop_window=3)
    _fit(s, extra=[TensorBoard(tmp_path / "tb", every=4, hparams={"lr": 0.01, "net": "s"})])
    acc = _events(tmp_path / "tb")
    assert set(acc.Tags()["scalars"]) == {"loss", "psnr/observation", "psnr/output",
                                          "psnr/average", "stopping/variance"}
    assert [e.step for e in acc.Scalars("loss")] == [0, 4, 8, 12, 16]
    assert [e.step for e in acc.Scalars("stopping/variance")] == [4, 8, 12, 16]  # W = 3
    assert [e.step for e in acc.Images("output")] == [0, 5, 10, 15]
    assert _hparams(acc) == {"lr": 0.01, "net": "s"}


def test_a_resumed_fit_continues_its_tensorboard_curves(tmp_path):
    pytest.importorskip("tensorboard")
    from dip.fitting.tensorboard import TensorBoard

    s = settings(num_iter=40, reg_noise_std=0.03, snapshot_every=5)
    path, tb = tmp_path / "run.ckpt.pt", tmp_path / "tb"
    first = TensorBoard(tb, every=2)
    with pytest.raises(Crash):
        _fit(s, path, crash_at=27, extra=[first])  # checkpoint at 20, events up to 26
    first.writer.close()  # what the killed process had written
    assert max(e.step for e in _events(tb).Scalars("loss")) == 26
    time.sleep(1.1)  # event files are ordered by their second
    reference = _fit(s)
    resumed = _fit(s, path, extra=[TensorBoard(tb, every=2)])
    acc = _events(tb)
    assert [e.step for e in acc.Scalars("loss")] == list(range(0, 40, 2))
    assert [e.step for e in acc.Images("output")] == list(range(0, 40, 5))
    logged = {e.step: e.value for e in acc.Scalars("psnr/output")}
    expected = dict(zip(reference.history["step"], reference.history["psnr_gt"], strict=True))
    assert [logged[k] for k in expected] == pytest.approx(list(expected.values()), abs=1e-5)
    assert resumed.resumed_at == 20


def test_a_sweep_writes_each_run_with_its_overrides_as_hyperparameters(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    monkeypatch.chdir(tmp_path)
    image = smooth_png(tmp_path / "a.png")
    assert dip_main(monkeypatch, "-m", *FAST, f"image={image}", "fit.lr=0.01,0.003",
                    "logger=tensorboard", "records=recs") == 0
    runs = sorted(p for p in (tmp_path / "recs" / "tb").iterdir())
    records = {p.name for p in (tmp_path / "recs").iterdir() if p.name != "tb"}
    assert {p.name for p in runs} == records and len(runs) == 2
    seen = [_hparams(_events(p)) for p in runs]
    assert sorted(h["fit.lr"] for h in seen) == [0.003, 0.01]
    assert all(h["task"] == "denoising" and h["seed"] == 0 for h in seen)
    assert not any("records" in h or "logger" in h or "progress" in h for h in seen)


def test_without_tensorboard_the_logger_is_one_line(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    assert dip_main(monkeypatch, *FAST, "logger=tensorboard") == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: logger=tensorboard needs the tensorboard package; install it with "
                   "pip install -e '.[tensorboard]', or drop logger=tensorboard")
    with pytest.raises(DipError):
        from dip.fitting.tensorboard import require

        require()


@pytest.mark.parametrize("engine", ["grouped", "threads"])
def test_batched_runs_take_the_snapshots_separate_fits_take(float64, engine):
    from conftest import RUNS, batch_nets, batch_problems, batch_settings

    from dip.fitting.batched import fit_batched

    sets = [batch_settings(**r, snapshot_every=2) for r in RUNS]
    seq = [fit(n, p, s) for n, p, s in zip(batch_nets(), batch_problems(), sets, strict=True)]
    bat = fit_batched(batch_nets(), batch_problems(), sets, engine=engine)
    for a, b in zip(seq, bat, strict=True):
        assert [f.step for f in a.snapshots] == [f.step for f in b.snapshots]
        assert all(np.abs(x.pixels.astype(int) - y.pixels.astype(int)).max() <= 1
                   for x, y in zip(a.snapshots, b.snapshots, strict=True))
    assert [len(r.snapshots) for r in bat] == [6, 6, 5]


def test_the_filmstrip_puts_the_stop_and_the_best_output_in_their_places():
    from dip.fitting.snapshots import Frame
    from dip.runs.film import BEST_GREEN, STOP_RED, Shot, strip_shots

    px = np.zeros((4, 4, 3), np.uint8)
    frames = [Frame(s, 20.0, px) for s in range(0, 1000, 100)]
    marks = [Shot(Frame(300, 25.0, px), "wmv stop, step 300", STOP_RED),
             Shot(Frame(450, 26.0, px), "best seen, step 450", BEST_GREEN),
             Shot(Frame(1000, 24.0, px), "best seen, step 1000", BEST_GREEN)]
    shots = strip_shots(frames, Frame(1000, 24.0, px), marks)
    assert [s.label for s in shots] == [
        "step 0", "step 100", "step 200", "wmv stop, step 300", "step 400",
        "best seen, step 450", "step 500", "step 600", "step 700", "step 800", "step 900",
        "final, step 1000"]  # the snapshot of step 300 gives way; a mark at the end is final
