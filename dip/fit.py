"""The DIP optimisation loop: θ* = argmin_θ ‖A f_θ(z) − x̂‖².

:func:`fit` owns only the optimisation step (input noise, forward, operator, loss,
backward, Adam step). Everything that watches a run is a monitor (see
:mod:`dip.monitors`): history, oracle best, backtracking guard, progress bar, early
stopping (:mod:`dip.stopping`) and checkpoints (:mod:`dip.checkpoint`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from dip import fast, official, signals
from dip.checkpoint import Checkpoint
from dip.device import pick_device
from dip.divergence import first_fit_db, worse_than_flat
from dip.monitors import Backtrack, History, Monitor, Oracle, Progress, StepInfo
from dip.signals import Interrupted
from dip.stopping import Stopper, make_stopper
from dip.tasks import Problem

__all__ = ["FitSettings", "FitResult", "fit", "objective", "assemble_result", "make_input",
           "code_channels", "pick_device", "seed_everything"]

@dataclass
class FitSettings:
    """Settings of one DIP fit (names and defaults of the official code).

    Attributes
    ----------
    num_iter : int
        Number of Adam steps.
    lr : float
        Adam learning rate.
    reg_noise_std : float
        Std of the Gaussian perturbation added to z at every step (0 = none).
    input_depth : int
        Channels of the noise code z (ignored for ``input_type='meshgrid'``: 2).
    input_type : {'noise', 'meshgrid', 'image'}
        z ~ U[0, 1)·``input_scale``, the 2-channel coordinate grid in [0, 1], or an
        image given to :func:`fit` as ``z`` (e.g. the flash photo of a flash/no-flash
        pair).
    input_scale : float
        Scale of the uniform code (official ``var = 1/10``).
    exp_weight : float
        Weight of the exponential average of outputs, avg ← w·avg + (1 − w)·out.
    tv_weight : float
        Weight of an added total-variation term (0 = pure data term).
    record_every : int
        Steps between history rows.
    backtrack_drop_db : float
        PSNR drop against the observation (dB) that triggers a rollback; ``inf`` disables.
    max_backtracks : int
        Consecutive rollbacks after which the run is declared diverged ('guard' only).
    backtrack : {'guard', 'official'}
        'guard' (default): every step; a drop or a NaN restores parameters, buffers and
        Adam state and the step is redone (:class:`~dip.monitors.Backtrack`). 'official':
        the guard of the task's notebook where it has one (denoising.ipynb: parameters
        only, the bad step's gradient still applied; :mod:`dip.official`), else none.
    final_input : {'clean', 'perturbed'}
        Input of ``final``: 'clean' (default) z, as inpainting.ipynb; 'perturbed' the last
        step's z + ``reg_noise_std``·n, as the denoising, super-resolution and restoration
        notebooks' ``net(net_input)``. The same when ``reg_noise_std`` is 0.
    stop : {'fixed', 'wmv', 'emv'}
        'fixed' runs ``num_iter`` steps; 'wmv' / 'emv' also detect the stopping point
        without ground truth (:mod:`dip.stopping`) and end the run ``stop_patience``
        steps after it (``num_iter`` is then the cap).
    stop_window : int
        W of ES-WMV (outputs in the variance window).
    stop_patience : int
        P: steps without a new variance minimum before the run ends.
    stop_alpha : float
        α of ES-EMV.
    seed : int
        Seeds the network initialisation, z and the per-step input noise.
    device : str
        'auto' (CUDA when available, else CPU), 'cpu' or 'cuda[:i]'.
    progress : bool
        Show a tqdm bar.
    channels_last : bool or None
        Run the net in channels_last memory format; None = automatic: on AVX-512 CPUs
        for images of 256² pixels or more, never on CUDA (see :mod:`dip.fast`).
    amp : {'off', 'bf16', 'fp16'}
        Autocast of the forward pass (the loss is computed in fp32).
    compile : bool
        Wrap the net in ``torch.compile``.
    fused_adam : bool or None
        Fused Adam; None = on CUDA only.
    cuda_graph : bool or None
        Replay the step as CUDA graphs after :data:`dip.fast.GRAPH_WARMUP` eager steps;
        None = on CUDA only (True on the CPU runs the same loop without graphs).
    keep_memory : bool or None
        Keep freed memory in the process (:func:`dip.fast.keep_freed_memory`: faster CPU
        steps, bit-identical results, a larger peak memory); None = on the CPU only.
        Process-wide: once a fit has turned it on, False does not turn it off.
    """

    num_iter: int = 3000
    lr: float = 0.01
    reg_noise_std: float = 1.0 / 30
    input_depth: int = 32
    input_type: str = "noise"
    input_scale: float = 0.1
    exp_weight: float = 0.99
    tv_weight: float = 0.0
    record_every: int = 10
    backtrack_drop_db: float = 5.0
    max_backtracks: int = 10
    backtrack: str = "guard"
    final_input: str = "clean"
    stop: str = "fixed"
    stop_window: int = 100
    stop_patience: int = 1000
    stop_alpha: float = 0.1
    seed: int = 0
    device: str = "auto"
    progress: bool = False
    channels_last: bool | None = None
    amp: str = "off"
    compile: bool = False
    fused_adam: bool | None = None
    cuda_graph: bool | None = None
    keep_memory: bool | None = None


@dataclass
class FitResult:
    """What a fit returns. Images are 1×C×H×W float32 tensors on the CPU in [0, 1].

    ``final`` is the net's output after the last step for the input ``final_input``
    names: f_θ(z) ('clean', as inpainting.ipynb) or f_θ(z + σ·n) with the last step's
    noise draw n ('perturbed', as the denoising, super-resolution and restoration
    notebooks); ``average`` the exponential average of the outputs, ``oracle`` the
    output of the step with the best ground-truth metric (None without ground truth),
    ``stop`` the output at the detected stopping point ``iter_stop`` (with
    ``stop='fixed'``: ``final`` and the number of steps). ``steps`` counts the parameter
    updates done; ``resumed_at`` is the step a checkpoint was resumed from (or None);
    ``memory_format`` ('nchw' or 'channels_last') is the layout the net ran in;
    ``graph_steps`` counts the steps run as graph replays (``cuda_graph``; on the CPU by
    the graph's eager stand-in), 0 when every step ran eagerly.

    ``status`` is 'ok', 'stopped' (early stopping ended the run) or 'diverged': the
    backtracking guard gave up, the parameters blew up (non-finite output; ``final`` is
    then the running average), or the final output fits the observation worse than the
    best flat image (:func:`dip.divergence.worse_than_flat`).
    """

    final: torch.Tensor
    average: torch.Tensor
    oracle: torch.Tensor | None
    iter_oracle: int | None
    history: pd.DataFrame
    seconds: float
    device: str
    status: str = "ok"
    backtracks: int = 0
    scores: dict = field(default_factory=dict)
    stop: torch.Tensor | None = None
    iter_stop: int | None = None
    steps: int = 0
    resumed_at: int | None = None
    memory_format: str = "nchw"
    graph_steps: int = 0


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy's legacy global generator."""
    torch.manual_seed(int(seed))
    np.random.seed(int(seed) % 2**32)


def code_channels(settings: FitSettings) -> int:
    """Channels of the drawn code z: 2 for the meshgrid, else ``input_depth``."""
    return 2 if settings.input_type == "meshgrid" else settings.input_depth


def make_input(input_type: str, depth: int, size: tuple[int, int], *, scale: float = 0.1,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """The fixed network input z, 1×depth×H×W.

    'noise': U[0, 1)·scale (official ``get_noise(..., 'noise', var=1/10)``);
    'meshgrid': two channels with x and y coordinates in [0, 1].
    """
    h, w = size
    if input_type == "noise":
        return torch.rand((1, depth, h, w), generator=generator) * scale
    if input_type == "meshgrid":
        y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        return torch.stack([x, y])[None]
    raise ValueError(f"unknown input_type {input_type!r}; choose 'noise' or 'meshgrid'")


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation, mean absolute difference of neighbours."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + \
        (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def _interrupt(info: StepInfo, out_avg, monitors: list[Monitor]) -> None:
    """Stop on a signal after ``info.completed`` steps: the monitors save what they need
    (the checkpoint), then :class:`~dip.signals.Interrupted` is raised."""
    info.prev_avg = out_avg
    with fast.STEP_LOCK.shared():
        for m in monitors:
            m.on_interrupt(info)
    saved = next((m.path for m in monitors if isinstance(m, Checkpoint)
                  and m.saved_at is not None), None)
    raise Interrupted(signals.requested(), info.completed, saved)


def default_monitors(problem: Problem, settings: FitSettings) -> list[Monitor]:
    """Backtracking guard (``settings.backtrack``), history, oracle (with ground truth),
    early stopping (unless ``stop='fixed'``), the last input noise (for checkpoints of
    ``final_input='perturbed'``) and an optional progress bar."""
    official.check(settings)
    monitors: list[Monitor] = []
    if settings.backtrack == "official":
        monitors += official.backtracking(problem.task, settings.backtrack_drop_db)
    elif settings.backtrack_drop_db is not None:  # first: the others skip rolled-back steps
        monitors.append(Backtrack(settings.backtrack_drop_db, settings.max_backtracks))
    monitors.append(History(settings.record_every))
    if problem.gt is not None:
        monitors.append(Oracle())
    stopper = make_stopper(settings.stop, settings.stop_window, settings.stop_patience,
                           settings.stop_alpha)
    if stopper is not None:
        monitors.append(stopper)
    if settings.final_input == "perturbed" and settings.reg_noise_std > 0:
        monitors.append(official.InputNoise())
    if settings.progress:
        monitors.append(Progress(settings.num_iter, settings.record_every))
    return monitors


def fit(net: nn.Module, problem: Problem, settings: FitSettings | None = None,
        monitors: list[Monitor] | None = None, z: torch.Tensor | None = None) -> FitResult:
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
        :class:`~dip.checkpoint.Checkpoint` goes last: it may resume the run in its
        ``on_start``.
    z : torch.Tensor, optional
        The network input 1×C×H×W; drawn from ``settings`` (seeded) when omitted.
        Required for ``input_type='image'``.

    Returns
    -------
    FitResult
    """
    s = settings or FitSettings()
    official.check(s)
    device = pick_device(s.device)
    monitors = default_monitors(problem, s) if monitors is None else monitors
    with fast.STEP_LOCK.shared():  # GPU work of threads beside a capture: dip.fast
        problem.to(device)
        net = net.to(device).train()

        if z is None:
            if s.input_type == "image":
                raise ValueError("input_type='image' needs the input image: fit(..., z=image)")
            gen = torch.Generator(device="cpu").manual_seed(int(s.seed))
            z = make_input(s.input_type, code_channels(s), problem.out_shape[1:],
                           scale=s.input_scale, generator=gen)
        z = z.to(device)
        noise_gen = torch.Generator(device=device).manual_seed(int(s.seed) + 1)
        noise = torch.full_like(z, float("nan"))  # each step draws into it; NaN: none yet
        optimizer = fast.adam(net.parameters(), s, device)
        step_net, z, channels_last = fast.prepare(net, z, s, device)

        info = StepInfo(problem=problem, net=net, optimizer=optimizer, exp_weight=s.exp_weight,
                        generator=noise_gen, noise=noise, monitors=monitors)
        for m in monitors:
            m.on_start(info)

    def forward(net_in, cache=True):
        with fast.autocast(s, device, cache):
            out = step_net(net_in).float()
        return (out, *objective(problem, out, s))

    def forward_backward():  # the captured piece: reads the static z and noise
        out, loss, data = forward(z + noise * s.reg_noise_std if s.reg_noise_std > 0 else z,
                                  cache=False)
        loss.backward()
        return out, loss, data

    graph = fast.StepGraph(device) if fast.use_cuda_graph(s, device) else None
    side = graph.stream if graph is not None else None
    with graph.context() if graph is not None else contextlib.nullcontext():
        out_avg, step = info.prev_avg, info.completed  # None and 0 unless resumed
        eager_steps = 0  # in this process (a resumed run warms up again)
        graph_steps = 0
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
                    if s.reg_noise_std > 0:
                        net_in = z + noise.normal_(generator=noise_gen) * s.reg_noise_std
                    else:
                        net_in = z
                    out, loss, data = forward(net_in)
                info.begin(step, out.detach(), out_avg, loss.detach(), data.detach())
                for m in monitors:
                    m.on_step(info)
                if info.rollback:
                    continue  # parameters were restored; redo this step with fresh input noise
                out_avg = info.average()
                if replaying:
                    for m in monitors:
                        m.before_update(info)
                    graph.update()
                    graph_steps += 1
                else:
                    loss.backward()
                    for m in monitors:
                        m.before_update(info)
                    optimizer.step()
                    eager_steps += 1
                step = info.completed = step + 1
                for m in monitors:
                    m.after_step(info)
    if side is not None:
        torch.cuda.current_stream(device).wait_stream(side)
    if signals.requested() and step < s.num_iter and info.status == "ok":
        _interrupt(info, out_avg, monitors)

    with fast.STEP_LOCK.shared():
        with torch.no_grad(), fast.autocast(s, device):
            final = step_net(official.final_input(z, noise, s)).float().detach()
        seconds = info.elapsed()
        info.prev_avg = out_avg  # the final running average, for on_end
        for m in monitors:
            m.on_end(info)

    return assemble_result(problem, info, monitors, final, out_avg, step, seconds, device,
                           channels_last, graph_steps)


def objective(problem: Problem, out: torch.Tensor, s: FitSettings):
    """The loss of one output and its data term: E = ‖A f(z) − x̂‖² (the mean over
    pixels) plus ``tv_weight`` · TV(f(z)) when set. Returns (loss, data)."""
    data = torch.nn.functional.mse_loss(problem.operator(out), problem.observation)
    return (data + s.tv_weight * tv_loss(out) if s.tv_weight > 0 else data), data


def assemble_result(problem: Problem, info: StepInfo, monitors: list[Monitor],
                    final: torch.Tensor, out_avg: torch.Tensor | None, step: int,
                    seconds: float, device, channels_last: bool = False,
                    graph_steps: int = 0) -> FitResult:
    """The :class:`FitResult` of a finished fit (single or batched), from its monitors
    (history, oracle, backtracking, early stopping, resume) and its last outputs.

    A non-finite ``final`` (parameters that blew up without a NaN loss) or one that fits
    the observation worse than a flat image (:func:`dip.divergence.worse_than_flat`) makes
    the run 'diverged'; the first case reports the running average as ``final``.
    """
    oracle = next((m for m in monitors if isinstance(m, Oracle)), None)
    history = next((m.frame() for m in monitors if isinstance(m, History)), pd.DataFrame())
    backtrack = next((m for m in monitors if isinstance(m, Backtrack)), None)
    stopper = next((m for m in monitors if isinstance(m, Stopper)), None)
    resumed = next((m.resumed_at for m in monitors if isinstance(m, Checkpoint)), None)
    average = out_avg if out_avg is not None else final
    if not bool(torch.isfinite(final).all()):  # parameters blew up without a NaN loss
        info.status = "diverged"
        final = average
    if info.status == "ok":  # fits the observation worse than a flat image: diverged too
        with fast.STEP_LOCK.shared():
            if worse_than_flat(problem, final, start_db=first_fit_db(history)):
                info.status = "diverged"
    if stopper is not None and stopper.best is not None:
        stop, iter_stop = stopper.best.cpu(), stopper.best_step
    else:  # fixed schedule (or too few steps to detect anything): the final output
        stop, iter_stop = final.cpu(), step
    return FitResult(
        final=final.cpu(), average=average.contiguous().cpu(),
        oracle=None if oracle is None or oracle.best is None else oracle.best.cpu(),
        iter_oracle=None if oracle is None else oracle.best_step,
        history=history, seconds=seconds, device=str(device), status=info.status,
        backtracks=0 if backtrack is None else backtrack.total,
        stop=stop, iter_stop=iter_stop, steps=step, resumed_at=resumed,
        memory_format="channels_last" if channels_last else "nchw",
        graph_steps=graph_steps,
    )
