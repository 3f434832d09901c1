"""Studies of sweeps from fake records: varying keys, seed means, bold best, profiles, CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import study_record
from PIL import Image

from dip import DipError, DipNote
from dip.report import study_figures
from dip.report.__main__ import main
from dip.report.stats import Interval, bootstrap
from dip.report.study import build_study
from dip.report.varying import load_study, varying_keys

# psnr_avg of (image, lr, seed); psnr_final is 1 dB lower
PSNR = {("F16", 0.01, 0): 30.0, ("F16", 0.01, 1): 31.0,
        ("F16", 0.001, 0): 28.0, ("F16", 0.001, 1): 28.5,
        ("kodim01", 0.01, 0): 25.0, ("kodim01", 0.01, 1): 27.0,
        ("kodim01", 0.001, 0): 26.0, ("kodim01", 0.001, 1): 26.2}


def lr_sweep(root: Path, overrides=True) -> Path:
    for (image, lr, seed), psnr in PSNR.items():
        study_record(root, image, seed, psnr, lr=lr, overrides=[
            f"image=denoising/{image}.png", f"fit.lr={lr}", f"seed={seed}",
            f"records={root}"] if overrides else None)
    return root


@pytest.fixture
def runs(tmp_path) -> Path:
    return lr_sweep(tmp_path / "runs")


def test_csv_means_and_stds(runs, tmp_path):
    text, paths = build_study(runs, tmp_path / "out")
    assert [p.name for p in paths] == ["study.csv", "study_settings.csv", "study.md",
                                       "study.tex", "study.png", "study_curves.png"]
    table = pd.read_csv(tmp_path / "out" / "study.csv")
    assert list(table.columns[:5]) == ["image", "fit.lr", "setting", "runs", "seeds"]
    assert {"psnr_final", "psnr_avg_std", "psnr_oracle", "psnr_stop_std", "iter_oracle",
            "seconds"} <= set(table.columns)
    assert len(table) == 4 and set(table["runs"]) == {2} and set(table["seeds"]) == {2}
    for (image, lr), row in table.set_index(["image", "fit.lr"]).iterrows():
        a, b = PSNR[image, lr, 0], PSNR[image, lr, 1]
        assert row["psnr_avg"] == pytest.approx((a + b) / 2)
        assert row["psnr_avg_std"] == pytest.approx(abs(a - b) / math.sqrt(2))
        assert row["psnr_final"] == pytest.approx((a + b) / 2 - 1)
        assert row["iter_oracle"] == pytest.approx(100.5)
        assert row["seconds"] == pytest.approx(2.5)
    assert table.loc[0, "setting"] == "fit.lr=0.001"  # settings sorted by value


def test_one_run_per_cell_has_no_std(tmp_path):
    study_record(tmp_path, "F16", 0, 30.0, lr=0.01)
    study_record(tmp_path, "F16", 0, 29.0, lr=0.1)
    table = pd.read_csv(Path(build_study(tmp_path, tmp_path / "o")[1][0]))
    assert table["psnr_avg_std"].isna().all() and list(table["fit.lr"]) == [0.01, 0.1]


@pytest.mark.parametrize("overrides", [True, False])
def test_varying_key_found(tmp_path, overrides):
    records, values, named = load_study(lr_sweep(tmp_path / "r", overrides=overrides))
    assert named == (["image", "fit.lr", "seed", "records"] if overrides else [])
    # seed, threads, progress, out_dir, data.root and gt (it follows the image) differ too
    assert varying_keys(values, records["image_id"], named) == ["fit.lr"]


@pytest.mark.parametrize("overrides", [True, False])
def test_group_override_names_the_net_not_its_derived_keys(tmp_path, overrides):
    for net, depth, psnr in (("skip", 5, 30.0), ("encdec", 6, 29.0)):
        study_record(tmp_path, "F16", 0, psnr, net=net, depth=depth,
                     overrides=[f"net={net}"] if overrides else None)
    records, values, named = load_study(tmp_path)
    assert varying_keys(values, records["image_id"], named) == ["net.name"]
    _, paths = build_study(tmp_path, tmp_path / "out", by=["net"])  # the group's name
    assert pd.read_csv(paths[0])["net.name"].tolist() == ["encdec", "skip"]


def cells(text: str) -> dict:
    """Row label (first column) → the other cells of a markdown table."""
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ")}


def interval(image_seeds: dict) -> Interval:
    """The bootstrap interval of the mean over images of {image: [value per seed]}."""
    return bootstrap([image_seeds[i] for i in sorted(image_seeds)])


def test_table_gives_seed_std_per_image_and_interval_per_setting(runs, tmp_path):
    text, _ = build_study(runs, tmp_path / "out", metric="psnr_avg")
    rows = cells(text)
    assert rows["fit.lr"] == ["F16", "kodim01", "mean [95 % interval]", "Δ vs best [95 %]",
                              "seeds"]
    low = interval({"F16": [28.0, 28.5], "kodim01": [26.0, 26.2]})
    high = interval({"F16": [30.0, 31.0], "kodim01": [25.0, 27.0]})
    delta = interval({"F16": [28.0 - 30.0, 28.5 - 31.0],  # lr 0.001 − lr 0.01
                      "kodim01": [26.0 - 25.0, 26.2 - 27.0]})
    assert low.lo < low.mean < low.hi and high.lo < high.mean < high.hi
    assert rows["0.001"] == ["28.25 ± 0.35", "**26.10 ± 0.14**", low.text(),
                             f"{delta.mean:+.2f} [{delta.lo:+.2f}, {delta.hi:+.2f}]", "2"]
    assert rows["0.01"] == ["**30.50 ± 0.71**", "26.00 ± 1.41", f"**{high.text()}**",
                            "best", "2"]
    assert "Δ vs best: the setting minus the best mean's, paired on image and seed" in text
    assert "profile quick, 300 iterations, device cpu (x86_64, 2 threads), commit 0123456" \
        in text and "2 seed(s) per cell (0, 1)." in text
    assert "each image's mean ± std over its seeds" in text and "95 % bootstrap" in text
    assert (tmp_path / "out" / "study.md").read_text() == text
    tex = (tmp_path / "out" / "study.tex").read_text()
    assert r"\textbf{30.50 $\pm$ 0.71}" in tex and r"\textbf{26.10 $\pm$ 0.14}" in tex
    assert "0.001 & 28.25 $\\pm$ 0.35 &" in tex and r"\caption{" in tex
    assert (r"fit.lr & F16 & kodim01 & mean [95 \% interval] & $\Delta$ vs best [95 \%] & "
            r"seeds \\") in tex and rf"\textbf{{{high.text()}}} & best & 2" in tex


def test_paired_delta_to_best_cancels_the_images_spread(tmp_path):
    """Images 10 dB apart and a setting 0.5 dB below on every image and seed: the means'
    intervals overlap, the paired Δ clears zero."""
    for i, image in enumerate(["F16", "kodim01", "kodim02"]):
        for seed in range(3):
            base = 25.0 + 5 * i + 0.1 * seed
            study_record(tmp_path, image, seed, base, lr=0.01)
            study_record(tmp_path, image, seed, base - 0.5, lr=0.001)
    build_study(tmp_path, tmp_path / "out")
    settings = pd.read_csv(tmp_path / "out" / "study_settings.csv").set_index("fit.lr")
    assert settings.loc[0.001, "psnr_avg_hi"] > settings.loc[0.01, "psnr_avg_lo"]
    assert settings.loc[0.001, ["psnr_avg_vs_best", "psnr_avg_vs_best_lo",
                                "psnr_avg_vs_best_hi"]].tolist() == pytest.approx([-0.5] * 3)
    assert settings.loc[0.01, "psnr_avg_vs_best"] == 0


def test_a_study_by_seed_pairs_the_images(tmp_path):
    """Settings that share no seed (--by seed) are paired on each image's mean."""
    for image, base in (("F16", 30.0), ("kodim01", 20.0)):
        study_record(tmp_path, image, 0, base)
        study_record(tmp_path, image, 1, base - 0.4)
    build_study(tmp_path, tmp_path / "out", by=["seed"])
    settings = pd.read_csv(tmp_path / "out" / "study_settings.csv").set_index("seed")
    assert settings.loc[1, "psnr_avg_vs_best"] == pytest.approx(-0.4)
    assert settings.loc[0, "psnr_avg_vs_best"] == 0


