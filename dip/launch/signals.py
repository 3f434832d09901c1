"""Interrupted runs: SIGINT (Ctrl-C) and SIGTERM (a Slurm pre-emption, ``timeout``).

Inside :func:`checkpoint_on_signals` (the ``dip`` command and the batched launcher
wrap their runs in it) the first SIGINT or SIGTERM does not kill the process: it asks
every running fit to stop after its current step (:func:`requested`). The fit then
saves its checkpoint at that step (:meth:`dip.fitting.checkpoint.Checkpoint.on_interrupt`) and
raises :class:`Interrupted`; no record is written, so the same command resumes the run
from there. A second signal interrupts at once, as without the handler.
"""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["Interrupted", "checkpoint_on_signals", "requested", "exit_status"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_requested: int | None = None


class Interrupted(KeyboardInterrupt):
    """A fit stopped by a signal after ``step`` steps; ``checkpoint`` holds its state
    (None when the fit had no checkpoint). Not an ``Exception``: a sweep stops too."""

    def __init__(self, signum: int, step: int, checkpoint=None):
        super().__init__(signum, step, checkpoint)
        self.signum, self.step, self.checkpoint = signum, step, checkpoint

    def __str__(self) -> str:
        where = (f"its state is saved in {self.checkpoint}; run the same command again to "
                 "resume from there" if self.checkpoint else "nothing was saved")
        return f"interrupted by {signal.Signals(self.signum).name} at step {self.step}: {where}"


def requested() -> int | None:
    """The signal that asked the fits to stop, or None."""
    return _requested


def exit_status(signum: int) -> int:
    """The shell's status of a process ended by ``signum`` (130 for SIGINT, 143 SIGTERM)."""
    return 128 + int(signum)


def _handle(signum, frame) -> None:
    global _requested
    if _requested is not None:  # the second signal: stop now
        raise KeyboardInterrupt
    _requested = signum


@contextlib.contextmanager
def checkpoint_on_signals():
    """Turn SIGINT and SIGTERM into a request to stop after the current step.

    Only the main thread can install signal handlers; elsewhere this does nothing.
    The request is cleared on entry and on exit, when the earlier handlers come back.
    """
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested = None
    before = {s: signal.signal(s, _handle) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        _requested = None
