"""Batched fitting: N independent DIP runs at once, by one of two engines.

**threads** (the CPU default): the N runs are separate :func:`dip.fit.fit` calls, a
few at a time in threads that split the process's intra-op threads between them (one
each on a CPU). Small convolutions scale poorly over cores; independent runs do not.

**grouped** (the CUDA default): one forward/backward pass for all runs. The N
networks (same architecture, different initialisations) are run as one *grouped*
network: every convolution becomes a convolution with ``groups = N`` over
``N × C`` channels whose weight is the concatenation of the N runs' weights, every
BatchNorm one BatchNorm over ``N × C`` channels (so the batch statistics stay per
run; the running statistics are kept in the N nets), and channel-wise layers
(padding, activations, upsampling) are applied as they are. Skip concatenations
are interleaved per run so that each run's channels stay contiguous. The runs'
inputs are concatenated along channels: the grouped net maps ``1 × N·C_in × H × W``
to ``1 × N·C_out × H × W``.

The parameters stay those of the N separate nets (the grouped weights are
concatenated from them at every forward pass, which costs one copy of the parameters
per step), so each run keeps its own :class:`torch.optim.Adam` with its own learning
rate, its own monitors (history, oracle, backtracking) and its own random input:
:func:`fit_batched` returns what N calls of :func:`dip.fit.fit` return, up to float
rounding (grouped and plain convolutions sum in different orders).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn

from dip import fast, official, signals
from dip.fit import (
    FitResult,
    FitSettings,
    assemble_result,
    code_channels,
    default_monitors,
    fit,
    make_input,
    objective,
    pick_device,
)
from dip.monitors import Monitor, StepInfo
from dip.nets.common import Concat, center_crop
from dip.signals import Interrupted
from dip.tasks import Problem

__all__ = ["GroupedNet", "group", "can_group", "fit_batched", "batch_key", "ENGINES"]

# Layers that act on every channel independently: shared as they are by all runs.
_CHANNELWISE = (nn.LeakyReLU, nn.ReLU, nn.ELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity,
                nn.ReflectionPad2d, nn.ZeroPad2d, nn.ReplicationPad2d, nn.Upsample,
                nn.AvgPool2d, nn.MaxPool2d)


class _GroupedConv(nn.Module):
    """N convolutions of equal shape as one grouped convolution."""

    def __init__(self, convs: Sequence[nn.Conv2d]):
        super().__init__()
        c = convs[0]
        if c.padding_mode != "zeros" or isinstance(c.padding, str):
            raise TypeError(f"cannot group a Conv2d with padding {c.padding!r} "
                            f"({c.padding_mode})")
        self.convs = nn.ModuleList(convs)
        self.n = len(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.convs[0]
        w = torch.cat([m.weight for m in self.convs]) if self.n > 1 else c.weight
        b = None
        if c.bias is not None:
            b = torch.cat([m.bias for m in self.convs]) if self.n > 1 else c.bias
        return F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups * self.n)


class _GroupedBN(nn.Module):
    """N BatchNorm2d layers of C channels as one over N·C channels (statistics per run).

    The running statistics stay in the N layers: they are gathered for the pass and
    written back afterwards, for the runs that are marked active only (a finished or
    rolled-back run's statistics are left as they were).
    """

    def __init__(self, bns: Sequence[nn.BatchNorm2d], state: dict):
        super().__init__()
        b = bns[0]
        if b.track_running_stats and b.momentum is None:
            raise TypeError("cannot group BatchNorm with a cumulative average (momentum=None)")
        self.bns = nn.ModuleList(bns)
        self.state = state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.bns[0]
        w = b = None
        if b0.affine:
            w = torch.cat([m.weight for m in self.bns])
            b = torch.cat([m.bias for m in self.bns])
        track = b0.track_running_stats
        training = self.training or not track
        if not track:
            return F.batch_norm(x, None, None, w, b, True, 0.0, b0.eps)
        rm = torch.cat([m.running_mean for m in self.bns])
        rv = torch.cat([m.running_var for m in self.bns])
        out = F.batch_norm(x, rm, rv, w, b, training, b0.momentum, b0.eps)
        if self.training:
            active = self.state.get("active")
            with torch.no_grad():
                for i, (m, mean, var) in enumerate(zip(self.bns, rm.chunk(len(self.bns)),
                                                       rv.chunk(len(self.bns)), strict=True)):
                    if active is None or active[i]:
                        m.running_mean.copy_(mean)
                        m.running_var.copy_(var)
                        m.num_batches_tracked.add_(1)
        return out


class _GroupedConcat(nn.Module):
    """Concat of grouped branches, interleaved per run: [a_1 b_1 | a_2 b_2 | ...]."""

    def __init__(self, branches: Sequence[nn.Module], n: int):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [m(x) for m in self.branches]
        h = min(o.shape[2] for o in outs)
        w = min(o.shape[3] for o in outs)
        outs = [center_crop(o, h, w) for o in outs]
        if self.n == 1:
            return torch.cat(outs, 1)
        b = outs[0].shape[0]
        parts = [o.reshape(b, self.n, o.shape[1] // self.n, h, w) for o in outs]
        return torch.cat(parts, 2).reshape(b, -1, h, w)


def _group(mods: Sequence[nn.Module], state: dict) -> nn.Module:
    first = mods[0]
    if any(type(m) is not type(first) for m in mods):
        raise TypeError("the nets differ in structure")
    n = len(mods)
    if type(first) is nn.Sequential:
        if any(len(m) != len(first) for m in mods):
            raise TypeError("the nets differ in structure")
        return nn.Sequential(*[_group([m[i] for m in mods], state) for i in range(len(first))])
    if type(first) is Concat:
        if first.dim != 1 or any(len(m) != len(first) for m in mods):
            raise TypeError("only channel concatenations of equal structure can be grouped")
        subs = [list(m._modules.values()) for m in mods]
        return _GroupedConcat([_group([s[i] for s in subs], state) for i in range(len(first))], n)
    if type(first) is nn.Conv2d:
        if any(m.weight.shape != first.weight.shape for m in mods):
            raise TypeError("convolutions of different shape")
        return _GroupedConv(mods)
    if type(first) is nn.BatchNorm2d:
        if any(m.num_features != first.num_features for m in mods):
            raise TypeError("BatchNorm layers of different width")
        return _GroupedBN(mods, state)
    if isinstance(first, _CHANNELWISE) and not any(True for _ in first.parameters()):
        return first
    raise TypeError(f"cannot group {type(first).__name__} layers")


class GroupedNet(nn.Module):
    """N networks of one architecture as a single grouped network.

    Parameters
    ----------
    nets : sequence of nn.Module
        Networks built by the same builder with the same arguments (e.g. ``skip``,
        ``encdec``), typically with different seeds. Their parameters are shared,
        not copied: training the grouped net trains them.

    Notes
    -----
    Input ``1 × N·C_in × H × W`` (run ``i`` in channels ``[i·C_in, (i+1)·C_in)``),
    output ``1 × N·C_out × H × W`` in the same layout. Supported layers: Sequential,
    :class:`~dip.nets.common.Concat` along channels, Conv2d with zero padding,
    BatchNorm2d and parameter-free channel-wise layers (padding, activations,
    upsampling, pooling).
    """

    def __init__(self, nets: Sequence[nn.Module]):
        super().__init__()
        if not nets:
            raise ValueError("no nets to group")
        self.n = len(nets)
        self.state: dict = {"active": None}
        self.body = _group(list(nets), self.state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def set_active(self, active: Sequence[bool] | None) -> None:
        """Runs whose BatchNorm running statistics the next passes update (None: all)."""
        self.state["active"] = None if active is None else list(active)


def group(nets: Sequence[nn.Module]) -> GroupedNet:
    """The :class:`GroupedNet` of ``nets`` (raises ``TypeError`` when they cannot be)."""
    return GroupedNet(nets)


def can_group(net: nn.Module) -> bool:
    """Whether copies of ``net`` can be fitted together by :func:`fit_batched`."""
    try:
        _group([net], {})
    except TypeError:
        return False
    return True


def batch_key(problem: Problem, settings: FitSettings, net_key) -> tuple:
    """Runs with equal keys can share one batched fit (same size, net and input code)."""
    return (tuple(problem.out_shape), settings.input_type, code_channels(settings),
            settings.device, net_key)


ENGINES = ("auto", "grouped", "threads")


def fit_batched(nets: Sequence[nn.Module], problems: Sequence[Problem],
                settings: Sequence[FitSettings] | FitSettings | None = None,
                monitors: Sequence[list[Monitor] | None] | None = None,
                engine: str = "auto", workers: int | None = None,
                threads_per_run: int | None = None) -> list[FitResult]:
    """Fit N independent DIP runs together; the results of N :func:`dip.fit.fit` calls.

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
        Per-run monitors; :func:`dip.fit.default_monitors` for ``None`` entries.
    engine : {'auto', 'grouped', 'threads'}
        'grouped': one forward/backward pass of the :class:`GroupedNet` per step (equal
        to separate fits up to float rounding). 'threads': the runs are separate
        :func:`dip.fit.fit` calls executed ``workers`` at a time in threads that share
        the process's intra-op threads (``torch.get_num_threads() // workers`` each;
        on CUDA each run on a stream of its own); on the CPU each result is
        bit-identical to a :func:`dip.fit.fit` call made with that many threads.
        'auto': 'grouped' on CUDA, 'threads' on the CPU, where measured grouped
        convolutions are slower than separate ones (``make bench``).
    workers : int, optional
        Runs fitted at a time by the 'threads' engine; default
        ``torch.get_num_threads() // threads_per_run``.
    threads_per_run : int, optional
        Intra-op threads of each run of the 'threads' engine; default
        ``torch.get_num_threads() // workers``; with neither given, the runs share the
        process's threads (one each when there are at least as many runs as threads).

    Returns
    -------
    list of FitResult
        One per run, in order. ``seconds`` is the run's share of the batch's wall
        time (total / N).

    Notes
    -----
    Each run draws its code z and its per-step input noise from its own generators,
    seeded as in :func:`dip.fit.fit`, and has its own Adam. A run that is rolled back
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
        return _fit_threads(nets, problems, settings, monitors, workers, threads_per_run)
    return _fit_grouped(nets, problems, settings, monitors, device)


