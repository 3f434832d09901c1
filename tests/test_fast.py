"""Fast-path code paths of the fit step, exercised on the CPU (a few steps each)."""

import subprocess
import sys

import pytest
import torch
from conftest import settings, small_net, smooth_image, spec_of

from dip.fitting import fast
from dip.fitting.loop import fit
from dip.fitting.settings import FitSettings
from dip.problems.denoising import denoising


def test_cpu_defaults_are_eager_fp32_nchw_below_256_squared(monkeypatch):
    s, cpu = FitSettings(), torch.device("cpu")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert not fast.use_channels_last(s, cpu) and not fast.use_fused_adam(s, cpu)
    assert not fast.use_channels_last(s, cpu, (1, 32, 128, 128))
    assert not fast.use_channels_last(s, cpu, (1, 32, 255, 256))
    assert fast.use_channels_last(s, cpu, (1, 32, 256, 256))
    assert fast.use_channels_last(s, cpu, (1, 32, 512, 384))
    for isa in ("AVX2", "avx2", "SSE41"):  # oneDNN capped below AVX-512: NCHW
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
        assert not fast.use_channels_last(s, cpu, (1, 32, 512, 512))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    assert fast.use_channels_last(s, cpu, (1, 32, 512, 512))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert not fast.use_channels_last(s, cpu, (1, 32, 512, 512))
    assert s.amp == "off" and not s.compile
    assert not fast.use_channels_last(s, torch.device("cuda"))  # NCHW: faster on an H200
    assert not fast.use_channels_last(s, torch.device("cuda"), (1, 32, 512, 512))
    assert fast.use_fused_adam(s, torch.device("cuda"))


def test_channels_last_setting_overrides_the_size_rule():
    cpu = torch.device("cpu")
    assert not fast.use_channels_last(FitSettings(channels_last=False), cpu, (1, 3, 512, 512))
    assert fast.use_channels_last(FitSettings(channels_last=True), cpu, (1, 3, 8, 8))


@pytest.mark.parametrize("kw", [dict(amp="bf16"), dict(channels_last=True),
                                dict(amp="bf16", channels_last=True), dict(fused_adam=True)])
def test_fast_paths_run_and_fit(kw):
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    torch.manual_seed(0)
    result = fit(small_net(), problem, settings(num_iter=40, **kw))
    assert result.final.dtype == torch.float32 and torch.isfinite(result.final).all()
    h = result.history
    assert h.psnr_obs.iloc[-1] > h.psnr_obs.iloc[0] + 1


def test_channels_last_gives_the_same_fit_up_to_rounding():
    # a tiny learning rate: Adam's first, normalised steps would otherwise turn rounding
    # differences of the gradients into steps of size lr
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    outs = []
    for cl in (False, True):
        torch.manual_seed(0)
        res = fit(small_net(), problem, settings(num_iter=2, lr=1e-5, channels_last=cl))
        assert res.memory_format == ("channels_last" if cl else "nchw")
        outs.append(res.final)
    torch.testing.assert_close(outs[0], outs[1], atol=1e-4, rtol=0)


def test_unknown_amp_mode_is_refused():
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    with pytest.raises(ValueError, match="amp"):
        fit(small_net(), problem, settings(num_iter=1, amp="fp8"))


def test_cuda_graphs_are_automatic_on_cuda_only():
    s = FitSettings()
    assert not fast.use_cuda_graph(s, torch.device("cpu"))
    assert fast.use_cuda_graph(s, torch.device("cuda"))
    assert not fast.use_cuda_graph(FitSettings(cuda_graph=False), torch.device("cuda"))
    # asked for on the CPU: the graph loop with its eager stand-in (tests use it)
    assert fast.use_cuda_graph(FitSettings(cuda_graph=True), torch.device("cpu"))