def test_one_setting_has_no_delta_column(tmp_path):
    study_record(tmp_path, "F16", 0, 30.0, lr=0.01)
    study_record(tmp_path, "F16", 1, 29.0, lr=0.01)
    text, _ = build_study(tmp_path, tmp_path / "out", by=["fit.lr"])
    assert "Δ vs best" not in text


def test_settings_csv_gives_each_setting_s_interval(runs, tmp_path):
    build_study(runs, tmp_path / "out")
    settings = pd.read_csv(tmp_path / "out" / "study_settings.csv")
    assert list(settings.columns[:5]) == ["fit.lr", "setting", "images", "seeds", "runs"]
    assert settings["fit.lr"].tolist() == [0.001, 0.01]
    assert settings[["images", "seeds", "runs"]].values.tolist() == [[2, 2, 4], [2, 2, 4]]
    final = interval({"F16": [29.0, 30.0], "kodim01": [24.0, 26.0]})  # psnr_final, lr 0.01
    assert settings.loc[1, ["psnr_final", "psnr_final_lo", "psnr_final_hi"]].tolist() == \
        pytest.approx([final.mean, final.lo, final.hi])
    assert (settings["psnr_avg_lo"] < settings["psnr_avg"]).all()


def test_images_go_down_the_rows_when_they_outnumber_the_settings(tmp_path):
    for image, psnr in (("a", 30.0), ("b", 28.0), ("c", 26.0)):  # a folder run: one seed
        study_record(tmp_path, image, 0, psnr)
    with pytest.warns(DipNote, match="one setting"):
        text, _ = build_study(tmp_path, tmp_path / "out")
    rows = cells(text)
    mean = interval({"a": [30.0], "b": [28.0], "c": [26.0]})
    assert rows["image"] == ["all runs"] and rows["a"] == ["**30.00**"]
    assert rows["c"] == ["**26.00**"]  # the only setting: the best of its image
    assert rows["mean [95 % interval]"] == [f"**{mean.text()}**"] and rows["seeds"] == ["1"]
    assert "1 seed(s) per cell (0)." in text


