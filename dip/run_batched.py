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
from collections import defaultdict

from omegaconf import DictConfig, OmegaConf

from dip import DipError
from dip.batched import batch_key, can_group, fit_batched
from dip.fit import code_channels, fit, pick_device, seed_everything
from dip.run import (
    build_net,
    build_problem,
    existing_record,
    record_run,
    run,
    set_threads,
    settings_from,
)

__all__ = ["run_batch"]


def run_batch(cfgs: list[DictConfig], batch_runs: int = 8) -> list[dict | Exception]:
    """Run every config, fitting compatible runs ``batch_runs`` at a time.

    Parameters
    ----------
    cfgs : list of DictConfig
        Composed run configs (as :func:`dip.run.run` takes them).
    batch_runs : int
        Largest number of runs fitted together (1 = one at a time, as ``run``).

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
            net = build_net(cfg, code_channels(settings), problem.out_shape[0])
        except DipError as err:
            outcomes[i] = err
            continue
        if batch_runs <= 1 or not can_group(net):
            outcomes[i] = run(cfg)
            continue
        net_key = json.dumps([OmegaConf.to_container(cfg.net, resolve=True),
                              float(cfg.profile.width_scale)], sort_keys=True, default=str)
        groups[batch_key(problem, settings, net_key)].append((i, cfg, problem, settings, net))

    for members in groups.values():
        for start in range(0, len(members), batch_runs):
            chunk = members[start:start + batch_runs]
            if len(chunk) == 1:
                i, cfg, problem, settings, net = chunk[0]
                results = [fit(net, problem, settings)]
            else:
                results = fit_batched([m[4] for m in chunk], [m[2] for m in chunk],
                                      [m[3] for m in chunk])
            for (i, cfg, problem, _, _), result in zip(chunk, results, strict=True):
                outcomes[i] = record_run(cfg, problem, [result], [int(cfg.seed)],
                                         batched=len(chunk))
    return outcomes
