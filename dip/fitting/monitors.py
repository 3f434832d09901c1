"""Monitors: everything that watches a DIP fit without being the optimisation step.

A monitor has ``on_start(info)``, ``on_step(info)``, ``before_update(info)``,
``after_step(info)`` and ``on_end(info)``. The loop calls ``on_step`` after the forward
pass of every step, before the parameter update, with a :class:`StepInfo` that holds the
step's output (computed from the perturbed input, as the official code reports it), the
running average and the loss. A monitor may ask for a rollback (``info.rollback = True``)
or end the run (``info.status``). ``before_update`` runs when the step's gradients are in
place, just before the optimiser step (the official backtracking restores parameters
there). ``after_step`` runs after the update, when ``info.completed`` steps are done: the
one point where the whole loop state is consistent (checkpoints).

Monitors with state implement ``state_dict()`` / ``load_state_dict(state)`` so that a
checkpoint (:mod:`dip.fitting.checkpoint`) can resume them.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from dip.errors import DipNote
from dip.problems.problem import Problem

__all__ = ["StepInfo", "Monitor", "History", "Oracle", "Backtrack", "Progress",
           "ExpectedTime"]


@dataclass
class StepInfo:
    """State of the current step, shared by all monitors."""

    problem: Problem
    net: nn.Module
    optimizer: torch.optim.Optimizer
    exp_weight: float = 0.99
    step: int = -1
    out: torch.Tensor | None = None
    prev_avg: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    data: torch.Tensor | None = None
    rollback: bool = False
    status: str = "ok"
    completed: int = 0  # parameter updates done so far
    generator: torch.Generator | None = None  # the loop's input-noise generator
    noise: torch.Tensor | None = None  # the loop's input-noise buffer (the last draw)
    monitors: list = field(default_factory=list)
    seconds_before: float = 0.0  # fitting time of an earlier, resumed process
    started: float = field(default_factory=time.perf_counter)
    _cache: dict = field(default_factory=dict)

    def begin(self, step: int, out: torch.Tensor, prev_avg: torch.Tensor | None,
              loss: torch.Tensor, data: torch.Tensor | None = None) -> None:
        self.step, self.out, self.prev_avg, self.loss = step, out, prev_avg, loss
        self.data = data  # the data term ‖A out − x̂‖² (mean), when the loop has it
        self.rollback = False
        self._cache.clear()

    def average(self) -> torch.Tensor:
        """Exponential average including this step: w·avg + (1 − w)·out (a new tensor)."""
        if "avg" not in self._cache:
            w = self.exp_weight
            self._cache["avg"] = self.out.clone() if self.prev_avg is None else \
                torch.lerp(self.out, self.prev_avg, w)
        return self._cache["avg"]

    def elapsed(self) -> float:
        """Seconds of fitting so far, including those of a resumed earlier process."""
        return time.perf_counter() - self.started + self.seconds_before

    def loss_value(self) -> float:
        if "loss" not in self._cache:
            self._cache["loss"] = float(self.loss)
        return self._cache["loss"]

    def psnr_obs(self) -> float:
        """PSNR of A(out) against the observation x̂ (dB, data range 1)."""
        if "psnr_obs" not in self._cache:
            if self.data is not None:  # the loss's data term is this MSE: no second pass
                mse = float(self.data)
            else:
                with torch.no_grad():
                    mse = float(torch.mean((self.problem.operator(self.out)
                                            - self.problem.observation) ** 2))
            self._cache["psnr_obs"] = _db(mse)
        return self._cache["psnr_obs"]

    def psnr_gt(self) -> float:
        """Task metric of this step's output against the ground truth (NaN without one)."""
        if "psnr_gt" not in self._cache:
            self._cache["psnr_gt"] = self.problem.score(self.out)
        return self._cache["psnr_gt"]


def _db(mse: float) -> float:
    if not math.isfinite(mse):
        return float("nan")
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