def test_uneven_seeds_are_stated(runs, tmp_path):
    study_record(runs, "F16", 2, 30.5)  # a third seed for one image of lr 0.01
    text, paths = build_study(runs, tmp_path / "out")
    assert cells(text)["0.01"][-1] == "2–3" and cells(text)["0.001"][-1] == "2"
    assert "2–3 seed(s) per cell (0, 1, 2; see the seeds of each setting)." in text
    assert pd.read_csv(paths[0])["seeds"].tolist() == [2, 3, 2, 2]  # F16 first


def test_text_settings_in_natural_order(tmp_path):
    for depth, arch in enumerate(("encdec10", "skip5", "encdec2")):
        study_record(tmp_path, "F16", 0, 30.0, depth=depth, overrides=[f"arch={arch}"])
    _, paths = build_study(tmp_path, tmp_path / "out")
    assert pd.read_csv(paths[0])["arch"].tolist() == ["encdec2", "encdec10", "skip5"]


def test_profiles_are_never_mixed(runs, tmp_path):
    study_record(runs, "F16", 0, 40.0, profile="paper")
    with pytest.raises(DipError, match=r"holds records of profiles paper and quick; "
                                       r"choose one with --profile"):
        build_study(runs, tmp_path / "out")
    with pytest.warns(DipNote, match="one setting"):
        _, paths = build_study(runs, profile="paper", out=tmp_path / "p")
    assert pd.read_csv(paths[0])["psnr_avg"].tolist() == [40.0]
    with pytest.raises(DipError, match="no records of profile smoke"):
        build_study(runs, profile="smoke", out=tmp_path / "s")


