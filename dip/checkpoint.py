"""Checkpoints of a running fit, so that a killed run resumes where it was.

:class:`Checkpoint` is a monitor. Every ``every`` parameter updates (and when the loop
ends) it writes the whole loop state: parameters and buffers, the Adam state, the
running average, the loop's input-noise generator, torch's and numpy's global RNG
states, the status and the state of every other monitor (history rows, oracle best,
backtracking snapshot, early-stopping state). The file is written to a temporary name
and moved into place (``os.replace``), so it is always complete.

A fit interrupted by SIGINT or SIGTERM saves it at the step it was at
(:meth:`Checkpoint.on_interrupt`). At the start of a fit, an existing checkpoint is
loaded and the loop continues from its step; on the CPU the result is bit-identical to
an uninterrupted run. The caller deletes the file once the result is safely stored
(:func:`discard`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from dip import DipError
from dip.monitors import Monitor, StepInfo

__all__ = ["Checkpoint", "discard"]

FORMAT = 1


class Checkpoint(Monitor):
    """Save the loop state to ``path`` every ``every`` updates; resume from it on start.

    Parameters
    ----------
    path : str or path-like
        Checkpoint file (``torch.save`` format). Its folder must exist.
    every : int
        Parameter updates between saves; 0 saves only when the fit is interrupted
        (:meth:`on_interrupt`, a SIGINT or SIGTERM: :mod:`dip.signals`).
    key : str
        Identity of the run (e.g. config hash and seed); a file with another key is
        refused rather than resumed.

    Attributes
    ----------
    resumed_at : int or None
        The step a fit resumed from, None for a fresh start.

    Notes
    -----
    Put it last among the monitors: it restores the others' states after their own
    ``on_start``. A failed save (disk full) warns once and disables further saves.
    """

    def __init__(self, path: str | os.PathLike, every: int, key: str = ""):
        if int(every) < 0:
            raise ValueError(f"checkpoint interval must be >= 0, got {every}")
        self.path, self.every, self.key = Path(path), int(every), str(key)
        self.resumed_at: int | None = None
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
        state = {
            "format": FORMAT, "key": self.key, "completed": info.completed,
            "status": info.status, "average": average,
            "net": info.net.state_dict(), "optimizer": info.optimizer.state_dict(),
            "generator": None if info.generator is None else info.generator.get_state(),
            "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(),
            "seconds": info.elapsed(),
            "monitors": {key: m.state_dict() for key, m in _keyed(info.monitors, self)},
        }
        tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(state, f)
            os.replace(tmp, self.path)
        except (OSError, RuntimeError) as err:  # torch reports failed writes as RuntimeError
            tmp.unlink(missing_ok=True)
            self._failed = True
            reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
            warnings.warn(f"cannot write checkpoint {self.path} ({reason}); "
                          "the run continues without checkpoints", stacklevel=2)

    # --- resuming -----------------------------------------------------------------------

    def on_start(self, info: StepInfo) -> None:
        if not self.path.is_file():
            return
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as err:  # a foreign or damaged file: start afresh
            raise DipError(f"cannot read checkpoint {self.path} ({type(err).__name__}); "
                           "delete it to start the run afresh") from None
        if state.get("format") != FORMAT or state.get("key") != self.key:
            raise DipError(f"checkpoint {self.path} belongs to another run; "
                           "delete it to start this run afresh")
        device = next(info.net.parameters()).device
        info.net.load_state_dict(state["net"])
        info.optimizer.load_state_dict(state["optimizer"])
        if info.generator is not None and state["generator"] is not None:
            info.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        for key, monitor in _keyed(info.monitors, self):
            if key in state["monitors"]:
                monitor.load_state_dict(_to(state["monitors"][key], device))
            elif monitor.state_dict():
                raise DipError(f"checkpoint {self.path} has no state for {key}; "
                               "delete it to start this run afresh")
        average = state["average"]
        info.prev_avg = None if average is None else average.to(device)
        info.completed, info.status = state["completed"], state["status"]
        info.seconds_before = state["seconds"]
        self.resumed_at = info.completed


def _keyed(monitors, exclude):
    """(``Class#k``, monitor) for each monitor but ``exclude``; k counts that class."""
    seen: dict[str, int] = {}
    for m in monitors:
        if m is exclude:
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
    """Delete a checkpoint (and a stray temporary file beside it) if present."""
    path = Path(path)
    path.unlink(missing_ok=True)
    for tmp in path.parent.glob(f"{path.name}.tmp-*"):
        tmp.unlink(missing_ok=True)
