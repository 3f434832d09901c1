"""The paper-era switches of the fit loop: fit.final_input and fit.backtrack.

The official notebooks are transcribed as plain loops here (the specification); the fit
loop, its graph path, checkpoints and the grouped engine must give their numbers.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    Crash,
    CrashAt,
    inpainting_record,
    make_cfg,
    needs_paper,
    same,
    settings,
    small_net,
    smooth_image,
    spec_of,
    write_record,
)
from torch import nn

from dip import DipError
from dip.fitting import fast
from dip.fitting.batched import fit_batched
from dip.fitting.checkpoint import Checkpoint
from dip.fitting.loop import fit
from dip.fitting.monitors import Backtrack, History, Monitor, StepInfo
from dip.fitting.official import OFFICIAL_BACKTRACK, InputNoise, OfficialBacktrack
from dip.fitting.settings import FitSettings, make_input
from dip.fitting.step import default_monitors
from dip.problems.denoising import denoising
from dip.problems.fitting import fitting
from dip.problems.inpainting import inpainting as inpainting_problem
from dip.problems.sr import sr
from dip.report.tables import table
from dip.runs.config import config_hash

# config hashes of the quick tables before the switches existed: their records keep them
QUICK_HASHES = {"table_inpainting": "f6954e221b7d", "table_denoising": "e7f6e86819d2",
                "table_sr": "c4944c093c90"}


class Jump(nn.Module):
    """Wraps a net; on chosen forward calls (from 0) returns 4·out: a PSNR drop of far more
    than 5 dB with a gradient (the official rollback still applies it)."""

    def __init__(self, net, calls=()):
        super().__init__()
        self.net, self.calls, self.count = net, set(calls), 0

    def forward(self, x):
        out = self.net(x)
        self.count += 1
        return out * 4.0 if self.count - 1 in self.calls else out


def noisy(size=32):
    return denoising(gt=smooth_image(size=size), sigma=25, seed=0)


def fresh_net(jumps=(), seed=0):
    torch.manual_seed(seed)
    return Jump(small_net(), jumps)


def notebook(net, problem, s, show_every=None):
    """The official closure and loop (denoising.ipynb; super-resolution.ipynb without the
    backtracking block when ``show_every`` is None), transcribed: returns the reported
    output ``net(net_input)``, the rollbacks and the forward calls that rolled back."""
    z = make_input("noise", s.input_depth, problem.out_shape[1:], scale=s.input_scale,
                   generator=torch.Generator().manual_seed(s.seed))
    gen = torch.Generator().manual_seed(s.seed + 1)
    noise = torch.empty_like(z)
    opt = fast.adam(net.parameters(), s, torch.device("cpu"))
    i, psrn_noisy_last, last_net, fired = 0, 0.0, None, []
    net_input = z
    for call in range(s.num_iter):  # optimize(): zero_grad, closure, step
        opt.zero_grad(set_to_none=True)
        if s.reg_noise_std > 0:
            net_input = z + noise.normal_(generator=gen) * s.reg_noise_std
        out = net(net_input)
        total_loss = F.mse_loss(problem.operator(out), problem.observation)
        total_loss.backward()
        psrn_noisy = -10 * math.log10(float(total_loss.detach()))
        if show_every is not None and i % show_every:
            if psrn_noisy - psrn_noisy_last < -5:
                with torch.no_grad():
                    for new_param, net_param in zip(last_net, net.parameters(), strict=True):
                        net_param.copy_(new_param)
                fired.append(call)
                opt.step()
                continue  # return total_loss*0: i is not incremented
            last_net = [x.detach().clone() for x in net.parameters()]
            psrn_noisy_last = psrn_noisy
        i += 1
        opt.step()
    with torch.no_grad():
        return net(net_input), fired


# --- final_input ---------------------------------------------------------------------

@pytest.mark.parametrize("graph", [False, True])
def test_perturbed_final_is_the_net_on_the_last_perturbed_input(graph):
    """f_θ(z + σ·n_last), the notebooks' net(net_input): eager and on the graph path
    (its static noise buffer; on the CPU the graph's stand-in)."""
    problem = noisy()
    s = settings(num_iter=9, reg_noise_std=0.05, seed=3, backtrack_drop_db=math.inf,
                 final_input="perturbed", cuda_graph=graph)
    result = fit(fresh_net(), problem, s)
    reference, _ = notebook(fresh_net(), noisy(), s)
    assert torch.equal(result.final, reference)
    assert result.graph_steps == (s.num_iter - fast.GRAPH_WARMUP if graph else 0)
    clean = fit(fresh_net(), noisy(), dataclasses.replace(s, final_input="clean"))
    assert torch.equal(clean.average, result.average)  # the fit itself is the same
    assert not torch.equal(clean.final, result.final)


def test_perturbed_equals_clean_without_input_noise():
    s = settings(num_iter=6, reg_noise_std=0.0, final_input="perturbed")
    perturbed = fit(fresh_net(), noisy(), s)
    clean = fit(fresh_net(), noisy(), dataclasses.replace(s, final_input="clean"))
    assert torch.equal(perturbed.final, clean.final)
    assert not any(isinstance(m, InputNoise) for m in default_monitors(noisy(), s))


def run_ckpt(s, path=None, every=10, crash_at=None, jumps=()):
    problem = noisy()
    monitors = default_monitors(problem, s)
    if crash_at is not None:
        monitors.insert(0, CrashAt(crash_at))
    if path is not None:
        monitors.append(Checkpoint(path, every, key="test"))
    return fit(fresh_net(jumps, seed=s.seed), problem, s, monitors, resume=path)


@pytest.mark.parametrize("backtrack", ["guard", "official"])
def test_resume_is_bit_identical_with_perturbed(tmp_path, backtrack):
    s = settings(num_iter=35, reg_noise_std=0.03, seed=2, final_input="perturbed",
                 backtrack=backtrack)
    jumps = {6, 27}  # official rollbacks before and after the save
    reference = run_ckpt(s, jumps=jumps)
    path = tmp_path / "run.ckpt.pt"
    with pytest.raises(Crash):
        run_ckpt(s, path, every=10, crash_at=24, jumps=jumps)
    # the resumed process counts forward calls afresh, from the 20 of the saved steps
    # (the guard redid call 6: one more)
    done = 20 + (backtrack == "guard")
    resumed = run_ckpt(s, path, every=10, jumps={j - done for j in jumps if j >= done})
    assert resumed.resumed_at == 20
    same(resumed, reference)
    assert reference.backtracks == 2


def test_a_finished_perturbed_fit_resumes_to_its_final_output(tmp_path):
    """Saved after its last step, a fit resumes without a step: the checkpoint holds the
    last noise draw (InputNoise), without which the fit refuses to guess it."""
    s = settings(num_iter=12, reg_noise_std=0.05, seed=4, final_input="perturbed")
    path = tmp_path / "run.ckpt.pt"
    first = run_ckpt(s, path, every=100)
    again = run_ckpt(s, path, every=100)
    assert again.resumed_at == first.steps == 12
    same(again, first)
    bare = tmp_path / "bare.ckpt.pt"
    for _ in range(2):
        mons = [History(10), Checkpoint(bare, 100, key="bare")]
        if bare.exists():
            with pytest.raises(DipError, match="without the last input noise"):
                fit(fresh_net(seed=4), noisy(), s, mons, resume=bare)
        else:
            fit(fresh_net(seed=4), noisy(), s, mons, resume=bare)


# --- backtrack -----------------------------------------------------------------------

@pytest.mark.parametrize("graph", [False, True])
def test_official_backtrack_is_the_denoising_notebooks(graph):
    """Checks only where i % 100 != 0, restores the parameters only, still applies the
    bad step's update and holds i back: the transcribed notebook's numbers exactly. A bad
    output at i = 100 is not checked."""
    s = settings(num_iter=105, reg_noise_std=1 / 30, seed=1, backtrack="official",
                 final_input="perturbed", record_every=50, cuda_graph=graph)
    jumps = {3, 101}  # call 3: i = 3, rolled back; call 101: i = 100 (one rollback before)
    result = fit(fresh_net(jumps), noisy(), s)
    reference, fired = notebook(fresh_net(jumps), noisy(), s, show_every=100)
    assert 3 in fired and 101 not in fired
    assert result.backtracks == len(fired)
    assert torch.equal(result.final, reference)
    assert result.steps == s.num_iter  # a rollback uses up its Adam step


def test_official_rollback_restores_parameters_but_not_buffers_or_adam_state():
    net = small_net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.rand(1, 8, 16, 16)).mean().backward()
    opt.step()
    info = StepInfo(problem=None, net=net, optimizer=opt)
    guard = OfficialBacktrack(show_every=100)
    guard.on_start(info)
    loss = torch.tensor(0.01)
    for step in range(2):  # i = 0: not checked; i = 1: saved (20 dB)
        info.begin(step, None, None, loss, loss)
        guard.on_step(info)
    saved = [p.detach().clone() for p in net.parameters()]
    with torch.no_grad():
        for t in [*net.parameters(), *net.buffers()]:
            t.add_(1)
        for state in opt.state.values():
            state["exp_avg"].add_(1)
    others = [t.clone() for t in net.buffers()] + [st["exp_avg"].clone()
                                                   for st in opt.state.values()]
    info.begin(2, None, None, torch.tensor(1.0), torch.tensor(1.0))  # 0 dB: a 20 dB drop
    guard.on_step(info)
    assert not info.rollback and guard.total == 1 and guard.i == 2
    assert not torch.equal(saved[0], next(net.parameters()))  # restored only before the update
    guard.before_update(info)
    assert all(torch.equal(a, b) for a, b in zip(saved, net.parameters(), strict=True))
    now = list(net.buffers()) + [st["exp_avg"] for st in opt.state.values()]
    assert all(torch.equal(a, b) for a, b in zip(others, now, strict=True))


