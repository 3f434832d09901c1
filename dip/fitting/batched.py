"""Batched fitting: N independent DIP runs at once, by one of two engines.

**threads** (the CPU default): the N runs are separate :func:`dip.fitting.loop.fit` calls, a
few at a time in threads that split the process's intra-op threads between them (one
each on a CPU). Small convolutions scale poorly over cores; independent runs do not.

**grouped** (the CUDA default): one forward/backward pass for all runs through their
:class:`~dip.nets.grouped.GroupedNet`. The parameters stay those of the N separate nets, so
each run keeps its own :class:`torch.optim.Adam` with its own learning rate, its own
monitors (history, oracle, backtracking, early stopping: a stopped run leaves the pass)
and its own random input: :func:`fit_batched` returns what N calls of
:func:`dip.fitting.loop.fit` return, up to float rounding (grouped and plain convolutions sum in
different orders). Both engines share the loss and the result assembly of single fits
(:mod:`dip.fitting.step`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from dip.fitting import fast, official
from dip.fitting.checkpoint import FitState, load_checkpoint
from dip.fitting.loop import fit
from dip.fitting.monitors import Monitor, StepInfo
from dip.fitting.settings import FitResult, FitSettings, code_channels, draw_code
from dip.fitting.step import assemble_result, commit, default_monitors, forward, objective, observe
from dip.launch import signals
from dip.launch.device import pick_device
from dip.launch.signals import Interrupted
from dip.nets.grouped import GroupedNet
from dip.problems.problem import Problem

__all__ = ["fit_batched", "batch_key", "ENGINES"]


def batch_key(problem: Problem, settings: FitSettings, net_key) -> tuple:
    """Runs with equal keys can share one batched fit (same size, net and input code)."""
    return (tuple(problem.out_shape), settings.input_type, code_channels(settings),
            settings.device, net_key)


ENGINES = ("auto", "grouped", "threads")


def fit_batched(nets: Sequence[nn.Module], problems: Sequence[Problem],
                settings: Sequence[FitSettings] | FitSettings | None = None,
                monitors: Sequence[list[Monitor] | None] | None = None,
                engine: str = "auto", workers: int | None = None,
                threads_per_run: int | None = None,
                resume: Sequence | None = None) -> list[FitResult]:
    """Fit N independent DIP runs together; the results of N :func:`dip.fitting.loop.fit` calls.

    Parameters
    ----------
    nets : sequence of nn.Module
        N freshly initialised networks of one architecture (see :class:`GroupedNet`).
    problems : sequence of Problem
        One problem per run; all restored images must have the same shape.
    settings : FitSettings or sequence of FitSettings
        Per-run settings (seed, lr, num_iter, reg_noise_std, exp_weight, ... may all
        differ), or one for all. Input type and depth and the device must agree.
    monitors : sequence of (list of Monitor or None), optional
        Per-run monitors; :func:`dip.fitting.step.default_monitors` for ``None`` entries.
    engine : {'auto', 'grouped', 'threads'}
        'grouped': one forward/backward pass of the :class:`GroupedNet` per step (equal
        to separate fits up to float rounding). 'threads': the runs are separate
        :func:`dip.fitting.loop.fit` calls executed ``workers`` at a time in threads that share
        the process's intra-op threads (``torch.get_num_threads() // workers`` each;
        on CUDA each run on a stream of its own); on the CPU each result is
        bit-identical to a :func:`dip.fitting.loop.fit` call made with that many threads.
        'auto': 'grouped' on CUDA, 'threads' on the CPU, where measured grouped
        convolutions are slower than separate ones (``make bench``).
    workers : int, optional
        Runs fitted at a time by the 'threads' engine; default
        ``torch.get_num_threads() // threads_per_run``.
    threads_per_run : int, optional
        Intra-op threads of each run of the 'threads' engine; default
        ``torch.get_num_threads() // workers``; with neither given, the runs share the
        process's threads (one each when there are at least as many runs as threads).
    resume : sequence of (path, state or None), optional
        Per run, a checkpoint to continue from (as ``fit(..., resume=...)``); the
        runs' :class:`~dip.fitting.checkpoint.Checkpoint` monitors save them.

    Returns
    -------
    list of FitResult
        One per run, in order. ``seconds`` is the run's share of the batch's wall
        time (total / N).

    Notes
    -----
    Each run draws its code z and its per-step input noise from its own generators,
    seeded as in :func:`dip.fitting.loop.fit`, and has its own Adam. A run that is rolled back
    by its backtracking guard redoes its step at the next pass while the others go
    on (``backtrack='official'`` restores before the run's update, as a fit does); a
    run that has finished (or diverged) is carried along without updates or input-noise
    draws until the last one ends, and ``final_input`` is honoured per run.
    """
    n = len(nets)
    if n != len(problems):
        raise ValueError(f"{n} nets but {len(problems)} problems")
    if settings is None or isinstance(settings, FitSettings):
        settings = [settings or FitSettings()] * n
    settings = list(settings)
    if len(settings) != n:
        raise ValueError(f"{n} nets but {len(settings)} settings")
    monitors = list(monitors) if monitors is not None else [None] * n
    resume = [_state(r) for r in resume] if resume is not None else [None] * n
    shapes = {tuple(p.out_shape) for p in problems}
    if len(shapes) != 1:
        raise ValueError(f"batched runs need one output shape, got {sorted(shapes)}")
    s0 = settings[0]
    for s in settings:
        official.check(s)
        if (s.input_type, s.input_depth, s.device) != (s0.input_type, s0.input_depth,
                                                       s0.device):
            raise ValueError("batched runs need the same input_type, input_depth and device")
        if s.amp != s0.amp or s.channels_last != s0.channels_last:
            raise ValueError("batched runs need the same amp and channels_last settings")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    device = pick_device(s0.device)
    if engine == "auto":
        engine = "grouped" if device.type == "cuda" else "threads"
    if engine == "threads" or n == 1:
        return _fit_threads(nets, problems, settings, monitors, resume, workers,
                            threads_per_run)
    return _fit_grouped(nets, problems, settings, monitors, resume, device)


def _state(resume):
    """A loaded fit state (or None) from a checkpoint path, a state or None."""
    return load_checkpoint(resume) if isinstance(resume, (str, os.PathLike)) else resume


def _fit_threads(nets, problems, settings, monitors, resume, workers,
                 per_run) -> list[FitResult]:
    """Separate fits, ``workers`` at a time, each with ``per_run`` intra-op threads.

    Torch releases the GIL inside its kernels, so W threads with T/W intra-op threads
    each keep T cores busy with W independent runs.
    """
    total = torch.get_num_threads()
    if workers is None:
        workers = max(1, total // per_run) if per_run else total
    workers = max(1, min(len(nets), int(workers)))  # fewer runs than cores: more threads each
    per_run = per_run or max(1, total // workers)
    t0 = time.perf_counter()
    torch.set_num_threads(int(per_run))  # threads started from now on take this count
    runs = list(zip(nets, problems, settings, monitors, resume, strict=True))
    try:
        if workers == 1:  # in this thread: measured, a 2-thread fit of the paper net at 64²
            # took 1.5x as long per step in a pool thread as in the main thread
            results = [_fit_on_own_stream(*run) for run in runs]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="dip-fit") as pool:
                futures = [pool.submit(_fit_on_own_stream, *run) for run in runs]
                results = [f.result() for f in futures]
    finally:
        torch.set_num_threads(total)
    seconds = (time.perf_counter() - t0) / len(nets)
    return [dataclasses.replace(r, seconds=seconds) for r in results]


def _fit_on_own_stream(net, problem, settings, monitors, resume) -> FitResult:
    """:func:`dip.fitting.loop.fit` on a CUDA stream of its own (so that the kernels of runs in
    other threads can overlap with its own); a plain call on the CPU."""
    device = pick_device(settings.device)
    if device.type != "cuda":
        return fit(net, problem, settings, monitors, resume=resume)
    with torch.cuda.stream(torch.cuda.Stream(device)):
        result = fit(net, problem, settings, monitors, resume=resume)
        torch.cuda.current_stream(device).synchronize()
    return result


def _final_inputs(z_all, noise_all, settings, depth: int, cl: bool) -> torch.Tensor:
    """Each run's input of its final output (``final_input``): z, or z + σ·n with its
    last draw n (a run that reports the clean output gets σ = 0 here)."""
    stds = [float(s.reg_noise_std) if s.final_input == "perturbed" else 0.0 for s in settings]
    if noise_all is None or not any(v > 0 for v in stds):
        return z_all
    std = torch.tensor(stds, dtype=z_all.dtype, device=z_all.device).repeat_interleave(
        depth).view(1, -1, 1, 1)
    net_in = z_all + noise_all * std
    return net_in.contiguous(memory_format=torch.channels_last) if cl else net_in


def _grouped_inputs(settings, shape, depth: int, device):
    """The runs' codes z (each drawn with its seed) concatenated along channels, their
    noise generators, one noise buffer for all (None without input noise) and the
    per-channel noise std.

    NCHW: each run's channels of the buffer are a contiguous view, so a run draws
    exactly the numbers of a single fit; each step's input is z + noise · std in one
    tensor, as many N×C×H×W buffers as N single fits hold.
    """
    z_all = torch.cat([draw_code(s, shape) for s in settings], 1).to(device)
    noise_gens = [torch.Generator(device=device).manual_seed(int(s.seed) + 1)
                  for s in settings]
    stds = [float(s.reg_noise_std) for s in settings]
    noise_all = torch.zeros_like(z_all) if any(v > 0 for v in stds) else None
    std_all = torch.tensor(stds, dtype=z_all.dtype, device=device).repeat_interleave(
        depth).view(1, -1, 1, 1)
    return z_all, noise_gens, noise_all, std_all


def _start_runs(nets, problems, settings, monitors, device, noise_gens, noise_views,
                resume):
    """Each run's Adam, monitors (:func:`dip.fitting.step.default_monitors` where None) and step
    record, its monitors started and its saved state loaded (``resume``: per run a
    state or None)."""
    optimizers = [fast.adam(m.parameters(), s, device) for m, s in zip(nets, settings,
                                                                       strict=True)]
    monitors = [default_monitors(p, s) if m is None else m
                for p, s, m in zip(problems, settings, monitors, strict=True)]
    infos = [StepInfo(problem=p, net=m, optimizer=o, exp_weight=s.exp_weight, generator=g,
                      noise=noise_views[i] if noise_views else None, monitors=mons)
             for i, (p, m, o, s, g, mons) in enumerate(zip(
                 problems, nets, optimizers, settings, noise_gens, monitors, strict=True))]
    for info, mons, state in zip(infos, monitors, resume, strict=True):
        for m in mons:
            m.on_start(info)
        if state is not None:
            FitState(info).load_state_dict(state)
    return optimizers, monitors, infos


def _fit_grouped(nets, problems, settings, monitors, resume, device) -> list[FitResult]:
    """One forward/backward pass of the grouped network per step for all runs."""
    n, s0 = len(nets), settings[0]
    fast.configure(device, s0)
    shape = problems[0].out_shape[1:]
    depth = code_channels(s0)

    for p in problems:
        p.to(device)
    nets = [m.to(device).train() for m in nets]
    gnet = GroupedNet(nets).to(device).train()
    z_all, noise_gens, noise_all, std_all = _grouped_inputs(settings, shape, depth, device)
    noisy = [i for i, s in enumerate(settings) if s.reg_noise_std > 0]
    noise_views = [] if noise_all is None else list(noise_all.split(depth, 1))
    gnet_ = gnet
    gnet, z_all, cl = fast.prepare(gnet, z_all, s0, device)
    optimizers, monitors, infos = _start_runs(nets, problems, settings, monitors, device,
                                              noise_gens, noise_views, resume)
    steps = [info.completed for info in infos]  # 0 unless resumed
    resumed = [None if r is None else k for r, k in zip(resume, steps, strict=True)]
    avgs: list[torch.Tensor | None] = [info.prev_avg for info in infos]
    active = lambda i: steps[i] < settings[i].num_iter and infos[i].status == "ok"  # noqa: E731
    c_out = problems[0].out_shape[0]
    t0 = time.perf_counter()
    while any(active(i) for i in range(n)):
        if signals.requested():  # no checkpoints here: the runs start afresh when rerun
            raise Interrupted(signals.requested(), min(steps))
        for o in optimizers:
            o.zero_grad(set_to_none=True)
        if noisy:
            for i in noisy:
                if active(i):  # a finished run keeps its last draw (final_input='perturbed')
                    noise_views[i].normal_(generator=noise_gens[i])
            net_in = z_all + noise_all * std_all  # runs without noise: z + 0 · 0
        else:
            net_in = z_all
        if cl:
            net_in = net_in.contiguous(memory_format=torch.channels_last)
        gnet_.set_active([active(i) for i in range(n)])
        out_all = forward(gnet, net_in, s0, device)
        losses = []
        for i in range(n):
            if not active(i):
                continue
            out = out_all[:, i * c_out:(i + 1) * c_out]
            loss, data = objective(problems[i], out, settings[i])
            avg = observe(infos[i], monitors[i], steps[i], out, avgs[i], loss, data)
            if avg is None:
                continue  # restored; this run redoes its step at the next pass
            avgs[i] = avg
            losses.append((i, loss))
        if not losses:
            continue
        torch.stack([loss for _, loss in losses]).sum().backward()
        for i, _ in losses:
            steps[i] = commit(infos[i], monitors[i], optimizers[i].step)

    gnet_.set_active(None)
    with torch.no_grad():
        finals = forward(gnet, _final_inputs(z_all, noise_all, settings, depth, cl), s0,
                         device)
    seconds = (time.perf_counter() - t0) / n
    results = []
    for i in range(n):
        for m in monitors[i]:
            m.on_end(infos[i])
        final = finals[:, i * c_out:(i + 1) * c_out].detach().contiguous()
        results.append(assemble_result(problems[i], infos[i], monitors[i], final, avgs[i],
                                       steps[i], seconds, device, cl,
                                       resumed_at=resumed[i]))
    return results
