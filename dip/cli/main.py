"""Command-line entry point: ``dip`` / ``python -m dip`` (a Hydra app).

Examples
--------
Denoise a bundled image with the CPU-friendly profile::

    dip image=skimage:astronaut crop=128 sigma=25

Restore your own noisy photo, with the official settings (GPU advised)::

    dip image=photo.png corrupted=true profile=paper

Sweep learning rates and seeds::

    dip -m task=inpainting image=set12/05.png fit.lr=0.01,0.001 seed=0,1

Restore every image of a folder (masks paired by file stem), then a study table::

    dip task=inpainting image=photos/ mask=masks/
"""

from __future__ import annotations

import os
import sys
from functools import partial

import hydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from dip.cli.folder import expand_argv, run_folder
from dip.data.folders import is_folder
from dip.errors import show_notes
from dip.launch.signals import checkpoint_on_signals
from dip.launch.sweep import EXIT_DIVERGED, execute, report
from dip.problems.baselines import label as baseline_label
from dip.runs.config import CONFIG_DIR, job_overrides, spelled
from dip.runs.plan import run
from dip.runs.schema import one_line, quote_overrides


def _scores(m: dict) -> str:
    """Each scored output named: corrupted, DIP's final, averaged and best seen, and
    the classical baselines of the record."""
    text = (f"corrupted {m['psnr_corrupted']:.2f} dB -> DIP final {m['psnr_final']:.2f} dB, "
            f"averaged {m['psnr_avg']:.2f} dB, best output seen {m['psnr_oracle']:.2f} dB "
            f"(step {m['iter_oracle']})")
    scored = {k: v for k, v in (m.get("baselines") or {}).items() if v == v and v is not None}
    if scored:
        text += "; " + ", ".join(f"{baseline_label(k)} {v:.2f} dB" for k, v in scored.items())
    return text


def _stopping(m: dict) -> str:
    """What early stopping did: the step it stopped at, or that the run reached its cap."""
    rule, at = m["stop"], m["iter_stop"]
    if m["status"] == "stopped":
        text = f"{rule} stopped the run after {m['steps']} steps; its output is step {at}'s"
    else:
        text = f"{rule} found no stopping point before the cap of {m['num_iter']} steps"
        text += ("; its output is the last one" if at is None or at >= m["steps"] else
                 f"; the lowest-variance output is step {at}'s")
    if m["psnr_stop"] == m["psnr_stop"] and m["psnr_stop"] is not None:  # scored
        text += (f" ({m['psnr_stop']:.2f} dB, {m['psnr_oracle'] - m['psnr_stop']:.2f} dB "
                 "below the best seen)")
    return text


def summary(m: dict) -> str:
    """The console lines of a finished (or skipped, or taken) run."""
    if m.get("taken"):
        return (f"skipped {m['image']}: another process is fitting it ({m['taken']}); "
                f"its record goes to {m['out_dir']}")
    if m.get("skipped"):
        pins = f", made with other CPU kernel pins ({m['other_pins']})" if m.get(
            "other_pins") else ""
        return (f"skipped {m.get('image', 'a run')}: record exists at {m['out_dir']}{pins} "
                "(force=true reruns it)")
    parts = [f"{m['task']} of {m['image']}"]
    if m["psnr_final"] == m["psnr_final"] and m["psnr_final"] is not None:  # not NaN
        parts.append(_scores(m))
    if m.get("stop", "fixed") != "fixed":
        parts.append(_stopping(m))
    if len(m.get("seeds", [])) > 1 and m.get("psnr_seeds_mean") == m.get("psnr_seeds_mean"):
        parts.append(f"{len(m['seeds'])} seeds {m['psnr_seeds_mean']:.2f} ± "
                     f"{m['psnr_seeds_std']:.2f} dB, ensemble {m['psnr_ensemble']:.2f} dB")
    parts.append(f"{m.get('steps', m['num_iter'])} steps in {m['seconds']:.0f} s on "
                 f"{m['device']}")
    if m.get("resumed_at") is not None:
        parts.append(f"resumed from step {m['resumed_at']}")
    if m["status"] not in ("ok", "stopped"):
        parts.append(f"status {m['status']} (exit status {EXIT_DIVERGED})")
    restored = {"final": "the final output", "average": "the averaged output"}.get(
        m.get("restored"), "")
    return "; ".join(parts) + f"\nwrote {m['out_dir']}" + (
        f" (restored.png: {restored})" if restored else "")


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> float:
    show_notes()
    with checkpoint_on_signals():
        task = partial(run, tell=print)
        if is_folder(cfg.image):
            return execute(lambda c: run_folder(c, task, summary, job_overrides()), cfg)
        outcome = execute(task, cfg)
    return report(outcome, summary)


def main() -> None:
    """The ``dip`` command: a config that cannot be composed (an unknown key, a value of
    the wrong type: :mod:`dip.runs.schema`) is one ``error:`` line and exit status 2. Values
    with non-ASCII characters are quoted for Hydra (:func:`dip.runs.schema.quote_overrides`),
    and a task's settings may be spelled short (``sigma=25``: :func:`dip.runs.config.spelled`)."""
    argv = expand_argv(sys.argv)
    sweeps = bool({"-m", "--multirun"} & set(argv))
    sys.argv = [argv[0], *spelled(quote_overrides(argv[1:], sweeps=sweeps))]
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra raises: the line is ours
    try:
        app()
    except CompactHydraException as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    finally:
        if before is None:
            del os.environ["HYDRA_FULL_ERROR"]


if __name__ == "__main__":
    main()
