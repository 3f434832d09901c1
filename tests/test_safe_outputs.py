"""Safe outputs: nothing a user owns is deleted, unreadable records are redone, a sweep
outlives its failures, and a run is fitted once.

The `dip` command runs in this process (``dip_main``); subprocesses only where a process
of its own is the point (a claim left by a dead process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from conftest import FAST, dip_main, make_cfg, smooth_png, spec_of

import dip.runs.plan
from dip import DipError, DipNote
from dip.fitting.monitors import Monitor
from dip.launch.claims import claim, lock_path
from dip.launch.device import pick_device
from dip.report.records import load_records
from dip.runs.config import config_hash
from dip.runs.plan import run
from dip.runs.records import foreign_files


@pytest.fixture
def images(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    smooth_png(tmp_path / "a.png")
    smooth_png(tmp_path / "b.png", channels=1)
    return tmp_path


# ------------------------------------------------------------ never delete a user's files

def test_out_dir_holding_user_files_is_refused_and_left_alone(images, monkeypatch, capsys):
    mine = images / "mydir"
    mine.mkdir()
    (mine / "photo.jpg").write_bytes(b"precious")
    (mine / "notes.txt").write_text("mine")
    status = dip_main(monkeypatch, *FAST, "image=a.png", "out_dir=mydir")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith("error: mydir already holds files that no dip run wrote")
    assert "notes.txt, photo.jpg" in err[0]
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "photo.jpg"]
    assert (mine / "photo.jpg").read_bytes() == b"precious"
    with pytest.raises(DipError, match="no dip run wrote"):  # force=true changes nothing
        run(make_cfg(*FAST, "image=a.png", "out_dir=mydir", "force=true"))


def test_an_earlier_record_is_replaced_only_with_force(images):
    cfg = [*FAST, "image=a.png", "out_dir=run"]
    first = run(make_cfg(*cfg))
    again = run(make_cfg(*cfg))
    assert again["skipped"] and again["finished"] == first["finished"]
    (images / "run" / "metrics.json").write_text(json.dumps({**first, "finished": "earlier"}))
    forced = run(make_cfg(*cfg, "force=true"))
    stored = json.loads((images / "run" / "metrics.json").read_text())
    assert not forced.get("skipped") and stored["finished"] != "earlier"
    assert foreign_files(images / "run") == []
    (images / "run" / "mine.txt").write_text("mine")  # now it is not only a record
    with pytest.raises(DipError, match=r"run already holds files .*\(mine.txt\)"):
        run(make_cfg(*cfg, "force=true"))
    assert (images / "run" / "mine.txt").read_text() == "mine"


def test_an_empty_folder_is_used(images):
    (images / "empty").mkdir()
    run(make_cfg(*FAST, "image=a.png", "out_dir=empty"))
    assert (images / "empty" / "metrics.json").is_file()


# ----------------------------------------------------- an unreadable record is a missing one

@pytest.mark.parametrize("content", ["", '{"psnr_final": 3', "[1, 2]", "\x00\x01 not json",
                                     "{}"])
def test_an_unreadable_record_is_redone_with_a_note(images, content):
    cfg = [*FAST, "image=a.png", "out_dir=run"]
    run(make_cfg(*cfg))
    (images / "run" / "metrics.json").write_text(content)
    with pytest.warns(DipNote, match="record run cannot be read .*treated as missing"):
        again = run(make_cfg(*cfg))
    assert not again.get("skipped")
    assert json.loads((images / "run" / "metrics.json").read_text())["status"] == "ok"
    assert not [p for p in images.iterdir() if p.name.startswith(".")]


def test_a_sweep_over_an_unreadable_record_redoes_it_and_goes_on(images, monkeypatch, capsys):
    sweep = ["-m", *FAST, "image=a.png,b.png", "records=recs"]
    assert dip_main(monkeypatch, *sweep) == 0
    broken = next(p for p in (images / "recs").iterdir())
    (broken / "metrics.json").write_text("")
    capsys.readouterr()
    assert dip_main(monkeypatch, *sweep) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err and out.err.count("cannot be read") == 1
    assert out.out.count("skipped") == 1 and out.out.count("wrote recs/") == 1
    assert len(load_records(images / "recs")) == 2


def test_reports_skip_unreadable_records_with_a_note(images):
    run(make_cfg(*FAST, "image=a.png", "records=recs"))
    run(make_cfg(*FAST, "image=b.png", "records=recs"))
    broken = sorted((images / "recs").iterdir())[0]
    (broken / "metrics.json").write_text('{"truncated": ')
    with pytest.warns(DipNote, match=f"record {broken} cannot be read"):
        records = load_records(images / "recs")
    assert len(records) == 1


# ------------------------------------------------------------ a sweep outlives its failures

def _failing_fit(monkeypatch, image: str, error: Exception):
    real = dip.runs.plan.fit_seeds

    def fit_seeds(plan, *args, **kwargs):
        if plan.spec.image == image:
            raise error
        return real(plan, *args, **kwargs)

    monkeypatch.setattr(dip.runs.plan, "fit_seeds", fit_seeds)


@pytest.mark.parametrize("launcher", ["basic", "batched"])
def test_a_missing_image_fails_alone_and_the_sweep_says_so(images, monkeypatch, capsys,
                                                          launcher):
    status = dip_main(monkeypatch, "-m", *FAST, "image=a.png,missing.png,b.png",
                      "records=recs", f"launcher={launcher}")
    out = capsys.readouterr()
    assert status == 2, out.err
    assert "Traceback" not in out.err
    assert len(load_records(images / "recs")) == 2  # b.png ran after the failure
    errors = [line for line in out.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "image=missing.png" in errors[0]
    assert errors[0].startswith("error: [") and "no such file: missing.png" in errors[0]
    summary = out.err[out.err.index("1 of 3 runs failed"):].splitlines()
    assert len(summary) == 2 and "image=missing.png" in summary[1]
    assert "[" in out.out and "image=a.png" in out.out  # each run's line names its job


def test_a_diverged_run_is_reported_as_failed_and_keeps_its_record(images, monkeypatch,
                                                                    capsys):
    status = dip_main(monkeypatch, "-m", *FAST, "fit.num_iter=20", "image=a.png",
                      "fit.lr=1e6,0.01", "records=recs")
    out = capsys.readouterr()
    assert status == 3 and "Traceback" not in out.err  # 3: every failure is a divergence
    errors = [line for line in out.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "fit.lr=1000000.0" in errors[0]
    assert "status diverged (record recs/" in errors[0]
    assert "1 of 2 runs failed" in out.err
    records = load_records(images / "recs")
    assert sorted(records["status"]) == ["diverged", "ok"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "local"])  # worker processes, submitit jobs
def test_a_failed_job_in_another_process_is_counted_at_the_end(images, launcher):
    proc = subprocess.run([sys.executable, "-m", "dip", "-m", *FAST, f"launcher={launcher}",
                           "image=a.png,missing.png,b.png", "records=recs"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = proc.stderr[proc.stderr.index("1 of 3 runs failed"):].splitlines()
    assert len(summary) == 2 and "image=missing.png" in summary[1]
    assert len(load_records(images / "recs")) == 2


@pytest.mark.parametrize("error,reason", [
    (RuntimeError("CUDA error: an illegal memory access"), "unexpected RuntimeError: CUDA"),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
     "out of memory (CUDA out of memory. Tried to allocate 2 GiB); use a smaller crop="),
])
def test_an_unexpected_failure_fails_one_job_only(images, monkeypatch, capsys, error, reason):
    _failing_fit(monkeypatch, "a.png", error)
    status = dip_main(monkeypatch, "-m", *FAST, "image=a.png,b.png", "records=recs")
    out = capsys.readouterr()
    assert status == 2 and "Traceback" not in out.err
    assert f"image=a.png records=recs] {reason}" in out.err  # with the job's overrides
    assert "1 of 2 runs failed" in out.err
    assert len(load_records(images / "recs")) == 1
    ledger = next((images / "outputs").rglob("runs.jsonl")).read_text().splitlines()
    entries = [json.loads(line) for line in ledger]
    assert sorted(e["outcome"] for e in entries) == ["failed", "ok"]
    failed = next(e for e in entries if e["outcome"] == "failed")
    assert type(error).__name__ in failed["traceback"]  # the whole story is kept


def test_out_of_memory_in_a_single_run_is_one_line(images, monkeypatch, capsys):
    _failing_fit(monkeypatch, "a.png", torch.OutOfMemoryError("CUDA out of memory."))
    assert dip_main(monkeypatch, *FAST, "image=a.png", "out_dir=run") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: out of memory")
    assert not (images / "run").exists() and not list(images.glob(".*"))


# ------------------------------------------------------------------ a run is fitted once

def test_a_claimed_run_is_left_to_its_holder(images, monkeypatch, capsys):
    cfg = make_cfg(*FAST, "image=a.png", "records=recs")
    out = images / "recs" / config_hash(cfg)
    held = claim(out)
    try:
        outcome = run(cfg)
        assert "pid" in outcome["taken"] and not out.exists()
        assert dip_main(monkeypatch, *FAST, "image=a.png", "records=recs") == 0
        assert "another process is fitting it" in capsys.readouterr().out
        status = dip_main(monkeypatch, "-m", *FAST, "image=a.png,b.png", "records=recs",
                          "launcher=batched")
        assert status == 0 and not out.exists()
        assert len(load_records(images / "recs")) == 1  # b.png alone
    finally:
        held.release()
    assert not lock_path(out).exists()
    run(cfg)
    assert (out / "metrics.json").is_file() and not lock_path(out).exists()


def test_the_claim_of_a_dead_process_is_taken_over(images):
    cfg = make_cfg(*FAST, "image=a.png", "out_dir=run")
    script = textwrap.dedent("""
        import os, sys
        from dip.launch.claims import claim
        held = claim(sys.argv[1])
        os._exit(0)  # dies holding it: the lock file stays
    """)
    subprocess.run([sys.executable, "-c", script, str(images / "run")], check=True,
                   cwd=os.path.dirname(os.path.dirname(__file__)))
    assert lock_path(images / "run").is_file()
    with pytest.warns(DipNote, match="taking over the claim on run of a process"):
        outcome = run(cfg)
    assert outcome["status"] == "ok" and not lock_path(images / "run").exists()


def test_two_claims_on_one_run_exclude_each_other(tmp_path):
    first = claim(tmp_path / "run")
    second = claim(tmp_path / "run")
    assert not isinstance(first, str) and isinstance(second, str)
    first.release()
    third = claim(tmp_path / "run")
    assert not isinstance(third, str)
    third.release()


# --------------------------------------------------------------------------------- devices

@pytest.mark.skipif(torch.cuda.is_available(), reason="for machines without CUDA")
@pytest.mark.parametrize("device,needle", [
    ("cuda", "device=cuda but this torch sees no CUDA GPU"),
    ("cuda:7", "device=cuda:7 but this torch sees no CUDA GPU"),
    ("tpu", "device=tpu is unknown; choose auto, cpu, cuda or cuda:K"),
    ("cuda:x", "device=cuda:x is unknown"),
])
def test_a_device_that_is_not_there_is_one_line(images, monkeypatch, capsys, device, needle):
    status = dip_main(monkeypatch, *FAST, "image=a.png", "out_dir=run", f"device={device}")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert needle in err[0]
    assert not (images / "run").exists()


def test_a_gpu_index_past_the_visible_ones_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DipError, match=r"device=cuda:7 but only 2 CUDA GPUs are visible "
                                       r"\(cuda:0 to cuda:1\)"):
        pick_device("cuda:7")
    assert pick_device("cuda:1") == torch.device("cuda:1")


# ------------------------------------------------------------------------ interrupted runs

class SignalAt(Monitor):
    """Sends this process ``signum`` once ``step`` updates are done (a pre-emption)."""

    def __init__(self, step: int, signum: int):
        self.step, self.signum = step, signum

    def after_step(self, info) -> None:
        if info.completed == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_the_step_and_the_rerun_resumes_there(images, monkeypatch, capsys,
                                                             signum):
    args = [*FAST, "image=a.png", "fit.num_iter=20", "checkpoint_every=0", "seed=2"]
    assert dip_main(monkeypatch, *args, "out_dir=full") == 0
    real = dip.runs.plan.default_monitors
    monkeypatch.setattr(dip.runs.plan, "default_monitors",
                        lambda *a: [*real(*a), SignalAt(7, signum)])
    capsys.readouterr()
    status = dip_main(monkeypatch, *args, "out_dir=run")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 128 + signum and len(err) == 1, err
    name = signal.Signals(signum).name
    assert err[0].startswith(f"error: interrupted by {name} at step 7: its state is saved in")
    # no half-written record: the run's folder holds its checkpoint alone
    assert [p.name.endswith(".s2.ckpt.pt") for p in (images / "run").iterdir()] == [True]
    assert not dip.runs.records.foreign_files(images / "run")

    monkeypatch.setattr(dip.runs.plan, "default_monitors", real)
    assert dip_main(monkeypatch, *args, "out_dir=run") == 0
    assert "resumed from step 7" in capsys.readouterr().out
    full, resumed = (json.loads((images / d / "metrics.json").read_text())
                     for d in ("full", "run"))
    for key in ("psnr_final", "psnr_avg", "psnr_oracle", "steps", "status"):
        assert full[key] == resumed[key], key
    assert (images / "full" / "restored.png").read_bytes() == \
        (images / "run" / "restored.png").read_bytes()
    assert not list(images.glob(".*"))  # checkpoint and claim gone with the record


def test_the_checkpoint_of_an_out_dir_run_lives_inside_it(images, monkeypatch, capsys):
    home = images / "home"
    home.mkdir()
    args = [*FAST, "image=a.png", "fit.num_iter=12", "checkpoint_every=0", "seed=1",
            f"out_dir={home / 'result'}"]
    real = dip.runs.plan.default_monitors
    monkeypatch.setattr(dip.runs.plan, "default_monitors",
                        lambda *a: [*real(*a), SignalAt(5, signal.SIGTERM)])
    assert dip_main(monkeypatch, *args) == 128 + signal.SIGTERM
    assert [p.name for p in home.iterdir()] == ["result"]  # nothing beside X
    saved = [p.name for p in (home / "result").iterdir()]
    assert len(saved) == 1 and saved[0].endswith(".s1.ckpt.pt"), saved
    monkeypatch.setattr(dip.runs.plan, "default_monitors", real)
    capsys.readouterr()
    assert dip_main(monkeypatch, *args) == 0
    assert "resumed from step 5" in capsys.readouterr().out
    assert [p.name for p in home.iterdir()] == ["result"]
    assert not list((home / "result").glob(".*"))  # the checkpoint went with the record
    cfg = make_cfg(f"records={images / 'recs'}")  # under records=R: in R, as before
    assert dip.runs.plan.checkpoint_path(spec_of(cfg), 3) == images / "recs" / \
        f".{config_hash(cfg)}.s3.ckpt.pt"


@pytest.mark.slow
def test_sigint_to_a_dip_process_checkpoints_and_exits_130(tmp_path):
    image = smooth_png(tmp_path / "img.png")
    args = [sys.executable, "-m", "dip", "profile=smoke", f"image={image}",
            "fit.num_iter=1000", "checkpoint_every=25", "baselines=false", "progress=false",
            f"out_dir={tmp_path / 'run'}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "run").glob(".*.ckpt.pt")):  # the fit is under way
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted by SIGINT at step ")
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert not list(tmp_path.glob(".*.lock"))
    step = int(lines[0].split("at step ")[1].split(":")[0])
    resumed = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from step {step}" in resumed.stdout


@pytest.mark.parametrize("engine", ["threads", "grouped"])
def test_a_signal_stops_a_batched_fit(engine):
    from conftest import RUNS, batch_nets, batch_problems, batch_settings

    from dip.fitting.batched import fit_batched
    from dip.launch.signals import Interrupted, checkpoint_on_signals

    sets = [batch_settings(**r) for r in RUNS]
    with checkpoint_on_signals(), pytest.raises(Interrupted, match="SIGTERM at step 0"):
        os.kill(os.getpid(), signal.SIGTERM)
        fit_batched(batch_nets(), batch_problems(), sets, engine=engine)