@pytest.mark.parametrize("task", ["sr", "inpainting", "fitting"])
def test_official_backtrack_is_none_where_the_notebook_has_none(task):
    gt = smooth_image(size=32)
    problem = {"sr": lambda: sr(hr=gt, factor=4),
               "inpainting": lambda: inpainting_problem(image=gt, p_missing=0.5, seed=0),
               "fitting": lambda: fitting(target=gt)}[task]()
    s = settings(num_iter=8, backtrack="official")
    assert task not in OFFICIAL_BACKTRACK
    assert not any(isinstance(m, Backtrack) for m in default_monitors(problem, s))
    result = fit(fresh_net({2, 3}), problem, s)
    assert result.backtracks == 0 and result.steps == 8
    guarded = fit(fresh_net({2, 3}), problem, dataclasses.replace(s, backtrack="guard"))
    assert guarded.backtracks >= 1
    den = default_monitors(noisy(), s)
    assert [m.show_every for m in den if isinstance(m, OfficialBacktrack)] == [100]


def test_unknown_switch_values_are_refused():
    with pytest.raises(ValueError, match="final_input"):
        fit(small_net(), noisy(), settings(final_input="noisy"))
    with pytest.raises(ValueError, match="backtrack"):
        default_monitors(noisy(), settings(backtrack="paper"))
    with pytest.raises(DipError, match=r"fit.backtrack=paper is unknown"):
        spec_of(make_cfg("fit.backtrack=paper")).settings_for()


