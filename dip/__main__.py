"""Command-line entry point: ``dip`` / ``python -m dip`` (a Hydra app).

Examples
--------
Denoise a bundled image with the CPU-friendly profile::

    dip image=skimage:astronaut crop=128 sigma=25

Restore your own noisy photo, with the official settings (GPU advised)::

    dip image=photo.png corrupted=true profile=paper

Sweep learning rates and seeds::

    dip -m task=inpainting image=set12/05.png fit.lr=0.01,0.001 seed=0,1
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

import dip.config  # noqa: F401  (registers the `pick` resolver)
from dip import DipError


def _summary(m: dict) -> str:
    if m.get("skipped"):
        return f"skipped {m['image']}: record exists at {m['out_dir']} (force=true reruns it)"
    parts = [f"{m['task']} of {m['image']}"]
    if m["psnr_final"] == m["psnr_final"]:  # not NaN
        parts.append(f"corrupted {m['psnr_corrupted']:.2f} dB -> restored {m['psnr_final']:.2f}"
                     f" dB (averaged {m['psnr_avg']:.2f}, oracle {m['psnr_oracle']:.2f}"
                     f" at step {m['iter_oracle']})")
    parts.append(f"{m['num_iter']} steps in {m['seconds']:.0f} s on {m['device']}")
    if m["status"] != "ok":
        parts.append(f"status {m['status']}")
    return "; ".join(parts) + f"\nwrote {m['out_dir']}"


@hydra.main(config_path=str(dip.config.CONFIG_DIR), config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> float:
    from dip.run import run

    try:
        metrics = run(cfg)
    except DipError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(_summary(metrics))
    return metrics["psnr_final"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
