"""Jobs of a sweep: one outcome line each, and a sweep that outlives its failures.

:func:`execute` runs one job of ``dip`` and :func:`report` prints its outcome. In a
multirun (``dip -m ...``) a job that fails (bad input, out of memory, an unexpected
exception) or diverges prints one line that starts with its overrides
(``error: [fit.lr=1 seed=0] ...``) and the sweep goes on. Every job adds its outcome to
the sweep's ledger, ``<sweep dir>/runs.jsonl`` (one JSON line a job, with the traceback
of an unexpected exception); at the end :class:`SweepLedger`, a Hydra callback of
``conf/config.yaml``, prints ``N of M runs failed:`` with each one's overrides and
reason, and the command exits with status 2. The ledger's path travels to the jobs in
the environment variable ``DIP_SWEEP_LEDGER``, so it reaches joblib workers and Slurm
jobs alike. A signal (:mod:`dip.launch.signals`) stops the whole sweep.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode

from dip.errors import DipError
from dip.launch.signals import Interrupted, exit_status

__all__ = ["execute", "report", "describe", "job_label", "SweepLedger", "LEDGER_ENV",
           "FAILED", "EXIT_FAILED", "EXIT_DIVERGED", "exit_status_of"]

LEDGER_ENV = "DIP_SWEEP_LEDGER"
FAILED = ("failed", "diverged")
EXIT_FAILED = 2
"""Exit status of bad input, of a run that failed, and of a sweep with a failed run."""
EXIT_DIVERGED = 3
"""Exit status of a run that diverged (its record is written, with ``status:
diverged``), and of a sweep or folder whose only failures are divergences."""


def _multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _overrides() -> str:
    return " ".join(HydraConfig.get().overrides.task) if _multirun() else ""


def job_label() -> str:
    """``'[key=value ...] '``: the overrides of this job of a multirun ('' otherwise)."""
    return f"[{_overrides()}] " if _multirun() else ""


def describe(err: BaseException) -> str:
    """One line saying why a job failed."""
    first = (str(err).strip().splitlines() or [""])[0]
    if isinstance(err, DipError):
        return first
    if isinstance(err, torch.OutOfMemoryError):
        return (f"out of memory ({first}); use a smaller crop= or scale=, fewer "
                "hydra.launcher.batch_runs, or memory_limit_gb=")
    return f"unexpected {type(err).__name__}: {first}"


def _ledger(**entry) -> None:
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    line = json.dumps({"overrides": _overrides(), **entry})
    with open(path, "a") as f:  # one write of one line: whole lines even from many processes
        f.write(line + "\n")


def execute(task, cfg) -> dict | BaseException:
    """``task(cfg)``, with a failure turned into one ``error:`` line.

    A single run exits with status 2 on a :class:`~dip.DipError` or out of memory (a
    programming error keeps its traceback); a job of a multirun returns the exception
    instead, so that the sweep goes on. An interrupted run exits 130 / 143 (SIGINT /
    SIGTERM) after its checkpoint is saved.
    """
    try:
        return task(cfg)
    except Interrupted as err:
        print(f"error: {job_label()}{err}", file=sys.stderr)
        sys.exit(exit_status(err.signum))
    except (DipError, torch.OutOfMemoryError) as err:
        if not _multirun():
            print(f"error: {describe(err)}", file=sys.stderr)
            sys.exit(EXIT_FAILED)
        return err
    except Exception as err:
        if not _multirun():
            raise
        return err


def report(outcome: dict | BaseException, summary) -> float:
    """Print a job's outcome (``summary(metrics)`` for a finished run), add it to the
    sweep's ledger and return the number Hydra keeps (the final PSNR, NaN otherwise)."""
    label = job_label()
    if isinstance(outcome, BaseException):
        print(f"error: {label}{describe(outcome)}", file=sys.stderr)
        tb = None if isinstance(outcome, DipError) else "".join(
            traceback.format_exception(outcome))
        _ledger(outcome="failed", reason=describe(outcome), traceback=tb)
        return float("nan")
    print(label + summary(outcome))
    status = outcome.get("status", "ok")
    kind = ("taken" if outcome.get("taken") else "skipped" if outcome.get("skipped")
            else "diverged" if status == "diverged" else "ok")
    reason = None if kind != "diverged" else f"status {status} (record {outcome['out_dir']})"
    if kind == "diverged" and label:
        print(f"error: {label}{reason}", file=sys.stderr)
    _ledger(outcome=kind, reason=reason)
    if kind == "diverged" and not label:  # a single run: the status says it
        sys.exit(EXIT_DIVERGED)
    value = outcome.get("psnr_final")
    return float("nan") if value is None else value


def exit_status_of(outcomes) -> int:
    """The exit status of several runs' outcomes ('failed', 'diverged', ...): 0 when
    none failed, :data:`EXIT_FAILED` when one failed, else :data:`EXIT_DIVERGED` when
    one diverged."""
    outcomes = set(outcomes)
    if "failed" in outcomes:
        return EXIT_FAILED
    return EXIT_DIVERGED if "diverged" in outcomes else 0


class SweepLedger(Callback):
    """Opens the ledger of a multirun and reports its failed jobs at the end (exit 2)."""

    def on_multirun_start(self, config, **kwargs) -> None:
        folder = Path(str(config.hydra.sweep.dir))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "runs.jsonl"
        try:
            path.touch(exist_ok=False)
        except FileExistsError:  # another sweep started in the same second
            path = folder / f"runs.{os.getpid()}.jsonl"
            path.touch()
        os.environ[LEDGER_ENV] = str(path.resolve())

    def on_multirun_end(self, config, **kwargs) -> None:
        path = os.environ.pop(LEDGER_ENV, None)
        if not path or not Path(path).is_file():
            return
        entries = []
        for line in Path(path).read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        failed = [e for e in entries if e.get("outcome") in FAILED]
        if not failed:
            return
        print(f"{len(failed)} of {len(entries)} runs failed (ledger: {path}):",
              file=sys.stderr)
        for e in failed:
            print(f"  [{e.get('overrides', '')}] {e.get('reason')}", file=sys.stderr)
        sys.exit(exit_status_of(e.get("outcome") for e in failed))