# --- the grouped engine ----------------------------------------------------------------

class Spoil(Monitor):
    """Makes the official guard see a 0 dB step at the given steps (before it, in the list)."""

    def __init__(self, steps):
        self.steps = set(steps)

    def on_step(self, info):
        if info.step in self.steps:
            info.data = torch.ones_like(info.data)


def test_grouped_engine_honours_both_switches(float64):
    runs = [dict(seed=0, final_input="perturbed", backtrack="official"),
            dict(seed=1, final_input="clean", backtrack="official", num_iter=7),
            dict(seed=2, final_input="perturbed", reg_noise_std=0.0)]
    sets = [FitSettings(**{**dict(num_iter=10, lr=0.01, reg_noise_std=0.03, input_depth=8,
                                  record_every=3), **r}) for r in runs]
    problems = [denoising(gt=smooth_image(size=32, seed=k), sigma=25, seed=k)
                for k in range(3)]

    def mons(k):
        return [Spoil({4} if k == 0 else set())] + default_monitors(problems[k], sets[k])

    def nets():
        out = []
        for k in range(3):
            torch.manual_seed(10 + k)
            out.append(small_net())
        return out

    seq = [fit(n, p, s, monitors=mons(k))
           for k, (n, p, s) in enumerate(zip(nets(), problems, sets, strict=True))]
    bat = fit_batched(nets(), problems, sets, engine="grouped",
                      monitors=[mons(k) for k in range(3)])
    assert [r.backtracks for r in seq] == [r.backtracks for r in bat] == [1, 0, 0]
    for a, b in zip(seq, bat, strict=True):
        torch.testing.assert_close(a.final, b.final, atol=1e-9, rtol=0)
        torch.testing.assert_close(a.average, b.average, atol=1e-9, rtol=0)


