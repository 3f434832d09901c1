"""The numbers of a run: each PSNR of its outputs and how it was made.

:func:`metrics_of` scores one fit's outputs against the problem's ground truth (and its
observation) and adds the run's provenance (:mod:`dip.runs.provenance`); a seed ensemble adds
:func:`ensemble_metrics` over the mean outputs of :func:`ensemble`. :mod:`dip.runs.records`
stores them as a record's ``metrics.json``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from dip.data.registry import image_id
from dip.fitting.settings import FitResult
from dip.problems.metrics import psnr
from dip.problems.problem import Problem
from dip.runs.provenance import device_name, git_commit, machine, versions
from dip.runs.spec import RunSpec

__all__ = ["metrics_of", "ensemble", "ensemble_metrics", "ENSEMBLE_IMAGES"]


def metrics_of(problem: Problem, result: FitResult, spec: RunSpec) -> dict:
    """The numbers of a run, each with how it was made.

    ``psnr_stop`` / ``iter_stop`` are the output and step of the detected stopping point
    (stop=wmv or emv; ``psnr_stop_avg``: the averaged output there), or the final
    output and the number of steps (stop=fixed; ``psnr_stop_avg`` is then ``psnr_avg``);
    ``steps`` counts the steps run (fewer than ``num_iter`` when a run stopped early).
    ``restored`` says which output ``restored.png`` holds: the final one when the run is
    scored against a ground truth (the paper reports it), else the averaged one, the
    best estimate without ground truth (docs/experiments.md#without-ground-truth).
    """
    scored = problem.gt is not None
    corrupted_view = problem.corrupted_view().cpu()
    nan = float("nan")
    return {
        "experiment": spec.name,
        "label": spec.label,
        "task": spec.task,
        "image": spec.image,
        "image_id": image_id(str(spec.gt if spec.keys.corrupted and spec.gt else spec.image)),
        "dataset": spec.dataset,
        **spec.record_fields(),  # the task's own: sigma, factor, ...
        "metric": problem.metric,
        "psnr_corrupted": problem.score(corrupted_view) if scored else nan,
        "psnr_final": problem.score(result.final) if scored else nan,
        "psnr_avg": problem.score(result.average) if scored else nan,
        "psnr_oracle": problem.score(result.oracle) if result.oracle is not None else nan,
        "iter_oracle": result.iter_oracle,
        "stop": spec.stop,
        "psnr_stop": problem.score(result.stop) if scored else nan,
        "psnr_stop_avg": problem.score(result.stop_average) if scored and
        result.stop_average is not None else nan,
        "iter_stop": result.iter_stop,
        "psnr_obs_final": psnr(problem.observation.cpu(),
                               problem.operator.cpu()(result.final).detach()),
        "num_iter": spec.step_cap(tuple(problem.out_shape[-2:])),
        "steps": result.steps,
        "seconds": round(result.seconds, 3),
        "sec_per_iter": round(result.seconds / max(1, result.steps), 5),
        "status": result.status,
        "restored": "final" if scored else "average",  # what restored.png holds
        "resumed_at": result.resumed_at,
        "backtracks": result.backtracks,
        "device": result.device,
        "device_name": device_name(result.device), "machine": machine(),
        "memory_format": result.memory_format,
        "graph_steps": result.graph_steps,
        "seed": spec.keys.seed,
        "seeds": [spec.keys.seed],
        "profile": spec.profile,
        "net": spec.net.name,
        "size": list(problem.image_shape),
        "config_hash": spec.identity,
        "commit": git_commit(),
        "versions": versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


ENSEMBLE_IMAGES = {"restored_ensemble": "final", "restored_ensemble_avg": "average"}
"""Record image of a seed ensemble → the outputs of each seed it is the mean of."""


def ensemble_metrics(problem: Problem, results: list[FitResult], seeds: list[int],
                     means: dict[str, torch.Tensor]) -> dict:
    """Numbers of a seed ensemble: each seed's PSNR of its final output, their mean and
    sample std (ddof 1), each seed's PSNR of its averaged output (``psnr_seeds_avg``),
    the PSNR of the mean of the final outputs (``psnr_ensemble``)
    and of the averaged outputs (``psnr_ensemble_avg``), and the fitting time of all
    seeds (``seconds_seeds``; ``seconds`` is seed ``seed``'s alone). ``means`` are the
    mean outputs named as in :data:`ENSEMBLE_IMAGES`."""
    scored = problem.gt is not None
    nan = float("nan")
    values = [problem.score(r.final) if scored else nan for r in results]
    averaged = [problem.score(r.average) if scored else nan for r in results]
    return {
        "seeds": [int(s) for s in seeds],
        "psnr_seeds": values,
        "psnr_seeds_mean": float(np.mean(values)),
        "psnr_seeds_std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "psnr_seeds_avg": averaged,
        "psnr_ensemble": problem.score(means["restored_ensemble"]) if scored else nan,
        "psnr_ensemble_avg": problem.score(means["restored_ensemble_avg"]) if scored else nan,
        "status_seeds": [r.status for r in results],
        "seconds_seeds": round(sum(r.seconds for r in results), 3),
    }


def ensemble(results: list[FitResult], which: str = "final") -> torch.Tensor:
    """Pixel-wise mean of the results' ``final`` (or ``average``) outputs."""
    return torch.stack([getattr(r, which) for r in results]).mean(0)
