"""Batched fitting: N runs as one grouped network, or side by side in threads, equal N
separate fits."""

import dataclasses

import pytest
import torch
from conftest import RUNS, batch_nets, batch_problems, batch_settings, small_net, smooth_image

from dip.fitting import fast
from dip.fitting.batched import fit_batched
from dip.fitting.loop import fit
from dip.fitting.monitors import History, Monitor, Oracle
from dip.fitting.settings import FitResult
from dip.nets import build, resnet, skip
from dip.nets.grouped import GroupedNet, can_group
from dip.problems.denoising import denoising
from dip.problems.inpainting import inpainting
from dip.problems.sr import sr


def test_grouped_forward_and_gradients_match_the_separate_nets():
    nets = batch_nets()
    g = GroupedNet(nets)
    zs = [torch.rand(1, 8, 32, 32) for _ in nets]
    out = g(torch.cat(zs, 1))
    assert out.shape == (1, 3 * len(nets), 32, 32)
    out.square().sum().backward()
    grads = [[p.grad.clone() for p in n.parameters()] for n in nets]
    for n, z, i in zip(nets, zs, range(len(nets)), strict=True):
        n.zero_grad()
        ref = n(z)
        torch.testing.assert_close(out[:, 3 * i:3 * i + 3], ref, atol=1e-5, rtol=1e-4)
        ref.square().sum().backward()
        for a, p in zip(grads[i], n.parameters(), strict=True):
            torch.testing.assert_close(a, p.grad, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("engine", ["grouped", "threads"])
def test_fit_batched_equals_separate_fits_in_float64(float64, engine):
    """Different seeds, learning rates, noise levels and lengths: the same numbers."""
    sets = [batch_settings(**r) for r in RUNS]
    seq = [fit(n, p, s) for n, p, s in zip(batch_nets(), batch_problems(), sets, strict=True)]
    bat = fit_batched(batch_nets(), batch_problems(), sets, engine=engine)
    for a, b in zip(seq, bat, strict=True):
        torch.testing.assert_close(a.final, b.final, atol=1e-9, rtol=0)
        torch.testing.assert_close(a.average, b.average, atol=1e-9, rtol=0)
        torch.testing.assert_close(a.oracle, b.oracle, atol=1e-9, rtol=0)
        assert a.iter_oracle == b.iter_oracle and a.status == b.status == "ok"
        assert a.history.step.tolist() == b.history.step.tolist()
        cols = ["loss", "psnr_obs", "psnr_gt", "psnr_gt_avg"]
        torch.testing.assert_close(torch.tensor(a.history[cols].values),
                                   torch.tensor(b.history[cols].values), atol=1e-7, rtol=0)
    assert [len(r.history) for r in bat] == [4, 4, 3]


def test_fit_batched_matches_separate_fits_in_float32():
    """In float32 grouped and plain convolutions round differently, and Adam's first
    steps amplify rounding (normalised gradients) into steps of size lr: with learning
    rates scaled down 100× the runs stay close (equality is checked in float64)."""
    sets = [batch_settings(**{**r, "num_iter": 3, "lr": r["lr"] / 100}) for r in RUNS]
    seq = [fit(n, p, s) for n, p, s in zip(batch_nets(), batch_problems(), sets, strict=True)]
    bat = fit_batched(batch_nets(), batch_problems(), sets, engine="grouped")
    for a, b in zip(seq, bat, strict=True):
        torch.testing.assert_close(a.final, b.final, atol=2e-2, rtol=0)
        assert abs(a.history.psnr_gt.iloc[-1] - b.history.psnr_gt.iloc[-1]) < 0.05


@pytest.mark.parametrize("engine", ["grouped", "threads"])
def test_batchnorm_running_statistics_stay_per_run(float64, engine):
    sets = [batch_settings(**r) for r in RUNS]
    seq_nets, bat_nets = batch_nets(), batch_nets()
    for n, p, s in zip(seq_nets, batch_problems(), sets, strict=True):
        fit(n, p, s)
    fit_batched(bat_nets, batch_problems(), sets, engine=engine)
    for a, b in zip(seq_nets, bat_nets, strict=True):
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(x, y, atol=1e-9, rtol=0)


class RollbackAt(Monitor):
    """Asks for a rollback once, at a given step."""

    def __init__(self, step):
        self.step, self.done = step, False

    def on_step(self, info):
        if info.step == self.step and not self.done:
            self.done = info.rollback = True


@pytest.mark.parametrize("engine", ["grouped", "threads"])
def test_a_rolled_back_run_redoes_its_step_alone(float64, engine):
    sets = [batch_settings(**r) for r in RUNS]

    def mons(i):
        return [RollbackAt(4)] if i == 1 else []

    seq = [fit(n, p, s, monitors=mons(i) + [History(1), Oracle()])
           for i, (n, p, s) in enumerate(zip(batch_nets(), batch_problems(), sets, strict=True))]
    bat = fit_batched(batch_nets(), batch_problems(), sets, engine=engine,
                      monitors=[mons(i) + [History(1), Oracle()] for i in range(3)])
    for a, b in zip(seq, bat, strict=True):
        torch.testing.assert_close(a.final, b.final, atol=1e-9, rtol=0)


def test_other_tasks_and_nets_in_a_batch():
    gt = smooth_image(size=32)
    problems = [inpainting(image=gt, p_missing=0.5, seed=0), sr(hr=gt, factor=4)]
    nets = [build("encdec", 8, 3, depth=3, channels=[8, 8, 8]) for _ in problems]
    results = fit_batched(nets, problems, batch_settings(num_iter=30), engine="grouped")
    for r in results:
        assert r.final.shape == (1, 3, 32, 32) and torch.isfinite(r.final).all()
        assert r.history.psnr_obs.iloc[-1] > r.history.psnr_obs.iloc[0]


def test_threads_engine_is_bit_identical_to_separate_one_thread_fits():
    """float32, two runs at a time with one intra-op thread each: exactly the numbers
    of separate fits on one thread; the process's thread count is restored."""
    sets = [batch_settings(**r) for r in RUNS]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seq = [fit(n, p, s) for n, p, s in zip(batch_nets(), batch_problems(), sets, strict=True)]
    finally:
        torch.set_num_threads(before)
    bat = fit_batched(batch_nets(), batch_problems(), sets, engine="threads", workers=2,
                      threads_per_run=1)
    assert torch.get_num_threads() == before
    for a, b in zip(seq, bat, strict=True):
        assert torch.equal(a.final, b.final) and torch.equal(a.average, b.average)
        assert a.history.drop(columns="seconds").equals(b.history.drop(columns="seconds"))
    assert len({r.seconds for r in bat}) == 1  # each run's share of the wall time


def test_threads_engine_with_graph_steps_equals_separate_eager_fits():
    """Runs that capture their step (on the CPU: the graph's stand-in, under the same
    shared/exclusive lock as on CUDA) side by side give the separate eager fits' numbers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seq = [fit(n, p, batch_settings(**r))
               for n, p, r in zip(batch_nets(), batch_problems(), RUNS, strict=True)]
    finally:
        torch.set_num_threads(before)
    sets = [dataclasses.replace(batch_settings(**r), cuda_graph=True) for r in RUNS]
    bat = fit_batched(batch_nets(), batch_problems(), sets, engine="threads", workers=2,
                      threads_per_run=1)
    for a, b in zip(seq, bat, strict=True):
        assert torch.equal(a.final, b.final) and torch.equal(a.average, b.average)
        assert a.graph_steps == 0 and b.graph_steps == b.steps - fast.GRAPH_WARMUP > 0


@pytest.mark.parametrize("n, expected", [(1, 4), (2, 2), (3, 1), (8, 1)])
def test_threads_engine_shares_the_threads_among_its_runs(monkeypatch, n, expected):
    """Default split of 4 threads: a lone run keeps all of them, more runs share them."""
    calls = []
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    import dip.fitting.batched as batched
    stub = FitResult(final=None, average=None, oracle=None, iter_oracle=None, history=None,
                     seconds=0.0, device="cpu")
    monkeypatch.setattr(batched, "_fit_on_own_stream", lambda *a: stub)
    batched._fit_threads([None] * n, [None] * n, [None] * n, [None] * n, [None] * n, None, None)
    assert calls == [expected, 4]


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="unknown engine 'vmap'"):
        fit_batched(batch_nets(), batch_problems(), [batch_settings(**r) for r in RUNS],
                    engine="vmap")


def test_what_can_be_grouped():
    assert can_group(small_net())
    assert can_group(skip(4, 3, [8, 8], [8, 8], [0, 2], downsample_mode="avg"))
    assert not can_group(resnet(2, 3, 1, 8))
    with pytest.raises(ValueError, match="output shape"):
        fit_batched([small_net(), small_net()],
                    [denoising(gt=smooth_image(size=s), sigma=25) for s in (32, 64)],
                    batch_settings())


def _sweep(launcher, runs, cwd, engine="auto"):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    args = [sys.executable, "-m", "dip", "-m", f"launcher={launcher}", "profile=smoke",
            "progress=false", "baselines=false", "image=skimage:camera", "crop=64",
            "seed=0,1", "fit.lr=0.001,0.0005", "fit.num_iter=6", f"records={runs}"]
    if launcher == "batched":
        args += ["hydra.launcher.batch_runs=4", f"hydra.launcher.engine={engine}"]
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.mark.slow
def test_batched_launcher_writes_the_records_of_the_basic_launcher(tmp_path):
    """The threads engine (the CPU default) gives the basic launcher's numbers exactly
    (the smoke profile pins one thread per run); the grouped engine writes the same
    records, its numbers close (float32 rounding, amplified by Adam's first steps)."""
    import json

    records = {}
    for name, launcher, engine in (("basic", "basic", "auto"), ("threads", "batched", "auto"),
                                   ("grouped", "batched", "grouped")):
        runs = tmp_path / name
        proc = _sweep(launcher, runs, tmp_path, engine)
        assert proc.returncode == 0, proc.stderr[-3000:]
        records[name] = {p.name: json.loads((p / "metrics.json").read_text())
                         for p in runs.iterdir()}
    basic = records["basic"]
    assert len(basic) == 4
    for name in ("threads", "grouped"):
        assert set(records[name]) == set(basic)  # same config hashes
        for key, a in basic.items():
            b = records[name][key]
            assert b["batched"] == 4 and "batched" not in a
            assert (a["seed"], a["num_iter"], a["status"]) == (b["seed"], b["num_iter"],
                                                              b["status"])
            assert a["psnr_corrupted"] == b["psnr_corrupted"]  # the same problem
            for metric in ("psnr_final", "psnr_avg", "psnr_oracle"):
                if name == "threads":
                    assert a[metric] == b[metric], (key, metric)
                else:  # float32 grouped convolutions round differently and Adam's
                    # normalised first steps turn rounding-level gradients into steps of
                    # size lr (0.05-0.18 dB seen after 6 steps at lr 1e-3); equality is
                    # the float64 test's job (test_fit_batched_equals_separate_fits_...)
                    assert abs(a[metric] - b[metric]) < 0.5, (key, metric)
    again = _sweep("batched", tmp_path / "threads", tmp_path)
    assert again.returncode == 0 and again.stdout.count("skipped") == 4


@pytest.mark.parametrize("engine", ["grouped", "threads"])
def test_early_stopping_in_a_batch_equals_separate_fits(float64, engine):
    """A run that stops leaves its group; its stop output, step and status are those of
    a fit on its own (one shared result assembly: dip.fitting.loop.assemble_result)."""
    sets = [batch_settings(**{**r, "num_iter": 30}, stop="wmv", stop_window=3, stop_patience=p)
            for r, p in zip(RUNS, (2, 4, 40), strict=True)]
    seq = [fit(n, p, s) for n, p, s in zip(batch_nets(), batch_problems(), sets, strict=True)]
    bat = fit_batched(batch_nets(), batch_problems(), sets, engine=engine)
    for a, b in zip(seq, bat, strict=True):
        assert (a.status, a.steps, a.iter_stop) == (b.status, b.steps, b.iter_stop)
        torch.testing.assert_close(a.stop, b.stop, atol=1e-9, rtol=0)
        torch.testing.assert_close(a.stop_average, b.stop_average, atol=1e-9, rtol=0)
        torch.testing.assert_close(a.final, b.final, atol=1e-9, rtol=0)
    assert [r.status for r in bat].count("stopped") >= 1
    assert len({r.steps for r in bat}) > 1  # the runs ended at different steps


def test_run_batch_fits_ensembles_and_early_stopping_like_single_runs(tmp_path, monkeypatch):
    """Seeds of an ensemble and early-stopped runs go through the batch (as members of
    its groups) and write the records that single runs write."""
    from conftest import make_cfg, smooth_png

    from dip.runs.batched import run_batch
    from dip.runs.plan import run

    monkeypatch.chdir(tmp_path)
    smooth_png(tmp_path / "a.png")
    common = ["profile=smoke", "progress=false", "baselines=false", "image=a.png",
              "fit.num_iter=12"]
    kinds = [["seeds=2"], ["stop=wmv", "stopping.window=3", "stopping.patience=2"]]
    single = [run(make_cfg(*common, *k, "records=one")) for k in kinds]
    batched = run_batch([make_cfg(*common, *k, "records=many") for k in kinds],
                        batch_runs=4, engine="threads")
    for a, b in zip(single, batched, strict=True):
        assert not isinstance(b, Exception), b
        assert b["batched"] >= 1 and b["out_dir"].endswith(a["out_dir"].split("/")[-1])
        for key in ("psnr_final", "psnr_avg", "psnr_stop", "iter_stop", "status", "seeds"):
            assert a[key] == b[key], key
    assert single[0]["psnr_ensemble"] == batched[0]["psnr_ensemble"]


@pytest.mark.parametrize("engine", ["grouped", "threads"])
def test_a_batch_resumes_from_its_runs_checkpoints(float64, engine, tmp_path):
    """Killed mid-batch, each run continues from its own checkpoint to the result of the
    uninterrupted batch (runs at different steps: the third saved before it ended)."""
    from conftest import Crash, CrashAt

    from dip.fitting.checkpoint import Checkpoint
    from dip.fitting.step import default_monitors

    sets = [batch_settings(**{**r, "num_iter": r.get("num_iter", 20) + 8}) for r in RUNS]
    reference = fit_batched(batch_nets(), batch_problems(), sets, engine=engine)
    paths = [tmp_path / f"run{k}.pt" for k in range(len(RUNS))]

    def batch(crash: bool):
        problems = batch_problems()
        monitors = [default_monitors(p, s) + [Checkpoint(path, 5, key=str(k))]
                    for k, (p, s, path) in enumerate(zip(problems, sets, paths, strict=True))]
        if crash:
            monitors[0].insert(0, CrashAt(13))
        return fit_batched(batch_nets(), problems, sets, monitors, engine=engine, workers=3,
                           resume=paths)

    with pytest.raises(Crash):
        batch(crash=True)
    assert [p.exists() for p in paths] == [True, True, True]
    resumed = batch(crash=False)
    assert resumed[0].resumed_at == 10
    for a, b in zip(reference, resumed, strict=True):
        torch.testing.assert_close(a.final, b.final, atol=1e-9, rtol=0)
        torch.testing.assert_close(a.average, b.average, atol=1e-9, rtol=0)
        assert a.steps == b.steps and len(a.history) == len(b.history)
