"""``threads=auto``: a run alone uses every core, the jobs of a sweep share them, and the
record keeps the count it ran with."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import FAST, dip_main, make_cfg, smooth_png

from dip.launch.device import usable_cores
from dip.runs.config import resolve_threads
from dip.runs.plan import prepare


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("jobs, expected", [(1, 8), (2, 4), (3, 2), (16, 1)])
def test_auto_shares_the_cores_among_the_jobs(monkeypatch, jobs, expected):
    monkeypatch.setattr("dip.launch.device.usable_cores", lambda: 8)
    cfg = resolve_threads(make_cfg("threads=auto", "device=cpu"), jobs=jobs)
    assert cfg.threads == expected
    assert resolve_threads(make_cfg("threads=3", "device=cpu"), jobs=jobs).threads == 3
    assert resolve_threads(make_cfg("threads=null", "device=cpu"), jobs=jobs).threads is None


def test_a_run_alone_takes_every_core_and_its_record_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    smooth_png(tmp_path / "a.png")
    assert dip_main(monkeypatch, *FAST, "image=a.png", "threads=auto", "out_dir=run") == 0
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert f"threads: {usable_cores()}\n" in config
    assert f"{usable_cores()} threads" in stored["device_name"]


def test_the_thread_count_is_part_of_the_runs_identity(tmp_path):
    smooth_png(tmp_path / "a.png")
    common = [*FAST, f"image={tmp_path / 'a.png'}", f"records={tmp_path / 'r'}"]
    one = prepare(make_cfg(*common, "threads=1"))
    two = prepare(make_cfg(*common, "threads=2"))
    try:
        assert one.out != two.out
        assert prepare(make_cfg(*common, "threads=auto"), write=False).spec.threads == \
            usable_cores()
    finally:
        one.release()
        two.release()
