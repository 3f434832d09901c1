"""A folder of images: ``dip image=DIR`` restores each image with the same settings.

Without ``-m`` the images run one after the other in this process (:func:`run_folder`):
one record per image, a failed image prints its ``error: [image=...]`` line and the
others go on, and the end is a study table of the folder's runs
(:mod:`dip.report.study`). With ``-m`` the folder becomes a sweep over its images
(:func:`expand_argv`), so the launcher spreads them over its jobs. ``mask=DIR2`` pairs
each image with the mask of the same file stem (or ``<stem>_mask``):
:func:`dip.data.folders.paired_mask`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from dip.data.folders import images_in, is_folder
from dip.errors import DipError
from dip.launch.sweep import describe, exit_status_of
from dip.report.study import build_study
from dip.runs.config import with_values

__all__ = ["expand_argv", "run_folder"]


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'"


def expand_argv(argv: Sequence[str]) -> list[str]:
    """``dip -m ... image=DIR ...`` with ``image=DIR`` turned into the sweep
    ``image='DIR/a.png','DIR/b.png',...``; other command lines unchanged."""
    argv = list(argv)
    if not {"-m", "--multirun"} & set(argv):
        return argv
    for i, arg in enumerate(argv):
        key, eq, value = arg.partition("=")
        if eq and key.lstrip("+~") == "image" and is_folder(value):
            argv[i] = f"{key}=" + ",".join(_quoted(p) for p in images_in(value))
    return argv


def _one(cfg, image: Path):
    """``cfg`` for one image of the folder (its record folder under ``out_dir``)."""
    if cfg.out_dir is None:
        return with_values(cfg, image=str(image))
    return with_values(cfg, image=str(image), out_dir=str(Path(str(cfg.out_dir)) / image.stem))


def run_folder(cfg, task: Callable[[object, list[str]], dict],
               summary: Callable[[dict], str], overrides: Sequence[str] = ()) -> float:
    """Restore every image of the folder ``cfg.image`` (a composed config) with
    ``task(cfg, overrides)``
    (:func:`dip.runs.plan.run`), print each outcome, then the study table of the runs.

    Returns the mean final PSNR of the finished runs (NaN when none is scored); exits
    after the table with status 2 when an image failed, 3 when one diverged
    (:func:`dip.launch.sweep.exit_status_of`).
    """
    images = images_in(cfg.image)
    done, failed, diverged = [], [], []
    for image in images:
        label = f"[image={image}] "
        given = [o for o in overrides if o.partition("=")[0].lstrip("+~") != "image"]
        try:
            metrics = task(_one(cfg, image), [*given, f"image={image}"])
        except (DipError, torch.OutOfMemoryError) as err:
            print(f"error: {label}{describe(err)}", file=sys.stderr)
            failed.append(image)
            continue
        print(label + summary(metrics))
        if metrics.get("status") == "diverged":
            diverged.append(image)
        if metrics.get("out_dir") and not metrics.get("taken"):
            done.append(metrics)
    _study(done, cfg)
    for what, which in (("failed", failed), ("diverged", diverged)):
        if which:
            print(f"{len(which)} of {len(images)} images {what}: "
                  f"{', '.join(p.name for p in which)}", file=sys.stderr)
    if failed or diverged:
        sys.exit(exit_status_of(["failed"] * len(failed) + ["diverged"] * len(diverged)))
    scores = [m["psnr_final"] for m in done if m.get("psnr_final") is not None
              and not math.isnan(m["psnr_final"])]
    return sum(scores) / len(scores) if scores else float("nan")


def _study(done: list[dict], cfg) -> None:
    """The study table of the folder's records, printed and written beside them, to
    ``<out_dir or records>/studies/<folder>_<profile>/``
    (:func:`dip.report.study.build_study`)."""
    if not done:
        return
    folders = [Path(m["out_dir"]) for m in done]
    root = Path(str(cfg.out_dir)) if cfg.out_dir is not None else Path(str(cfg.records))
    text, paths = build_study(root, name=Path(str(cfg.image)).resolve().name,
                              profile=str(cfg.profile.name), only=folders)
    print(f"\nstudy of {cfg.image}:\n{text}\nwrote {paths[0].parent}")
