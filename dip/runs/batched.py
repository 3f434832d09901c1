"""Many runs from composed configs, fitted together where they can be.

:func:`run_batch` is what the batched Hydra launcher (``launcher=batched``) calls with
all the jobs of a sweep. Runs whose record exists are skipped as :func:`dip.runs.plan.run`
skips them (and leaves runs that another process holds to it: :mod:`dip.launch.claims`); the
others are grouped by image size, network config and input code
(:func:`dip.fitting.batched.batch_key`), fitted ``batch_runs`` at a time by
:func:`dip.fitting.batched.fit_batched`, and written one record per run exactly as
:func:`dip.runs.plan.run` writes it (plus ``batched``: how many runs shared the fit, whose
``seconds`` are the run's share of the batch's wall time). With several GPUs visible the
runs go round robin to them (:func:`dip.runs.config.place_device`), and each GPU's groups are
fitted in a thread of their own, all GPUs at once.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import torch

from dip.fitting.batched import batch_key, fit_batched
from dip.launch.device import pick_device
from dip.nets.grouped import can_group
from dip.runs.config import place_device
from dip.runs.plan import RunPlan, execute, prepare

__all__ = ["run_batch"]


def run_batch(cfgs: list, batch_runs: int = 8, engine: str = "auto",
              workers: int | None = None,
              overrides: list[list[str]] | None = None) -> list[dict | Exception]:
    """Run every config, fitting compatible runs ``batch_runs`` at a time.

    Parameters
    ----------
    cfgs : list of DictConfig
        Composed run configs (as :func:`dip.runs.plan.run` takes them).
    batch_runs : int
        Largest number of runs fitted together (1 = one at a time, as ``run``).
    engine : {'auto', 'grouped', 'threads'}
        How a batch is fitted (:func:`dip.fitting.batched.fit_batched`).
    workers : int, optional
        Runs fitted at a time by the 'threads' engine; default: the usable cores
        divided by the runs' ``threads`` setting (each run keeps its thread count, so
        its numbers equal those of a run on its own).
    overrides : list of list of str, optional
        Per config, the overrides that made it (stored in its record).

    Returns
    -------
    list of (dict or Exception)
        Per config, in order: its metrics (``skipped = True`` when the record
        existed, ``taken`` when another process fits it), or the exception that stopped
        it (a :class:`~dip.DipError`, out of memory, ...): one run's failure, or its
        batch's, never stops the others.
    """
    outcomes: list[dict | Exception | None] = [None] * len(cfgs)
    groups: dict[tuple, list] = defaultdict(list)
    plans = []
    try:
        for i, cfg in enumerate(cfgs):
            try:
                place_device(cfg, job=i, jobs=len(cfgs))  # round robin over the GPUs
                plan = prepare(cfg, overrides[i] if overrides is not None else [])
            except Exception as err:
                outcomes[i] = err
                continue
            if isinstance(plan, dict):  # skipped or taken
                outcomes[i] = plan
                continue
            plans.append(plan)
            try:
                key, nets = _group_of(plan, engine, batch_runs)
            except Exception as err:
                plan.release()
                outcomes[i] = err
                continue
            if key is None:  # one at a time
                outcomes[i] = _attempt(execute, plan)
            else:
                groups[key] += [(i, plan, seed, net) for seed, net in nets]
        _fit_lanes(groups, batch_runs, workers, outcomes)
    finally:
        for plan in plans:
            plan.release()
    return outcomes


def _fit_lanes(groups: dict, batch_runs: int, workers: int | None, outcomes: list) -> None:
    """Fit the groups, one lane per device: the lanes of several GPUs (``cuda:K``, runs
    placed by :func:`dip.runs.config.place_device`) at once, a thread each; otherwise in turn."""
    lanes: dict[str, list] = defaultdict(list)
    for (_, eng, per_run), members in groups.items():
        lanes[members[0][1].spec.device].append((members, eng, per_run))
    fitted: dict[int, dict] = defaultdict(dict)  # run -> seed -> result

    def lane(items):
        for members, eng, per_run in items:
            _fit_groups(members, eng, per_run, batch_runs, workers, outcomes, fitted)

    if sum(device.startswith("cuda:") for device in lanes) < 2:
        for items in lanes.values():
            lane(items)
        return
    with ThreadPoolExecutor(len(lanes), thread_name_prefix="dip-gpu") as pool:
        for done in [pool.submit(lane, items) for items in lanes.values()]:
            done.result()  # an interrupt in a lane ends the batch


def _attempt(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as err:
        return err


def _group_of(plan: RunPlan, engine: str, batch_runs: int):
    """The group key of a plan and its seeds' nets (seeded builds), or (None, None) when
    it is fitted on its own (an image input, a net the engine cannot group, or
    ``batch_runs`` 1). Early stopping and ensembles are fitted in groups: a run that stops
    leaves its group, and each seed of an ensemble is a member of the group."""
    spec = plan.spec
    if plan.z is not None or batch_runs <= 1:
        return None, None
    settings = plan.settings()
    nets = [(seed, plan.build_net(seed)) for seed in plan.seeds]
    eng = engine
    if eng == "auto":
        eng = "grouped" if pick_device(settings.device).type == "cuda" else "threads"
    if eng == "grouped" and not can_group(nets[0][1]):
        return None, None
    net_key = json.dumps(spec.config["net"], sort_keys=True, default=str)
    per_run = int(spec.threads or 0) or None
    return (batch_key(plan.problem, settings, net_key), eng, per_run), nets


def _fit_groups(members: list, eng: str, per_run: int | None, batch_runs: int,
                workers: int | None, outcomes: list, fitted: dict) -> None:
    """Fit one group's members (one seed of a run each) ``batch_runs`` at a time and
    write each run's record once all its seeds are fitted; a batch that fails fails each
    of its runs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n_workers = workers or max(1, (cores or 1) // (per_run or cores or 1))
    if per_run and eng == "threads":  # room for every worker's own `threads`
        torch.set_num_threads(per_run * n_workers)
    for start in range(0, len(members), batch_runs):
        chunk = [m for m in members[start:start + batch_runs] if outcomes[m[0]] is None]
        if not chunk:
            continue
        try:
            results = fit_batched([m[3] for m in chunk], [m[1].problem for m in chunk],
                                  [m[1].settings(m[2]) for m in chunk],
                                  [m[1].monitors(m[2]) for m in chunk], engine=eng,
                                  workers=n_workers, threads_per_run=per_run,
                                  resume=[m[1].resume_state(m[2]) for m in chunk])
        except Exception as err:
            for m in chunk:
                outcomes[m[0]] = err
            continue
        for (i, plan, seed, _), result in zip(chunk, results, strict=True):
            fitted[i][seed] = result
            if len(fitted[i]) == len(plan.seeds):  # every seed of the run: its record
                outcomes[i] = _attempt(execute, plan, [fitted[i][s] for s in plan.seeds],
                                       batched=len(chunk))
