"""Run records: what a finished run writes, how it is found again, how it was made.

A record is a folder ``records/<config hash>/`` (or ``out_dir``) holding ``metrics.json``
(every number with its provenance: profile, iterations, device, seed, commit, versions),
``config.yaml`` (the resolved config), ``history.csv`` and the output images. It is written
into a temporary folder that is renamed into place at the end, so a record that exists is
a finished run, and a failed write leaves an earlier record as it was. A folder holding
anything else is never replaced (:func:`foreign_files`). The provenance fields come from
:mod:`dip.runs.provenance`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from dip.data.images import save_image
from dip.errors import DipError, DipNote
from dip.fitting.settings import FitResult
from dip.plots import plot_history, side_by_side
from dip.problems.baselines import label as baseline_label
from dip.problems.baselines import run_baselines
from dip.problems.problem import Problem
from dip.runs.film import write_film
from dip.runs.inputs import released_scores
from dip.runs.provenance import (  # noqa: F401  (part of this module's interface)
    KERNEL_PINS,
    device_name,
    git_commit,
    kernel_pins,
    machine,
    versions,
)
from dip.runs.scores import ENSEMBLE_IMAGES, ensemble, ensemble_metrics, metrics_of
from dip.runs.spec import RunSpec

__all__ = ["RunRecord", "find_records", "existing_record", "record_run",
           "write_record", "check_writable",
           "read_metrics", "foreign_files", "check_not_foreign", "RECORD_FILES",
           "RECORD_IMAGES", "git_commit",
           "versions", "device_name", "machine", "kernel_pins", "KERNEL_PINS"]


# What a record folder may hold: the files :func:`write_record` writes. A folder with
# anything else belongs to someone else and is never replaced.
RECORD_FILES = frozenset({"metrics.json", "config.yaml", "history.csv", "evolution.gif"})
RECORD_IMAGES = frozenset({"restored", "restored_avg", "restored_stop", "restored_stop_avg",
                           "corrupted", "gt", "input", "comparison", "curves", "filmstrip",
                           "restored_ensemble", "restored_ensemble_avg"})


def _written_by_dip(name: str) -> bool:
    stem, dot, ext = name.rpartition(".")
    return name in RECORD_FILES or (dot == "." and ext == "png" and (
        stem in RECORD_IMAGES or stem.startswith("baseline_")))


def _checkpoint(name: str) -> bool:
    """Whether ``name`` is a run's checkpoint (``.<hash>.s<seed>.ckpt.pt``) or one being
    written (:func:`dip.atomic.atomic_target`'s hidden temporary file of it)."""
    return name.startswith(".") and (name.endswith(".ckpt.pt") or ".ckpt.pt." in name)


def foreign_files(folder: Path) -> list[str]:
    """Names in ``folder`` that no dip run wrote (empty: absent, empty, or a record).

    A folder counts as a record when it holds ``metrics.json`` or ``config.yaml`` and
    nothing but record files; only such a folder is ever replaced. The checkpoints of
    an unfinished run (:func:`dip.runs.plan.checkpoint_path`) are a run's own files too.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [folder.name] if folder.exists() else []
    names = sorted(p.name for p in folder.iterdir() if not _checkpoint(p.name))
    if names and not RECORD_FILES & set(names):
        return names
    return [n for n in names if not _written_by_dip(n)]


def check_not_foreign(out_dir: Path) -> None:
    """DipError when ``out_dir`` holds files that no dip run wrote (they are never deleted)."""
    foreign = foreign_files(out_dir)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise DipError(f"{out_dir} already holds files that no dip run wrote ({shown}); "
                       "they are never replaced: choose a new or empty folder with out_dir=...")


def check_writable(out_dir: Path) -> None:
    """DipError unless the folder that will hold ``out_dir`` can be created and written."""
    parent = Path(out_dir).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as err:
        raise DipError(_os_message(err, f"cannot write records to {parent}")) from None


def _os_message(err: OSError, what: str) -> str:
    reason = err.strerror or str(err) or type(err).__name__
    if err.errno in (errno.EEXIST, errno.ENOTDIR):
        reason = "part of the path is a file, not a folder"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"{what}: no space left on device; free some space or point records=/out_dir="
                " at another disk, then rerun (earlier records are untouched)")
    return (f"{what}: {reason}; choose a writable folder with out_dir=... or records=..., "
            "or fix its permissions")


def _clean(obj):
    """Replace NaN/inf by None so metrics.json is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def write_record(out_dir: Path, spec: RunSpec, problem: Problem, result: FitResult,
                 metrics: dict, images: dict | None = None) -> Path:
    """Write a run's files into a temporary directory, then move it to ``out_dir``.

    ``images`` (name → tensor: network input image, baseline outputs, a seed ensemble's
    mean outputs) are saved as ``<name>.png``. An OSError
    (no permission, disk full) becomes a one-line DipError; the temporary directory is
    removed and an earlier record at ``out_dir`` is left as it was.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write_files(tmp, spec, problem, result, metrics, images)
        out_dir = _replace_dir(tmp, out_dir)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise DipError(_os_message(err, f"cannot write the record {out_dir}")) from None
        raise
    return out_dir


def _free_name(out_dir: Path) -> Path:
    """The first of ``<name>-2``, ``<name>-3``, ... beside ``out_dir`` that does not exist."""
    k = 2
    while out_dir.with_name(f"{out_dir.name}-{k}").exists():
        k += 1
    return out_dir.with_name(f"{out_dir.name}-{k}")


def _replace_dir(tmp: Path, out_dir: Path) -> Path:
    """Move ``tmp`` to ``out_dir`` and return where it went. An earlier record at
    ``out_dir`` is replaced only on success; a folder holding anything else
    (:func:`foreign_files`) is never touched: the new record goes beside it."""
    if not out_dir.exists():
        tmp.rename(out_dir)
        return out_dir
    if foreign_files(out_dir):  # appeared since the run's checks: keep both
        beside = _free_name(out_dir)
        tmp.rename(beside)
        warnings.warn(f"{out_dir} now holds files that no dip run wrote; the record was "
                      f"written to {beside} instead", DipNote, stacklevel=3)
        return beside
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def _write_files(tmp: Path, spec: RunSpec, problem: Problem, result: FitResult,
                 metrics: dict, images: dict | None = None) -> None:
    view = problem.unpad  # the original image: a padded border (pad_image) cut off
    bits = problem.extras.get("bits", 8)  # a 16-bit input's images stay 16-bit

    def save(name: str, image: torch.Tensor) -> None:
        save_image(tmp / f"{name}.png", image, bits=bits)

    final, average = view(result.final), view(result.average)
    save("restored", average if metrics.get("restored") == "average" else final)
    save("restored_avg", average)
    save("corrupted", view(problem.observation).cpu())
    for name, img in (images or {}).items():
        save(name, view(img).cpu())
    panels = [("corrupted", problem.corrupted_view().cpu(), metrics["psnr_corrupted"]),
              ("DIP (final)", final, metrics["psnr_final"]),
              ("DIP (averaged)", average, metrics["psnr_avg"])]
    if problem.gt is not None:
        save("gt", view(problem.gt).cpu())
        panels.insert(0, ("ground truth", view(problem.gt).cpu(), None))
    for name, score in (metrics.get("baselines") or {}).items():
        if f"baseline_{name}" in (images or {}):
            panels.append((baseline_label(name), view(images[f"baseline_{name}"]).cpu(), score))
    if spec.stop != "fixed":
        save("restored_stop", view(result.stop))
        if result.stop_average is not None:
            save("restored_stop_avg", view(result.stop_average))
        panels.append((f"DIP ({spec.stop} stop, step {result.iter_stop})", view(result.stop),
                       metrics["psnr_stop"]))
    side_by_side(panels, tmp / "comparison.png",
                 title=f"{spec.task} · {spec.image} · profile {spec.profile} · "
                       f"{metrics['num_iter']} it · seed {spec.keys.seed}")
    result.history.to_csv(tmp / "history.csv", index=False)
    plot_history(result.history, tmp / "curves.png",
                 title=f"{spec.task} · {spec.image} · profile {spec.profile}")
    write_film(tmp, problem, result, stop_name=None if spec.stop == "fixed" else spec.stop,
               title=f"{spec.task} · {spec.image} · profile {spec.profile} · seed "
                     f"{spec.keys.seed}")
    (tmp / "config.yaml").write_text(yaml.safe_dump(
        _plain(spec.config), sort_keys=False, allow_unicode=True, default_flow_style=False),
        encoding="utf-8")
    (tmp / "metrics.json").write_text(json.dumps(_clean(metrics), indent=2) + "\n")


def _plain(node):
    """A resolved config as plain dicts and lists (``config.yaml``)."""
    if isinstance(node, dict) or hasattr(node, "items"):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node


def read_metrics(out_dir: Path) -> dict | None:
    """A record's ``metrics.json`` as a dict; None when absent. A file that cannot be
    read (empty, truncated, not JSON, not an object) is a missing record: a ``note:``
    says so and None is returned, so the run is redone and the folder replaced."""
    path = Path(out_dir) / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError(f"holds a {type(metrics).__name__}, not an object")
    except (OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        warnings.warn(f"record {out_dir} cannot be read ({path.name}: {reason}); "
                      "treated as missing", DipNote, stacklevel=2)
        return None
    return metrics


PROVENANCE = ("profile", "num_iter", "seed", "device", "device_name", "machine", "commit",
              "versions", "finished")
"""The metrics fields that say how a run was made."""


@dataclass
class RunRecord:
    """A finished run as stored: the one way records are read.

    Attributes
    ----------
    path : Path
        The record folder.
    metrics : dict
        ``metrics.json``: every number of the run with how it was made.
    config : dict
        The resolved config (``config.yaml``; empty when the file is missing).
    """

    path: Path
    metrics: dict
    config: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunRecord | None:
        """The record at ``path``; None (with a note) when its metrics cannot be read
        (:func:`read_metrics`) or it has none."""
        path = Path(path)
        metrics = read_metrics(path)
        if metrics is None:
            return None
        config = {}
        if (path / "config.yaml").is_file():
            loaded = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
            config = loaded if isinstance(loaded, dict) else {}
        return cls(path, metrics, config)

    @property
    def overrides(self) -> list[str]:
        """The overrides of the job that made the run (``[]`` for records made before
        records kept them)."""
        value = self.metrics.get("overrides")
        return [str(v) for v in value] if isinstance(value, list) else []

    @property
    def provenance(self) -> dict:
        """How the run was made: profile, iterations, seed, device, machine (CPU model,
        kernel pins), commit, versions, finishing time (:data:`PROVENANCE`)."""
        return {k: self.metrics.get(k) for k in PROVENANCE}

    def image(self, name: str) -> Path:
        """The path of the record's image ``name`` (``restored``, ``gt``, ...)."""
        return self.path / f"{name}.png"


def find_records(root: str | os.PathLike) -> list[RunRecord]:
    """Every readable record under ``root`` (at any depth), sorted by path; hidden
    folders (unfinished writes, checkpoints) are skipped, unreadable records noted."""
    root = Path(root)
    found = []
    for path in sorted(root.rglob("metrics.json")):
        if any(part.startswith(".") for part in path.parent.relative_to(root).parts):
            continue
        record = RunRecord.load(path.parent)
        if record is not None:
            found.append(record)
    return found


def existing_record(out: Path, force: bool = False) -> dict | None:
    """The stored metrics of the record at ``out`` (``skipped = True``) when it exists
    and ``force`` is off, else None (also for a record that cannot be read:
    :func:`read_metrics`). A CPU record made under other kernel pins than this
    process's (:func:`kernel_pins`) gets ``other_pins`` saying which."""
    if force:
        return None
    stored = read_metrics(out)
    if stored is None:
        return None
    if "config_hash" not in stored:  # parsable, but not what a finished run writes
        warnings.warn(f"record {out} cannot be read (metrics.json has no config_hash); "
                      "treated as missing", DipNote, stacklevel=2)
        return None
    done = {**stored, "skipped": True, "out_dir": str(out)}
    if done.get("device") == "cpu" and isinstance(done.get("machine"), dict):
        then, now = kernel_pins(done["machine"]), kernel_pins()
        if then != now:  # the record's numbers would round differently in this process
            done["other_pins"] = (f"{', '.join(then) or 'no kernel pins'}; this process: "
                                  f"{', '.join(now) or 'no kernel pins'}")
    return done


def record_run(spec: RunSpec, problem: Problem, results: list[FitResult],
               z: torch.Tensor | None = None, **extra) -> dict:
    """Score the fits of a run (and its baselines), write its record at ``spec.home``,
    return the metrics.

    ``results`` are the fits of the run's seeds (more than one: an ensemble); ``z`` the
    network input when it is an image; ``extra`` goes into metrics.json as is.
    """
    problem.to("cpu")
    result = results[0]
    metrics = metrics_of(problem, result, spec)
    images = {} if z is None else {"input": z}
    if len(results) > 1:
        means = {name: ensemble(results, which) for name, which in ENSEMBLE_IMAGES.items()}
        metrics.update(ensemble_metrics(problem, results, spec.seeds, means))
        images.update(means)
    metrics.update(extra)
    if spec.keys.baselines and problem.gt is not None:
        outputs: dict = {}
        metrics["baselines"] = run_baselines(problem, images=outputs)
        images.update({f"baseline_{k}": v for k, v in outputs.items()})
    if spec.released and problem.gt is not None:  # the compared methods' own results
        metrics["released"] = released_scores(spec, problem)
    metrics["out_dir"] = str(write_record(spec.home, spec, problem, result, metrics, images))
    return metrics
