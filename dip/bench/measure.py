"""Timing a fit step: the single and batched rows of the benchmark.

* :func:`bench_single`: the per-step time of :func:`dip.fitting.loop.fit` (its default monitors
  plus a :class:`Timer`) against the eager reference (:mod:`dip.bench.reference`),
  alternating step by step (one reference step between two of ours) so that a load that
  changes over time hits both alike.
* :func:`compute_rates`: the convolution arithmetic of a paper-net step per size and the
  fp32 rate of a large matrix product on this machine, which turn the rows' times into
  GFLOP/s beside the most a step of convolutions could sustain.
* :func:`bench_batched`: the steady-state cost of a step (:func:`step_cost`: a long fit's
  wall time minus a short one's, over the steps between) of N runs with an engine of
  :func:`dip.fitting.batched.fit_batched`, against N sequential :func:`dip.fitting.loop.fit` runs.
"""

from __future__ import annotations

import statistics
import time

import torch

from dip.bench.flops import gemm_gflop_s, step_gflop
from dip.bench.reference import REFERENCES, Reference, RemoteReference, ours_net, reference_skip
from dip.bench.workload import problem, settings, sync
from dip.fitting.fast import GRAPH_WARMUP
from dip.fitting.monitors import Monitor

__all__ = ["compute_rates", "Timer", "ours_block", "bench_single", "fit_wall", "short_steps",
           "step_cost", "bench_batched"]


def compute_rates(sizes, device) -> dict:
    """The results' compute-rate fields: ``gflop_per_iter`` (GFLOP of a paper-net step
    at each of ``sizes``, :func:`dip.bench.flops.step_gflop`), ``gemm_gflop_s`` (the fp32
    matrix product's rate, :func:`dip.bench.flops.gemm_gflop_s`: on CUDA the GPU's; on the CPU
    with one thread and with all of the process's) and ``gemm_side`` (its side)."""
    rates = {"gflop_per_iter": {str(s): round(step_gflop(reference_skip, s), 3)
                                for s in sorted(sizes)}}
    if device.type == "cuda":
        rates["gemm_side"] = 8192
        rates["gemm_gflop_s"] = {"gpu": round(gemm_gflop_s(device), 1)}
    else:
        threads = sorted({1, torch.get_num_threads()})
        rates["gemm_side"] = 1024
        rates["gemm_gflop_s"] = {str(t): round(gemm_gflop_s(device, t), 1) for t in threads}
    return rates


class Timer(Monitor):
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
        sync(self.device)
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        if self.between is not None:
            self.between()
            sync(self.device)
        self._last = time.perf_counter()

    def diffs(self):
        """The times between consecutive steps, in seconds."""
        return self.times


def ours_block(size, steps, device, between=None, **kw):
    """Step times of one :func:`dip.fitting.loop.fit` call (default monitors + a timer) and the
    number of its steps that ran as CUDA graph replays."""
    from dip.fitting.loop import fit
    from dip.fitting.step import default_monitors

    prob = problem(size)
    s = settings(steps + 1, device, **kw)
    timer = Timer(device, between)
    res = fit(ours_net(), prob, s, monitors=default_monitors(prob, s) + [timer])
    return timer.diffs(), res.graph_steps


def bench_single(size, repeats, steps, device, log, variant="default", reference="plain",
                 **kw):
    """One single row: ours (with the fit settings ``kw``, e.g. ``amp='bf16'``) vs the
    fp32 reference, which runs where ``reference`` (a key of
    :data:`dip.bench.reference.REFERENCES`) says; 'plain' and 'kept' are CPU only.
    ``repeats`` fits of ``steps`` timed steps each; medians over all of them."""
    if reference == "in-process":
        ref = Reference(size, device)
        ref.block(1)  # warm-up
    else:
        ref = RemoteReference(size, device, reference)
    ours, theirs, graph_steps = [], [], 0
    try:
        for _ in range(repeats):
            # one reference step between two of ours (the first one is not timed)
            theirs_block: list[float] = []
            ours_times, replayed = ours_block(
                size, steps, device, between=lambda b=theirs_block: b.extend(ref.block(1)),
                **kw)
            ours += ours_times
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


