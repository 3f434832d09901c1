"""dip: a reproduction harness for Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018).

The spine: a config becomes a plan (:func:`dip.runs.plan.prepare`), a plan a fit
(:func:`dip.fit`), a fit a record (:class:`dip.runs.records.RunRecord`), records reports
(:mod:`dip.report`). In one call: :func:`dip.restore`.

The house, one subpackage per layer; a layer imports only the layers below it
(``tests/test_layers.py`` checks it):

- :mod:`dip.cli`: the ``dip`` command, folder runs, :func:`restore`;
- :mod:`dip.report`: tables, studies, the claims scorecard, figures, from records alone;
- :mod:`dip.runs`: a config read once into a plan, executed into a record;
- :mod:`dip.fitting`: the fit loop, its step, monitors, early stopping, checkpoints;
- :mod:`dip.launch`: devices and threads, memory, claims, signals, the sweep ledger;
- :mod:`dip.nets`: the official networks;
- :mod:`dip.problems`: one module per task (operator, noise, problem, baselines);
- :mod:`dip.data`: images, crops, the data registry, masks, downloads;
- :mod:`dip.errors`, :mod:`dip.atomic`, :mod:`dip.plots`: shared by all;
- :mod:`dip.bench`: the benchmark.

Shapes: an image is C×H×W float32 in [0, 1] (files read and written, crops, what
:func:`restore` takes and returns); what the network sees and gives is a batch of one,
1×C×H×W (a :class:`Problem`'s tensors, a :class:`FitResult`'s outputs). Sizes are
(H, W); ``out_shape`` is (C, H, W).

The public names (below) are imported on first use, so ``import dip`` stays light.
"""

import importlib

from dip.errors import DipError, DipNote, show_notes

__version__ = "0.1.0"

_PUBLIC = {
    "restore": "dip.cli.api", "Restored": "dip.cli.api",
    "fit": "dip.fitting", "FitSettings": "dip.fitting", "FitResult": "dip.fitting",
    "Problem": "dip.problems",
}
_SUBPACKAGES = ("nets", "problems", "fitting", "data", "report", "runs", "cli")

__all__ = ["DipError", "DipNote", "show_notes", *_PUBLIC, *_SUBPACKAGES]


def __getattr__(name: str):
    """The public names (:data:`_PUBLIC`) and subpackages, imported on first use."""
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"dip.{name}")
    raise AttributeError(f"module 'dip' has no attribute {name!r}")
