"""Early stopping without ground truth (Wang et al., "Early Stopping for Deep Image Prior").

DIP's output first approaches the clean image and then fits the noise; the PSNR peak
comes with a valley of the variance of successive outputs. Two monitors detect it:

- :class:`WMV` (ES-WMV): variance of the last W outputs,
  VAR_t = (1/W) Σ_{i=t−W+1..t} ‖x_i − x̄_t‖² / N, with x̄_t their mean and N the number
  of pixel values.
- :class:`EMV` (ES-EMV, memory-light): exponential moving variance,
  δ = x_t − ema, ema ← ema + α·δ, emv ← (1 − α)(emv + α‖δ‖²/N).

Both keep the output of the step with the smallest variance so far and end the run
(``info.status = 'stopped'``) after ``patience`` steps without a new minimum. Outputs
are the loop's per-step outputs (from the perturbed input, as the loop reports them).
"""

from __future__ import annotations

import math

import torch

from dip.fitting.monitors import Monitor, StepInfo

__all__ = ["Stopper", "WMV", "EMV", "make_stopper", "STOP_MODES"]

STOP_MODES = ("fixed", "wmv", "emv")


class Stopper(Monitor):
    """Keeps the output with the smallest ``value`` and stops after ``patience`` steps.

    Subclasses implement :meth:`value` (the variance at this step, or None while it is
    not defined yet). ``best`` is the kept output, ``best_avg`` the running average of
    the outputs at that step, ``best_step`` its step and ``best_value`` its variance.
    """

    status = "stopped"

    def __init__(self, patience: int = 1000):
        if int(patience) < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience = int(patience)
        self.best: torch.Tensor | None = None
        self.best_avg: torch.Tensor | None = None  # the running average at that step
        self.best_value = math.inf
        self.best_step: int | None = None
        self.last_value: float | None = None

    def value(self, out: torch.Tensor, step: int) -> float | None:
        raise NotImplementedError

    def on_step(self, info: StepInfo) -> None:
        if info.rollback:
            return
        v = self.value(info.out, info.step)
        self.last_value = v
        if v is not None and v < self.best_value:
            self.best_value, self.best_step = v, info.step
            if self.best is None:
                self.best, self.best_avg = info.out.clone(), info.average().clone()
            else:
                self.best.copy_(info.out)
                self.best_avg.copy_(info.average())
        if self.best_step is not None and info.step - self.best_step >= self.patience \
                and info.status == "ok":
            info.status = self.status

    def state_dict(self) -> dict:
        return {"best": self.best, "best_avg": self.best_avg, "best_value": self.best_value,
                "best_step": self.best_step, "last_value": self.last_value}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_value = state["best"], state["best_value"]
        self.best_avg = state.get("best_avg")  # absent in checkpoints of earlier versions
        self.best_step, self.last_value = state["best_step"], state["last_value"]


class WMV(Stopper):
    """ES-WMV: windowed moving variance of the last ``window`` outputs.

    Memory: a ring buffer of ``window`` outputs (W·N values) plus running sums
    S = Σ x_i (float64, N values) and Q = Σ ‖x_i‖², so each step costs O(N):
    VAR = (Q − ‖S‖²/W) / (W·N). The variance is defined once W outputs were seen.

    Parameters
    ----------
    window : int
        W, the number of outputs (Wang et al.: 100).
    patience : int
        P, steps without a new minimum before the run stops (Wang et al.: 1000).
    """

    def __init__(self, window: int = 100, patience: int = 1000):
        super().__init__(patience)
        if int(window) < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        self.window = int(window)
        self._buf: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None
        self._sq = 0.0
        self._count = 0

    def value(self, out: torch.Tensor, step: int) -> float | None:
        x = out.detach().reshape(-1)
        if self._buf is None:
            self._buf = torch.empty((self.window, x.numel()), dtype=x.dtype, device=x.device)
            self._sum = torch.zeros(x.numel(), dtype=torch.float64, device=x.device)
        slot = self._count % self.window
        if self._count >= self.window:  # drop the oldest output
            old = self._buf[slot]
            self._sum -= old
            self._sq -= float(torch.dot(old.double(), old.double()))
        self._buf[slot] = x
        self._sum += x
        self._sq += float(torch.dot(x.double(), x.double()))
        self._count += 1
        if self._count < self.window:
            return None
        n, w = x.numel(), self.window
        return max(0.0, (self._sq - float(torch.dot(self._sum, self._sum)) / w) / (w * n))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "buf": self._buf, "sum": self._sum, "sq": self._sq,
                "count": self._count}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._buf, self._sum = state["buf"], state["sum"]
        self._sq, self._count = state["sq"], state["count"]


class EMV(Stopper):
    """ES-EMV: exponential moving variance (O(N) memory).

    With δ = x_t − ema: ema ← ema + α·δ and emv ← (1 − α)(emv + α‖δ‖²/N); the first
    output sets ema = x_0, emv = 0. Because of that zero start the variance counts as a
    candidate only from step ⌈1/α⌉ on (the average's effective window).

    Parameters
    ----------
    alpha : float
        α in (0, 1] (Wang et al.: 0.1).
    patience : int
        Steps without a new minimum before the run stops (Wang et al.: 1000).
    """

    def __init__(self, alpha: float = 0.1, patience: int = 1000):
        super().__init__(patience)
        if not 0 < float(alpha) <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = float(alpha)
        self.warmup = math.ceil(1 / self.alpha)
        self._ema: torch.Tensor | None = None
        self._emv = 0.0
        self._count = 0

    def value(self, out: torch.Tensor, step: int) -> float | None:
        x = out.detach().double()
        self._count += 1
        if self._ema is None:
            self._ema = x.clone()
            return None
        delta = x - self._ema
        self._ema += self.alpha * delta
        self._emv = (1 - self.alpha) * (self._emv + self.alpha * float((delta ** 2).mean()))
        return self._emv if self._count > self.warmup else None

    def state_dict(self) -> dict:
        return {**super().state_dict(), "ema": self._ema, "emv": self._emv,
                "count": self._count}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._ema, self._emv, self._count = state["ema"], state["emv"], state["count"]


def make_stopper(mode: str, window: int = 100, patience: int = 1000,
                 alpha: float = 0.1) -> Stopper | None:
    """The monitor of a ``stop`` mode: None for 'fixed', :class:`WMV` or :class:`EMV`."""
    if mode == "fixed":
        return None
    if mode == "wmv":
        return WMV(window, patience)
    if mode == "emv":
        return EMV(alpha, patience)
    raise ValueError(f"unknown stop mode {mode!r}; choose {', '.join(STOP_MODES)}")
