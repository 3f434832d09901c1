"""A run, from a composed config to its record: ``prepare`` → :class:`RunPlan` → ``execute``.

:func:`prepare` reads the config once (:func:`read_spec`: its identity, record folder and
typed :class:`~dip.runs.spec.RunSpec`) and does every check before any fit: the values,
the input (:func:`dip.runs.inputs.build_problem`), the device, the memory a fit needs,
the output folder and the claim on the run (:mod:`dip.launch.claims`). It returns a
:class:`RunPlan`, or the outcome of a run that needs no fit (its record exists, or
another process holds it). :func:`execute` fits a plan's seeds and writes its record
(:mod:`dip.runs.records`). The CLI (:func:`run`), the batched launcher
(:mod:`dip.runs.batched`) and seed ensembles all go through these two.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from dip.errors import DipError
from dip.fitting.checkpoint import Checkpoint, discard, load_checkpoint
from dip.fitting.loop import fit
from dip.fitting.settings import FitResult, FitSettings, code_channels, seed_everything
from dip.fitting.step import default_monitors
from dip.fitting.tensorboard import TensorBoard, require
from dip.launch.claims import Claim, claim
from dip.launch.device import pick_device
from dip.launch.memory import ENV_LIMIT, GB, available_bytes, check_memory, fit_cost
from dip.problems.problem import Problem
from dip.runs.announce import announce
from dip.runs.config import config_hash, identify, job_overrides, override_values, unspelled
from dip.runs.inputs import build_input, build_problem, problem_from
from dip.runs.records import check_not_foreign, check_writable, existing_record, record_run
from dip.runs.spec import RunSpec, invalid

__all__ = ["run", "prepare", "execute", "RunPlan", "read_spec", "check_spec", "set_threads",
           "fit_seeds", "checkpoint_path", "check_fit_memory", "taken", "LOGGERS"]


LOGGERS = ("none", "tensorboard")  # conf/logger/: what watches a run besides its record


def read_spec(cfg: DictConfig, overrides=()) -> RunSpec:
    """The typed spec of a composed config, its identity resolved
    (:func:`dip.runs.config.identify`, in place) and its record folder found: the one
    place a run's config is read."""
    home = identify(cfg, overrides)
    return RunSpec.read(OmegaConf.to_container(cfg, resolve=True), config_hash(cfg), home)


def check_spec(spec: RunSpec) -> None:
    """Refuse invalid settings (one ``DipError`` line each) beyond the types that reading
    the spec checked: the fit, early stopping and fast paths as
    :class:`~dip.fitting.settings.FitSettings` checks them, then seeds, checkpoints and
    the memory limit (the task's own values are checked by the task)."""
    spec.settings_for()
    keys = spec.keys
    for key, minimum in (("seeds", 1), ("checkpoint_every", 0)):
        if getattr(keys, key) < minimum:
            raise invalid(key, getattr(keys, key))
    limit = keys.memory_limit_gb
    if limit is not None and not limit > 0:
        raise invalid("memory_limit_gb", limit)
    logger = spec.logger.get("name", "none")
    if logger not in LOGGERS:
        raise DipError(f"logger={logger} is unknown; choose one of {', '.join(LOGGERS)}")
    if logger == "tensorboard":
        require()


def set_threads(threads) -> None:
    """Pin torch's CPU threads (None: leave torch's default).

    CPU results depend on the thread count, so a pinned count is part of what makes a
    run reproducible (the profiles pin it; records store it in ``device_name``).
    """
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise DipError(f"threads={threads} is invalid; give a positive integer or null")
    torch.set_num_threads(threads)


def checkpoint_path(spec: RunSpec, seed: int) -> Path:
    """Checkpoint file of one seed of a run, where the run writes.

    ``X/.<config hash>.s<seed>.ckpt.pt`` inside the run's own folder ``X`` (its
    ``out_dir``; without one ``R/.<config hash>.s<seed>.ckpt.pt`` in ``records=R``), so a
    run writes nothing outside what the user named. Hidden, so record readers skip it
    (and a folder that holds only checkpoints is not a record:
    :func:`dip.runs.records.foreign_files`), and keyed by the config hash, so only the
    same run resumes from it. It is written every ``checkpoint_every`` steps (0: never)
    and when the run is interrupted (SIGINT, SIGTERM: :mod:`dip.launch.signals`), and goes
    with the folder's old content when the record is written.
    """
    name = f".{spec.identity}.s{int(seed)}.ckpt.pt"
    if spec.out_dir is not None:
        return Path(str(spec.out_dir)) / name
    return spec.home.parent / name


