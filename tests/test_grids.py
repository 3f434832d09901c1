"""Image grids from records that lack images: the committed records (results/quick-runs,
paper-runs) keep no PNGs, so a table's grid is left as it is and its curves are drawn; a
panel whose image is not at hand keeps its place, named."""

from __future__ import annotations

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
