"""Shared fixtures and helpers of the tests: the data root, small synthetic images,
composed configs, the `dip` command in and out of process, small nets and fits.
Test modules import the helpers from here, never from each other."""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from dip.cli.main import main
from dip.fitting.monitors import Monitor
from dip.fitting.settings import FitSettings
from dip.nets.skip import skip
from dip.problems.denoising import denoising
from dip.report.paper import PAPER_ENV, default_paper_path
from dip.runs.config import compose_config
from dip.runs.plan import read_spec


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared test-image root ($DIP_DATA_ROOT, else ../shared/data beside the clone)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    root = Path(os.environ.get("DIP_DATA_ROOT", default))
    if not root.is_dir():
        pytest.skip(f"no shared data root at {root}; set DIP_DATA_ROOT")
    return root


@pytest.fixture
def tmp_image(tmp_path):
    """Factory writing a small random image and returning its path.

    ``tmp_image(name='image.png', mode='RGB', shape=(12, 16), seed=0, array=None)``:
    ``shape`` is (height, width); ``array`` (uint8/uint16, H×W or H×W×C) replaces the
    random pixels, in which case ``mode`` is only used to convert. Modes: 1, L, LA, P,
    RGB, RGBA, CMYK (save as .tif or .jpg), I;16.
    """

    def make(name="image.png", mode="RGB", shape=(12, 16), seed=0, array=None) -> Path:
        rng = np.random.default_rng(seed)
        if array is None:
            array = _random_pixels(rng, mode, shape)
        img = Image.fromarray(array)
        if img.mode != mode:
            img = img.convert(mode)
        path = tmp_path / name
        img.save(path)
        return path

    return make


def _random_pixels(rng: np.random.Generator, mode: str, shape: tuple[int, int]) -> np.ndarray:
    if mode == "I;16":
        return rng.integers(0, 65536, shape, dtype=np.uint16)
    channels = {"RGB": 3, "RGBA": 4, "P": 3, "CMYK": 3}.get(mode)
    size = shape if channels is None else (*shape, channels)
    return rng.integers(0, 256, size, dtype=np.uint8)


@pytest.fixture
def float64():
    """Tensors default to float64 for the test (equivalence checks without rounding)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


# --- helpers shared by the test modules ----------------------------------------

@functools.cache
def _composed(overrides: tuple[str, ...]):
    return compose_config(*overrides)


def make_cfg(*overrides):
    """The `dip` command's config for ``overrides``: composed once per test session (a
    copy each call, which the test may change)."""
    return copy.deepcopy(_composed(tuple(overrides)))


def spec_of(cfg, overrides=()):
    """The typed spec of a composed config (its identity resolved in place), as
    :func:`dip.runs.plan.prepare` reads it."""
    return read_spec(cfg, list(overrides))


def smooth_png(path: Path, size=(64, 64), channels=3) -> Path:
    h, w = size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    planes = [0.5 + 0.4 * np.cos(2 * np.pi * (c + 1) * (x + 0.5 * y)) for c in range(channels)]
    arr = (np.stack(planes, -1) * 255).round().astype(np.uint8)
    Image.fromarray(arr[..., 0] if channels == 1 else arr).save(path)
    return path


def dip_cli(*args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    env.pop("DIP_MEMORY_LIMIT_GB", None)
    return subprocess.run([sys.executable, "-m", "dip", "progress=false", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


FAST = ["profile=smoke", "progress=false", "baselines=false", "fit.num_iter=3"]


def dip_main(monkeypatch, *args) -> int:
    """``dip ARGS`` in this process; its exit status."""
    monkeypatch.setattr(sys, "argv", ["dip", *args])
    try:
        main()
    except SystemExit as done:
        return done.code or 0
    return 0


def smooth_image(channels=3, size=32, seed=0):
    """A smooth test image in [0.1, 0.9]: a few low-frequency cosines per channel."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = torch.zeros(channels, size, size)
    for c in range(channels):
        for _ in range(3):
            fx, fy, ph = (torch.rand(3, generator=g) * torch.tensor([3.0, 3.0, 6.28])).tolist()
            img[c] += torch.cos(2 * math.pi * (fx * x + fy * y) + ph)
    img = (img - img.amin()) / (img.amax() - img.amin())
    return 0.1 + 0.8 * img


def small_net(n_in=8, n_out=3):
    return skip(n_in, n_out, [16, 16, 16], [16, 16, 16], [4, 4, 4], upsample_mode="bilinear",
                pad="reflection")


def settings(**kw):
    base = dict(num_iter=150, lr=0.01, reg_noise_std=0.0, input_depth=8, record_every=10)
    base.update(kw)
    return FitSettings(**base)


class NanAt(nn.Module):
    """Wraps a net and returns NaN on chosen forward calls (counted from 0)."""

    def __init__(self, net, calls):
        super().__init__()
        self.net, self.calls, self.count = net, set(calls), 0

    def forward(self, x):
        out = self.net(x)
        self.count += 1
        return out * float("nan") if self.count - 1 in self.calls else out


class Crash(Exception):
    pass