def fit_seeds(plan: RunPlan) -> list[FitResult]:
    """Fit a fresh network per seed of ``plan`` to its problem, one seed after the other.

    Each fit of a plan that writes a record resumes its checkpoint
    (:func:`checkpoint_path`) when there is one and saves it as described there.
    """
    results = []
    for seed in plan.seeds:
        net = plan.build_net(seed)
        results.append(fit(net, plan.problem, plan.settings(seed), plan.monitors(seed),
                           z=plan.z, resume=plan.resume_state(seed)))
        plan.problem.to("cpu")
    return results


def memory_limit(spec: RunSpec, device: torch.device) -> int:
    """Bytes a fit may use: ``memory_limit_gb``, else $DIP_MEMORY_LIMIT_GB, else free memory."""
    if spec.keys.memory_limit_gb is not None:
        return int(float(spec.keys.memory_limit_gb) * GB)
    if os.environ.get(ENV_LIMIT):
        try:
            return int(float(os.environ[ENV_LIMIT]) * GB)
        except ValueError:
            raise DipError(f"{ENV_LIMIT}={os.environ[ENV_LIMIT]!r} is not a number of GB"
                           ) from None
    return available_bytes(device)


def check_fit_memory(spec: RunSpec, problem: Problem) -> int:
    """Estimated bytes of fitting ``problem``; DipError (with a crop that fits) when too many."""
    settings = spec.settings_for()
    n_in = code_channels(settings)
    probe = spec.net.build(n_in, problem.out_shape[0])  # throw-away: fits re-seed, rebuild
    device = pick_device(settings.device)
    multiple = spec.net.multiple()
    window = settings.stop_window if settings.stop == "wmv" else 0
    per_pixel, fixed = fit_cost(probe.to(device), n_in, multiple, problem.out_shape[0], window,
                                min_side=spec.net.min_size())
    return check_memory(per_pixel, fixed, tuple(problem.out_shape[1:]),
                        memory_limit(spec, device), multiple, spec.profile)


@dataclass
class RunPlan:
    """A checked run, ready to fit (made by :func:`prepare`, carried out by :func:`execute`).

    Attributes
    ----------
    spec : RunSpec
        The run's typed settings, identity and record folder.
    problem : Problem
        What is fitted (observation, operator, ground truth).
    z : torch.Tensor or None
        The network input when it is an image (``fit.input_type=image``), else None
        (the fit draws its code from the seed).
    out : Path or None
        Where the record goes (None: nothing is written).
    overrides : list of str
        The overrides that made the run (stored in its record).
    claim : Claim or None
        The run's claim, held until :func:`execute` ends (or :meth:`release`); None
        when nothing is written.
    replaces : bool
        Whether a record was at ``out`` before (``force=true``).
    """

    spec: RunSpec
    problem: Problem
    z: torch.Tensor | None
    out: Path | None
    overrides: list[str]
    claim: Claim | None
    replaces: bool = False

    @property
    def seeds(self) -> list[int]:
        """The seeds fitted: ``seed``, ``seed + 1``, ... (more than one: an ensemble)."""
        return self.spec.seeds

    def settings(self, seed: int | None = None) -> FitSettings:
        """The fit settings of one seed (default: the run's ``seed``), the cap of an
        early-stopped run set by the fitted image's size."""
        return self.spec.settings_for(seed, tuple(self.problem.out_shape[-2:]))

    def build_net(self, seed: int | None = None) -> torch.nn.Module:
        """The network of one seed: every RNG seeded with it, then the net built."""
        seed = self.spec.keys.seed if seed is None else int(seed)
        seed_everything(seed)
        n_in = code_channels(self.settings(seed)) if self.z is None else self.z.shape[1]
        return self.spec.net.build(n_in, self.problem.out_shape[0])

    def monitors(self, seed: int) -> list:
        """The monitors of one seed's fit: :func:`dip.fitting.step.default_monitors`, the
        logger's (:meth:`tensorboard`) and, when the plan writes a record, the seed's
        :class:`~dip.fitting.checkpoint.Checkpoint`."""
        monitors = default_monitors(self.problem, self.settings(seed))
        if self.spec.logger.get("name") == "tensorboard":
            monitors.append(self.tensorboard(seed))
        if self.out is not None:
            monitors.append(Checkpoint(checkpoint_path(self.spec, seed),
                                       self.spec.keys.checkpoint_every, key=self._key(seed)))
        return monitors

    def tensorboard(self, seed: int) -> TensorBoard:
        """The TensorBoard monitor of one seed's fit: events in ``<logger.dir>/<record
        name>`` (``/seed<k>`` for each seed of an ensemble), the task, image, net, profile
        and seed, then the run's overrides, as its hyperparameters."""
        spec = self.spec
        name = spec.home.name if spec.home is not None else spec.identity
        folder = Path(str(spec.logger.get("dir", f"{spec.records}/tb"))) / name
        if len(self.seeds) > 1:
            folder = folder / f"seed{int(seed)}"
        hparams = {"task": spec.task, "image": spec.image, "net": spec.net.name,
                   "profile": spec.profile, **override_values(self.overrides),
                   "seed": int(seed)}
        return TensorBoard(folder, int(spec.logger.get("every") or 10), hparams)

    def resume_state(self, seed: int) -> dict | None:
        """The saved state of one seed's fit, when its checkpoint exists (else None)."""
        if self.out is None:
            return None
        return load_checkpoint(checkpoint_path(self.spec, seed), self._key(seed))

    def _key(self, seed: int) -> str:
        return f"{self.spec.identity}/{int(seed)}"

    def release(self) -> None:
        """Give up the run's claim without fitting it."""
        if self.claim is not None:
            self.claim.release()


