"""dip: a reproduction harness for Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018).

The spine: a config becomes a plan (:func:`dip.run.prepare`), a plan a fit
(:func:`dip.fit.fit`), a fit a record (:class:`dip.records.RunRecord`), records reports
(:mod:`dip.report`). In one call: :func:`dip.restore`.

Shapes: an image is C×H×W float32 in [0, 1] (files read and written, crops, what
:func:`dip.restore` takes and returns); what the network sees and gives is a batch of
one, 1×C×H×W (a :class:`~dip.tasks.Problem`'s tensors, a :class:`~dip.fit.FitResult`'s
outputs). Sizes are (H, W); ``out_shape`` is (C, H, W).
"""

import sys
import warnings

__version__ = "0.1.0"


class DipError(Exception):
    """A user-facing error: its message is one line that says what is wrong and how to fix it."""


class DipNote(UserWarning):
    """A note about something dip changed on the user's behalf (e.g. a converted image mode).

    The ``dip`` command prints it as one ``note: ...`` line on stderr.
    """


def show_notes() -> None:
    """Print every :class:`DipNote` as one ``note: ...`` line on stderr (even with
    ``PYTHONWARNINGS=ignore``); other warnings keep Python's format."""
    warnings.simplefilter("always", DipNote)
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DipNote):
            print(f"note: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    if getattr(default, "_dip_notes", False):
        return
    show._dip_notes = True
    warnings.showwarning = show


def __getattr__(name: str):
    """``dip.restore``, ``dip.Restored`` (:mod:`dip.api`) and ``dip.nets`` (the networks),
    imported on first use: ``import dip`` stays light (no torch) until they are used."""
    if name in ("restore", "Restored"):
        from dip import api

        return getattr(api, name)
    if name == "nets":
        import importlib

        return importlib.import_module("dip.nets")
    raise AttributeError(f"module 'dip' has no attribute {name!r}")
