"""Tasks: what a task is to the rest of dip, and the registry its module fills.

A task is one module of :mod:`dip.problems` that calls :func:`register` with a
:class:`Task`: its settings (a dataclass, whose defaults are those of
``conf/task/<name>.yaml``), how it builds a :class:`~dip.problems.problem.Problem` from
the images a run reads (:class:`Inputs`), its checks, the fields it adds to a record and
its baselines (:func:`dip.problems.baselines.register`). The registry is filled by the
modules themselves: :func:`get` imports every module of the package on first use, so a
new task needs no edit of a central list.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from dip.data.images import size_wh
from dip.errors import DipError, DipNote
from dip.problems.problem import Problem
from dip.typed import SettingError, typed_fields

__all__ = ["Task", "Inputs", "register", "get", "names", "setting_names", "settings_of"]

_TASKS: dict[str, Task] = {}
GENERAL = frozenset({"name", "metric", "lr", "iters", "reg_noise_std", "table"})
"""Keys of every task's config node that are not its own settings (its fit schedule)."""
_BASE = {"problem", "task", "baselines", "metrics", "noise", "operators"}
"""Modules of :mod:`dip.problems` that are not tasks."""


@dataclass(frozen=True)
class Inputs:
    """What a run hands a task's builder: the images as read, and how to crop them.

    Attributes
    ----------
    image : torch.Tensor
        C×H×W in [0, 1], as read: the clean image, or the observation itself when
        ``corrupted``.
    gt : torch.Tensor or None
        The ground truth of a corrupted image, when given (as read).
    corrupted : bool
        Whether ``image`` is the observation (else the task corrupts it, seeded).
    seed : int
        The seed of a synthetic corruption.
    name : str
        The image's spec (a path or registry name), for paired masks.
    described : str
        The image as messages name it, with its resizing and crop ('image x.png
        (centre crop 128)').
    net : str
        The net's name, for messages.
    multiple : int
        The net's size multiple: the fitted image's sides must be multiples of it.
    crop : callable
        ``crop(img, multiple, scale=1, *, mask=False, what=None, upscale=1, why=None)``:
        the run's resize and centre crop (its size times ``scale``), then a cut to
        ``multiple`` · ``scale``. The image itself is checked against the net when
        ``what`` describes it (``upscale``: the net's output is the image upscaled by
        it; ``why``: what else ``multiple`` is a multiple of); ``mask``:
        nearest-neighbour resizing.
    read : callable
        ``read(spec, what)``: another image of the run (a mask), from the data root.
    """

    image: torch.Tensor
    gt: torch.Tensor | None
    corrupted: bool
    seed: int
    name: str
    described: str
    net: str
    multiple: int
    crop: Callable
    read: Callable

    def cropped(self, multiple: int | None = None):
        """The image and ground truth resized, cropped and cut alike (to ``multiple``,
        default the net's); refuses a ground truth of another size."""
        multiple = self.multiple if multiple is None else multiple
        if self.gt is not None and self.gt.shape[-2:] != self.image.shape[-2:]:
            raise DipError(f"gt is {size_wh(self.gt)} but the image is {size_wh(self.image)}; "
                           "give the clean version of the same image")
        image = self.crop(self.image, multiple, what=self.described)
        return image, None if self.gt is None else self.crop(self.gt, multiple)


@dataclass(frozen=True)
class Task:
    """A task as a run sees it.

    Attributes
    ----------
    name : str
        ``task=<name>``.
    settings : type
        A dataclass of the task's own settings (``conf/task/<name>.yaml`` sets them
        under ``task:``; each also has a short spelling: ``sigma=25``).
    build : callable
        ``build(inputs, settings) -> Problem``: the problem of the images as read.
    check : callable, optional
        ``check(settings, corrupted)``: refuse invalid settings (a one-line DipError)
        before anything is read.
    fields : callable, optional
        ``fields(settings) -> dict``: the task's own fields of a record's metrics (the
        noise level, the SR factor), beside the common ones.
    """

    name: str
    settings: type
    build: Callable[[Inputs, Any], Problem]
    check: Callable[[Any, bool], None] | None = None
    fields: Callable[[Any], dict] | None = None


def register(task: Task) -> Task:
    """Add ``task`` to the registry (its module calls this when imported)."""
    _TASKS[task.name] = task
    return task


@functools.cache
def _discover() -> None:
    """Import every module of :mod:`dip.problems` (once): each task module registers
    itself."""
    package = importlib.import_module("dip.problems")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _BASE:
            importlib.import_module(f"dip.problems.{info.name}")


def names() -> list[str]:
    """The registered tasks' names, sorted."""
    _discover()
    return sorted(_TASKS)


def get(name: str) -> Task:
    """The task ``name``; a one-line DipError naming the known tasks when there is none."""
    if name not in _TASKS:
        _discover()
    if name not in _TASKS:
        raise DipError(f"unknown task {name!r}; choose one of {', '.join(names())}")
    return _TASKS[name]


def setting_names(task: str | None = None) -> set[str]:
    """The setting names of ``task``, or of every task (their short spellings: ``sigma``,
    ``factor``, ...)."""
    chosen = names() if task is None else [get(task).name]
    return {f.name for n in chosen for f in dataclasses.fields(_TASKS[n].settings)}


def settings_of(name: str, values: Mapping, corrupted: bool = False):
    """The settings of task ``name`` from ``values`` (a config's ``task`` node; keys that
    are not the task's settings are left out), converted to their types and checked:
    ``factor=abc is invalid; give ...`` as one line."""
    task = get(name)
    known = {f.name for f in dataclasses.fields(task.settings)}
    for key in sorted(set(values) - known - GENERAL):  # another task's, spelled short
        users = [n for n in names() if key in {f.name for f in
                                                 dataclasses.fields(_TASKS[n].settings)}]
        if values[key] is not None:
            who = f"only {' and '.join(users)} use{'s' if len(users) == 1 else ''} it" \
                if users else "no task uses it"
            warnings.warn(f"{key}= is ignored by task={name} ({who})", DipNote, stacklevel=2)
    try:
        settings = task.settings(**{k: v for k, v in values.items() if k in known})
        settings = dataclasses.replace(settings, **typed_fields(settings))
    except SettingError as err:
        raise DipError(str(err)) from None
    if task.check is not None:
        task.check(settings, corrupted)
    return settings