def _fit_threads(nets, problems, settings, monitors, workers, per_run) -> list[FitResult]:
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
    runs = list(zip(nets, problems, settings, monitors, strict=True))
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


def _fit_on_own_stream(net, problem, settings, monitors) -> FitResult:
    """:func:`dip.fit.fit` on a CUDA stream of its own (so that the kernels of runs in
    other threads can overlap with its own); a plain call on the CPU."""
    device = pick_device(settings.device)
    if device.type != "cuda":
        return fit(net, problem, settings, monitors)
    with torch.cuda.stream(torch.cuda.Stream(device)):
        result = fit(net, problem, settings, monitors)
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


def _fit_grouped(nets, problems, settings, monitors, device) -> list[FitResult]:
    """One forward/backward pass of the grouped network per step for all runs."""
    n, s0 = len(nets), settings[0]
    fast.configure(device, s0)
    shape = problems[0].out_shape[1:]
    depth = code_channels(s0)

    for p in problems:
        p.to(device)
    nets = [m.to(device).train() for m in nets]
    gnet = GroupedNet(nets).to(device).train()
    zs, noise_gens = [], []
    for s in settings:
        gen = torch.Generator(device="cpu").manual_seed(int(s.seed))
        zs.append(make_input(s.input_type, depth, shape, scale=s.input_scale,
                             generator=gen))
        noise_gens.append(torch.Generator(device=device).manual_seed(int(s.seed) + 1))
    z_all = torch.cat(zs, 1).to(device)
    del zs
    # One noise buffer for all runs (NCHW: each run's channels are a contiguous view, so
    # a run draws exactly the numbers of a single fit); each step's input is
    # z + noise · std in one tensor, as many N×C×H×W buffers as N single fits hold.
    stds = [float(s.reg_noise_std) for s in settings]
    noisy = [i for i, v in enumerate(stds) if v > 0]
    noise_all = torch.zeros_like(z_all) if noisy else None
    noise_views = [] if noise_all is None else list(noise_all.split(depth, 1))
    std_all = torch.tensor(stds, dtype=z_all.dtype, device=device).repeat_interleave(
        depth).view(1, -1, 1, 1)
    gnet_ = gnet
    gnet, z_all, cl = fast.prepare(gnet, z_all, s0, device)
    optimizers = [fast.adam(m.parameters(), s, device) for m, s in zip(nets, settings,
                                                                       strict=True)]
    monitors = [default_monitors(p, s) if m is None else m
                for p, s, m in zip(problems, settings, monitors, strict=True)]
    infos = [StepInfo(problem=p, net=m, optimizer=o, exp_weight=s.exp_weight)
             for p, m, o, s in zip(problems, nets, optimizers, settings, strict=True)]
    for info, mons in zip(infos, monitors, strict=True):
        for m in mons:
            m.on_start(info)

    steps = [0] * n
    avgs: list[torch.Tensor | None] = [None] * n
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
        with fast.autocast(s0, device):
            gnet_.set_active([active(i) for i in range(n)])
            out_all = gnet(net_in)
        out_all = out_all.float()
        losses = []
        for i in range(n):
            if not active(i):
                continue
            s, p, info = settings[i], problems[i], infos[i]
            out = out_all[:, i * c_out:(i + 1) * c_out]
            loss, data = objective(p, out, s)
            info.begin(steps[i], out.detach(), avgs[i], loss.detach(), data.detach())
            for m in monitors[i]:
                m.on_step(info)
            if info.rollback:
                continue  # restored; this run redoes its step at the next pass
            avgs[i] = info.average()
            losses.append((i, loss))
        if not losses:
            continue
        torch.stack([loss for _, loss in losses]).sum().backward()
        for i, _ in losses:
            for m in monitors[i]:
                m.before_update(infos[i])
            optimizers[i].step()
            steps[i] += 1
            infos[i].completed = steps[i]
            for m in monitors[i]:
                m.after_step(infos[i])

    gnet_.set_active(None)
    with torch.no_grad(), fast.autocast(s0, device):
        finals = gnet(_final_inputs(z_all, noise_all, settings, depth, cl)).float()
    seconds = (time.perf_counter() - t0) / n
    results = []
    for i in range(n):
        for m in monitors[i]:
            m.on_end(infos[i])
        final = finals[:, i * c_out:(i + 1) * c_out].detach().contiguous()
        results.append(assemble_result(problems[i], infos[i], monitors[i], final, avgs[i],
                                       steps[i], seconds, device, cl))
    return results
