"""Several GPUs on one machine: a sweep's runs go round robin to the visible GPUs
(dip.launch.device.place_device), their records say which, and their identities do not."""

from __future__ import annotations

import threading

import pytest
import torch
from conftest import make_cfg, smooth_png
from omegaconf import open_dict

from dip.launch.device import spread_device
from dip.report.configs import flat_config
from dip.runs import plan as run_module
from dip.runs.config import config_hash, job_number, place_device


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine sees ``n`` CUDA GPUs."""

    def set_count(n: int):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return set_count


def test_jobs_side_by_side_go_round_robin_to_the_gpus(gpus):
    gpus(3)
    assert [spread_device("auto", job, jobs=2) for job in range(7)] == [
        "cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    assert spread_device("cuda", 4, jobs=8) == "cuda:1"


@pytest.mark.parametrize("setting,count,jobs", [
    ("cpu", 3, 4),      # asked for the CPU
    ("cuda:2", 3, 4),   # asked for one GPU
    ("auto", 1, 4),     # one GPU: nothing to spread
    ("auto", 0, 4),     # no GPU
    ("auto", 3, 1),     # one job at a time (launcher=basic)
])
def test_a_device_is_kept_when_there_is_nothing_to_spread(gpus, setting, count, jobs):
    gpus(count)
    assert spread_device(setting, 5, jobs) == setting


def test_a_placed_run_records_its_gpu_and_keeps_its_identity(gpus):
    gpus(2)
    cfg = make_cfg("profile=smoke", "image=skimage:camera")
    before = config_hash(cfg)
    place_device(cfg, job=3, jobs=2)
    assert (cfg.device, cfg.device_setting) == ("cuda:1", "auto")
    assert config_hash(cfg) == before  # a rerun finds the record whichever GPU fitted it
    assert flat_config({"device": "cuda:1", "device_setting": "auto"}) == \
        flat_config({"device": "auto"})  # tables see one setting


def test_outside_a_multirun_a_run_is_not_placed(gpus):
    gpus(4)
    assert job_number() is None
    cfg = make_cfg("profile=smoke")
    assert place_device(cfg).device == "auto" and "device_setting" not in cfg


def test_a_joblib_job_is_placed_by_its_hydra_job_number(gpus, monkeypatch, tmp_path):
    """prepare() places the job (as in a joblib worker: its number from Hydra, the
    launcher's n_jobs side by side) before it takes the run's identity."""
    gpus(2)
    monkeypatch.setattr("dip.runs.config.job_number", lambda: 5)
    monkeypatch.setattr("dip.runs.config.parallel_jobs", lambda: 2)
    monkeypatch.setattr(run_module, "check_fit_memory", lambda cfg, problem: 0)
    image = smooth_png(tmp_path / "a.png")
    cfg = make_cfg("profile=smoke", f"image={image}", f"records={tmp_path / 'runs'}",
                   "threads=auto")
    plan = run_module.prepare(cfg, [])
    try:
        assert plan.spec.device == "cuda:1" and plan.settings().device == "cuda:1"
        assert plan.spec.threads is None  # on a GPU the CPU threads are torch's default
        unplaced, asked_for_gpu_1 = cfg.copy(), cfg.copy()  # as prepare() placed it
        with open_dict(unplaced), open_dict(asked_for_gpu_1):
            unplaced.device = unplaced.pop("device_setting")
            asked_for_gpu_1.pop("device_setting")
        assert plan.out.name == config_hash(unplaced) != config_hash(asked_for_gpu_1)
    finally:
        plan.release()


def test_the_batched_launcher_fits_each_gpu_in_a_lane_of_its_own(gpus, monkeypatch, tmp_path):
    """Four runs on two GPUs: cuda:0, cuda:1, cuda:0, cuda:1, each GPU's group fitted in
    its own thread, both at once (the barrier breaks if the lanes ran in turn)."""
    from dip.runs import batched as run_batched

    gpus(2)
    monkeypatch.setattr(run_module, "check_fit_memory", lambda cfg, problem: 0)
    barrier = threading.Barrier(2, timeout=20)
    lanes = {}

    def fake_fit_groups(members, eng, per_run, batch_runs, workers, outcomes, fitted):
        barrier.wait()
        devices = {str(m[1].spec.device) for m in members}
        lanes[threading.get_ident()] = (devices, sorted(m[0] for m in members), eng)
        for m in members:
            outcomes[m[0]] = {"device": str(m[1].spec.device)}

    monkeypatch.setattr(run_batched, "_fit_groups", fake_fit_groups)
    image = smooth_png(tmp_path / "a.png")
    cfgs = [make_cfg("profile=smoke", f"image={image}", f"seed={k}",
                     f"records={tmp_path / 'runs'}") for k in range(4)]
    outcomes = run_batched.run_batch(cfgs, batch_runs=4)
    assert [o["device"] for o in outcomes] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert sorted(lanes.values(), key=lambda lane: lane[1]) == [({"cuda:0"}, [0, 2], "grouped"),
                                      ({"cuda:1"}, [1, 3], "grouped")]
    assert threading.get_ident() not in lanes