class Monitor:
    """Base class: override the hooks you need."""

    def on_start(self, info: StepInfo) -> None:
        pass

    def on_step(self, info: StepInfo) -> None:
        pass

    def before_update(self, info: StepInfo) -> None:
        """The step's gradients are computed; the optimiser step comes next."""

    def after_step(self, info: StepInfo) -> None:
        pass

    def on_end(self, info: StepInfo) -> None:
        pass

    def on_interrupt(self, info: StepInfo) -> None:
        """The fit stops at ``info.completed`` steps on a signal (instead of ``on_end``)."""

    def state_dict(self) -> dict:
        """What a checkpoint must store to resume this monitor ({} when stateless)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class History(Monitor):
    """Records loss and PSNRs every ``every`` steps (and at step 0) into a DataFrame.

    Columns: step, loss, psnr_obs, psnr_gt (raw output), psnr_gt_avg (averaged
    output), seconds since the start.
    """

    def __init__(self, every: int = 10):
        self.every = max(1, int(every))
        self.rows: list[dict] = []

    def on_step(self, info: StepInfo) -> None:
        if info.step % self.every or info.rollback:
            return
        gt_known = info.problem.gt is not None
        self.rows.append({
            "step": info.step,
            "loss": info.loss_value(),
            "psnr_obs": info.psnr_obs(),
            "psnr_gt": info.psnr_gt() if gt_known else float("nan"),
            "psnr_gt_avg": info.problem.score(info.average()) if gt_known else float("nan"),
            "seconds": info.elapsed(),
        })

    def state_dict(self) -> dict:
        return {"rows": list(self.rows)}

    def load_state_dict(self, state: dict) -> None:
        self.rows = list(state["rows"])

    def frame(self) -> pd.DataFrame:
        cols = ["step", "loss", "psnr_obs", "psnr_gt", "psnr_gt_avg", "seconds"]
        return pd.DataFrame(self.rows, columns=cols)


class Oracle(Monitor):
    """Keeps the output with the best ground-truth metric (the 'oracle' stopping point)."""

    def __init__(self, every: int = 1):
        self.every = max(1, int(every))
        self.best: torch.Tensor | None = None
        self.best_score = -math.inf
        self.best_step: int | None = None

    def on_step(self, info: StepInfo) -> None:
        if info.step % self.every or info.rollback:
            return
        score = info.psnr_gt()
        if score > self.best_score:
            self.best_score, self.best_step = score, info.step
            if self.best is None:
                self.best = info.out.clone()
            else:
                self.best.copy_(info.out)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_score": self.best_score, "best_step": self.best_step}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_score = state["best"], state["best_score"]
        self.best_step = state["best_step"]


class Backtrack(Monitor):
    """Backtracking guard of the official code, made robust to NaN.

    When the loss is not finite, or the PSNR against the observation falls by more than
    ``drop_db`` since the last good step, the parameters, buffers and optimiser state
    are restored to the last good step and the step is redone with fresh input noise.
    (The official notebooks restore parameters only and still apply the bad step's
    gradient: ``backtrack='official'``, :mod:`dip.fitting.official`; restoring the optimiser
    state too is what makes NaN recoverable.)
    After ``max_tries`` consecutive rollbacks the run ends with status 'diverged'.
    """

    def __init__(self, drop_db: float = 5.0, max_tries: int = 10):
        self.drop_db = float(drop_db)
        self.max_tries = int(max_tries)
        self.total = 0
        self._consecutive = 0
        self._saved: list[torch.Tensor] = []
        self._last_psnr = -math.inf
        self._cache: tuple = (None, [], [])
        self._plans: dict = {}  # 'save' / 'restore' -> (dst, src, grouped lists)

    def _tensors(self, info: StepInfo) -> tuple[list[torch.Tensor], list[list[int]]]:
        """Parameters, buffers and optimiser state, and their indices grouped by device
        and dtype. Listed again only when the net, the optimiser's state dict or its
        number of entries changed (walking the modules at every step cost 1.7 ms of
        Python a step for the paper net)."""
        state = info.optimizer.state
        key = (id(info.net), id(info.optimizer), id(state), len(state))
        if self._cache[0] == key:
            return self._cache[1], self._cache[2]
        ts = [p.data for p in info.net.parameters()] + list(info.net.buffers())
        for group in info.optimizer.param_groups:
            for p in group["params"]:
                ts.extend(v for v in state.get(p, {}).values() if isinstance(v, torch.Tensor))
        self._cache = (key, ts, group_by_device_dtype(ts))
        return ts, self._cache[2]

    def _copy(self, way: str, dst: list[torch.Tensor], src: list[torch.Tensor],
              groups) -> None:
        # one foreach copy per device and dtype: a mixed list (float32 parameters beside
        # BatchNorm's int64 counters) takes foreach's slow path, a copy per tensor;
        # measured on an H200, 3.5 ms of host time a step for the paper net (~500
        # tensors), against the 4.7 ms of the whole CUDA-graph step at 256². The grouped
        # lists are built once per pair of lists (the snapshot and the live tensors), not
        # at every step.
        plan = self._plans.get(way)
        if plan is None or plan[0] is not dst or plan[1] is not src:
            plan = self._plans[way] = (dst, src, [([dst[i] for i in idx],
                                                   [src[i] for i in idx]) for idx in groups])
        for d, s in plan[2]:
            torch._foreach_copy_(d, s)

    def _save(self, info: StepInfo) -> None:
        ts, groups = self._tensors(info)
        if len(ts) != len(self._saved):
            self._saved = [t.detach().clone() for t in ts]
        else:
            self._copy("save", self._saved, ts, groups)

    def _restore(self, info: StepInfo) -> None:
        ts, groups = self._tensors(info)
        if len(ts) != len(self._saved):  # snapshot predates the optimiser state
            info.optimizer.state = defaultdict(dict)
            ts, groups = self._tensors(info)
        with torch.no_grad():
            self._copy("restore", ts, self._saved, groups)

    def on_start(self, info: StepInfo) -> None:
        self._save(info)

    def on_step(self, info: StepInfo) -> None:
        value = info.psnr_obs() if math.isfinite(info.loss_value()) else float("nan")
        bad = not math.isfinite(value) and not value == math.inf
        if not bad and value - self._last_psnr < -self.drop_db:
            bad = True
        if not bad:
            self._last_psnr = value
            self._consecutive = 0
            self._save(info)
            return
        self.total += 1
        self._consecutive += 1
        if self._consecutive > self.max_tries:
            info.status = "diverged"
        self._restore(info)
        info.rollback = True

    def state_dict(self) -> dict:
        return {"total": self.total, "consecutive": self._consecutive,
                "saved": self._saved, "last_psnr": self._last_psnr}

    def load_state_dict(self, state: dict) -> None:
        self.total, self._consecutive = state["total"], state["consecutive"]
        self._saved, self._last_psnr = state["saved"], state["last_psnr"]


def group_by_device_dtype(ts: list[torch.Tensor]) -> list[list[int]]:
    """Indices of ``ts`` grouped by device and dtype (one foreach copy per group)."""
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(ts):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return list(groups.values())


class Progress(Monitor):
    """tqdm bar with the iteration and the current PSNRs. It opens at the first step the
    fit takes, so a resumed fit's bar continues from the step it resumed at."""

    def __init__(self, total: int, every: int = 10):
        self.total, self.every = total, max(1, int(every))
        self.bar = None

    def on_step(self, info: StepInfo) -> None:
        if info.rollback:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, initial=info.step, desc=info.problem.task,
                            unit="it", leave=True)
        self.bar.update(1)
        if info.step % self.every == 0:
            post = {"psnr_obs": f"{info.psnr_obs():.2f}"}
            if info.problem.gt is not None:
                post["psnr_gt"] = f"{info.psnr_gt():.2f}"
            self.bar.set_postfix(post, refresh=False)

    def on_end(self, info: StepInfo) -> None:
        if self.bar is not None:
            self.bar.close()

    on_interrupt = on_end


