"""Devices and CPU threads: the one place that turns a ``device=`` setting into a checked
torch device, spreads the runs of a sweep over the visible GPUs, and counts the CPU threads
a run may use.

:func:`spread_device`: when a launcher runs jobs side by side (``launcher=joblib`` with
``n_jobs`` > 1, ``launcher=batched``) and more than one CUDA GPU is visible, a run whose
``device`` is ``auto`` or ``cuda`` goes to ``cuda:(job number mod GPUs)``, round robin
(the run layer records it, :func:`dip.runs.plan.place_device`, and hashes the setting
asked for, so a rerun finds the record whichever GPU fitted it). On Slurm, give each job
one GPU (``launcher=slurm``, ``gpus_per_node: 1``): it sees only its own as ``cuda:0``.

:func:`thread_count`: a run on its own uses every usable core; the jobs that a launcher
runs side by side share them (``launcher=joblib`` with ``n_jobs`` k: cores // k each; the
batched launcher: one each). On a CUDA device the CPU threads do not change what is
computed: None (torch's default).
"""

from __future__ import annotations

import os

import torch

from dip.errors import DipError

__all__ = ["pick_device", "spread_device", "usable_cores", "thread_count"]


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


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, else the CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def thread_count(device: str, jobs: int) -> int | None:
    """CPU threads of a run on ``device`` (a setting) beside ``jobs`` - 1 others: the
    usable cores shared among the jobs; None (torch's default) on a CUDA device."""
    if pick_device(str(device)).type == "cuda":
        return None
    return max(1, usable_cores() // max(1, jobs))