class CrashAt(Monitor):
    """Raises on a chosen step (a killed process, in-process)."""

    def __init__(self, step):
        self.step = step

    def on_step(self, info):
        if info.step == self.step:
            raise Crash


def same(a, b):
    assert torch.equal(a.final, b.final)
    assert torch.equal(a.average, b.average)
    assert torch.equal(a.oracle, b.oracle) and a.iter_oracle == b.iter_oracle
    assert torch.equal(a.stop, b.stop) and a.iter_stop == b.iter_stop
    assert (a.status, a.steps, a.backtracks) == (b.status, b.steps, b.backtracks)
    cols = ["step", "loss", "psnr_obs", "psnr_gt", "psnr_gt_avg"]
    assert a.history[cols].equals(b.history[cols])


def batch_settings(**kw):
    base = dict(num_iter=12, lr=0.01, reg_noise_std=0.03, input_depth=8, record_every=3)
    base.update(kw)
    return FitSettings(**base)


RUNS = [dict(seed=0, lr=0.01), dict(seed=1, lr=0.003, reg_noise_std=0.0),
        dict(seed=2, lr=0.02, num_iter=9)]


def batch_problems(size=32):
    return [denoising(gt=smooth_image(size=size, seed=k), sigma=25, seed=k)
            for k in range(len(RUNS))]


def batch_nets(make=small_net):
    out = []
    for k in range(len(RUNS)):
        torch.manual_seed(10 + k)
        out.append(make())
    return out


# --- run records for the report's tests ----------------------------------------

PAPER_CSV = Path(os.environ.get(PAPER_ENV) or default_paper_path())



needs_paper = pytest.mark.skipif(not PAPER_CSV.is_file(), reason=f"no {PAPER_CSV}")



def write_record(root: Path, name: str, crop=None, **metrics) -> Path:
    record = {"experiment": None, "task": "inpainting", "profile": "quick", "sigma": 25,
              "factor": 4, "psnr_corrupted": 10.0, "psnr_final": 30.0, "psnr_avg": 30.5,
              "psnr_oracle": None, "iter_oracle": None, "num_iter": 1500, "seed": 0,
              "device": "cpu", "device_name": "cpu (x86_64, 2 threads)",
              "machine": {"cpu": "Some CPU 9000", "cpu_capability": "AVX2"},
              "commit": "0123456789abcdef", "seconds": 1.0, "status": "ok",
              "config_hash": name, "finished": "2025-03-01T10:00:00+0000", "baselines": {}}
    record.update(metrics)
    path = root / name
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps(record))
    (path / "config.yaml").write_text(f"seed: 0\ncrop: {'null' if crop is None else crop}\n")
    return path



def inpainting_record(root: Path, image: str, seed: int, final: float, profile="quick", **kw):
    return write_record(root, f"inp-{image}-{seed}-{profile}", experiment="table_inpainting",
                        image=f"paper/inpainting50/{image}_GT.png", image_id=image,
                        dataset="csc11", seed=seed, psnr_final=final, psnr_avg=final + 0.5,
                        profile=profile, baselines={"biharmonic": final - 2}, **kw)



def body(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["image"] != "mean"]


def study_record(root: Path, image: str, seed: int, psnr: float, *, lr=0.01, net="skip",
                 depth=5, profile="quick", overrides=None) -> Path:
    """A record of a study (tests of dip.report.study) as dip.runs.records writes it:
    metrics.json, config.yaml, history.csv (psnr_gt_avg: NaN, psnr - 2, psnr)."""
    path = root / f"{image}-{lr}-{net}{depth}-{seed}-{profile}"
    path.mkdir(parents=True)
    metrics = {"experiment": None, "task": "denoising", "image": f"denoising/{image}.png",
               "image_id": image, "profile": profile, "psnr_final": psnr - 1.0,
               "psnr_avg": psnr, "psnr_oracle": psnr + 1.0, "iter_oracle": 100 + seed,
               "psnr_stop": psnr - 1.0, "num_iter": 300, "seed": seed, "seconds": 2.0 + seed,
               "device": "cpu", "device_name": "cpu (x86_64, 2 threads)",
               "commit": "0123456789abcdef", "status": "ok", "config_hash": path.name}
    if overrides is not None:
        metrics["overrides"] = overrides
    (path / "metrics.json").write_text(json.dumps(metrics))
    config = {"image": f"denoising/{image}.png", "gt": f"denoising/{image}_GT.png",
              "seed": seed, "out_dir": str(path), "records": str(root), "threads": seed + 1,
              "progress": bool(seed), "device": "cpu", "data": {"root": f"/data{seed}"},
              "seeds": 1, "profile": {"name": profile},
              "net": {"name": net, "depth": depth, "pad": "reflection"},
              "fit": {"lr": lr, "num_iter": 300, "record_every": 100}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    pd.DataFrame({"step": [0, 100, 200], "psnr_gt": [10.0, psnr - 3, psnr - 1],
                  "psnr_gt_avg": [math.nan, psnr - 2, psnr]}).to_csv(path / "history.csv",
                                                                     index=False)
    return path
