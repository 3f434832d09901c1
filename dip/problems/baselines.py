"""Classical baselines, run on the same problem as DIP and scored the same way.

A baseline takes a :class:`~dip.problems.problem.Problem` and returns the restored image
as a float32 1×C×H×W tensor in [0, 1], so it is scored exactly like the network's output
(``problem.score``). Each task module registers its own with :func:`register` (non-local
means and CBM3D in :mod:`~dip.problems.denoising`, biharmonic in
:mod:`~dip.problems.inpainting`, bicubic in :mod:`~dip.problems.sr`, ...);
:func:`run_baselines` scores a task's default baselines and leaves out the optional ones
whose package is missing. The helpers convert between tensors and scikit-image's arrays.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import torch

from dip.errors import DipError
from dip.problems import task as tasks
from dip.problems.problem import Problem

__all__ = ["available", "register", "run_baselines", "label", "check_task", "to_numpy",
           "to_tensor", "channel_axis", "BASELINES", "TASK_BASELINES", "OPTIONAL", "LABELS"]

BASELINES: dict = {}
"""All baselines by name (filled by :func:`register`)."""

TASK_BASELINES: dict[str, list[str]] = {}
"""The baselines scored for each task by default (those in the paper's tables)."""

OPTIONAL: dict[str, str] = {}
"""Baseline → the optional package it needs."""

LABELS: dict[str, str] = {}
"""How a baseline is named in summaries and figures, where not by its name."""


def register(name: str, task: str, *, default: bool = True, package: str | None = None,
             label: str | None = None):
    """Decorator: register ``fn(problem) -> 1×C×H×W tensor`` as the baseline ``name``
    of ``task``; ``default``: scored in every record of the task; ``package``: an
    optional package it needs (left out where it is missing); ``label``: its printed
    name (default ``name``)."""
    def add(fn):
        BASELINES[name] = fn
        if default:
            TASK_BASELINES.setdefault(task, []).append(name)
        if package is not None:
            OPTIONAL[name] = package
        if label is not None:
            LABELS[name] = label
        return fn
    return add


def label(name: str) -> str:
    """The baseline's name as printed: ``NLM``, ``CBM3D``, ``biharmonic``, ``bicubic``."""
    return LABELS.get(name, name)


def check_task(problem: Problem, task: str, name: str) -> None:
    """DipError unless ``problem`` is of ``task`` (the baseline ``name``'s)."""
    if problem.task != task:
        raise DipError(f"the {name} baseline is for {task}, not {problem.task}")


def to_numpy(img: torch.Tensor) -> np.ndarray:
    """1×C×H×W tensor → float64 H×W (one channel) or H×W×C array."""
    a = img.detach().to("cpu", torch.float64)[0].permute(1, 2, 0).numpy()
    return a[..., 0] if a.shape[2] == 1 else a


def to_tensor(a: np.ndarray) -> torch.Tensor:
    """H×W or H×W×C array → float32 1×C×H×W tensor clipped to [0, 1]."""
    a = np.clip(np.asarray(a, dtype=np.float32), 0.0, 1.0)
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def channel_axis(a: np.ndarray) -> int | None:
    """scikit-image's ``channel_axis`` of an array from :func:`to_numpy`."""
    return -1 if a.ndim == 3 else None


def available(name: str) -> bool:
    """True when the baseline ``name`` can run here (its optional package is installed)."""
    package = OPTIONAL.get(name)
    return package is None or importlib.util.find_spec(package) is not None


def run_baselines(problem: Problem, names: list[str] | None = None,
                  images: dict | None = None) -> dict[str, float]:
    """Score baselines on ``problem`` with its own metric.

    Parameters
    ----------
    problem : Problem
        The problem DIP is fitted to.
    names : list of str, optional
        Baselines to run; default the task's (``TASK_BASELINES[problem.task]``).
    images : dict, optional
        When given, each baseline's output (1×C×H×W) is stored in it under its name.

    Returns
    -------
    dict
        name → score (``problem.score``); NaN for every baseline when the problem has
        no ground truth (nothing is run then). Optional baselines whose package is
        missing (``cbm3d`` without ``bm3d``) are left out.
    """
    tasks.names()  # every task module imported: their baselines are registered
    names = TASK_BASELINES.get(problem.task, []) if names is None else list(names)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise DipError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)}")
    scores = {}
    for name in names:
        if not available(name):
            continue
        if problem.gt is None:
            scores[name] = math.nan
            continue
        out = BASELINES[name](problem)
        scores[name] = problem.score(out)
        if images is not None:
            images[name] = out
    return scores
