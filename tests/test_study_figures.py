"""The figures of a study, as drawn: the heatmap's cells (mean ± interval or std, missing
cells), log axes for learning rates, and the PSNR curves as small multiples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import study_record

from dip.report import study_figures
from dip.report.stats import bootstrap
from dip.report.study import build_study, study_runs
from dip.report.study_figures import log_scaled
from dip.report.study_stats import curve_stats
from dip.report.varying import load_study


def drawn(monkeypatch) -> list:
    """The figures build_study saves (study.png first, then study_curves.png)."""
    figures = []
    save = study_figures.save_figure
    monkeypatch.setattr(study_figures, "save_figure",
                        lambda fig, path: figures.append(fig) or save(fig, path))
    return figures


def footer(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts)


def ticks(axis) -> tuple[list, list]:
    return list(axis.get_majorticklocs()), [t.get_text() for t in axis.get_ticklabels()]


def psnr_of(image: str, depth: int, lr: float, seed: int) -> float:
    return 20 + 100 * lr + depth + 0.3 * seed + (image == "kodim01")


def depth_lr_sweep(root, images=("F16", "kodim01"), depths=(4, 5), seeds=(0, 1, 2),
                   skip=((5, 0.001),)):
    """Records of depth × lr (overrides in that order) with ``skip`` left out."""
    for image in images:
        for depth in depths:
            for lr in (0.01, 0.001):
                if (depth, lr) in skip:
                    continue
                for seed in seeds:
                    study_record(root, image, seed, psnr_of(image, depth, lr, seed), lr=lr,
                                 depth=depth, overrides=[f"net.depth={depth}", f"fit.lr={lr}"])
    return root


def test_log_scaled_keys():
    assert log_scaled("fit.lr", [0.001, 0.003, 0.01])  # a decade only: still a rate
    assert log_scaled("task.sigma", [5, 100]) and not log_scaled("task.sigma", [5, 50])
    assert not log_scaled("net.depth", [2, 6]) and not log_scaled("fit.lr", [0.0, 0.01])
    assert not log_scaled("x", [-1, 100]) and not log_scaled("arch", ["a", "b"])
    assert not log_scaled(None, [1, 100])


def test_heatmap_cells_write_mean_and_interval_and_mark_missing_cells(tmp_path, monkeypatch):
    figures = drawn(monkeypatch)
    build_study(depth_lr_sweep(tmp_path / "r"), tmp_path / "out")
    ax = figures[0].axes[0]
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("net.depth", "fit.lr")
    assert ax.get_xscale() == "log" and ticks(ax.xaxis) == ([0.001, 0.01], ["0.001", "0.01"])
    assert ax.xaxis.get_minorticklocs().size == 0
    assert ax.get_yscale() == "linear" and ticks(ax.yaxis) == ([0, 1], ["4", "5"])
    texts = {tuple(t.get_position()): t.get_text() for t in ax.texts}
    for depth, row in ((4, 0), (5, 1)):
        for lr in (0.001, 0.01):
            if (depth, lr) == (5, 0.001):
                assert texts[lr, row] == "no runs"
                continue
            iv = bootstrap([[psnr_of(i, depth, lr, s) for s in range(3)]
                            for i in ("F16", "kodim01")])
            assert texts[lr, row] == f"{iv.mean:.2f}\n± {(iv.hi - iv.lo) / 2:.2f}"
    assert [p.get_hatch() for p in ax.patches] == ["///"]
    colours = ax.collections[0].get_array()
    assert colours.mask.sum() == 1 and colours.max() == pytest.approx(
        np.mean([psnr_of(i, 5, 0.01, s) for i in ("F16", "kodim01") for s in range(3)]))
    assert ("half-width of its 95 % bootstrap interval (images, then seeds); 2 image(s), "
            "3 seed(s) a cell; hatched: no runs.") in footer(figures[0])


def test_heatmap_of_one_image_writes_the_std_over_seeds(tmp_path, monkeypatch):
    figures = drawn(monkeypatch)
    build_study(depth_lr_sweep(tmp_path / "r", images=("F16",), skip=()), tmp_path / "out")
    ax = figures[0].axes[0]
    texts = {tuple(t.get_position()): t.get_text() for t in ax.texts}
    values = [psnr_of("F16", 4, 0.01, s) for s in range(3)]
    assert texts[0.01, 0] == f"{np.mean(values):.2f}\n± {np.std(values, ddof=1):.2f}"
    assert "± the std over seeds (one image); 1 image(s), 3 seed(s) a cell." in \
        footer(figures[0])
    assert not ax.patches  # nothing missing


def test_one_seed_writes_the_mean_alone(tmp_path, monkeypatch):
    figures = drawn(monkeypatch)
    build_study(depth_lr_sweep(tmp_path / "r", images=("F16",), seeds=(0,)), tmp_path / "out")
    texts = [t.get_text() for t in figures[0].axes[0].texts]
    assert f"{psnr_of('F16', 4, 0.01, 0):.2f}" in texts and not any("±" in t for t in texts)
    assert "one seed: no band" in footer(figures[1])


def test_line_axis_log_with_values_or_categorical(tmp_path, monkeypatch):
    figures = drawn(monkeypatch)
    for lr, psnr in ((0.1, 20.0), (0.01, 30.0), (0.001, 25.0)):
        study_record(tmp_path / "lr", "F16", 0, psnr, lr=lr)
    build_study(tmp_path / "lr", tmp_path / "o1")
    ax = figures[0].axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "fit.lr"
    assert ticks(ax.xaxis) == ([0.001, 0.01, 0.1], ["0.001", "0.01", "0.1"])
    for net, psnr in (("skip", 30.0), ("encdec", 29.0)):
        study_record(tmp_path / "net", "F16", 0, psnr, net=net)
    figures.clear()
    build_study(tmp_path / "net", tmp_path / "o2")
    ax = figures[0].axes[0]
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["encdec", "skip"]


def test_three_keys_show_the_two_that_spread_most(tmp_path, monkeypatch):
    figures = drawn(monkeypatch)
    for lr in (0.01, 0.001):
        for depth in (4, 5):
            for net in ("skip", "unet"):  # net moves the mean by 0.1 dB, lr by 9, depth by 1
                study_record(tmp_path, "F16", 0, 20 + 1000 * lr + depth + (net == "unet") / 10,
                             lr=lr, depth=depth, net=net,
                             overrides=[f"fit.lr={lr}", f"net.depth={depth}", f"net={net}"])
    text, paths = build_study(tmp_path, tmp_path / "out")
    assert list(pd.read_csv(paths[0]).columns[1:4]) == ["fit.lr", "net.depth", "net.name"]
    ax = figures[0].axes[0]
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("fit.lr", "net.depth")
    assert ax.get_yscale() == "log" and ticks(ax.xaxis)[1] == ["4", "5"]
    assert "mean over images and net.name" in ax.get_title()
    assert [a.get_title() for a in figures[1].axes] == ["fit.lr = 0.001", "fit.lr = 0.01"]


def test_curves_are_small_multiples_a_panel_per_row_setting(tmp_path, monkeypatch):
    figures = drawn(monkeypatch)
    build_study(depth_lr_sweep(tmp_path / "r", images=("F16",), depths=(2, 3, 4, 5, 6),
                               seeds=(0, 1), skip=((6, 0.001),)), tmp_path / "out")
    fig = figures[1]
    panels = fig.axes
    assert [a.get_title() for a in panels] == [f"net.depth = {d}" for d in range(2, 7)]
    assert [len(a.lines) for a in panels] == [2, 2, 2, 2, 1]
    assert [len(a.collections) for a in panels] == [2, 2, 2, 2, 1]  # the seeds' bands
    assert all(panels[0].get_shared_y_axes().joined(panels[0], a) for a in panels)
    assert panels[0].get_ylim() == panels[4].get_ylim()
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "fit.lr"
    assert [t.get_text() for t in legend.get_texts()] == ["0.001", "0.01"]
    assert [tuple(a.lines[-1].get_color()) for a in panels].count(
        tuple(panels[0].lines[1].get_color())) == 5  # lr 0.01: one colour in every panel
    # a 2 × 3 grid: the third panel has none below it and shows the iterations
    assert [a.get_xlabel() for a in panels] == ["", "", "iteration", "iteration", "iteration"]
    assert [a.get_ylabel() != "" for a in panels] == [True, False, False, True, False]
    assert "band: the lowest to the highest of those 2 seed curves" in footer(fig)


def test_curve_stats_average_images_then_seeds(tmp_path):
    psnr = {("F16", 0): 30.0, ("F16", 1): 31.0, ("kodim01", 0): 25.0, ("kodim01", 1): 27.0}
    for (image, seed), value in psnr.items():
        study_record(tmp_path, image, seed, value, lr=0.01, overrides=[f"seed={seed}"])
        study_record(tmp_path, image, seed, value - 5, lr=0.001, overrides=[f"seed={seed}"])
    records, values, _ = load_study(tmp_path)
    stats = curve_stats(study_runs(records, values, ["fit.lr"]), ["fit.lr"], "psnr_gt_avg")
    assert set(stats["panel"]) == {"all runs"}
    assert list(dict.fromkeys(stats["curve"])) == ["0.001", "0.01"]
    end = stats[(stats["curve"] == "0.01") & (stats["step"] == 200)].iloc[0]
    # seed 0: (30 + 25) / 2, seed 1: (31 + 27) / 2
    assert end[["mean", "lo", "hi", "seeds"]].tolist() == [28.25, 27.5, 29.0, 2]
    mid = stats[(stats["curve"] == "0.001") & (stats["step"] == 100)].iloc[0]
    assert mid["mean"] == pytest.approx(28.25 - 5 - 2)
    assert math.isnan(stats.loc[stats["step"] == 0, "mean"].iloc[0])  # no average yet
