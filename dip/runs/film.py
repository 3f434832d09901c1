"""A record's film of its fit: ``filmstrip.png`` and ``evolution.gif``, from its snapshots.

The filmstrip is one row of at most :data:`STRIP_FRAMES` snapshots, evenly spaced over
the fit (:class:`~dip.fitting.snapshots.Frame`), each with its step and PSNR under it;
the output at the early-stopping point (``stop=wmv`` / ``emv``) is put in its place in
red, the best output seen against the ground truth (the oracle) in green, and the final
output closes the row. The GIF plays every snapshot, then holds the
final output, each frame with its step and PSNR in a strip beneath.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from dip.atomic import atomic_target
from dip.fitting.settings import FitResult
from dip.fitting.snapshots import Frame, to_pixels
from dip.plots import plt, save_figure
from dip.problems.metrics import psnr
from dip.problems.problem import Problem

__all__ = ["Shot", "strip_frames", "strip_shots", "filmstrip", "evolution_gif", "write_film",
           "STRIP_FRAMES", "FILM_FILES", "STOP_RED", "BEST_GREEN"]

STRIP_FRAMES = 9  # a filmstrip's snapshots (besides the marked points and the final output)
FILM_FILES = ("filmstrip.png", "evolution.gif")
STOP_RED = "#d62728"
BEST_GREEN = "#2ca02c"


@dataclass(frozen=True)
class Shot:
    """A frame of the film, its label ('step 300', 'wmv stop, step 420', 'final') and the
    colour of a marked point (the early stop, the best output seen; None: a snapshot)."""

    frame: Frame
    label: str
    colour: str | None = None


def strip_frames(frames: list[Frame], n: int = STRIP_FRAMES) -> list[Frame]:
    """At most ``n`` of ``frames``, evenly spaced, the first and the last among them."""
    if len(frames) <= n:
        return list(frames)
    picks = np.unique(np.round(np.linspace(0, len(frames) - 1, n)).astype(int))
    return [frames[i] for i in picks]


def strip_shots(frames: list[Frame], final: Frame, marks=()) -> list[Shot]:
    """The filmstrip's panels: ``frames``, each marked :class:`Shot` of ``marks`` in its
    place (replacing a snapshot of the same step; a mark at the final step is the final
    panel), then ``final``."""
    shots = [Shot(f, f"step {f.step}") for f in frames]
    for mark in sorted(marks, key=lambda m: m.frame.step):
        if mark.frame.step >= final.step:
            continue
        shots = [s for s in shots if s.colour or s.frame.step != mark.frame.step]
        at = next((i for i, s in enumerate(shots) if s.frame.step > mark.frame.step),
                  len(shots))
        shots.insert(at, mark)
    return shots + [Shot(final, f"final, step {final.step}")]


def _psnr(value: float) -> str:
    return f"{value:.2f} dB" if math.isfinite(value) else "–"


def filmstrip(frames: list[Frame], final: Frame, path, *, marks=(),
              scored: str = "ground truth", title: str = "") -> Path:
    """One row: :func:`strip_shots` of :func:`strip_frames` of ``frames``, the marked
    points framed in their colour; step and PSNR under each. Written to ``path``."""
    shots = strip_shots(strip_frames(frames), final, marks)
    h, w = final.pixels.shape[:2]
    panel = 1.7
    fig, axes = plt.subplots(1, len(shots), figsize=(panel * len(shots),
                                                     panel * h / w + 0.75), squeeze=False,
                             layout="constrained")
    for ax, shot in zip(axes[0], shots, strict=True):
        px = shot.frame.pixels
        grey = px.shape[2] == 1
        ax.imshow(px[..., 0] if grey else px, cmap="gray" if grey else None, vmin=0,
                  vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor(shot.colour or "#999999")
            spine.set_linewidth(2.5 if shot.colour else 0.5)
        ax.set_xlabel(f"{shot.label}\n{_psnr(shot.frame.psnr)}", fontsize=7,
                      color=shot.colour or "black")
    fig.suptitle(f"{title}\nPSNR against the {scored}" if title else
                 f"PSNR against the {scored}", fontsize=8)
    return save_figure(fig, path)


def _caption(shot: Shot, width: int) -> Image.Image:
    bar = Image.new("RGB", (width, 14), "white")
    ImageDraw.Draw(bar).text((3, 2), f"{shot.label}  {_psnr(shot.frame.psnr)}",
                             fill=shot.colour or "black")
    return bar


def evolution_gif(frames: list[Frame], final: Frame, path, *, frame_ms: int = 120,
                  hold_ms: int = 1500, min_width: int = 160) -> Path:
    """Every one of ``frames``, then ``final`` held ``hold_ms``, as an endlessly looping
    GIF at ``path``; images narrower than ``min_width`` are enlarged (nearest)."""
    shots = [Shot(f, f"step {f.step}") for f in frames] + [Shot(final, "final")]
    images = []
    for shot in shots:
        px = shot.frame.pixels
        img = Image.fromarray(px[..., 0] if px.shape[2] == 1 else px).convert("RGB")
        if img.width < min_width:
            k = math.ceil(min_width / img.width)
            img = img.resize((img.width * k, img.height * k), Image.NEAREST)
        canvas = Image.new("RGB", (img.width, img.height + 14), "white")
        canvas.paste(img, (0, 0))
        canvas.paste(_caption(shot, img.width), (0, img.height))
        images.append(canvas)
    durations = [frame_ms] * (len(images) - 1) + [hold_ms]
    with atomic_target(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations, loop=0, optimize=False)
    return Path(path)


def _score(problem: Problem, image: torch.Tensor) -> float:
    """What the snapshots are scored by: the task's metric against the ground truth, else
    the PSNR of A(image) against the observation."""
    if problem.gt is not None:
        return problem.score(image)
    with torch.no_grad():
        return psnr(problem.observation[0], problem.operator(image)[0].clamp(0, 1))


def write_film(folder, problem: Problem, result: FitResult, *, stop_name: str | None = None,
               title: str = "") -> list[Path]:
    """``filmstrip.png`` and ``evolution.gif`` in ``folder`` from ``result.snapshots``
    (nothing without snapshots), with the final output after them, the best output seen
    (with ground truth) and, for a run that stops early (``stop_name``: 'wmv', 'emv'), its
    stopping point."""
    frames = result.snapshots
    if not frames:
        return []
    side = max(frames[0].pixels.shape[:2])

    def frame(step: int, image: torch.Tensor) -> Frame:
        return Frame(int(step), _score(problem, image), to_pixels(image, side))

    final = frame(result.steps, result.final)
    marks = []
    if stop_name and result.iter_stop is not None and result.stop is not None:
        marks.append(Shot(frame(result.iter_stop, result.stop),
                          f"{stop_name} stop, step {result.iter_stop}", STOP_RED))
    if result.oracle is not None and result.iter_oracle is not None:
        marks.append(Shot(frame(result.iter_oracle, result.oracle),
                          f"best seen, step {result.iter_oracle}", BEST_GREEN))
    folder = Path(folder)
    return [filmstrip(frames, final, folder / FILM_FILES[0], marks=marks, title=title,
                      scored="ground truth" if problem.gt is not None else "observation"),
            evolution_gif(frames, final, folder / FILM_FILES[1])]
