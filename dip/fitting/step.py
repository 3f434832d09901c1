"""One DIP step, and how a fit's result is assembled, for every engine.

Single fits (:func:`dip.fitting.loop.fit`) and grouped ones (:mod:`dip.fitting.batched`) run
the same step from these pieces, so the engines cannot drift apart:

1. the input: z + σ·n with fresh noise n (:func:`perturb`);
2. the output f_θ(input) in float32 (:func:`forward`) and its loss (:func:`objective`);
3. the monitors see the step, and may roll it back (:func:`observe`);
4. backward, then the update (Adam's step) between the monitors' ``before_update`` and
   ``after_step`` (:func:`commit`).

A fit runs with :func:`default_monitors` unless told otherwise, and its
:class:`~dip.fitting.settings.FitResult` is made by :func:`assemble_result`.
"""

from __future__ import annotations

import pandas as pd
import torch

from dip.fitting import fast, official
from dip.fitting.divergence import first_fit_db, worse_than_flat
from dip.fitting.monitors import (
    Backtrack,
    ExpectedTime,
    History,
    Monitor,
    Oracle,
    Progress,
    StepInfo,
)
from dip.fitting.settings import FitResult, FitSettings
from dip.fitting.snapshots import Snapshots
from dip.fitting.stopping import Stopper, make_stopper
from dip.problems.problem import Problem

__all__ = ["perturb", "forward", "objective", "observe", "commit", "tv_loss",
           "default_monitors", "assemble_result", "best_output"]


def perturb(z: torch.Tensor, noise: torch.Tensor | None, generator: torch.Generator | None,
            std: float) -> torch.Tensor:
    """The step's input z + σ·n, with n ~ N(0, 1) drawn into ``noise`` from ``generator``
    (the official ``reg_noise_std`` input noise); z itself when σ = 0 (nothing drawn)."""
    if std <= 0:
        return z
    return z + noise.normal_(generator=generator) * std


def forward(net, net_in: torch.Tensor, s: FitSettings, device,
            cache: bool = True) -> torch.Tensor:
    """f_θ(input) in float32, autocast as ``s.amp`` says (``cache=False`` inside a CUDA
    graph capture: :func:`dip.fitting.fast.autocast`)."""
    with fast.autocast(s, device, cache):
        return net(net_in).float()


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation, mean absolute difference of neighbours."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + \
        (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def objective(problem: Problem, out: torch.Tensor, s: FitSettings):
    """The loss of one output and its data term: E = ‖A f(z) − x̂‖² (the mean over
    pixels) plus ``tv_weight`` · TV(f(z)) when set. Returns (loss, data)."""
    data = torch.nn.functional.mse_loss(problem.operator(out), problem.observation)
    return (data + s.tv_weight * tv_loss(out) if s.tv_weight > 0 else data), data


def observe(info: StepInfo, monitors: list[Monitor], step: int, out: torch.Tensor,
            avg: torch.Tensor | None, loss: torch.Tensor, data: torch.Tensor):
    """The monitors see step ``step`` (its output, the running average so far, the loss
    and its data term); returns the new running average, or None when a monitor rolled
    the step back (the parameters were restored: the step is redone with fresh noise)."""
    info.begin(step, out.detach(), avg, loss.detach(), data.detach())
    for m in monitors:
        m.on_step(info)
    return None if info.rollback else info.average()


def commit(info: StepInfo, monitors: list[Monitor], update) -> int:
    """Apply the step's update (``update()``: Adam's step, after the backward pass)
    between the monitors' ``before_update`` and ``after_step``; returns the steps done."""
    for m in monitors:
        m.before_update(info)
    update()
    info.completed += 1
    for m in monitors:
        m.after_step(info)
    return info.completed


def default_monitors(problem: Problem, settings: FitSettings) -> list[Monitor]:
    """Backtracking guard (``settings.backtrack``), history, oracle (with ground truth),
    early stopping (unless ``stop='fixed'``), the last input noise (for checkpoints of
    ``final_input='perturbed'``), snapshots (``snapshot_every``), an optional progress
    bar and a note with the expected time of a long CPU fit."""
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
    if settings.snapshot_every:
        monitors.append(Snapshots(settings.snapshot_every, settings.snapshot_limit,
                                  settings.snapshot_side))
    if settings.progress:
        monitors.append(Progress(settings.num_iter, settings.record_every))
    monitors.append(ExpectedTime(settings.num_iter, early=settings.stop != "fixed"))
    return monitors


def assemble_result(problem: Problem, info: StepInfo, monitors: list[Monitor],
                    final: torch.Tensor, out_avg: torch.Tensor | None, step: int,
                    seconds: float, device, channels_last: bool = False,
                    graph_steps: int = 0, resumed_at: int | None = None) -> FitResult:
    """The :class:`FitResult` of a finished fit (single or batched), from its monitors
    (history, oracle, backtracking, early stopping) and its last outputs; ``resumed_at``:
    the step it resumed from (None: a fresh start).

    A non-finite ``final`` (parameters that blew up without a NaN loss) or one that fits
    the observation worse than a flat image (:func:`dip.fitting.divergence.worse_than_flat`) makes
    the run 'diverged'; the first case reports the running average as ``final``.
    """
    oracle = next((m for m in monitors if isinstance(m, Oracle)), None)
    history = next((m.frame() for m in monitors if isinstance(m, History)), pd.DataFrame())
    backtrack = next((m for m in monitors if isinstance(m, Backtrack)), None)
    stopper = next((m for m in monitors if isinstance(m, Stopper)), None)
    snaps = next((m for m in monitors if isinstance(m, Snapshots)), None)
    average = out_avg if out_avg is not None else final
    if not bool(torch.isfinite(final).all()):  # parameters blew up without a NaN loss
        info.status = "diverged"
        final = average
    if info.status == "ok":  # fits the observation worse than a flat image: diverged too
        with fast.STEP_LOCK.shared():
            if worse_than_flat(problem, final, start_db=first_fit_db(history)):
                info.status = "diverged"
    best, iter_best = best_output(problem, oracle, final, step)
    if stopper is not None and stopper.best is not None:
        stop, iter_stop = stopper.best.cpu(), stopper.best_step
        stop_average = (stopper.best_avg if stopper.best_avg is not None else average).cpu()
    else:  # fixed schedule (or too few steps to detect anything): the final outputs
        stop, iter_stop, stop_average = final.cpu(), step, average.cpu()
    return FitResult(
        final=final.cpu(), average=average.contiguous().cpu(),
        oracle=None if best is None else best.cpu(), iter_oracle=iter_best,
        history=history, seconds=seconds, device=str(device), status=info.status,
        backtracks=0 if backtrack is None else backtrack.total,
        stop=stop, iter_stop=iter_stop, steps=step, resumed_at=resumed_at,
        memory_format="channels_last" if channels_last else "nchw",
        graph_steps=graph_steps, stop_average=stop_average.contiguous(),
        snapshots=[] if snaps is None else list(snaps.frames),
    )


def best_output(problem: Problem, oracle: Oracle | None, final: torch.Tensor, steps: int):
    """The oracle's output and step: the best-scoring of every step's output (the
    :class:`~dip.fitting.monitors.Oracle`) and the final output after the last step (step
    ``steps``), so that the oracle is never below the final output. (None, None)
    without ground truth."""
    if oracle is None or problem.gt is None:
        return None, None
    with fast.STEP_LOCK.shared():
        final_score = problem.score(final)
    if oracle.best is None or final_score > oracle.best_score:
        return final, steps
    return oracle.best, oracle.best_step