@pytest.mark.parametrize("kw", [dict(), dict(reg_noise_std=0.0), dict(tv_weight=0.01)])
def test_step_graph_loop_equals_the_eager_loop(kw, monkeypatch):
    """The graph loop (two pieces, monitors between them; on the CPU each replay runs the
    function again) gives the eager loop's results bit for bit, rollbacks included."""
    from dip.fitting.monitors import Monitor

    class Spoil(Monitor):  # NaN loss at steps 5 and 9 (after the warm-up): rolled back
        def __init__(self):
            self.hits = {5, 9}

        def on_step(self, info):
            if info.step in self.hits:
                self.hits.discard(info.step)
                info.loss = info.loss * float("nan")

    from dip.fitting.step import default_monitors

    calls = []
    replay = fast.StepGraph.forward_backward
    monkeypatch.setattr(fast.StepGraph, "forward_backward",
                        lambda self: calls.append(1) or replay(self))
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    results = []
    for graph in (False, True):
        torch.manual_seed(0)
        s = settings(num_iter=15, cuda_graph=graph, **kw)
        mons = [Spoil()] + default_monitors(problem, s)
        results.append(fit(small_net(), problem, s, monitors=mons))
    eager, graphed = results
    assert len(calls) == 15 - fast.GRAPH_WARMUP + 2  # every step after the warm-up
    assert graphed.backtracks == eager.backtracks == 2
    assert eager.graph_steps == 0 and graphed.graph_steps == 15 - fast.GRAPH_WARMUP
    assert torch.equal(eager.final, graphed.final)
    assert torch.equal(eager.average, graphed.average)
    assert torch.equal(eager.oracle, graphed.oracle) and eager.iter_oracle == graphed.iter_oracle
    assert eager.history.equals(graphed.history.assign(seconds=eager.history.seconds))


def test_step_graph_on_the_cpu_overwrites_its_outputs_as_a_replay_does():
    """Each call writes into the tensors of the first call, so a monitor that kept one
    without copying it sees it change on the CPU too, as it would on CUDA."""
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)
    calls = iter([1.0, 2.0])

    def fb():
        out = w * next(calls)
        loss = out.sum()
        loss.backward()
        return out, loss

    graph = fast.StepGraph(torch.device("cpu"))
    assert graph.capture(fb, opt.step, opt)
    first = graph.forward_backward()
    kept = first[0].detach()
    second = graph.forward_backward()
    assert second[0] is first[0] and second[1] is first[1]
    assert torch.equal(kept, torch.full((2,), 2.0)) and float(second[1].detach()) == 4.0


