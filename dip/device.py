"""Devices: the one place that turns a ``device=`` setting into a checked torch device,
and that spreads the runs of a sweep over the visible GPUs.

:func:`place_device`: when a launcher runs jobs side by side (``launcher=joblib`` with
``n_jobs`` > 1, ``launcher=batched``) and more than one CUDA GPU is visible, a run whose
``device`` is ``auto`` or ``cuda`` goes to ``cuda:(job number mod GPUs)``, round robin.
The config then says ``device: cuda:K`` (recorded in ``config.yaml`` and ``metrics.json``)
and ``device_setting`` keeps what was asked, which is what the run's identity hashes
(:func:`dip.config.config_hash`): a rerun finds the record whichever GPU fitted it.
On Slurm, give each job one GPU (``launcher=slurm``, ``gpus_per_node: 1``): it sees
only its own as ``cuda:0``.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, open_dict

from dip import DipError
from dip.threads import parallel_jobs

__all__ = ["pick_device", "place_device", "spread_device", "job_number"]


def pick_device(device: str = "auto") -> torch.device:
    """Resolve 'auto' to CUDA when available, else CPU; check that a named device is
    there ('cpu', 'cuda' or 'cuda:K'; a one-line :class:`~dip.DipError` otherwise)."""
    device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise DipError(f"device={device} is unknown; choose auto, cpu, cuda or cuda:K")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DipError(f"device={device} but this torch sees no CUDA GPU (a CPU-only "
                           "build, or no driver); use device=cpu or device=auto")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise DipError(f"device={device} but only {count} CUDA GPU"
                           f"{'s are' if count > 1 else ' is'} visible (cuda:0 to "
                           f"cuda:{count - 1}); choose one of them")
    return torch.device(device)


def spread_device(setting: str, job: int, jobs: int) -> str:
    """The device of job number ``job`` of a sweep that runs ``jobs`` at once: 'auto' or
    'cuda' become ``cuda:(job mod G)`` when G > 1 CUDA GPUs are visible and ``jobs`` > 1;
    any other setting (``cpu``, ``cuda:K``) is kept."""
    if str(setting) not in ("auto", "cuda") or jobs < 2 or not torch.cuda.is_available():
        return str(setting)
    count = torch.cuda.device_count()
    return f"cuda:{int(job) % count}" if count > 1 else str(setting)


def job_number() -> int | None:
    """The number of this Hydra multirun job (None outside a multirun)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    num = HydraConfig.get().job.get("num")
    return None if num is None else int(num)


def place_device(cfg: DictConfig, job: int | None = None, jobs: int | None = None
                 ) -> DictConfig:
    """``cfg`` with its device placed among the visible GPUs (in place; see the module's
    docstring). ``job``: the run's number in its sweep (default: the Hydra job's);
    ``jobs``: runs side by side (default :func:`dip.threads.parallel_jobs`)."""
    setting = str(cfg.get("device", "auto"))
    job = job_number() if job is None else job
    if job is None:
        return cfg
    device = spread_device(setting, job, parallel_jobs() if jobs is None else jobs)
    if device != setting:
        with open_dict(cfg):
            cfg.device = device
            cfg.device_setting = setting
    return cfg