def test_default_out_is_beside_the_records_named_after_root_and_profile(runs, tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, paths = build_study(runs)
    assert paths[0] == runs / "studies" / "runs_quick" / "study.csv"
    assert build_study(runs, name="lr")[1][2] == runs / "studies" / "lr_quick" / "study.md"
    assert main(["study", "--root", str(runs), "--name", "cli"]) == 0
    assert (runs / "studies" / "cli_quick" / "study.csv").is_file()
    assert not (tmp_path / "results").exists()  # never into the checkout's results/
    assert len(load_study(runs)[0]) == len(PSNR)  # a study is not read as a record


def two_keys(root: Path) -> Path:
    for image in ("F16", "kodim01"):
        for lr in (0.01, 0.001):
            for depth in (4, 5):
                study_record(root, image, 0, 20 + 1000 * lr + depth, lr=lr, depth=depth,
                             overrides=[f"fit.lr={lr}", f"net.depth={depth}"])
    return root


def test_two_keys_draw_a_heatmap(tmp_path, monkeypatch):
    drawn = []
    heatmap = study_figures.plot_heatmap
    monkeypatch.setattr(study_figures, "plot_heatmap",
                        lambda fig, ax, cells, runs, keys, metric: drawn.append(keys) or
                        heatmap(fig, ax, cells, runs, keys, metric))
    text, paths = build_study(two_keys(tmp_path / "r"), tmp_path / "out")
    assert drawn == [["fit.lr", "net.depth"]]
    table = pd.read_csv(paths[0])
    assert list(table.columns[:5]) == ["image", "fit.lr", "net.depth", "setting", "runs"]
    assert cells(text)["0.01"][:2] == ["5", "**35.00**"] and len(table) == 8
    assert Image.open(paths[4]).size[0] > 300


def test_by_chooses_the_keys(tmp_path):
    root = two_keys(tmp_path / "r")
    _, paths = build_study(root, tmp_path / "out", by=["fit.lr"])
    table = pd.read_csv(paths[0])
    assert "net.depth" not in table and set(table["runs"]) == {2}
    row = table[(table["image"] == "F16") & (table["fit.lr"] == 0.01)].iloc[0]
    assert row["psnr_avg"] == pytest.approx(34.5)  # depths 4 and 5
    assert row["psnr_avg_std"] == pytest.approx(1 / math.sqrt(2))
    with pytest.raises(DipError, match="--by fit.lrr: no such config key"):
        build_study(root, tmp_path / "out", by=["fit.lrr"])


def test_one_setting_is_still_a_table(tmp_path):
    study_record(tmp_path, "F16", 0, 30.0)
    study_record(tmp_path, "F16", 1, 32.0)
    with pytest.warns(DipNote, match="one setting"):
        text, paths = build_study(tmp_path, tmp_path / "out")
    assert cells(text)["setting"] == ["F16", "mean [95 % interval]", "seeds"]
    assert cells(text)["all runs"] == ["**31.00 ± 1.41**", "**31.00 [30.00, 32.00]**", "2"]
    assert "one setting" in text
    assert pd.read_csv(paths[0])["setting"].tolist() == ["all runs"]


def test_records_without_history_make_no_curves(runs, tmp_path):
    for history in runs.glob("*/history.csv"):
        history.unlink()
    with pytest.warns(DipNote, match="no study_curves.png"):
        _, paths = build_study(runs, tmp_path / "out")
    assert paths[-1].name == "study.png" and not (tmp_path / "out" / "study_curves.png").exists()


def test_bad_metric(runs, tmp_path):
    with pytest.raises(DipError, match="--metric psnr_x is not in these records"):
        build_study(runs, tmp_path / "out", metric="psnr_x")


def test_cli(runs, tmp_path, capsys):
    assert main(["study", "--root", str(runs), "--out", str(tmp_path / "o"),
                 "--metric", "psnr_final"]) == 0
    out, err = capsys.readouterr()
    assert " F16 " in out and "**29.50 ± 0.71**" in out and "study.csv" in err
    study_record(runs, "F16", 0, 40.0, profile="paper")
    assert main(["study", "--root", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {runs} holds records of profiles paper and quick; choose one "
                   "with --profile")


def test_cli_module_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dip.report", "study", "--root",
                           str(tmp_path / "none")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: no readable run records under ")


@pytest.mark.slow
def test_multirun_end_to_end(tmp_path):
    from conftest import smooth_png

    image = smooth_png(tmp_path / "a.png")
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    dip = Path(sys.executable).with_name("dip")
    proc = subprocess.run([str(dip), "-m", f"image={image}", "profile=smoke",
                           "fit.lr=0.01,0.001", "fit.num_iter=6", "progress=false",
                           f"records={runs}"], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = subprocess.run([sys.executable, "-m", "dip.report", "study", "--root", str(runs),
                             "--out", str(tmp_path / "study")], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    table = pd.read_csv(tmp_path / "study" / "study.csv")
    assert sorted(table["fit.lr"]) == [0.001, 0.01] and set(table["runs"]) == {1}
    head = report.stdout.splitlines()
    assert "profile smoke" in report.stdout
    assert any("fit.lr" in line for line in head) and any(
        line.startswith("| 0.001 ") for line in head)  # the settings go down the rows
    assert Image.open(tmp_path / "study" / "study_curves.png").size[0] > 300


def test_results_readme_shows_each_study_with_its_reading(tmp_path):
    from dip.report.readme import build_readme

    study = tmp_path / "studies" / "sweep_x_quick"
    study.mkdir(parents=True)
    (study / "study.md").write_text("Study sweep_x: psnr_avg per image\n\n| image | a |\n")
    (study / "study.csv").write_text("image,a\n")
    (study / "study_settings.csv").write_text("setting,a\n")
    (study / "study.png").write_bytes(b"png")
    page = build_readme(tmp_path).read_text()
    assert "## Study `sweep_x_quick`" in page and "| image | a |" in page
    assert "[study.csv](studies/sweep_x_quick/study.csv)" in page
    assert "[study_settings.csv](studies/sweep_x_quick/study_settings.csv)" in page
    assert "![study](studies/sweep_x_quick/study.png)" in page
    assert "study_curves" not in page  # only the figures that are there
    (study / "reading.md").write_text("Deeper nets win at commit abc.\n")
    assert "Deeper nets win at commit abc." in build_readme(tmp_path).read_text()
