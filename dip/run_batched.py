"""Many runs from composed configs, fitted together where they can be.

:func:`run_batch` is what the batched Hydra launcher (``launcher=batched``) calls with
all the jobs of a sweep. Runs whose record exists are skipped as :func:`dip.run.run`
skips them; the others are grouped by image size, network config and input code
(:func:`dip.batched.batch_key`), fitted ``batch_runs`` at a time by
:func:`dip.batched.fit_batched`, and written one record per run exactly as
:func:`dip.run.run` writes it (plus ``batched``: how many runs shared the fit, whose
``seconds`` are the run's share of the batch's wall time).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import torch
from omegaconf import DictConfig, OmegaConf

from dip import DipError
from dip.batched import batch_key, can_group, fit_batched
from dip.fit import code_channels, pick_device, seed_everything
from dip.records import existing_record, record_run
from dip.run import (
    build_net,
    build_problem,
    note_unused_net_keys,
    run,
    set_threads,
    settings_from,
)

__all__ = ["run_batch"]


def run_batch(cfgs: list[DictConfig], batch_runs: int = 8, engine: str = "auto",
              workers: int | None = None) -> list[dict | Exception]:
    """Run every config, fitting compatible runs ``batch_runs`` at a time.

    Parameters
    ----------
    cfgs : list of DictConfig
        Composed run configs (as :func:`dip.run.run` takes them).
    batch_runs : int
        Largest number of runs fitted together (1 = one at a time, as ``run``).
    engine : {'auto', 'grouped', 'threads'}
        How a batch is fitted (:func:`dip.batched.fit_batched`).
    workers : int, optional
        Runs fitted at a time by the 'threads' engine; default: the usable cores
        divided by the runs' ``threads`` setting (each run keeps its thread count, so
        its numbers equal those of a run on its own).

    Returns
    -------
    list of (dict or DipError)
        Per config, in order: its metrics (``skipped = True`` when the record
        existed), or the :class:`~dip.DipError` that stopped it.
    """
    outcomes: list[dict | Exception | None] = [None] * len(cfgs)
    groups: dict[tuple, list] = defaultdict(list)
    for i, cfg in enumerate(cfgs):
        done = existing_record(cfg)
        if done is not None:
            outcomes[i] = done
            continue
        if cfg.stop != "fixed" or int(cfg.seeds) > 1 or cfg.fit.input_type == "image":
            outcomes[i] = run(cfg)  # early stopping, ensembles, image inputs: one at a time
            continue
        try:
            set_threads(cfg.get("threads"))
            problem = build_problem(cfg)
            settings = settings_from(cfg)
            pick_device(settings.device)
            seed_everything(int(cfg.seed))
            note_unused_net_keys(cfg)
            net = build_net(cfg, code_channels(settings), problem.out_shape[0])
        except DipError as err:
            outcomes[i] = err
            continue
        eng = engine
        if eng == "auto":
            eng = "grouped" if pick_device(settings.device).type == "cuda" else "threads"
        if batch_runs <= 1 or (eng == "grouped" and not can_group(net)):
            outcomes[i] = run(cfg)
            continue
        net_key = json.dumps([OmegaConf.to_container(cfg.net, resolve=True),
                              float(cfg.profile.width_scale)], sort_keys=True, default=str)
        per_run = int(cfg.get("threads") or 0) or None
        key = (batch_key(problem, settings, net_key), eng, per_run)
        groups[key].append((i, cfg, problem, settings, net))

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for (_, eng, per_run), members in groups.items():
        n_workers = workers or max(1, (cores or 1) // (per_run or cores or 1))
        if per_run and eng == "threads":  # room for every worker's own `threads`
            torch.set_num_threads(per_run * n_workers)
        for start in range(0, len(members), batch_runs):
            chunk = members[start:start + batch_runs]
            results = fit_batched([m[4] for m in chunk], [m[2] for m in chunk],
                                  [m[3] for m in chunk], engine=eng,
                                  workers=n_workers, threads_per_run=per_run)
            for (i, cfg, problem, _, _), result in zip(chunk, results, strict=True):
                outcomes[i] = record_run(cfg, problem, [result], [int(cfg.seed)],
                                         batched=len(chunk))
    return outcomes
