"""Synthetic records of the three paper tables and the figures drawn of them: the
specification that a table's figure, declared in YAML, comes out as it did when the
figures' code was written by hand.

``tests/tables_before/figures.json`` holds what the hand-written builders (commit b9149a3)
drew of each scenario (``identities.json``, the run identities of that commit); ``python
tests/table_scenarios.py DIR`` writes the figures' file again (with whatever code is
checked out).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import write_record

FROZEN = Path(__file__).resolve().parent / "tables_before"

DENOISING = ["F16", "baboon", "hill", "kodim01", "kodim02", "kodim03", "kodim12", "lena",
             "peppers"]


def _inp(root, image, seed=0, final=30.0, **kw):
    kw.setdefault("baselines", {"biharmonic": final - 2.125})
    return write_record(root, f"inp-{image}-{seed}", experiment="table_inpainting",
                        image=f"paper/inpainting50/{image}_GT.png", image_id=image,
                        dataset="csc11", seed=seed, psnr_final=final,
                        psnr_avg=final + 0.3125, psnr_corrupted=final / 3, **kw)


def inpainting(root: Path) -> None:
    """Four of the 11 images and one the paper lacks: seeds averaged, a diverged run, a
    missing baseline, crops, two commits and dates, rollbacks."""
    _inp(root, "barbara", 0, 31.23456, crop=128, num_iter=5000, backtracks=0)
    _inp(root, "barbara", 1, 30.98765, crop=128, num_iter=5000, backtracks=2)
    _inp(root, "Cameraman256", 0, 25.5, crop=128, num_iter=5000, backtracks=0,
         commit="fedcba9876543210+dirty", finished="2025-03-04T10:00:00+0000")
    _inp(root, "house", 0, 12.0, crop=128, num_iter=5000, status="diverged", backtracks=1)
    _inp(root, "Lena512", 0, 33.125, crop=128, num_iter=5000, baselines={})
    _inp(root, "kate", 0, 29.0, crop=128, num_iter=5000)  # not in paper_numbers.csv


def _den(root, image, sigma, seed=0, final=28.0, **kw):
    kw.setdefault("baselines", {"nlm": final - 1.5, "cbm3d": None})
    return write_record(root, f"den-{image}-{sigma}-{seed}", experiment="table_denoising",
                        task="denoising", image=f"paper/denoising/sigma{sigma}/{image}_noisy.png",
                        sigma=sigma, seed=seed, psnr_final=final, psnr_avg=final + 0.75,
                        psnr_corrupted=34.0 - sigma / 2.5, crop=128, **kw)


def _ensemble(mean: float) -> dict:
    return {"psnr_seeds_mean": mean, "psnr_seeds_std": 0.0625 + mean / 1000,
            "psnr_ensemble": mean + 0.9, "psnr_ensemble_avg": mean + 1.4, "seeds": [0, 1, 2]}


def denoising(root: Path) -> None:
    """Both sigmas, three seeds a run (ensembles), CBM3D for some images only."""
    for sigma in (25, 50):
        for i, image in enumerate(DENOISING[:4] if sigma == 25 else DENOISING[:3]):
            final = 30.0 - sigma / 10 + i * 0.41
            cbm3d = final + 0.5 if i % 2 == 0 else None
            _den(root, image, sigma, 0, final, baselines={"nlm": final - 1, "cbm3d": cbm3d},
                 num_iter=1000 if sigma == 25 else 700, **_ensemble(final - 0.1))


def _sr(root, dataset, factor, image, final=27.0, named=True, **kw):
    kw.setdefault("baselines", {"bicubic": final - 1.875})
    return write_record(root, f"sr-{dataset}-{factor}-{image}", experiment="table_sr",
                        task="sr", image=f"paper/sr/{dataset}/x{factor}/{image}_GT.png",
                        dataset=dataset if named else None, factor=factor, psnr_final=final,
                        psnr_avg=final + 0.25, psnr_corrupted=final - 3, crop=128,
                        num_iter=1200 * factor // 4, **kw)


def sr(root: Path) -> None:
    """Set5 and Set14 at x4 and x8; some records without a dataset (read from the path)."""
    for factor in (4, 8):
        for i, image in enumerate(["baby", "bird", "butterfly"]):
            _sr(root, "set5", factor, image, 30.0 - factor / 2 + i * 0.3, named=i != 1)
        _sr(root, "set14", factor, "zebra", 26.0 - factor / 4)
    _sr(root, "set14", 4, "face", 29.5, status="diverged")


# --- table figures -------------------------------------------------------------------

FIGURE_SCENARIOS = {"inpainting": "table_inpainting", "denoising": "table_denoising",
                    "sr": "table_sr"}
RECORDS = {"inpainting": inpainting, "denoising": denoising, "sr": sr}
"""Each scenario's records."""


def _pngs(root: Path) -> None:
    """The images a run writes, 4×4 grey, in each record under ``root``."""
    from PIL import Image

    for metrics in sorted(root.glob("*/metrics.json")):
        m = json.loads(metrics.read_text())
        names = ["gt", "corrupted", "restored", "restored_avg"]
        names += [f"baseline_{k}" for k, v in (m.get("baselines") or {}).items()
                  if v is not None]
        names += ["restored_ensemble_avg"] if m.get("psnr_ensemble_avg") else []
        for i, name in enumerate(names):
            Image.new("L", (4, 4), 10 * i).save(metrics.parent / f"{name}.png")


def figure_calls(name: str, root: Path, monkeypatch) -> list:
    """What :func:`dip.report.grids.build_figure` draws for the table of scenario ``name``
    (its records and their images written under ``root``): per figure its file, title,
    footer, layout, and each panel's title, whether it has an image, and its PSNR."""
    from dip.report import grids

    calls = []

    def grid(panels, path, **kw):
        calls.append({"file": Path(path).name, **{k: v for k, v in kw.items()},
                      "panels": [[t, img is not None, None if v is None or v != v else
                                  round(float(v), 6)] for t, img, v in panels]})
        return Path(path)

    def curves(hist, path, **kw):
        calls.append({"file": Path(path).name, **kw, "curves": hist})
        return Path(path)

    monkeypatch.setattr(grids, "image_grid", grid)
    monkeypatch.setattr(grids, "curves", curves)
    monkeypatch.setattr(grids, "histories", lambda labels, records: list(labels))
    RECORDS[name](root)
    _pngs(root)
    paths = grids.build_figure(FIGURE_SCENARIOS[name], "quick", root=root, out=root / "figs")
    return json.loads(json.dumps({"paths": [p.name for p in paths], "calls": calls},
                                 default=list))


if __name__ == "__main__":
    import tempfile

    import pytest

    out = Path(sys.argv[1] if len(sys.argv) > 1 else FROZEN)
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    for scenario in FIGURE_SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
            figures[scenario] = figure_calls(scenario, Path(tmp) / "runs", mp)
    (out / "figures.json").write_text(json.dumps(figures, indent=1, ensure_ascii=False)
                                      + "\n", encoding="utf-8")
    print("wrote figures")