def fit_wall(size, n, steps, device, engine=None, **kw):
    """Wall time of one whole fit call of ``steps`` steps (setup and final output
    included): :func:`dip.fitting.loop.fit` for ``engine=None``, else
    :func:`dip.fitting.batched.fit_batched` of ``n`` runs with that engine; ``kw`` are fit
    settings of every run. Also returns the number of steps (all runs together) that ran
    as CUDA graph replays."""
    from dip.fitting.batched import fit_batched
    from dip.fitting.loop import fit

    problems = [problem(size, seed=i) for i in range(n)]
    runs = [settings(steps, device, seed=i, **kw) for i in range(n)]
    nets = [ours_net(i) for i in range(n)]
    sync(device)
    t = time.perf_counter()
    if engine is None:
        results = [fit(nets[0], problems[0], runs[0])]
    else:
        results = fit_batched(nets, problems, runs, engine=engine)
    sync(device)
    return time.perf_counter() - t, sum(r.graph_steps for r in results)


def short_steps(device):
    """Steps of the short fit whose wall time :func:`step_cost` subtracts: past the
    CUDA graph capture on CUDA."""
    return GRAPH_WARMUP + 2 if device.type == "cuda" else 1


def step_cost(size, n, steps, device, engine=None, **kw):
    """Steady-state wall time per step of a fit call (of all its runs together): the
    wall time of a fit of ``short + steps`` steps minus that of ``short`` steps
    (:func:`short_steps`), over ``steps``; set-up, warm-up steps, graph captures and
    the final output cancel. ``None`` when the long fit took no longer than the short
    one. Also returns the long fit's graph steps."""
    short = short_steps(device)
    long_wall, replayed = fit_wall(size, n, short + steps, device, engine, **kw)
    short_wall, _ = fit_wall(size, n, short, device, engine, **kw)
    if long_wall <= short_wall:  # the steps cost less than the two fits' noise
        return None, replayed
    return (long_wall - short_wall) / steps, replayed


def _batched_row(size, n, label, steps, times, single, replayed, log):
    """The row of ``n`` runs with engine ``label`` from the step costs of its batched
    fits (``times``) and of single fits (``single``); unmeasured if any is ``None``."""
    row = {"size": size, "n": n, "engine": label, "steps": steps,
           "sequential_s": None, "batched_s": None, "speedup": None,
           "run_iters_per_s": None, "graph_steps": replayed}
    if None in times or None in single:  # a long fit was not the longer one
        row["unmeasured"] = "a long fit took no longer than the short one"
        log(f"batched {size}² N={n} ({label}): unmeasured ({row['unmeasured']})")
        return row
    b = statistics.median(times)
    seq = n * statistics.median(single)
    row.update({"sequential_s": round(seq, 4), "batched_s": round(b, 4),
                "speedup": round(seq / b, 3), "run_iters_per_s": round(n / b, 3)})
    log(f"batched {size}² N={n} ({label}): {b:.3f} s per pass, {n / b:.2f} run-it/s, "
        f"speedup {seq / b:.2f}× over {n} sequential")
    return row


def bench_batched(size, ns, engines, repeats, steps, device, log):
    """Rows of ``{label: (engine, settings)}`` (:data:`dip.bench.plans.ENGINES`) for
    each N of ``ns`` against N sequential runs with the default settings; single and
    batched fits alternate, ``repeats`` of each, ``steps`` apart (:func:`step_cost`)."""
    rows = []
    warm = device.type == "cuda"  # cudnn.benchmark tries its algorithms on new shapes
    if warm:
        fit_wall(size, 1, short_steps(device), device)
    for n in ns:
        for label, (name, kw) in engines.items():
            if warm:
                fit_wall(size, n, short_steps(device), device, name, **kw)
            times, single, replayed = [], [], 0
            for _ in range(repeats):  # alternate: one single run, then one batch of n
                single.append(step_cost(size, 1, steps, device)[0])
                t, g = step_cost(size, n, steps, device, name, **kw)
                times.append(t)
                replayed += g
            rows.append(_batched_row(size, n, label, steps, times, single, replayed, log))
    return rows
