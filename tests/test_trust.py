"""Runs that can be trusted: seed ensembles, divergence, record-writing errors, identity."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
from conftest import make_cfg, smooth_png, spec_of
from PIL import Image

import dip.runs.records
from dip import DipError
from dip.launch.memory import check_memory, fit_cost
from dip.runs.config import LEGACY_EXCLUDE, config_hash, record_dir
from dip.runs.plan import run

FAST = ["profile=smoke", "progress=false", "baselines=false", "fit.num_iter=6"]


def test_seed_ensemble_reports_each_seed_and_the_mean_output(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    out = tmp_path / "run"
    metrics = run(make_cfg(*FAST, f"image={image}", f"out_dir={out}", "seeds=3", "seed=5"))
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["seeds"] == [5, 6, 7] and len(saved["psnr_seeds"]) == 3
    assert len(set(saved["psnr_seeds"])) == 3  # different seeds, different fits
    assert saved["psnr_seeds_mean"] == pytest.approx(np.mean(saved["psnr_seeds"]))
    assert saved["psnr_seeds_std"] == pytest.approx(np.std(saved["psnr_seeds"], ddof=1))
    assert np.isfinite(saved["psnr_ensemble"]) and np.isfinite(saved["psnr_ensemble_avg"])
    assert (out / "restored_ensemble.png").is_file()
    gt, avg = (np.asarray(Image.open(out / f"{n}.png"), float) / 255
               for n in ("gt", "restored_ensemble_avg"))
    assert -10 * np.log10(np.mean((gt - avg) ** 2)) == pytest.approx(
        saved["psnr_ensemble_avg"], abs=0.05)
    assert saved["seconds_seeds"] > saved["seconds"] > 0
    # the main numbers are those of seed 5 alone
    single = run(make_cfg(*FAST, f"image={image}", f"out_dir={tmp_path / 'one'}", "seed=5"))
    assert metrics["psnr_final"] == single["psnr_final"] == saved["psnr_seeds"][0]
    assert np.array_equal(np.asarray(Image.open(out / "restored.png")),
                          np.asarray(Image.open(tmp_path / "one" / "restored.png")))


def test_absurd_learning_rate_ends_as_diverged_with_a_record(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    out = tmp_path / "run"
    metrics = run(make_cfg(*FAST, f"image={image}", f"out_dir={out}", "fit.lr=1e9",
                           "fit.num_iter=30", "fit.max_backtracks=3"))
    saved = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == saved["status"] == "diverged"
    assert saved["backtracks"] >= 1
    assert np.isfinite(saved["psnr_final"])  # the last good parameters


def test_record_folder_under_a_file_is_one_clear_error(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DipError, match="cannot write records to .*file.*out_dir="):
        run(make_cfg(*FAST, f"image={image}", f"out_dir={tmp_path / 'file' / 'run'}"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_unwritable_records_folder_leaves_earlier_records_alone(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    records = tmp_path / "records"
    first = run(make_cfg(*FAST, f"image={image}", f"records={records}"))
    before = sorted(p.name for p in records.rglob("*"))
    records.chmod(0o500)
    try:
        with pytest.raises(DipError, match="Permission denied"):
            run(make_cfg(*FAST, f"image={image}", f"records={records}", "seed=1"))
    finally:
        records.chmod(0o700)
    assert sorted(p.name for p in records.rglob("*")) == before
    assert json.loads((records / first["config_hash"] / "metrics.json").read_text())


def test_disk_full_while_writing_is_one_clear_error_and_leaves_no_trace(tmp_path,
                                                                        monkeypatch):
    image = smooth_png(tmp_path / "img.png")
    out = tmp_path / "records" / "run"
    cfg = make_cfg(*FAST, f"image={image}", f"out_dir={out}")
    run(cfg)
    earlier = (out / "metrics.json").read_bytes()

    def full(path, image, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dip.runs.records, "save_image", full)
    with pytest.raises(DipError, match="no space left on device"):
        run(make_cfg(*FAST, f"image={image}", f"out_dir={out}", "force=true"))
    assert (out / "metrics.json").read_bytes() == earlier
    assert [p.name for p in (tmp_path / "records").iterdir()] == ["run"]  # no temp dir


def test_settings_that_do_not_change_results_keep_the_record_identity():
    base = config_hash(make_cfg())
    assert config_hash(make_cfg("checkpoint_every=7", "memory_limit_gb=3")) == base
    assert config_hash(make_cfg("stop=fixed", "stopping.window=7")) == base
    assert config_hash(make_cfg("seeds=1")) == base
    # where freed memory lives changes speed and peak memory, not a single bit
    assert config_hash(make_cfg("fast.keep_memory=false")) == base
    assert config_hash(make_cfg("fast.keep_memory=true")) == base
    assert config_hash(make_cfg("fast.amp=bf16")) != base
    assert config_hash(make_cfg("stop=wmv")) != base
    assert config_hash(make_cfg("stop=wmv", "stopping.window=7")) != config_hash(
        make_cfg("stop=wmv"))
    assert config_hash(make_cfg("seeds=3")) != base


def test_editing_another_profiles_schedule_keeps_the_record_identity():
    base = make_cfg("experiment=table_inpainting", "profile=quick")
    other = make_cfg("experiment=table_inpainting", "profile=quick",
                     "schedule.num_iter.paper=12000")
    same = make_cfg("experiment=table_inpainting", "profile=quick",
                    "schedule.num_iter.quick=3000")
    assert other.schedule != base.schedule
    assert config_hash(other) == config_hash(base)
    assert same.fit.num_iter == 3000 and config_hash(same) != config_hash(base)


def test_a_record_under_the_earlier_identity_is_found_and_replaced_in_place(tmp_path):
    cfg = make_cfg("experiment=table_inpainting", "profile=quick", f"records={tmp_path}")
    legacy = tmp_path / config_hash(cfg, exclude=LEGACY_EXCLUDE)
    assert legacy.name != config_hash(cfg)
    assert record_dir(cfg).name == config_hash(cfg)  # nothing stored yet
    legacy.mkdir()
    (legacy / "metrics.json").write_text(json.dumps({"psnr_final": 30.0, "config_hash": "a"}))
    assert record_dir(cfg) == legacy
    assert dip.runs.records.existing_record(record_dir(cfg))["psnr_final"] == 30.0
    current = tmp_path / config_hash(cfg)
    current.mkdir()
    (current / "metrics.json").write_text(json.dumps({"psnr_final": 31.0, "config_hash": "b"}))
    assert dip.runs.records.existing_record(record_dir(cfg))["psnr_final"] == 31.0


def test_memory_estimate_scales_with_pixels_and_width():
    narrow = spec_of(make_cfg("profile=smoke")).net.build(32, 3)
    wide = spec_of(make_cfg("profile=quick")).net.build(32, 3)
    per_narrow, fixed_narrow = fit_cost(narrow, 32, 32)
    per_wide, fixed_wide = fit_cost(wide, 32, 32)
    assert 0 < per_narrow < per_wide and 0 < fixed_narrow < fixed_wide
    need = check_memory(per_wide, fixed_wide, (64, 64), limit=2 ** 40)
    assert need == int(per_wide * 64 * 64 + fixed_wide)
    with pytest.raises(DipError, match=r"crop=\d+") as err:
        check_memory(per_wide, fixed_wide, (4096, 4096), limit=need * 4, multiple=32,
                     profile="paper")
    side = int(str(err.value).split("crop=")[1].split(")")[0])
    assert side % 32 == 0 and per_wide * side ** 2 + fixed_wide <= need * 4
    assert "profile=quick" in str(err.value)


def test_device_name_and_machine_name_each_kernel_pin_that_is_set(monkeypatch):
    for var, _ in dip.runs.records.KERNEL_PINS:
        monkeypatch.delenv(var, raising=False)
    assert "oneDNN" not in dip.runs.records.device_name("cpu")
    assert dip.runs.records.kernel_pins() == []
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("MKL_CBWR", "avx2")
    name = dip.runs.records.device_name("cpu")
    assert name.endswith("threads, oneDNN AVX2, MKL AVX2)") and "ATen" not in name
    info = dip.runs.records.machine()
    assert info["onednn_max_cpu_isa"] == "AVX2" and info["mkl_cbwr"] == "avx2"
    assert info["aten_cpu_capability"] is None
    assert info["freed_memory_kept"] is dip.fitting.fast.freed_memory_kept()


def test_skipping_a_cpu_record_made_under_other_kernel_pins_says_so(tmp_path, monkeypatch):
    from dip.cli.main import summary

    cfg = make_cfg(*FAST, f"records={tmp_path}")
    out = record_dir(cfg)
    out.mkdir()
    stored = {"image": "x.png", "device": "cpu", "machine": {"onednn_max_cpu_isa": "AVX2"},
              "config_hash": config_hash(cfg)}
    (out / "metrics.json").write_text(json.dumps(stored))
    for var, _ in dip.runs.records.KERNEL_PINS:
        monkeypatch.setenv(var, "AVX2")
    done = dip.runs.records.existing_record(out)
    assert done["other_pins"] == "oneDNN AVX2; this process: oneDNN AVX2, ATen AVX2, MKL AVX2"
    assert "made with other CPU kernel pins (oneDNN AVX2; this process:" in summary(done)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY")
    monkeypatch.delenv("MKL_CBWR")
    assert "other_pins" not in dip.runs.records.existing_record(out)