# --- configs ---------------------------------------------------------------------------

@pytest.mark.parametrize("experiment", ["table_denoising", "table_sr", "table_inpainting"])
def test_paper_profile_follows_each_notebook(experiment):
    cfg = make_cfg(f"experiment={experiment}", "profile=paper")
    assert (cfg.fit.final_input, cfg.fit.backtrack) == ("perturbed", "official")
    s = spec_of(cfg).settings_for()
    assert (s.final_input, s.backtrack) == ("perturbed", "official")
    fitting = make_cfg("task=fitting", "profile=paper")
    assert (fitting.fit.final_input, fitting.fit.backtrack) == ("clean", "guard")


@pytest.mark.parametrize("profile", ["quick", "smoke"])
@pytest.mark.parametrize("what", ["experiment=table_denoising", "experiment=table_sr",
                                  "experiment=table_inpainting", "task=denoising",
                                  "task=sr", "task=inpainting", "task=fitting"])
def test_quick_and_smoke_keep_todays_behaviour(what, profile):
    cfg = make_cfg(what, f"profile={profile}")
    assert (cfg.fit.final_input, cfg.fit.backtrack) == ("clean", "guard")


def test_quick_tables_keep_their_identity():
    """As make runs them: one thread per run (threads=auto, one job per core)."""
    for name, expected in QUICK_HASHES.items():
        assert config_hash(make_cfg(f"experiment={name}", "threads=1")) == expected
    base = make_cfg("experiment=table_sr")
    assert config_hash(make_cfg("experiment=table_sr", "fit.final_input=clean",
                                "fit.backtrack=guard")) == config_hash(base)
    for other in ("fit.final_input=perturbed", "fit.backtrack=official"):
        assert config_hash(make_cfg("experiment=table_sr", other)) != config_hash(base)


# --- tables ----------------------------------------------------------------------------

@needs_paper
def test_table_notes_say_how_often_the_backtracking_fired(tmp_path):
    root = tmp_path / "runs"
    inpainting_record(root, "barbara", 0, 30.0, backtracks=3)
    inpainting_record(root, "house", 0, 31.0, backtracks=0)
    inpainting_record(root, "hill", 0, 29.0, backtracks=1)
    notes = table("inpainting", "quick", root).attrs["notes"]
    assert "Backtracking guard (guard): 4 rollbacks over 2 of 3 run(s)." in notes

    quiet = tmp_path / "quiet"
    inpainting_record(quiet, "barbara", 0, 30.0, backtracks=0)
    inpainting_record(quiet, "house", 0, 30.0)  # a record without the count
    notes = table("inpainting", "quick", quiet).attrs["notes"]
    assert ("Backtracking guard (guard): no rollbacks in 1 run(s), unknown for 1 run(s) "
            "recorded without a count.") in notes

    old = tmp_path / "old"
    inpainting_record(old, "barbara", 0, 30.0)
    assert ("Backtracking guard (guard): rollbacks unknown (1 run(s) recorded without a "
            "count).") in table("inpainting", "quick", old).attrs["notes"]


@needs_paper
def test_table_notes_name_the_official_backtracking(tmp_path):
    root = tmp_path / "runs"
    for sigma, count in ((25, 2), (50, 0)):
        path = write_record(root, f"den-{sigma}", experiment="table_denoising",
                            task="denoising", image=f"paper/denoising/sigma{sigma}/F16_noisy.png",
                            sigma=sigma, backtracks=count, baselines={"nlm": 25.0})
        with open(path / "config.yaml", "a") as f:
            f.write("fit:\n  backtrack: official\n")
    sr = write_record(root, "sr", experiment="table_sr", task="sr", image="set5/baby.png",
                      dataset="set5", factor=4, backtracks=0, baselines={"bicubic": 25.0})
    with open(sr / "config.yaml", "a") as f:
        f.write("fit:\n  backtrack: official\n")
    notes = table("denoising", "quick", root).attrs["notes"]
    assert "Backtracking guard (official): 2 rollbacks over 1 of 2 run(s)." in notes
    notes = table("sr", "quick", root).attrs["notes"]
    assert "Backtracking (official: none in this task's notebook): no rollbacks in 1 run(s)." \
        in notes
