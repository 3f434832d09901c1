"""The official notebooks' loop behaviours that differ from this harness's defaults.

Two switches of :class:`~dip.fitting.settings.FitSettings` select them (the paper profile
turns them on per task, conf/task/*.yaml):

- ``final_input='perturbed'``: the reported output is the net applied to the last step's
  perturbed input. denoising.ipynb, super-resolution.ipynb and restoration.ipynb assign
  ``net_input = net_input_saved + (noise.normal_() * reg_noise_std)`` to the *global*
  ``net_input`` in their closure and report ``net(net_input)`` after the loop;
  inpainting.ipynb assigns a local one and reports the clean code.
- ``backtrack='official'``: the backtracking of denoising.ipynb
  (:class:`OfficialBacktrack`), for the tasks whose notebook has one
  (:data:`OFFICIAL_BACKTRACK`), instead of :class:`~dip.fitting.monitors.Backtrack`.
"""

from __future__ import annotations

import torch

from dip.errors import DipError
from dip.fitting.monitors import Backtrack, Monitor, StepInfo, group_by_device_dtype

__all__ = ["FINAL_INPUTS", "BACKTRACKS", "OFFICIAL_BACKTRACK", "OfficialBacktrack",
           "InputNoise", "check", "backtracking", "final_input"]

FINAL_INPUTS = ("clean", "perturbed")
BACKTRACKS = ("guard", "official")

OFFICIAL_BACKTRACK = {"denoising": 100}
"""Task → ``show_every`` of its official notebook's backtracking (denoising.ipynb).
super-resolution.ipynb and inpainting.ipynb have none. restoration.ipynb (the inpainting
table's settings) checks at the multiples of 50 (inside its ``if PLOT and i % show_every
== 0`` block), but its rollback, ``net_param.copy_(...)`` into a parameter that requires
grad, raises: every run it finished had no rollback, so its task gets none either."""


class OfficialBacktrack(Backtrack):
    """The backtracking of the official denoising.ipynb: parameters only, no redo.

    The notebook's closure counts its calls in ``i`` and checks when ``i % show_every``
    is *not* 0 (99 steps of 100; the plotted steps are the skipped ones), comparing the
    PSNR of the step's output against the observation with the last check's::

        if psrn_noisy - psrn_noisy_last < -5:       # restore, return; i stays
            net_param.detach().copy_(last_net...)
        else:                                       # save
            last_net = [x.detach().cpu() for x in net.parameters()]
            psrn_noisy_last = psrn_noisy

    (``psrn_noisy_last`` starts at 0.) The gradient of the bad step is already computed
    then, and the optimiser step after the closure applies it, and the Adam state it
    updates, to the restored parameters: a rollback uses up one of the ``num_iter`` Adam
    steps and only ``i`` is held back. Buffers and the Adam state are not restored. A NaN
    PSNR never triggers it (the comparison is false: those parameters are saved and every
    later comparison with NaN is false too).

    Here the restore happens in :meth:`before_update` and the step counts as done
    (``info.rollback`` stays False); ``total`` counts the rollbacks. There is no limit of
    consecutive rollbacks, as in the notebook.
    """

    def __init__(self, show_every: int = 100, drop_db: float = 5.0):
        super().__init__(drop_db, max_tries=0)
        self.show_every = max(1, int(show_every))
        self.i = 0  # the notebook's i: steps minus rollbacks
        self._last_psnr = 0.0
        self._pending = False

    def _tensors(self, info: StepInfo) -> tuple[list[torch.Tensor], list[list[int]]]:
        if self._cache[0] != id(info.net):  # the parameters only
            ts = [p.data for p in info.net.parameters()]
            self._cache = (id(info.net), ts, group_by_device_dtype(ts))
        return self._cache[1], self._cache[2]

    def on_step(self, info: StepInfo) -> None:
        if self.i % self.show_every:
            value = info.psnr_obs()
            if value - self._last_psnr < -self.drop_db:
                self.total += 1
                self._pending = True
                return
            self._save(info)
            self._last_psnr = value
        self.i += 1

    def before_update(self, info: StepInfo) -> None:
        if self._pending:
            self._pending = False
            self._restore(info)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "i": self.i}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.i = state["i"]


class InputNoise(Monitor):
    """Keeps the loop's last input-noise draw (:attr:`StepInfo.noise`) in checkpoints.

    With ``final_input='perturbed'`` the final output is f_θ(z + σ·n) for the last step's
    draw n; a run resumed from a checkpoint written after its last step draws none, so
    the checkpoint holds it. The monitor refers to the loop's buffer and copies nothing
    while the run goes on.
    """

    def __init__(self):
        self.noise: torch.Tensor | None = None

    def on_start(self, info: StepInfo) -> None:
        self.noise = info.noise

    def state_dict(self) -> dict:
        return {"noise": None if self.noise is None else self.noise.detach().clone()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("noise") is not None and self.noise is not None:
            with torch.no_grad():
                self.noise.copy_(state["noise"])


def check(settings) -> None:
    """ValueError for a ``final_input`` or ``backtrack`` that is none of the known ones."""
    if settings.final_input not in FINAL_INPUTS:
        raise ValueError(f"unknown final_input {settings.final_input!r}; choose "
                         f"{' or '.join(FINAL_INPUTS)}")
    if settings.backtrack not in BACKTRACKS:
        raise ValueError(f"unknown backtrack {settings.backtrack!r}; choose "
                         f"{' or '.join(BACKTRACKS)}")


def backtracking(task: str, drop_db: float) -> list[Monitor]:
    """The official guard of ``task``'s notebook: [OfficialBacktrack] or [] (none)."""
    every = OFFICIAL_BACKTRACK.get(task)
    return [OfficialBacktrack(every, drop_db)] if every else []


def final_input(z: torch.Tensor, noise: torch.Tensor, settings) -> torch.Tensor:
    """The input of the reported output: z, or the last step's z + σ·n
    (``final_input='perturbed'`` with ``reg_noise_std`` σ > 0; ``noise`` holds n)."""
    if settings.final_input == "clean" or not settings.reg_noise_std > 0:
        return z
    if bool(torch.isnan(noise.reshape(-1)[0])):  # no draw in this process, none restored
        raise DipError("final_input=perturbed: the fit resumed after its last step from a "
                       "checkpoint without the last input noise; give it the "
                       "dip.fitting.official.InputNoise monitor (default_monitors does)")
    return z + noise * settings.reg_noise_std
