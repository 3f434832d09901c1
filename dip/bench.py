"""Benchmark of the fit step against a plain eager reference (``make bench``).

Measures, on the CPU or the GPU of this machine:

* **single**: the per-iteration time of this project's :func:`dip.fit.fit` (the whole
  loop with its default monitors: history, oracle, backtracking guard) against a
  plain eager reference implementation of the official skip network written in this
  file (same architecture, 2,217,831 parameters, fp32 NCHW, ``torch.optim.Adam``, no
  monitors), alternating step by step (one reference step between two of ours), so
  that a load that changes over time hits both alike. On the CPU the reference runs
  in a process of its own (:class:`_RemoteReference`, driven through a pipe) so that it
  keeps the C library's default allocator, as a plain script does, while ours keeps
  its freed memory (:func:`dip.fast.keep_freed_memory`, process-wide, so one process
  could not hold both); the ``same-malloc`` row gives that process the kept memory
  too, which leaves the loop's own cost. On CUDA it runs in our process. Medians over
  all timed steps; ``ratio`` = median ours / median reference, ``ratio_paired`` the
  median of the step-by-step ratios.
* **batched**: throughput of :func:`dip.batched.fit_batched` for N runs, per engine
  (CPU: threads and grouped; CUDA: also threads with CUDA graphs), against N
  sequential single runs with all the process's threads: ``sequential_s`` = N × the
  steady-state wall time per step of a :func:`dip.fit.fit` call, ``batched_s`` = that
  of a ``fit_batched`` call, each the wall time of a long fit minus that of a short one
  over the steps between (so set-up, warm-up steps, graph captures and the final
  output cancel); medians, single and batched calls alternating; on CUDA one discarded
  short fit first per shape (cudnn.benchmark's trials).
* **compute rate**: the convolution arithmetic of a paper-net step per size
  (:func:`dip.flops.step_gflop`: forward and backward, from shapes alone) turns each
  row's time into GFLOP/s, set beside the fp32 rate of a large matrix product on this
  machine (:func:`dip.flops.gemm_gflop_s`; on the CPU with one thread and with all of
  the process's), the most a step of convolutions could sustain; a batched speedup s
  needs s times the sequential rate.
* **peak memory**: of one paper-net fit per size, in a fresh subprocess. On the CPU
  the increase of the process's peak resident set size (``VmHWM`` of
  /proc/self/status) over its resident set just before the fit (after imports and
  setup), i.e. what the fit itself needed; on
  CUDA ``torch.cuda.max_memory_allocated``.

Writes ``results/bench/<device>.json`` and ``.md`` after each section (``complete`` is
false until the last one has run). Usage::

    python -m dip.bench            # full: 64², 128², 256², 512²
    python -m dip.bench --quick    # < 5 min on 2 CPU cores
    python -m dip.bench --quick --amp-check 3000   # + fp32 vs bf16 PSNR (GPU)
    python -m dip.bench --skip single,batched,memory --amp-check 1000 --check-crop 128

On the CPU, ``single`` has a row for the default step (the automatic fast paths), one
for the default step against a reference with kept memory (``same-malloc``) and, except
with ``--quick``, one with bf16 autocast (``bf16``). On CUDA, ``single`` has one
row per variant of our step: ``fp32-graph`` (the automatic fast paths: NCHW,
cudnn.benchmark, fused Adam, CUDA graphs), ``fp32-eager`` (without graphs),
``fp32-cl-graph`` and ``fp32-cl`` (the same in channels_last), ``bf16-graph`` and ``bf16``
(bf16 autocast), ``bf16-cl-graph`` (bf16 in channels_last), each against the same eager
fp32 NCHW reference; ``batched`` compares the grouped engine, the threads engine (one
CUDA stream per run, eager steps) and the threads engine with each run's step replayed
as CUDA graphs (``threads+graphs``) with N sequential default runs, 200 steps apart on
CUDA (:data:`BATCHED_CUDA_STEPS`).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dip.fast import GRAPH_WARMUP
from dip.flops import gemm_gflop_s, step_gflop
from dip.monitors import Monitor

__all__ = ["reference_skip", "main", "PAPER_KWARGS", "PAPER_PARAMS"]

PAPER_KWARGS = dict(num_channels_down=[128] * 5, num_channels_up=[128] * 5,
                    num_channels_skip=[4] * 5, filter_size_down=3, filter_size_up=3,
                    filter_skip_size=1, upsample_mode="bilinear", pad="reflection")
PAPER_PARAMS = 2_217_831


# --- the eager reference: the official skip network, written out plainly ----------

class _RefConcat(nn.Module):
    def __init__(self, *branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        outs = [b(x) for b in self.branches]
        h = min(o.shape[2] for o in outs)
        w = min(o.shape[3] for o in outs)
        outs = [o[:, :, (o.shape[2] - h) // 2:(o.shape[2] - h) // 2 + h,
                  (o.shape[3] - w) // 2:(o.shape[3] - w) // 2 + w] for o in outs]
        return torch.cat(outs, 1)


def _ref_conv(cin, cout, k, stride=1):
    pad = (k - 1) // 2
    layers = [nn.ReflectionPad2d(pad)] if pad else []
    return nn.Sequential(*layers, nn.Conv2d(cin, cout, k, stride, padding=0))


def _ref_block(cin, cout, k, stride=1):
    return [_ref_conv(cin, cout, k, stride), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]


def reference_skip(n_in=32, n_out=3, down=(128,) * 5, up=(128,) * 5, skip=(4,) * 5):
    """The official ``skip`` net (bilinear, reflection padding, 3×3 / 1×1 filters)."""
    n = len(down)

    def level(i, cin):
        deeper = nn.Sequential(*_ref_block(cin, down[i], 3, 2), *_ref_block(down[i], down[i], 3))
        if i < n - 1:
            deeper.append(level(i + 1, down[i]))
        deeper.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        k = up[i + 1] if i < n - 1 else down[i]
        skip_branch = nn.Sequential(*_ref_block(cin, skip[i], 1))
        return nn.Sequential(_RefConcat(skip_branch, deeper), nn.BatchNorm2d(skip[i] + k),
                             *_ref_block(skip[i] + k, up[i], 3), *_ref_block(up[i], up[i], 1))

    return nn.Sequential(level(0, n_in), _ref_conv(up[0], n_out, 1), nn.Sigmoid())


# --- helpers -------------------------------------------------------------------------

def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _image(size, seed=0):
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size),
                          indexing="ij")
    img = torch.stack([0.5 + 0.4 * torch.cos(2 * math.pi * (c + 1) * (x + 0.5 * y)
                                             + float(torch.rand(1, generator=g)) * 6)
                       for c in range(3)])
    return img


def _problem(size, seed=0):
    from dip import tasks

    return tasks.denoising(gt=_image(size, seed), sigma=25, seed=seed)


def _settings(steps, device, seed=0, **kw):
    from dip.fit import FitSettings

    return FitSettings(num_iter=steps, lr=0.01, reg_noise_std=1.0 / 30, input_depth=32,
                       record_every=10, seed=seed, device=str(device), **kw)


def _ours_net(seed=0):
    from dip.nets import build

    torch.manual_seed(seed)
    return build("skip", 32, 3, **PAPER_KWARGS)


class _Timer(Monitor):
    """Monitor that times every accepted step (on_step runs once per step).

    With ``between`` (a callable), it is called after each stamp and the time it
    takes is excluded: the reference runs one step between two of ours, so the two
    are measured alternating step by step under the same load.
    """

    def __init__(self, device, between=None):
        self.device, self.between = device, between
        self.times: list[float] = []
        self._last = None

    def on_step(self, info):
        if info.rollback:
            return
        _sync(self.device)
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        if self.between is not None:
            self.between()
            _sync(self.device)
        self._last = time.perf_counter()

    def diffs(self):
        return self.times


def _ours_block(size, steps, device, between=None, **kw):
    """Step times of one :func:`dip.fit.fit` call (default monitors + a timer) and the
    number of its steps that ran as CUDA graph replays."""
    from dip.fit import default_monitors, fit

    problem = _problem(size)
    s = _settings(steps + 1, device, **kw)
    timer = _Timer(device, between)
    res = fit(_ours_net(), problem, s, monitors=default_monitors(problem, s) + [timer])
    return timer.diffs(), res.graph_steps


class _Reference:
    """The eager reference loop: input noise, forward, MSE, backward, Adam."""

    def __init__(self, size, device):
        torch.manual_seed(0)
        self.net = reference_skip().to(device).train()
        count = sum(p.numel() for p in self.net.parameters())
        assert count == PAPER_PARAMS, f"reference net has {count} parameters"
        self.device = device
        self.z = (torch.rand(1, 32, size, size) * 0.1).to(device)
        self.target = _problem(size).observation.to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=0.01)

    def step(self):
        """One step (not synchronised)."""
        self.opt.zero_grad(set_to_none=True)
        out = self.net(self.z + torch.randn_like(self.z) / 30)
        F.mse_loss(out, self.target).backward()
        self.opt.step()

    def block(self, steps):
        times = []
        for _ in range(steps):
            _sync(self.device)
            t = time.perf_counter()
            self.step()
            _sync(self.device)
            times.append(time.perf_counter() - t)
        return times

    def close(self):
        """Nothing to release (as :meth:`_RemoteReference.close` for a child process)."""


class _RemoteReference:
    """:class:`_Reference` in a child process (``python -m dip.bench --_reference``),
    stepped through a pipe; the same :meth:`block` and :meth:`close`. ``where='kept'``:
    the child keeps its freed memory (:func:`dip.fast.keep_freed_memory`) as our fits
    do; 'plain': it runs with the C library's defaults, as a plain script."""

    def __init__(self, size, device, where="plain"):
        cmd = [sys.executable, "-m", "dip.bench", "--_reference", str(size), str(device),
               where, "--threads", str(torch.get_num_threads())]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self._reply()  # set up and warmed up

    def _reply(self):
        for line in self.proc.stdout:  # anything else the child prints is not ours
            if line.startswith(_REPLY):
                return json.loads(line[len(_REPLY):])
        code = self.proc.wait()
        raise RuntimeError(f"the reference process ended (exit code {code}); its error "
                           "is above")

    def block(self, steps):
        self.proc.stdin.write(f"{steps}\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_REPLY = "dip-bench-reference: "


def _serve_reference(size, device_str, where):
    """Child process of :class:`_RemoteReference`: one warm-up step, then for each line
    ``N`` of stdin the times of N steps as one JSON line on stdout."""
    from dip import fast

    if where == "kept":
        fast.keep_freed_memory()
    ref = _Reference(size, torch.device(device_str))
    ref.block(1)
    print(_REPLY + "null", flush=True)
    for line in sys.stdin:
        print(_REPLY + json.dumps(ref.block(int(line))), flush=True)


# Steps between the short and the long fit of a batched row on CUDA. With 21 (the
# CPU's count + 1) an H200 gave sequential baselines 2x apart between rows and, for
# threads+graphs, long fits no longer than short ones.
BATCHED_CUDA_STEPS = 200

# Batched rows: label -> (dip.batched engine, fit settings of its runs).
ENGINES = {"threads": ("threads", {}), "grouped": ("grouped", {})}
CUDA_ENGINES = {"threads": ("threads", {"cuda_graph": False}), "grouped": ("grouped", {}),
                "threads+graphs": ("threads", {"cuda_graph": True})}


def _fit_wall(size, n, steps, device, engine=None, **kw):
    """Wall time of one whole fit call of ``steps`` steps (setup and final output
    included): :func:`dip.fit.fit` for ``engine=None``, else
    :func:`dip.batched.fit_batched` of ``n`` runs with that engine; ``kw`` are fit
    settings of every run. Also returns the number of steps (all runs together) that ran
    as CUDA graph replays."""
    from dip.batched import fit_batched
    from dip.fit import fit

    problems = [_problem(size, seed=i) for i in range(n)]
    settings = [_settings(steps, device, seed=i, **kw) for i in range(n)]
    nets = [_ours_net(i) for i in range(n)]
    _sync(device)
    t = time.perf_counter()
    if engine is None:
        results = [fit(nets[0], problems[0], settings[0])]
    else:
        results = fit_batched(nets, problems, settings, engine=engine)
    _sync(device)
    return time.perf_counter() - t, sum(r.graph_steps for r in results)


def _short_steps(device):
    """Steps of the short fit whose wall time :func:`_step_cost` subtracts: past the
    CUDA graph capture on CUDA."""
    return GRAPH_WARMUP + 2 if device.type == "cuda" else 1


def _step_cost(size, n, steps, device, engine=None, **kw):
    """Steady-state wall time per step of a fit call (of all its runs together): the
    wall time of a fit of ``short + steps`` steps minus that of ``short`` steps
    (:func:`_short_steps`), over ``steps``; set-up, warm-up steps, graph captures and
    the final output cancel. Also returns the long fit's graph steps."""
    short = _short_steps(device)
    long_wall, replayed = _fit_wall(size, n, short + steps, device, engine, **kw)
    short_wall, _ = _fit_wall(size, n, short, device, engine, **kw)
    if long_wall <= short_wall:  # the steps cost less than the two fits' noise
        return None, replayed
    return (long_wall - short_wall) / steps, replayed


# Where the reference of a single row runs (the row's "reference" entry).
REFERENCES = {"plain": "own process, default allocator",
              "kept": "own process, freed memory kept",
              "in-process": "our process"}


def bench_single(size, repeats, steps, device, log, variant="default", reference="plain",
                 **kw):
    """Ours (with the fit settings ``kw``, e.g. ``amp='bf16'``) vs the fp32 reference,
    which runs where ``reference`` (a key of :data:`REFERENCES`) says; 'plain' and
    'kept' are CPU only."""
    if reference == "in-process":
        ref = _Reference(size, device)
        ref.block(1)  # warm-up
    else:
        ref = _RemoteReference(size, device, reference)
    ours, theirs, graph_steps = [], [], 0
    try:
        for _ in range(repeats):
            # one reference step between two of ours (the first one is not timed)
            theirs_block: list[float] = []
            ours_block, replayed = _ours_block(
                size, steps, device, between=lambda b=theirs_block: b.extend(ref.block(1)),
                **kw)
            ours += ours_block
            theirs += theirs_block[1:]
            graph_steps += replayed
    finally:
        ref.close()
    o, r = statistics.median(ours), statistics.median(theirs)
    paired = statistics.median(a / b for a, b in zip(ours, theirs, strict=False))
    row = {"size": size, "variant": variant, "reference": REFERENCES[reference],
           "ours_s_per_iter": round(o, 4), "reference_s_per_iter": round(r, 4),
           "ratio": round(o / r, 3), "ratio_paired": round(paired, 3),
           "steps_timed": [len(ours), len(theirs)], "graph_steps": graph_steps}
    log(f"single {size}² ({variant}; reference: {row['reference']}): ours {o:.4f} s/it, "
        f"reference {r:.4f} s/it, ratio {o / r:.2f}")
    return row


def bench_batched(size, ns, engines, repeats, steps, device, log):
    """Rows of ``{label: (engine, settings)}`` (:data:`ENGINES`) against N sequential
    runs with the default settings."""
    rows = []
    warm = device.type == "cuda"  # cudnn.benchmark tries its algorithms on new shapes
    if warm:
        _fit_wall(size, 1, _short_steps(device), device)
    for n in ns:
        for label, (name, kw) in engines.items():
            if warm:
                _fit_wall(size, n, _short_steps(device), device, name, **kw)
            times, single, replayed = [], [], 0
            for _ in range(repeats):  # alternate: one single run, then one batch of n
                single.append(_step_cost(size, 1, steps, device)[0])
                t, g = _step_cost(size, n, steps, device, name, **kw)
                times.append(t)
                replayed += g
            row = {"size": size, "n": n, "engine": label, "steps": steps,
                   "sequential_s": None, "batched_s": None, "speedup": None,
                   "run_iters_per_s": None, "graph_steps": replayed}
            if None in times or None in single:  # a long fit was not the longer one
                row["unmeasured"] = "a long fit took no longer than the short one"
                rows.append(row)
                log(f"batched {size}² N={n} ({label}): unmeasured ({row['unmeasured']})")
                continue
            b = statistics.median(times)
            seq = n * statistics.median(single)
            row.update({"sequential_s": round(seq, 4), "batched_s": round(b, 4),
                        "speedup": round(seq / b, 3), "run_iters_per_s": round(n / b, 3)})
            rows.append(row)
            log(f"batched {size}² N={n} ({label}): {b:.3f} s per pass, {n / b:.2f} run-it/s, "
                f"speedup {seq / b:.2f}× over {n} sequential")
    return rows


def _check_problem(problem, item="F16", sigma=25, crop=None):
    """The paper's noisy ``item`` (512², from the data root; its centre ``crop``×``crop``
    when given), else ``problem``, else a synthetic 256² image; with a description."""
    from dip import DipError, tasks
    from dip.data import center_crop, read

    if problem is None:
        try:
            gt = read(f"paper/denoising/{item}_GT.png")
            noisy = read(f"paper/denoising/sigma{sigma}/{item}_noisy.png")
            source = f"paper/denoising/sigma{sigma}/{item}_noisy.png"
            if crop:
                gt, noisy = center_crop(gt, crop), center_crop(noisy, crop)
                source += f" (centre {crop}² crop)"
            return tasks.denoising(gt=gt, noisy=noisy, sigma=sigma), source
        except DipError:
            problem = _problem(crop or 256)
    return problem, f"synthetic {problem.out_shape[-1]}² (sigma 25)"


def _compare(problem, device, log, num_iter, variants):
    """One paper-settings denoising fit (seed 0) per ``{name: settings}``; PSNR rows."""
    from dip.fit import fit

    rows = []
    for name, kw in variants.items():
        res = fit(_ours_net(0), problem, _settings(num_iter, device, **kw))
        row = {"variant": name, "psnr_final": round(problem.score(res.final), 3),
               "psnr_avg": round(problem.score(res.average), 3),
               "psnr_oracle": round(problem.score(res.oracle), 3),
               "s_per_iter": round(res.seconds / num_iter, 5), "graph_steps": res.graph_steps}
        rows.append(row)
        log(f"{name}: final {row['psnr_final']:.2f} dB, averaged {row['psnr_avg']:.2f} dB, "
            f"oracle {row['psnr_oracle']:.2f} dB, {row['s_per_iter'] * 1e3:.1f} ms/it")
    diff = {k: round(rows[1][k] - rows[0][k], 3) for k in ("psnr_final", "psnr_avg",
                                                             "psnr_oracle")}
    log(f"{rows[1]['variant']} - {rows[0]['variant']}: {diff}")
    return rows, diff


def amp_check(device, log, num_iter=3000, problem=None, crop=None):
    """PSNR of the paper's denoising run (skip net, lr 0.01, reg 1/30, ``num_iter``
    steps, seed 0) in fp32 and with bf16 autocast, on the paper's noisy F16 σ 25 (from
    the data root, or its centre ``crop``; a synthetic image when it is not there), or on
    ``problem``."""
    problem, source = _check_problem(problem, crop=crop)
    rows, diff = _compare(problem, device, log, num_iter, {"off": {}, "bf16": {"amp": "bf16"}})
    for r in rows:
        r["amp"] = r.pop("variant")
    return {"image": source, "num_iter": num_iter, "runs": rows, "bf16_minus_fp32": diff}


def graph_check(device, log, num_iter=300, problem=None, crop=None):
    """The same run eager and with CUDA graphs (equal up to the order of float sums)."""
    problem, source = _check_problem(problem, crop=crop)
    rows, diff = _compare(problem, device, log, num_iter,
                          {"eager": {"cuda_graph": False}, "graph": {"cuda_graph": True}})
    return {"image": source, "num_iter": num_iter, "runs": rows, "graph_minus_eager": diff}


def _proc_kb(field):
    """A field of /proc/self/status in kB (VmRSS: now, VmHWM: peak of this process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _short_fit(size, n, device):
    """Set up a short fit of ``n`` runs (past a CUDA graph capture) and return the call
    that runs it: :func:`dip.fit.fit` for one run, else :func:`dip.batched.fit_batched`."""
    from dip.batched import fit_batched
    from dip.fit import fit

    steps = GRAPH_WARMUP + 3 if device.type == "cuda" else 2
    problems = [_problem(size, seed=i) for i in range(n)]
    nets = [_ours_net(i) for i in range(n)]
    settings = [_settings(steps, device, seed=i) for i in range(n)]
    if n == 1:
        return lambda: fit(nets[0], problems[0], settings[0])
    return lambda: fit_batched(nets, problems, settings)


def _measure_memory(size, n, device_str):
    """Child process: peak memory of a short fit (single or batched)."""
    device = torch.device(device_str)
    if device.type == "cuda":
        # a first fit lets cudnn.benchmark try its algorithms (whose trial workspaces
        # would count as the fit's peak); the second one is measured
        _short_fit(size, n, device)()
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        run = _short_fit(size, n, device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        run = _short_fit(size, n, device)
        # ru_maxrss would keep the parent's peak across exec: read this process's own
        base = _proc_kb("VmRSS")
    run()
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        peak = (_proc_kb("VmHWM") - base) / 1024
    print(json.dumps({"size": size, "n": n, "mb": round(peak, 1)}))


def bench_memory(size, n, device, log):
    cmd = [sys.executable, "-m", "dip.bench", "--_memory", str(size), str(n), str(device),
           "--threads", str(torch.get_num_threads())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        log(f"memory {size}² N={n}: failed: {proc.stderr[-500:]}")
        return None
    mb = json.loads(proc.stdout.strip().splitlines()[-1])["mb"]
    log(f"memory {size}² N={n}: {mb:.0f} MB")
    return mb


def device_slug(device):
    """File name of a device's results: the GPU's name, or the CPU's model and threads
    (e.g. ``cpu-amd-epyc-2t``: CPU models of one core count differ by 2x here)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        from dip.records import machine

        name = f"cpu-{machine()['cpu']}-{torch.get_num_threads()}t"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _check_lines(title, key, check):
    """Markdown table of a PSNR check (:func:`amp_check`, :func:`graph_check`)."""
    lines = ["", f"## {title}: denoising {check['image']}, {check['num_iter']} iterations", "",
             f"| {key} | PSNR final | PSNR averaged | PSNR oracle | s/it | graph steps |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in check["runs"]:
        lines.append(f"| {r[key]} | {r['psnr_final']:.2f} | {r['psnr_avg']:.2f} | "
                     f"{r['psnr_oracle']:.2f} | {r['s_per_iter']:.4f} | "
                     f"{r.get('graph_steps', 0)} |")
    return lines


def with_rates(res: dict) -> dict:
    """``res`` with each row's GFLOP/s from its time and ``gflop_per_iter`` (rows of
    sizes without a count are left as they are)."""
    gflop = {int(k): v for k, v in res.get("gflop_per_iter", {}).items()}
    for r in res["single"]:
        g = gflop.get(r["size"])
        if g:
            r["ours_gflop_s"] = round(g / r["ours_s_per_iter"], 1)
            r["reference_gflop_s"] = round(g / r["reference_s_per_iter"], 1)
    for r in res["batched"]:
        g = gflop.get(r["size"])
        if g and r.get("batched_s") and r.get("sequential_s"):
            r["sequential_gflop_s"] = round(r["n"] * g / r["sequential_s"], 1)
            r["batched_gflop_s"] = round(r["n"] * g / r["batched_s"], 1)
    return res


def _rate_cell(value):
    return "—" if value is None else f"{value:.0f}"


def _rate_lines(res):
    """The compute-rate section: FLOP per step, the matrix-product rate, and what the
    batched speedups would need."""
    gflop, gemm = res.get("gflop_per_iter"), res.get("gemm_gflop_s")
    if not gflop:
        return []
    counts = sorted(gflop.items(), key=lambda kv: int(kv[0]))  # a merged file's are unsorted
    lines = ["", "## Compute rate", "",
             "Convolution arithmetic of one paper-net step (forward and backward, "
             "`dip.flops.step_gflop`): "
             + ", ".join(f"{k}² {v:.2f}" for k, v in counts) + " GFLOP."]
    if gemm:
        rates = [f"{v:.0f} GFLOP/s on {k} thread{'s' if k != '1' else ''}"
                 if k.isdigit() else f"{v:.0f} GFLOP/s" for k, v in gemm.items()]
        lines += ["", f"fp32 matrix product ({res.get('gemm_side')}³) on this machine: "
                  + ", ".join(rates) + ": about the most a step of convolutions can "
                  "sustain" + (" in fp32 (cuDNN's convolutions may run TF32 and exceed it)"
                               if "gpu" in gemm else "") + "."]
        top = max(gemm.values())
        for size in sorted({r["size"] for r in res["batched"]}):
            seq = [r["sequential_gflop_s"] for r in res["batched"]
                   if r["size"] == size and r.get("sequential_gflop_s")]
            if seq:
                s = statistics.median(seq)
                lines += ["", f"Batched at {size}²: N sequential runs reach {s:.0f} GFLOP/s, so "
                          f"a 2× speedup needs {2 * s:.0f} GFLOP/s ({2 * s / top:.0%} of the "
                          f"matrix product's {top:.0f}) and 3× needs {3 * s:.0f} "
                          f"({3 * s / top:.0%})."]
    return lines


def _markdown(res):
    # a merged file's rows come from several runs: a column names each row's commit
    parts = bool(res.get("parts"))
    head, rule = (" commit |", " --- |") if parts else ("", "")

    def commit(r):
        return f" {str(r.get('commit') or '—')[:7]} |" if parts else ""

    lines = [f"# Benchmark on {res['device_name']}", "",
             ("Newest run: " if parts else "")
             + f"torch {res['torch']}, {res['threads']} threads"
             + (f" (CPU {res['cpu']})" if res.get("cpu") else "")
             + f", commit {res['commit']}, "
             f"{res['date']}{' (quick)' if res['quick'] else ''}."
             + ("" if res.get("complete", True) else
                " **Incomplete: the run was cut off; the sections below are those it finished.**"),
             "",
             res["note"], "",
             *([("Measured in " + str(len(res["parts"])) + " runs: " + "; ".join(
                 f"commit {p['commit']}, {p['date']}" for p in res["parts"])
                 + "; each row names its commit."), ""]
               if parts else []),
             "## Single run: this project's fit step vs an eager reference", "",
             "| size | ours | reference runs in | ours s/it | reference s/it | ratio "
             "| ours GFLOP/s | graph steps |" + head,
             "| --- | --- | --- | --- | --- | --- | --- | --- |" + rule]
    for r in res["single"]:
        lines.append(f"| {r['size']}² | {r.get('variant', 'default')} | "
                     f"{r.get('reference', REFERENCES['in-process'])} | "
                     f"{r['ours_s_per_iter']:.4f} | {r['reference_s_per_iter']:.4f} | "
                     f"{r['ratio']:.2f} | {_rate_cell(r.get('ours_gflop_s'))} | "
                     f"{r.get('graph_steps', 0)} |" + commit(r))
    lines += ["", "## Batched runs (dip.batched engines) vs N sequential runs", "",
              "| size | N | engine | N sequential s/it | batched s/it | speedup | run-it/s "
              "| sequential GFLOP/s | batched GFLOP/s | graph steps |" + head,
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |" + rule]
    for r in res["batched"]:
        if r.get("batched_s") is None or r.get("sequential_s") is None:
            cells = "— | — | — | — | — | —"
        else:
            cells = (f"{r['sequential_s']:.3f} | {r['batched_s']:.3f} | {r['speedup']:.2f} | "
                     f"{r['run_iters_per_s']:.2f} | {_rate_cell(r.get('sequential_gflop_s'))} | "
                     f"{_rate_cell(r.get('batched_gflop_s'))}")
        lines.append(f"| {r['size']}² | {r['n']} | {r.get('engine', 'grouped')} | {cells} | "
                     f"{r.get('graph_steps', 0)} |" + commit(r))
    if any(r.get("unmeasured") for r in res["batched"]):
        lines += ["", "—: unmeasured (a long fit took no longer than the short one, so the "
                  "steps between cost less than the noise of the two fits)."]
    lines += _rate_lines(res)
    lines += ["", "## Peak memory of one fit (MB over the process before the fit)", "",
              "| size | N | MB |", "| --- | --- | --- |"]
    for key, mb in res["peak_mem_mb"].items():
        lines.append(f"| {key}² | 1 | {mb} |")
    for key, mb in res.get("peak_mem_batched_mb", {}).items():
        size, n = key.split("x")
        lines.append(f"| {size}² | {n} | {mb} |")
    amp, graph = res.get("amp_check"), res.get("graph_check")
    if amp:
        lines += _check_lines("bf16 autocast vs fp32", "amp", amp)
        d = amp["bf16_minus_fp32"]
        lines += ["", f"bf16 − fp32: final {d['psnr_final']:+.3f} dB, averaged "
                  f"{d['psnr_avg']:+.3f} dB, oracle {d['psnr_oracle']:+.3f} dB."]
    if graph:
        lines += _check_lines("CUDA graphs vs eager", "variant", graph)
    lines += ["", f"Method: {res['method']}", ""]
    return "\n".join(lines)


def merge(old: dict, new: dict, part: dict) -> dict:
    """``old`` results updated with the rows of ``new``: single rows by (size, variant),
    batched rows by (size, n, engine), memory by key, checks when run; ``parts`` lists
    the runs that contributed (``part``: commit, date, torch, seconds of this one), each
    row keeps the commit that measured it, and the header fields (commit, date, torch,
    threads) are the newest run's."""
    res = dict(old)

    def rows(key, ident):
        fresh = {ident(r) for r in new[key]}
        kept = [{"commit": old.get("commit"), **r} for r in old.get(key, [])
                if ident(r) not in fresh]
        res[key] = kept + [{**r, "commit": part.get("commit")} for r in new[key]]

    rows("single", lambda r: (r["size"], r.get("variant", "default")))
    rows("batched", lambda r: (r["size"], r["n"], r.get("engine", "grouped")))
    for key in ("peak_mem_mb", "peak_mem_batched_mb", "gflop_per_iter"):
        res[key] = {**old.get(key, {}), **new.get(key, {})}
    for key in ("gemm_gflop_s", "gemm_side"):
        res[key] = new.get(key) or old.get(key)
    for key in ("amp_check", "graph_check"):
        if new.get(key) is not None:
            res[key] = new[key]
    for key in ("commit", "date", "torch", "threads", "quick", "device_name", "cpu"):
        if key in new:
            res[key] = new[key]
    parts = old.get("parts") or [{k: old.get(k) for k in ("commit", "date", "torch",
                                                           "seconds")}]
    res["parts"] = parts + [part]
    res["complete"] = new["complete"]  # the sections a cut-off earlier run lost stay empty
    res["note"] = new["note"]
    return res


def _sides(text: str) -> tuple[int, ...]:
    """Image sides of a comma-separated option, e.g. '256,512'."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of image sides; give e.g. 256,512") from None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats (< 5 min)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--note", default="", help="free text stored with the results")
    ap.add_argument("--amp-check", type=int, default=0, metavar="ITERS",
                    help="also fit the paper's F16 sigma-25 denoising for ITERS steps in fp32 "
                         "and bf16 and compare PSNR (3000 = the paper's schedule)")
    ap.add_argument("--graph-check", type=int, default=0, metavar="ITERS",
                    help="also fit it for ITERS steps eager and with CUDA graphs")
    ap.add_argument("--check-crop", type=int, default=None, metavar="SIDE",
                    help="run those checks on a centre SIDE×SIDE crop (e.g. 128 on a CPU)")
    ap.add_argument("--skip", default="", help="comma-separated sections to leave out: "
                    "single, batched, memory")
    ap.add_argument("--name", default=None, help="file name instead of the device's")
    ap.add_argument("--sizes", type=_sides, default=None,
                    help="comma-separated image sides of the single section (e.g. 256,512)")
    ap.add_argument("--variants", default=None,
                    help="comma-separated variants of the single section (CPU: default, bf16; "
                         "CUDA: fp32-graph, fp32-eager, fp32-cl-graph, fp32-cl, bf16-graph, "
                         "bf16, bf16-cl-graph)")
    ap.add_argument("--batched-sizes", type=_sides, default=None,
                    help="comma-separated image sides of the batched section (e.g. 256)")
    ap.add_argument("--engines", default=None,
                    help="comma-separated engines of the batched section (e.g. threads+graphs)")
    ap.add_argument("--merge", action="store_true",
                    help="add to an existing JSON of this device: rows measured now replace "
                         "those of the same size/variant/engine, the others stay")
    ap.add_argument("--_memory", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--_reference", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._memory:
        size, n, dev = args._memory
        return _measure_memory(int(size), int(n), dev)
    if args._reference:
        size, dev, where = args._reference
        return _serve_reference(int(size), dev, where)

    from dip.fit import pick_device
    from dip.records import device_name, git_commit, machine

    device = pick_device(args.device)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    if args.quick:
        sizes, big, repeats, steps = (64, 128, 256), (), 2, 3
        batched_sizes, ns, mem_sizes = (64,), (1, 2, 4, 8), (64, 128, 256, 512)
        mem_batched = ((64, 8),)
    else:
        sizes, big, repeats, steps = (64, 128, 256), (512,), 3, 4
        batched_sizes, ns, mem_sizes = (64, 128), (1, 2, 4, 8), (64, 128, 256, 512)
        mem_batched = ((64, 8), (128, 8))
    engines = ENGINES
    # CPU: the automatic fast paths, and bf16 autocast (oneDNN's AMX / AVX-512 bf16
    # kernels where the CPU has them; left out of --quick unless asked for)
    # (same-malloc: against a reference process that keeps its freed memory as ours does)
    variants = {"default": {}, "same-malloc": {}, "bf16": {"amp": "bf16"}}
    if args.quick and not args.variants:
        variants = {"default": {}, "same-malloc": {}}
    big_repeats, big_steps = 1, 2
    if device.type == "cuda":  # steps cost milliseconds: more of them, all sizes, bf16 too
        sizes, big, repeats, steps = (64, 128, 256, 512), (), 3, 20
        batched_sizes, mem_batched = batched_sizes + (256,), mem_batched + ((256, 8),)
        eager, cl = {"cuda_graph": False}, {"channels_last": True}
        variants = {"fp32-graph": {}, "fp32-eager": eager,
                    "fp32-cl-graph": cl, "fp32-cl": {**cl, **eager},
                    "bf16-graph": {"amp": "bf16"}, "bf16": {"amp": "bf16", **eager},
                    "bf16-cl-graph": {"amp": "bf16", **cl}}
        engines = CUDA_ENGINES
    if args.sizes:
        sizes, big = args.sizes, ()

    def chosen(table, names, what):  # the entries of a comma-separated choice
        if not names:
            return table
        names = [x.strip() for x in names.split(",") if x.strip()]
        unknown = [x for x in names if x not in table]
        if unknown:
            ap.error(f"unknown {what} {unknown[0]!r} here; choose from {', '.join(table)}")
        return {x: table[x] for x in names}

    variants = chosen(variants, args.variants, "variant")
    engines = chosen(engines, args.engines, "engine")
    batched_sizes = args.batched_sizes or batched_sizes
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    t0 = time.perf_counter()
    note = args.note or (
        "Single runs alternate ours/reference step by step ("
        + ("in one process; the reference step runs while our step's graph is alive"
           if device.type == "cuda" else
           "the reference in a process of its own: with the C library's default allocator "
           "as a plain script, or keeping its freed memory as our fits do in the "
           "same-malloc rows")
        + "), batched and sequential blocks alternate block by block; ratios hold under "
        "a steady load, absolute times depend on the load.")
    res = {
        "device": device.type, "device_name": device_name(str(device)),
        "cpu": machine()["cpu"],
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "commit": git_commit(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": bool(args.quick), "note": note,
        "single": [], "batched": [], "peak_mem_mb": {}, "peak_mem_batched_mb": {},
        "gflop_per_iter": {}, "gemm_gflop_s": None, "gemm_side": None,
        "amp_check": None, "graph_check": None,
        "method": ("median step times; ours = dip.fit.fit with its default monitors, "
                   "reference = eager loop in dip/bench.py; memory = "
                   + ("torch.cuda.max_memory_allocated" if device.type == "cuda" else
                      "peak RSS (VmHWM) minus RSS before a 2-step fit, in a fresh subprocess "
                      "(keeping freed memory, as every CPU fit does by default)")),
        "seconds": 0.0, "complete": False,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = args.name or device_slug(device)
    old = None
    if args.merge and (out / f"{slug}.json").exists():
        old = json.loads((out / f"{slug}.json").read_text())
    part = {k: res[k] for k in ("commit", "date", "torch")}

    def save():  # after every section: a cut-off run keeps what it measured
        res["seconds"] = round(time.perf_counter() - t0, 1)
        part["seconds"] = res["seconds"]
        merged = with_rates(res if old is None else merge(old, res, part))
        for path, text in ((out / f"{slug}.json", json.dumps(merged, indent=2) + "\n"),
                           (out / f"{slug}.md", _markdown(merged))):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)

    # the arithmetic of a step per size, and the machine's matrix-product rate
    res["gflop_per_iter"] = {str(s): round(step_gflop(reference_skip, s), 3)
                             for s in sorted({*sizes, *big, *batched_sizes, *mem_sizes})}
    if device.type == "cuda":
        res["gemm_side"], res["gemm_gflop_s"] = 8192, {"gpu": round(gemm_gflop_s(device), 1)}
    else:
        res["gemm_side"] = 1024
        res["gemm_gflop_s"] = {str(t): round(gemm_gflop_s(device, t), 1)
                               for t in sorted({1, res["threads"]})}
    log("compute rate: " + ", ".join(f"{k}² {v} GFLOP a step"
                                     for k, v in res["gflop_per_iter"].items())
        + f"; matrix product {res['gemm_gflop_s']} GFLOP/s")
    if "single" not in skip:
        for name, kw in variants.items():
            where = "in-process" if device.type == "cuda" else \
                "kept" if name == "same-malloc" else "plain"
            res["single"] += [bench_single(s, repeats, steps, device, log, name, where, **kw)
                              for s in sizes]
            res["single"] += [bench_single(s, big_repeats, big_steps, device, log, name, where,
                                           **kw) for s in big]
            save()
    if "batched" not in skip:
        for s in batched_sizes:
            reps = repeats if s <= 64 and device.type != "cuda" else 1
            # CUDA steps cost milliseconds: many of them, so that the long fit outlasts
            # the short one by far more than the spread of graph captures and set-up
            b_steps = BATCHED_CUDA_STEPS if device.type == "cuda" else steps + 1
            res["batched"] += bench_batched(s, ns, engines, reps, b_steps, device, log)
            save()
    if args.graph_check:
        res["graph_check"] = graph_check(device, log, args.graph_check, crop=args.check_crop)
        save()
    if args.amp_check:
        res["amp_check"] = amp_check(device, log, args.amp_check, crop=args.check_crop)
        save()
    if "memory" not in skip:
        res["peak_mem_mb"] = {str(s): bench_memory(s, 1, device, log) for s in mem_sizes}
        res["peak_mem_batched_mb"] = {f"{s}x{n}": bench_memory(s, n, device, log)
                                      for s, n in mem_batched}
    res["complete"] = True
    save()
    log(f"wrote {out / slug}.json and .md in {res['seconds']:.0f} s")
    return res


if __name__ == "__main__":
    main()
