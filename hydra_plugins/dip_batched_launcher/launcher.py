"""A Hydra launcher that fits the jobs of a sweep together, N at a time.

Selected with ``launcher=batched`` (``conf/launcher/batched.yaml``); the batch size is
``hydra.launcher.batch_runs``, the engine ``hydra.launcher.engine`` (auto, threads,
grouped) and ``hydra.launcher.workers`` the runs fitted at a time by the threads engine.
Jobs whose problems share the image size, the network and the input code are fitted
by one :func:`dip.fitting.batched.fit_batched` call (see :func:`dip.runs.batched.run_batch`);
each job still gets its own record, exactly as with the basic launcher, and finished
records are skipped. A job that fails is reported on its own line and the others go on
(:mod:`dip.launch.sweep`).
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


@dataclass
class BatchedLauncherConf:
    _target_: str = "hydra_plugins.dip_batched_launcher.launcher.BatchedLauncher"
    batch_runs: int = 8
    engine: str = "auto"
    workers: Optional[int] = None  # noqa: UP045 (OmegaConf reads typing.Optional)


ConfigStore.instance().store(group="hydra/launcher", name="dip_batched",
                             node=BatchedLauncherConf, provider="dip")


class BatchedLauncher(Launcher):
    def __init__(self, batch_runs: int = 8, engine: str = "auto",
                 workers: int | None = None) -> None:
        super().__init__()
        self.batch_runs = int(batch_runs)
        self.engine, self.workers = engine, workers
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        from dip.errors import show_notes
        from dip.launch.signals import Interrupted, checkpoint_on_signals, exit_status
        from dip.runs.batched import run_batch

        show_notes()
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs in batches of {self.batch_runs}")
        configs = []
        for idx, overrides in enumerate(job_overrides):
            idx = initial_job_idx + idx
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config,
                                                                     list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = idx
                cfg.hydra.job.num = idx
            configs.append(cfg)
        tasks = []
        for cfg in configs:
            task = cfg.copy()
            with open_dict(task):
                del task["hydra"]
            tasks.append(task)
        with checkpoint_on_signals():
            try:
                outcomes = run_batch(tasks, batch_runs=self.batch_runs, engine=self.engine,
                                     workers=self.workers,
                                     overrides=[list(c.hydra.overrides.task) for c in configs])
            except Interrupted as err:
                print(f"error: {err}", file=sys.stderr)
                sys.exit(exit_status(err.signum))

        runs = []
        for cfg, outcome in zip(configs, outcomes, strict=True):
            runs.append(run_job(hydra_context=self.hydra_context,
                                task_function=_report(outcome), config=cfg,
                                job_dir_key="hydra.sweep.dir",
                                job_subdir_key="hydra.sweep.subdir"))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return runs


def _report(outcome: Any):
    """Task function of one job whose fit is done: print its outcome as `dip` does."""

    def task(_cfg: DictConfig) -> float:
        from dip.cli.main import summary
        from dip.launch.sweep import report

        return report(outcome, summary)

    return task