class ExpectedTime(Monitor):
    """One ``note:`` with the expected duration of a long CPU fit, early in the fit.

    After ``probe`` timed steps (the first one, which warms up, is not timed) the time
    per step gives the expected duration of the steps left; when it is over
    ``threshold`` seconds on the CPU, a note says so with the crop and the ``scale=``
    that would take about ``target`` seconds (time grows with the pixels), and that
    an interrupt saves the run to resume it. ``early``: the run stops early and
    ``num_iter`` is only its cap (the note says "up to"), a cap that grows with the side
    (``stopping.cap=auto``), so that the time grows with the side's cube.
    """

    def __init__(self, num_iter: int, threshold: float = 1200.0, target: float = 300.0,
                 probe: int = 3, early: bool = False):
        self.num_iter, self.threshold, self.target = int(num_iter), threshold, target
        self.early = early
        self.probe, self.t0, self.first = int(probe), None, None

    def on_start(self, info: StepInfo) -> None:
        if info.problem.observation.device.type != "cpu":
            self.probe = 0  # nothing to say off the CPU

    def after_step(self, info: StepInfo) -> None:
        if self.probe <= 0:
            return
        if self.t0 is None:  # after the warm-up step
            self.t0, self.first = time.perf_counter(), info.completed
            return
        done = info.completed - self.first
        if done < self.probe:
            return
        self.probe = 0
        per_step = (time.perf_counter() - self.t0) / done
        expected = per_step * (self.num_iter - info.completed)
        if expected > self.threshold:
            warnings.warn(self.note(per_step, expected, info.problem.image_shape[1:]),
                          DipNote, stacklevel=2)

    def note(self, per_step: float, expected: float, size) -> str:
        """The note's text for ``per_step`` seconds, ``expected`` seconds left and an
        image of ``size`` (H, W)."""
        power = 3 if self.early else 2  # the time's growth with the side
        a = min(1.0, (self.target / expected) ** (1 / power))  # the side's factor for the target
        crop = max(32, int(min(size) * a) // 32 * 32)
        scale = max(0.05, math.floor(a * 20) / 20)
        steps = (f"at most {self.num_iter} steps; early stopping usually ends it after a "
                 "third to a half of them") if self.early else f"{self.num_iter} steps"
        return (f"this fit will take {'up to' if self.early else 'about'} "
                f"{_duration(expected)} on the CPU ({per_step:.2f} s a step, {steps}); "
                f"crop={crop} or scale={scale:g} would take "
                f"about {_duration(self.target)}; an interrupt (Ctrl-C) saves the run, and "
                "the same command resumes it")


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{round(seconds / 60)} min"
