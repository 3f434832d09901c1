"""The state of a running fit, saved so that a killed run resumes where it was.

:class:`FitState` is the whole loop state: parameters and buffers, the Adam state, the
running average, the loop's input-noise generator, torch's and numpy's global RNG
states, the status and the state of every monitor (history rows, oracle best,
backtracking snapshot, early-stopping state), with ``state_dict`` / ``load_state_dict``.
:class:`Checkpoint` is a monitor that only watches: every ``every`` parameter updates
(and when the loop ends, or when SIGINT or SIGTERM interrupt it) it writes the fit's
state to a file, atomically (:mod:`dip.atomic`). ``fit(..., resume=path)`` loads such a
file (:func:`load_checkpoint`) and continues from its step; on the CPU the result is
bit-identical to an uninterrupted run. The caller deletes the file once the result is
safely stored (:func:`discard`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from dip.atomic import atomic_target
from dip.errors import DipError
from dip.fitting.monitors import Monitor, StepInfo

__all__ = ["FitState", "Checkpoint", "load_checkpoint", "discard"]

FORMAT = 1


class FitState:
    """The loop state of the fit that ``info`` describes (see the module docstring).

    ``state_dict(average)`` captures it (``average``: the running average to resume
    with); ``load_state_dict(state)`` puts it back into the fit's net, optimiser,
    generators and monitors, and sets ``info.completed``, ``info.status`` and the time
    spent before. Monitors are matched by class and order (``Class#k``); a monitor with
    state that the saved fit did not have is refused.
    """

    def __init__(self, info: StepInfo):
        self.info = info

    def state_dict(self, average: torch.Tensor | None) -> dict:
        info = self.info
        return {
            "completed": info.completed, "status": info.status, "average": average,
            "net": info.net.state_dict(), "optimizer": info.optimizer.state_dict(),
            "generator": None if info.generator is None else info.generator.get_state(),
            "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(),
            "seconds": info.elapsed(),
            "monitors": {key: m.state_dict() for key, m in _keyed(info.monitors)},
        }

    def load_state_dict(self, state: dict, source: str = "the checkpoint") -> None:
        info = self.info
        device = next(info.net.parameters()).device
        info.net.load_state_dict(state["net"])
        info.optimizer.load_state_dict(state["optimizer"])
        if info.generator is not None and state["generator"] is not None:
            info.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        for key, monitor in _keyed(info.monitors):
            if key in state["monitors"]:
                monitor.load_state_dict(_to(state["monitors"][key], device))
            elif monitor.state_dict():
                raise DipError(f"{source} has no state for {key}; "
                               "delete it to start this run afresh")
        average = state["average"]
        info.prev_avg = None if average is None else average.to(device)
        info.completed, info.status = state["completed"], state["status"]
        info.seconds_before = state["seconds"]


def load_checkpoint(path: str | os.PathLike, key: str | None = None) -> dict | None:
    """The fit state saved in ``path`` (None when there is no such file).

    ``key``: the run's identity; a file saved under another key is refused
    (:class:`~dip.DipError`), as is one that cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a foreign or damaged file
        raise DipError(f"cannot read checkpoint {path} ({type(err).__name__}); "
                       "delete it to start the run afresh") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or (
            key is not None and state.get("key") != key):
        raise DipError(f"checkpoint {path} belongs to another run; "
                       "delete it to start this run afresh")
    return state


class Checkpoint(Monitor):
    """Save the fit's state (:class:`FitState`) to ``path`` every ``every`` updates.

    Parameters
    ----------
    path : str or path-like
        Checkpoint file (``torch.save`` format). Its folder must exist.
    every : int
        Parameter updates between saves; 0 saves only when the fit is interrupted
        (:meth:`on_interrupt`, a SIGINT or SIGTERM: :mod:`dip.launch.signals`).
    key : str
        Identity of the run (e.g. config hash and seed), saved with the state:
        :func:`load_checkpoint` refuses a file of another key.

    Notes
    -----
    A failed save (disk full) warns once and disables further saves.
    """

    def __init__(self, path: str | os.PathLike, every: int, key: str = ""):
        if int(every) < 0:
            raise ValueError(f"checkpoint interval must be >= 0, got {every}")
        self.path, self.every, self.key = Path(path), int(every), str(key)
        self.saved_at: int | None = None  # the step an interrupted fit was saved at
        self._failed = False

    # --- saving -------------------------------------------------------------------------

    def after_step(self, info: StepInfo) -> None:
        if self.every and info.completed % self.every == 0:
            self.save(info, info.average())

    def on_end(self, info: StepInfo) -> None:
        if self.every:
            self.save(info, info.prev_avg)  # after the loop: the final running average

    def on_interrupt(self, info: StepInfo) -> None:
        self.save(info, info.prev_avg)
        self.saved_at = info.completed

    def save(self, info: StepInfo, average: torch.Tensor | None) -> None:
        if self._failed:
            return
        state = {"format": FORMAT, "key": self.key, **FitState(info).state_dict(average)}
        try:
            with atomic_target(self.path) as tmp, open(tmp, "wb") as f:
                torch.save(state, f)
        except (OSError, RuntimeError) as err:  # torch reports failed writes as RuntimeError
            self._failed = True
            reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
            warnings.warn(f"cannot write checkpoint {self.path} ({reason}); "
                          "the run continues without checkpoints", stacklevel=2)


def _keyed(monitors):
    """(``Class#k``, monitor) for each monitor but checkpoints; k counts that class."""
    seen: dict[str, int] = {}
    for m in monitors:
        if isinstance(m, Checkpoint):
            continue
        name = type(m).__name__
        seen[name] = seen.get(name, -1) + 1
        yield f"{name}#{seen[name]}", m


def _to(obj, device):
    """``obj`` with every tensor (in dicts and lists) moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to(v, device) for v in obj]
    return obj


def discard(path: str | os.PathLike) -> None:
    """Delete a checkpoint if present."""
    path = Path(path)
    path.unlink(missing_ok=True)