def prepare(cfg: DictConfig, overrides: list[str] | None = None, *,
            image: torch.Tensor | None = None, write: bool = True) -> RunPlan | dict:
    """Check everything about a run before any fit and return its plan.

    Returns the stored metrics (``skipped = True``) instead when the record exists and
    ``force`` is off, and ``taken`` metrics when another process is fitting the run. A
    folder holding anything but an earlier record is refused, never replaced.
    ``overrides`` default to the Hydra job's (:func:`dip.runs.config.job_overrides`).
    ``image``: an image given in memory (C×H×W in [0, 1]) instead of the one ``cfg``
    names (:func:`dip.runs.inputs.problem_from`). ``write=False``: a plan for a fit whose
    results stay in memory (no record, no claim, no checkpoints:
    :func:`dip.cli.api.restore`).
    """
    overrides = job_overrides() if overrides is None else list(overrides)
    spec = read_spec(cfg, overrides)
    out = spec.home if write else None
    replaces = False
    if write:
        check_not_foreign(out)
        replaces = (out / "metrics.json").is_file()
        if (done := existing_record(out, spec.keys.force)) is not None:
            return done
    check_spec(spec)
    spec.net.note_unused()
    problem = build_problem(spec) if image is None else problem_from(spec, image)
    set_threads(spec.threads)
    z = build_input(spec, problem)
    pick_device(spec.device)  # fail early on an unknown device string
    check_fit_memory(spec, problem)
    held = None
    if write:
        check_writable(out)
        held = claim(out)
        if isinstance(held, str):
            return taken(spec, held)
    return RunPlan(spec, problem, z, out, unspelled(overrides), held, replaces)


def execute(plan: RunPlan, results: list[FitResult] | None = None, **extra) -> dict:
    """Fit the plan's seeds (unless ``results`` are given: fitted elsewhere, e.g. in a
    batch), write its record with ``extra`` in metrics.json, release its claim and
    return the metrics. Checkpoints are deleted once the record is written."""
    if plan.claim is None:
        raise ValueError("a plan made with write=False has no record to write; "
                         "fit it with fit_seeds(plan)")
    with plan.claim:
        if not plan.replaces and (done := existing_record(plan.out)) is not None:
            return done  # finished by another process since the first look
        if results is None:
            results = fit_seeds(plan)
        metrics = record_run(plan.spec, plan.problem, results, plan.z,
                             overrides=plan.overrides, **extra)
    for seed in plan.seeds:  # the record is safe: the checkpoints are no longer needed
        discard(checkpoint_path(plan.spec, seed))
    return metrics


def run(cfg: DictConfig, overrides: list[str] | None = None, *, tell=None) -> dict:
    """Fit DIP as ``cfg`` describes, write the record and return its metrics:
    :func:`prepare`, then :func:`execute` (see there for skipped and taken runs).
    ``tell``: called with the run's announcement (:func:`dip.runs.announce.announce`)
    before its first step (e.g. ``print``)."""
    plan = prepare(cfg, overrides)
    if isinstance(plan, dict):
        return plan
    if tell is not None:
        tell(announce(plan))
    return execute(plan)


def taken(spec: RunSpec, holder: str) -> dict:
    """What a run that another process holds returns (``taken`` names the holder)."""
    return {"taken": holder, "image": spec.image, "out_dir": str(spec.home)}
