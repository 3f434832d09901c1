"""TensorBoard: a fit's curves and snapshots, written while it runs.

:class:`TensorBoard` is a monitor that writes, every ``every`` steps, the loss, the PSNR
of A f_θ(z) against the observation (``psnr/observation``) and, with ground truth, the
PSNR of the step's output and of the running average (``psnr/output``,
``psnr/average``), the early-stopping signal (``stopping/variance``, with ``stop=wmv`` or
``emv``), and each snapshot (:class:`~dip.fitting.snapshots.Snapshots`) as the image
``output``, to event files in ``log_dir``. ``hparams`` become the run's hyperparameters
in TensorBoard's HParams view (a sweep's overrides), with the PSNRs as its metrics.

A resumed fit opens the folder with ``purge_step`` at the step it resumed from, so what
an earlier process wrote past its checkpoint is hidden: the curves go on without a gap
or a duplicate. TensorBoard is an optional dependency (:func:`require`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from dip.errors import DipError
from dip.fitting.monitors import History, Monitor, StepInfo
from dip.fitting.snapshots import Snapshots
from dip.fitting.stopping import Stopper

__all__ = ["TensorBoard", "require", "INSTALL"]

INSTALL = "pip install -e '.[tensorboard]'"


def require() -> None:
    """One-line :class:`~dip.DipError` unless the ``tensorboard`` package is installed."""
    if importlib.util.find_spec("tensorboard") is None:
        raise DipError(f"logger=tensorboard needs the tensorboard package; install it with "
                       f"{INSTALL}, or drop logger=tensorboard")


def _hparam(value):
    """A value TensorBoard's HParams take (bool, int, float, str); others as text."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class TensorBoard(Monitor):
    """Write a fit to TensorBoard (see the module's docstring).

    Parameters
    ----------
    log_dir : str or path-like
        The run's folder of event files (made when missing).
    every : int
        Steps between scalar points.
    hparams : dict, optional
        Hyperparameters of the run (name → value), for the HParams view.
    """

    def __init__(self, log_dir: str | os.PathLike, every: int = 10,
                 hparams: dict | None = None):
        require()
        self.log_dir, self.every = Path(log_dir), max(1, int(every))
        self.hparams = {str(k): _hparam(v) for k, v in (hparams or {}).items()}
        self.writer = None
        self._history = self._stopper = self._snapshots = None  # the monitors it reads

    def _open(self, info: StepInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir.mkdir(parents=True, exist_ok=True)
        resumed = info.step > 0
        self.writer = SummaryWriter(str(self.log_dir), purge_step=info.step if resumed else None)
        if self.hparams and not resumed:
            from torch.utils.tensorboard.summary import hparams

            tags = ["psnr/observation", "loss"]
            if info.problem.gt is not None:
                tags = ["psnr/output", "psnr/average", *tags]
            for summary in hparams(self.hparams, dict.fromkeys(tags, 0.0)):
                self.writer.file_writer.add_summary(summary)
        self.writer.flush()
        for m in info.monitors:
            if isinstance(m, History):
                self._history = m
            elif isinstance(m, Stopper):
                self._stopper = m
            elif isinstance(m, Snapshots):
                self._snapshots = m

    def _scalars(self, info: StepInfo) -> dict:
        """This step's curves: the history's row when it recorded this step (no second
        scoring of the averaged output), else computed here."""
        rows = self._history.rows if self._history is not None else []
        gt = info.problem.gt is not None
        row = rows[-1] if rows and rows[-1]["step"] == info.step else None
        if row is None:
            row = {"loss": info.loss_value(), "psnr_obs": info.psnr_obs()}
            if gt:
                row.update(psnr_gt=info.psnr_gt(),
                           psnr_gt_avg=info.problem.score(info.average()))
        values = {"loss": row["loss"], "psnr/observation": row["psnr_obs"]}
        if gt:
            values.update({"psnr/output": row["psnr_gt"], "psnr/average": row["psnr_gt_avg"]})
        if self._stopper is not None and self._stopper.last_value is not None:
            values["stopping/variance"] = self._stopper.last_value
        return values

    def on_step(self, info: StepInfo) -> None:
        if info.rollback:
            return
        if self.writer is None:
            self._open(info)
        step = info.step
        if step % self.every == 0:
            for tag, value in self._scalars(info).items():
                self.writer.add_scalar(tag, value, step)
        frame = self._snapshots.taken_at(step) if self._snapshots is not None else None
        if frame is not None:
            self.writer.add_image("output", frame.pixels, step, dataformats="HWC")

    def on_end(self, info: StepInfo) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    on_interrupt = on_end
