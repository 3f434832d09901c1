"""CPU threads of a run: ``threads=auto`` becomes a count chosen by the launcher's layout.

A run on its own uses every usable core; the jobs of a sweep that the launcher runs side
by side share them (``launcher=joblib`` with ``n_jobs`` k: cores // k each; the batched
launcher: one each, its threads engine fitting one run per core). On a CUDA device the
CPU threads do not change what is computed: ``auto`` leaves torch's default (null).
The count is resolved into the config before the run's identity is taken, so the record
keeps it, and CPU runs with other thread counts (whose numbers differ in the last digits)
are other runs. ``threads=N`` pins N; ``threads=null`` leaves torch's default.
"""

from __future__ import annotations

import os

from omegaconf import DictConfig, open_dict

__all__ = ["usable_cores", "parallel_jobs", "resolve_threads"]


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, else the CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def parallel_jobs() -> int:
    """How many jobs of this Hydra multirun run at once here (1 outside a multirun or
    for a launcher that runs one job at a time; the batched launcher: one per core)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return 1
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    if "joblib" in target.lower():
        n = int(launcher.get("n_jobs") or 1)
        return usable_cores() if n < 0 else max(1, n)
    if "dip_batched" in target:
        return usable_cores()
    return 1


def resolve_threads(cfg: DictConfig, jobs: int | None = None) -> DictConfig:
    """``cfg`` with ``threads: auto`` replaced by the count this run uses (in place).

    ``jobs``: runs side by side (default :func:`parallel_jobs`).
    """
    if str(cfg.get("threads")) != "auto":
        return cfg
    from dip.device import pick_device

    if pick_device(str(cfg.device)).type == "cuda":
        count = None
    else:
        jobs = parallel_jobs() if jobs is None else jobs
        count = max(1, usable_cores() // max(1, jobs))
    with open_dict(cfg):
        cfg.threads = count
    return cfg
