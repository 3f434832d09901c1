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

import hydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

import dip.config  # noqa: F401  (registers the `pick` resolver)
from dip import show_notes
from dip.signals import checkpoint_on_signals
from dip.sweep import execute, report


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
    if m["psnr_final"] == m["psnr_final"]:  # not NaN
        parts.append(f"corrupted {m['psnr_corrupted']:.2f} dB -> restored {m['psnr_final']:.2f}"
                     f" dB (averaged {m['psnr_avg']:.2f}, oracle {m['psnr_oracle']:.2f}"
                     f" at step {m['iter_oracle']})")
    if m.get("stop", "fixed") != "fixed":
        text = f"{m['stop']} stop at step {m['iter_stop']}"
        if m["psnr_stop"] == m["psnr_stop"]:  # scored (not NaN)
            text += (f": {m['psnr_stop']:.2f} dB, {m['psnr_oracle'] - m['psnr_stop']:.2f} dB "
                     "below the oracle")
        parts.append(text)
    if len(m.get("seeds", [])) > 1 and m.get("psnr_seeds_mean") == m.get("psnr_seeds_mean"):
        parts.append(f"{len(m['seeds'])} seeds {m['psnr_seeds_mean']:.2f} ± "
                     f"{m['psnr_seeds_std']:.2f} dB, ensemble {m['psnr_ensemble']:.2f} dB")
    parts.append(f"{m.get('steps', m['num_iter'])} steps in {m['seconds']:.0f} s on "
                 f"{m['device']}")
    if m.get("resumed_at") is not None:
        parts.append(f"resumed from step {m['resumed_at']}")
    if m["status"] != "ok":
        parts.append(f"status {m['status']}")
    return "; ".join(parts) + f"\nwrote {m['out_dir']}"


@hydra.main(config_path=str(dip.config.CONFIG_DIR), config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> float:
    from dip.folder import is_folder, run_folder
    from dip.run import job_overrides, run

    show_notes()
    with checkpoint_on_signals():
        if is_folder(cfg.image):
            return execute(lambda c: run_folder(c, run, summary, job_overrides()), cfg)
        outcome = execute(run, cfg)
    return report(outcome, summary)


def main() -> None:
    """The ``dip`` command: a config that cannot be composed (an unknown key, a value of
    the wrong type: :mod:`dip.schema`) is one ``error:`` line and exit status 2. Values
    with non-ASCII characters are quoted for Hydra (:func:`dip.schema.quote_overrides`)."""
    from dip.folder import expand_argv
    from dip.schema import one_line, quote_overrides

    argv = expand_argv(sys.argv)
    sys.argv = [argv[0], *quote_overrides(argv[1:], sweeps=bool({"-m", "--multirun"} &
                                                               set(argv)))]
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
