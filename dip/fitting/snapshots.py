"""Snapshots: a fit's output every N steps, kept small, to watch the image appear.

DIP draws the image before it fits the noise, which is why the stopping point matters;
a few outputs along a fit show it. :class:`Snapshots` keeps the step's output (what the
loop reports: from the perturbed input) every ``every`` steps as 8-bit pixels, its
longer side at most ``side`` (an area-downscaled copy above it), with the step's PSNR:
against the ground truth when there is one, else against the observation (A f_θ(z)
vs x̂). At most ``limit`` frames are kept: when full, every other one goes and the period
doubles, so the frames stay evenly spaced from step 0 at a bounded cost. A checkpoint
holds the frames, so a resumed fit keeps those already taken.

A record turns them into ``filmstrip.png`` and ``evolution.gif`` (:mod:`dip.runs.film`);
TensorBoard shows them as they come (:mod:`dip.fitting.tensorboard`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dip.fitting.monitors import Monitor, StepInfo

__all__ = ["Frame", "Snapshots", "to_pixels"]


@dataclass(frozen=True)
class Frame:
    """One snapshot: the step (0-based, before its update), the PSNR of that step's output
    (dB; against the ground truth, or the observation without one) and its pixels
    (H×W×C uint8)."""

    step: int
    psnr: float
    pixels: np.ndarray


def to_pixels(image: torch.Tensor, side: int = 256) -> np.ndarray:
    """A 1×C×H×W (or C×H×W) image in [0, 1] as H×W×C uint8, area-downscaled so that its
    longer side is at most ``side``."""
    x = image.detach().float()
    x = x if x.dim() == 4 else x[None]
    h, w = x.shape[-2:]
    if max(h, w) > side:
        f = side / max(h, w)
        x = F.interpolate(x, size=(max(1, round(h * f)), max(1, round(w * f))), mode="area")
    x = (x[0].clamp(0, 1) * 255).round().to(torch.uint8)
    return x.permute(1, 2, 0).contiguous().cpu().numpy()


class Snapshots(Monitor):
    """Keep the output every ``every`` steps (see the module's docstring).

    Parameters
    ----------
    every : int
        Steps between snapshots (≥ 1); it doubles each time ``limit`` is reached.
    limit : int
        Most frames kept (≥ 2).
    side : int
        Longest side of a kept frame in pixels.
    """

    def __init__(self, every: int, limit: int = 64, side: int = 256):
        if int(every) < 1 or int(limit) < 2 or int(side) < 1:
            raise ValueError(f"snapshots need every >= 1, limit >= 2 and side >= 1, got "
                             f"{every}, {limit}, {side}")
        self.every, self.limit, self.side = int(every), int(limit), int(side)
        self.frames: list[Frame] = []

    def on_step(self, info: StepInfo) -> None:
        if info.rollback or info.step % self.every:
            return
        if self.frames and self.frames[-1].step == info.step:
            return  # already taken (a step redone after a rollback)
        if len(self.frames) >= self.limit:
            self.frames, self.every = self.frames[::2], self.every * 2
            if info.step % self.every:
                return
        psnr = info.psnr_gt() if info.problem.gt is not None else info.psnr_obs()
        self.frames.append(Frame(info.step, float(psnr), to_pixels(info.out, self.side)))

    def taken_at(self, step: int) -> Frame | None:
        """The frame of ``step`` when it is the last one taken (else None)."""
        return self.frames[-1] if self.frames and self.frames[-1].step == step else None

    def state_dict(self) -> dict:
        if not self.frames:  # nothing to keep: a checkpoint without snapshots resumes too
            return {}
        return {"every": self.every, "steps": [f.step for f in self.frames],
                "psnr": [f.psnr for f in self.frames],
                "pixels": [f.pixels for f in self.frames]}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.every = int(state["every"])
        self.frames = [Frame(int(s), float(p), np.asarray(x)) for s, p, x in
                       zip(state["steps"], state["psnr"], state["pixels"], strict=True)]
