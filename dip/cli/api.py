"""The harness in one call, for scripts and notebooks: :func:`restore`.

>>> import dip
>>> out = dip.restore("photo.png", task="denoising", sigma=25)     # doctest: +SKIP
>>> out.image.shape, out.metrics["psnr_avg"]                       # doctest: +SKIP

:func:`restore` composes the same config as the ``dip`` command (``profile``, the task's
settings, any ``overrides``), so it fits exactly what ``dip task=... image=...`` fits, on
the same spine (:func:`dip.runs.plan.prepare`, :func:`dip.runs.plan.fit_seeds`); a record is written
only when ``out_dir`` is given. Images are C×H×W float tensors in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dip.fitting.settings import FitResult
from dip.problems.problem import Problem
from dip.runs.config import compose_config
from dip.runs.plan import execute, fit_seeds, prepare
from dip.runs.schema import quote_overrides
from dip.runs.scores import metrics_of

__all__ = ["restore", "Restored"]


@dataclass
class Restored:
    """What :func:`restore` returns.

    Attributes
    ----------
    image : torch.Tensor
        The restored image, C×H×W: the exponential average of the outputs (the estimate
        that needs no ground truth to be good: the raw output overfits the noise late).
    final : torch.Tensor
        The net's output after the last step, C×H×W.
    result : FitResult
        Everything the fit returned (curves in ``result.history``, the oracle output
        when the ground truth is known, the early-stopping output with ``stop=wmv``).
    problem : Problem
        What was fitted (observation, operator, ground truth).
    metrics : dict
        The numbers a record holds (PSNRs are NaN without ground truth); with ``out_dir``
        also ``out_dir``, the record's folder.
    """

    image: torch.Tensor
    final: torch.Tensor
    result: FitResult
    problem: Problem
    metrics: dict


def _value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_value(v) for v in value) + "]"
    return str(value)


def restore(image: str | Path | torch.Tensor | np.ndarray, task: str = "denoising", *,
            profile: str = "quick", overrides: Sequence[str] = (),
            out_dir: str | Path | None = None, **settings) -> Restored:
    """Restore one image with DIP.

    Parameters
    ----------
    image : path, data spec, tensor or array
        A file, a registry name (``set5/baby``), ``skimage:NAME``, or an image in memory
        (C×H×W or H×W×C, values in [0, 1]; with ``corrupted=True`` it is the damaged
        image, else the clean one that the task corrupts).
    task : {'denoising', 'inpainting', 'sr', 'fitting'}
    profile : {'quick', 'paper', 'smoke'}
        Net width and schedule: 'paper' is the official settings (GPU advised).
    overrides : sequence of str
        Further ``key=value`` overrides, as on the command line (``fit.num_iter=500``).
    out_dir : path, optional
        Write the run's record there (metrics.json, images, curves).
    **settings
        Top-level settings as keywords: ``sigma=25``, ``factor=4``, ``mask="m.png"``,
        ``corrupted=True``, ``crop=128``, ``seed=1``, ``stop="wmv"``, ``device="cuda"``.

    Returns
    -------
    Restored

    Raises
    ------
    DipError
        One line, as the ``dip`` command prints it: an unknown task or setting, a value
        of the wrong type, an image that cannot be read, ...
    """
    given = [f"task={task}", f"profile={profile}", "progress=false", "baselines=false"]
    given += [f"{k}={_value(v)}" for k, v in settings.items()]
    in_memory = not isinstance(image, (str, Path))
    given.append("image=in-memory" if in_memory else f"image={image}")
    if out_dir is not None:
        given.append(f"out_dir={out_dir}")
    given, overrides = quote_overrides(given), quote_overrides(overrides)  # as `dip` does
    cfg = compose_config(*given, *overrides)
    plan = prepare(cfg, [*given, *overrides], image=_tensor(image) if in_memory else None,
                   write=out_dir is not None)
    if isinstance(plan, dict):  # an existing record: fit again only with force=true
        raise FileExistsError(f"{plan['out_dir']} holds this run's record already; pass "
                              "force=True to fit it again, or another out_dir")
    results = fit_seeds(plan)
    plan.problem.to("cpu")
    if out_dir is not None:
        metrics = execute(plan, results)
    else:
        metrics = metrics_of(plan.problem, results[0], plan.spec)
    result = results[0]
    return Restored(image=plan.problem.unpad(result.average)[0],
                    final=plan.problem.unpad(result.final)[0], result=result,
                    problem=plan.problem, metrics=metrics)


def _tensor(image) -> torch.Tensor:
    """An in-memory image as C×H×W float32 in [0, 1]."""
    array = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[-1] in (1, 3) and array.shape[0] not in (1, 3):
        array = array.permute(2, 0, 1)
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"image of shape {tuple(array.shape)}: give C×H×W or H×W×C with "
                         "1 or 3 channels")
    return array.contiguous()
