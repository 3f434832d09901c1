"""The DIP optimisation loop: θ* = argmin_θ ‖A f_θ(z) − x̂‖².

:func:`fit` owns only the optimisation step (input noise, forward, operator, loss,
backward, Adam step). Everything that watches a run is a monitor (see
:mod:`dip.fitting.monitors`): history, oracle best, backtracking guard, progress bar, early
stopping (:mod:`dip.fitting.stopping`) and checkpoints (:mod:`dip.fitting.checkpoint`).
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from dip.fitting import fast, official
from dip.fitting.checkpoint import Checkpoint, FitState, load_checkpoint
from dip.fitting.monitors import Monitor, StepInfo
from dip.fitting.settings import FitResult, FitSettings, draw_code
from dip.fitting.step import (
    assemble_result,
    commit,
    default_monitors,
    forward,
    objective,
    observe,
    perturb,
)
from dip.launch import signals
from dip.launch.device import pick_device
from dip.launch.signals import Interrupted
from dip.problems.problem import Problem

__all__ = ["fit", "FitResult"]

def _interrupt(info: StepInfo, out_avg, monitors: list[Monitor]) -> None:
    """Stop on a signal after ``info.completed`` steps: the monitors save what they need
    (the checkpoint), then :class:`~dip.launch.signals.Interrupted` is raised."""
    info.prev_avg = out_avg
    with fast.STEP_LOCK.shared():
        for m in monitors:
            m.on_interrupt(info)
    saved = next((m.path for m in monitors if isinstance(m, Checkpoint)
                  and m.saved_at is not None), None)
    raise Interrupted(signals.requested(), info.completed, saved)


def _code(problem: Problem, s: FitSettings, z: torch.Tensor | None) -> torch.Tensor:
    """The network input: ``z`` when given, else drawn as ``s`` says with its seed."""
    if z is not None:
        return z
    if s.input_type == "image":
        raise ValueError("input_type='image' needs the input image: fit(..., z=image)")
    return draw_code(s, problem.out_shape[1:])


def _start(info: StepInfo, monitors: list[Monitor], resume) -> int | None:
    """Start the monitors, then load the saved state of ``resume`` (a checkpoint path or a
    state) when there is one; returns the step resumed from (None: a fresh start)."""
    for m in monitors:
        m.on_start(info)
    state = load_checkpoint(resume) if isinstance(resume, (str, os.PathLike)) else resume
    if state is None:
        return None
    FitState(info).load_state_dict(state)
    return info.completed


def _final(step_net, z, noise, s: FitSettings, device, info: StepInfo, out_avg,
           monitors: list[Monitor]):
    """The output for ``s.final_input`` after the last step and the fit's seconds; the
    monitors' ``on_end`` (with the final running average)."""
    with fast.STEP_LOCK.shared():
        with torch.no_grad():
            final = forward(step_net, official.final_input(z, noise, s), s, device).detach()
        seconds = info.elapsed()
        info.prev_avg = out_avg
        for m in monitors:
            m.on_end(info)
    return final, seconds


def fit(net: nn.Module, problem: Problem, settings: FitSettings | None = None,
        monitors: list[Monitor] | None = None, z: torch.Tensor | None = None,
        resume: str | os.PathLike | dict | None = None) -> FitResult:
    """Fit ``net`` to ``problem`` with Adam and return the restoration.

    Parameters
    ----------
    net : nn.Module
        Freshly initialised network; its input channels must match the code z.
    problem : Problem
        Observation, operator and (optional) ground truth.
    settings : FitSettings
        Optimisation settings; defaults are the official denoising ones.
    monitors : list of Monitor, optional
        Watchers of the run; :func:`default_monitors` when omitted. A
        :class:`~dip.fitting.checkpoint.Checkpoint` among them saves the fit's state.
    z : torch.Tensor, optional
        The network input 1×C×H×W; drawn from ``settings`` (seeded) when omitted.
        Required for ``input_type='image'``.
    resume : path or dict, optional
        A checkpoint file (used when it exists) or a loaded state
        (:func:`dip.fitting.checkpoint.load_checkpoint`): the fit continues from its step, with
        the same monitors as the fit that saved it.

    Returns
    -------
    FitResult
    """
    s = settings or FitSettings()
    official.check(s)
    device = pick_device(s.device)
    monitors = default_monitors(problem, s) if monitors is None else monitors
    with fast.STEP_LOCK.shared():  # GPU work of threads beside a capture: dip.fitting.fast
        problem.to(device)
        net = net.to(device).train()

        z = _code(problem, s, z).to(device)
        noise_gen = torch.Generator(device=device).manual_seed(int(s.seed) + 1)
        noise = torch.full_like(z, float("nan"))  # each step draws into it; NaN: none yet
        optimizer = fast.adam(net.parameters(), s, device)
        step_net, z, channels_last = fast.prepare(net, z, s, device)

        info = StepInfo(problem=problem, net=net, optimizer=optimizer, exp_weight=s.exp_weight,
                        generator=noise_gen, noise=noise, monitors=monitors)
        resumed_at = _start(info, monitors, resume)

    def forward_loss(net_in, cache=True):
        out = forward(step_net, net_in, s, device, cache)
        return (out, *objective(problem, out, s))

    def forward_backward():  # the captured piece: reads the static z and noise
        out, loss, data = forward_loss(z + noise * s.reg_noise_std if s.reg_noise_std > 0
                                       else z, cache=False)
        loss.backward()
        return out, loss, data

    graph = fast.StepGraph(device) if fast.use_cuda_graph(s, device) else None
    side = graph.stream if graph is not None else None
    with graph.context() if graph is not None else contextlib.nullcontext():
        out_avg, step = info.prev_avg, info.completed  # None and 0 unless resumed
        eager_steps = graph_steps = 0  # in this process (a resumed run warms up again)
        while step < s.num_iter and info.status == "ok" and not signals.requested():
            if graph is not None and not graph.captured and eager_steps >= fast.GRAPH_WARMUP:
                if not graph.capture(forward_backward, optimizer.step, optimizer):
                    graph = None  # the capture failed (with a warning): go on eagerly
            replaying = graph is not None and graph.captured
            with fast.STEP_LOCK.shared():
                if replaying:
                    if s.reg_noise_std > 0:
                        noise.normal_(generator=noise_gen)
                    out, loss, data = graph.forward_backward()
                else:
                    optimizer.zero_grad(set_to_none=True)
                    out, loss, data = forward_loss(perturb(z, noise, noise_gen,
                                                           s.reg_noise_std))
                avg = observe(info, monitors, step, out, out_avg, loss, data)
                if avg is None:
                    continue  # parameters were restored; redo this step with fresh input noise
                out_avg = avg
                if replaying:
                    step = commit(info, monitors, graph.update)
                    graph_steps += 1
                else:
                    loss.backward()
                    step = commit(info, monitors, optimizer.step)
                    eager_steps += 1
    if side is not None:
        torch.cuda.current_stream(device).wait_stream(side)
    if signals.requested() and step < s.num_iter and info.status == "ok":
        _interrupt(info, out_avg, monitors)

    final, seconds = _final(step_net, z, noise, s, device, info, out_avg, monitors)
    return assemble_result(problem, info, monitors, final, out_avg, step, seconds, device,
                           channels_last, graph_steps, resumed_at)
