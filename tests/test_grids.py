"""Image grids from records that lack images: the committed records (results/quick-runs,
paper-runs) keep no PNGs, so a table's grid is left as it is and its curves are drawn; a
panel whose image is not at hand keeps its place, named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from table_scenarios import RECORDS

from dip.plots import image_grid
from dip.report.grids import build_table_figure


def test_records_without_images_leave_the_grid_alone_and_draw_the_curves(tmp_path,
                                                                        monkeypatch):
    from dip.report import grids

    drawn = []
    monkeypatch.setattr(grids, "histories", lambda labels, records: list(labels))
    monkeypatch.setattr(grids, "curves", lambda hist, path, **kw: drawn.append(path) or path)
    root = tmp_path / "runs"
    RECORDS["denoising"](root)  # metrics only: no restored.png, as committed records
    out = tmp_path / "figs"
    out.mkdir()
    grid = out / "table_denoising_quick_sigma25.png"
    grid.write_bytes(b"the grid drawn where the runs were made")
    with pytest.warns(UserWarning, match="keep no restored.png"):
        paths = build_table_figure("table_denoising", "quick", root=root, out=out)
    assert grid.read_bytes() == b"the grid drawn where the runs were made"
    assert [p.name for p in paths] == [p.name for p in drawn] == [
        "table_denoising_quick_sigma25_curves.png", "table_denoising_quick_sigma50_curves.png"]


def test_a_panel_without_its_image_keeps_its_place(tmp_path):
    img = np.full((8, 8, 3), 0.5)
    path = image_grid([("gt", None, None), ("noisy", img, 20.0), ("DIP", img, 30.0)],
                      tmp_path / "g.png", ncols=3)
    assert Image.open(path).size[0] > Image.open(path).size[1]  # one row of three
    with pytest.raises(ValueError, match="none of the 2 panels has an image"):
        image_grid([("gt", None, None), ("noisy", None, None)], tmp_path / "h.png")


def test_a_figure_shows_each_setting_once_at_its_lowest_seed(tmp_path, monkeypatch):
    from conftest import write_record

    from dip.report import grids

    drawn = {}
    monkeypatch.setattr(grids, "image_grid", lambda panels, path, **kw: drawn.setdefault(
        "panels", [name for name, _, _ in panels]) and path)
    monkeypatch.setattr(grids, "curves", lambda hist, path, **kw: drawn.setdefault(
        "curves", hist) and path)
    monkeypatch.setattr(grids, "histories", lambda labels, records: [
        (label, Path(r).name) for label, r in zip(labels, records, strict=True)])
    root = tmp_path / "runs"
    for i, (label, seed) in enumerate([("depth 6", 1), ("depth 6", 0), ("depth 2", 2),
                                       ("depth 2", 0), ("depth 2", 1)]):
        record = write_record(root, f"r{i}-{label[-1]}-{seed}", experiment="fig_architectures",
                              label=label, seed=seed, finished=f"2025-03-01T10:0{i}:00+0000")
        for name in ("gt", "corrupted", "restored"):
            Image.new("L", (4, 4)).save(record / f"{name}.png")
    grids.build_figure("fig_architectures", "quick", root=root, out=tmp_path / "figs")
    assert [p for p in drawn["panels"] if p.startswith("DIP")] == ["DIP: depth 6",
                                                                   "DIP: depth 2"]
    assert drawn["curves"] == [("depth 6", "r1-6-0"), ("depth 2", "r3-2-0")]