def test_a_failed_capture_falls_back_to_the_eager_step(monkeypatch):
    def fail(self, *args):
        raise RuntimeError("operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(fast.StepGraph, "_record", fail)
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    torch.manual_seed(0)
    eager = fit(small_net(), problem, settings(num_iter=8))
    with pytest.warns(UserWarning, match="capture failed.*not permitted"):
        torch.manual_seed(0)
        fallback = fit(small_net(), problem, settings(num_iter=8, cuda_graph=True))
    assert torch.equal(eager.final, fallback.final) and fallback.steps == 8
    assert fallback.graph_steps == 0


def test_step_lock_lets_a_capture_run_alone():
    """Shared holders overlap; an exclusive holder waits for them, and new shared
    holders wait for a waiting exclusive one (no step of the test relies on timing)."""
    import threading

    lock, events = fast.StepLock(), []
    inside, release = threading.Event(), threading.Event()

    def step(name, hold: threading.Event | None):
        with lock.shared():
            events.append(f"{name}+")
            inside.set()
            if hold is not None:
                assert hold.wait(5)
            events.append(f"{name}-")

    def capture():
        with lock.exclusive():
            events.append("capture")

    a = threading.Thread(target=step, args=("a", release))
    a.start()
    assert inside.wait(5)
    c = threading.Thread(target=capture)
    c.start()
    with lock.observed() as waiting:
        assert waiting(lambda: lock.waiting == 1, 5)  # the capture waits for a
    b = threading.Thread(target=step, args=("b", None))
    b.start()  # arrives while the capture waits: goes after it
    release.set()
    for t in (a, b, c):
        t.join(5)
    assert events == ["a+", "a-", "capture", "b+", "b-"]


def test_freed_memory_is_kept_on_the_cpu_only_by_default():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert fast.use_keep_memory(FitSettings(), cpu) and not fast.use_keep_memory(None, cuda)
    assert not fast.use_keep_memory(FitSettings(keep_memory=False), cpu)
    assert fast.use_keep_memory(FitSettings(keep_memory=True), cuda)


def test_runner_passes_keep_memory_to_the_fit():
    from conftest import make_cfg

    assert spec_of(make_cfg()).settings_for().keep_memory is None
    assert spec_of(make_cfg("fast.keep_memory=false")).settings_for().keep_memory is False


GLIBC = sys.platform.startswith("linux") and "glibc" in " ".join(
    __import__("platform").libc_ver())

_HEAP = """
import torch
from dip.fitting import fast

def in_heap():  # whether a fresh 64 MiB tensor lies in the heap (brk), not in an mmap
    t = torch.empty(16 * 2**20)
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= t.data_ptr() < hi:
                return True
    return False

print(in_heap(), fast.keep_freed_memory(), in_heap(), fast.keep_freed_memory())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_kept_memory_comes_from_the_heap():
    out = subprocess.run([sys.executable, "-c", _HEAP], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    # by default a block this large is mapped for itself and unmapped when freed (the
    # next one comes back as fresh pages); kept, it comes from the heap, which keeps
    # what is freed
    assert out == ["False", "True", "True", "True"]


_FIT = """
import sys, torch
sys.path.insert(0, {tests!r})
from conftest import settings, small_net, smooth_image
from dip.fitting import fast
from dip.problems.denoising import denoising
from dip.fitting.loop import fit
torch.set_num_threads(1)
problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
torch.manual_seed(0)
res = fit(small_net(), problem, settings(num_iter=15, keep_memory=False))
torch.save([res.final, res.average], {out!r})
print(fast._kept)
"""


@pytest.mark.slow  # two child processes
def test_keeping_freed_memory_changes_no_result(tmp_path):
    # a process that never keeps its freed memory, and this one (CPU fits keep it)
    from pathlib import Path

    out = tmp_path / "plain.pt"
    code = _FIT.format(tests=str(Path(__file__).parent), out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert proc.stdout.split()[-1] == "None"  # keep_memory=False: never set
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    threads = torch.get_num_threads()  # CPU results depend on it: one in both processes
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        res = fit(small_net(), problem, settings(num_iter=15))
    finally:
        torch.set_num_threads(threads)
    if GLIBC:
        assert fast.keep_freed_memory()
    plain_final, plain_avg = torch.load(out)
    assert torch.equal(res.final, plain_final) and torch.equal(res.average, plain_avg)


def test_cpu_adam_is_for_each_and_gives_the_for_loops_bits():
    cpu = torch.device("cpu")
    opts = []
    for kw in ({}, {"foreach": False}):
        torch.manual_seed(0)
        net = small_net()
        opt = fast.adam(net.parameters(), settings(), cpu) if not kw else \
            torch.optim.Adam(net.parameters(), lr=settings().lr, **kw)
        x = torch.rand(1, 8, 32, 32, generator=torch.Generator().manual_seed(1))
        for _ in range(5):
            opt.zero_grad(set_to_none=True)
            net(x).square().mean().backward()
            opt.step()
        opts.append((opt, torch.cat([p.detach().flatten() for p in net.parameters()])))
    assert opts[0][0].defaults["foreach"] is True
    assert torch.equal(opts[0][1], opts[1][1])
    fused = fast.adam([torch.zeros(2, requires_grad=True)], settings(fused_adam=True), cpu)
    assert fused.defaults["fused"] and not fused.defaults["foreach"]
