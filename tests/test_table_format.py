"""A table shows each image over its seeds (mean ± std), each block's mean with its
bootstrap interval, its columns in groups (this run, the released results through this
run's crop, the paper) in markdown, LaTeX and CSV, and a Δ vs paper only on whole images;
two tables of this format still compare value by value."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import body, write_record

from dip.report.__main__ import main
from dip.report.compare import compare_tables
from dip.report.headings import Heading, name, parse
from dip.report.render import markdown, write_table
from dip.report.stats import bootstrap
from dip.report.tables import table

PAPER = """experiment,dataset,factor,image,method,psnr_recomputed,psnr_printed
inpainting50,csc11,,barbara,deep_prior,32.183,32.22
inpainting50,csc11,,barbara,papyan,28.133,28.14
inpainting50,csc11,,house,deep_prior,38.997,39.16
inpainting50,csc11,,house,papyan,34.518,34.58
denoising,dip9,25,F16,noisy,20.352,
denoising,dip9,25,F16,nlm,31.337,
denoising,dip9,25,F16,bm3d,32.665,
denoising,dip9,25,F16,deep_prior,33.69,
denoising,dip9,25,baboon,deep_prior,24.508,
denoising,dip9,50,F16,deep_prior,29.17,
sr,set5,4,baby,bicubic,31.779,
sr,set5,4,baby,LapSRN,33.547,
sr,set5,4,baby,deep_prior,31.491,
sr,set5,4,bird,bicubic,30.198,
sr,set5,4,bird,LapSRN,33.761,
sr,set5,4,bird,deep_prior,31.796,
"""
FINAL = {"barbara": [30.0, 30.5, 31.25], "hill": [28.0], "house": [35.0, 34.0, 34.75]}
"""Each inpainting image's final PSNR per seed (hill: one seed), in the table's order."""


@pytest.fixture
def paper(tmp_path):
    path = tmp_path / "paper_numbers.csv"
    path.write_text(PAPER)
    return path


def _biharmonic(image: str) -> float:
    return 27.0 + len(image) / 8


def _inpainting(root, crop=128, profile="quick", released=True, final=FINAL):
    """One record per seed of each image (``released``: with the released results)."""
    for image, finals in final.items():
        for seed, value in enumerate(finals):
            extra = {"released": {"papyan": _biharmonic(image) + 1, "voronoi": 26.5}} \
                if released else {}
            write_record(root, f"inp-{image}-{seed}", crop=crop, experiment="table_inpainting",
                         image=f"paper/inpainting50/{image}_GT.png", image_id=image,
                         dataset="csc11", seed=seed, profile=profile, psnr_final=value,
                         psnr_avg=value + 0.25 * seed,
                         baselines={"biharmonic": _biharmonic(image)}, **extra)


def _ensemble(root, image, finals, averaged, sigma=25):
    """A seed-ensemble record (``averaged`` None: made before psnr_seeds_avg was kept)."""
    lists = {"psnr_seeds": finals}
    lists.update({} if averaged is None else {"psnr_seeds_avg": averaged})
    write_record(root, f"den-{image}-{sigma}", crop=128, experiment="table_denoising",
                 task="denoising", image=f"paper/denoising/sigma{sigma}/{image}_noisy.png",
                 sigma=sigma, seeds=list(range(len(finals))), psnr_final=finals[0],
                 psnr_avg=(averaged or [finals[0] + 0.5])[0], psnr_seeds_mean=np.mean(finals),
                 psnr_seeds_std=np.std(finals, ddof=1), psnr_ensemble=max(finals) + 0.5,
                 psnr_ensemble_avg=max(finals) + 1.0, baselines={"nlm": 27.0},
                 released={"cbm3d": 30.5, "nlm": 27.5}, **lists)


def _sr(root, released=True):
    for image, base in (("baby", 31.0), ("bird", 29.5)):
        for seed in range(3):
            extra = {"released": {"lapsrn": base + 2, "bicubic": base - 1}} if released else {}
            write_record(root, f"sr-{image}-{seed}", crop=128, experiment="table_sr", task="sr",
                         image=f"paper/sr/set5/x4/{image}_GT.png", dataset="set5", factor=4,
                         seed=seed, psnr_final=base + seed / 10, psnr_avg=base + seed / 5,
                         baselines={"bicubic": base - 1.5}, **extra)


def _same(interval, row, column):
    assert (row[column], row[name("run", column.removeprefix("run: "), "lo")],
            row[name("run", column.removeprefix("run: "), "hi")]) == (
        interval.mean, interval.lo, interval.hi)


# --- seeds ---------------------------------------------------------------------------------

def test_an_image_row_is_the_mean_and_std_over_its_seeds(tmp_path, paper):
    _inpainting(tmp_path / "runs")
    df = table("inpainting", "quick", root=tmp_path / "runs", paper=paper)
    rows = body(df).set_index("image")
    assert list(rows.index) == list(FINAL)
    assert rows["seeds"].to_dict() == {"barbara": 3, "hill": 1, "house": 3}
    for image, finals in FINAL.items():
        assert rows.loc[image, "run: DIP final"] == pytest.approx(np.mean(finals))
        assert rows.loc[image, "run: biharmonic"] == pytest.approx(_biharmonic(image))
    spread = np.std(FINAL["barbara"], ddof=1)
    assert rows.loc["barbara", "run: DIP final (std)"] == pytest.approx(spread)
    assert math.isnan(rows.loc["hill", "run: DIP final (std)"])  # one seed: no std
    assert "run: biharmonic (std)" not in df and "paper: DIP (std)" not in df
    assert df.iloc[-1]["seeds"] == 7  # the mean row: every seed of its block
    text = markdown(df)
    barbara = next(ln for ln in text.splitlines() if ln.startswith("| barbara |"))
    assert f"| {np.mean(FINAL['barbara']):.2f} ± {spread:.2f} |" in barbara
    assert f"| {_biharmonic('barbara'):.2f} |" in barbara  # a baseline: one number
    hill = next(ln for ln in text.splitlines() if ln.startswith("| hill |"))
    assert "±" not in hill
    assert "· 7 record(s) · 7 seed(s) (1/3 per image) ·" in text.splitlines()[0]


def test_an_ensemble_gives_each_seeds_values(tmp_path, paper):
    root = tmp_path / "runs"
    _ensemble(root, "F16", [28.0, 28.5, 27.75], [29.0, 29.25, 29.75])
    _ensemble(root, "baboon", [24.0, 24.5, 24.25], [25.0, 25.5, 24.75])
    df = table("denoising", "quick", root=root, paper=paper)
    rows = body(df).set_index("image")
    assert list(rows.index) == ["baboon", "F16"] and set(rows["seeds"]) == {3}
    assert rows.loc["F16", "run: DIP final"] == pytest.approx(np.mean([28.0, 28.5, 27.75]))
    assert rows.loc["F16", "run: DIP avg"] == pytest.approx(np.mean([29.0, 29.25, 29.75]))
    assert rows.loc["F16", "run: DIP avg (std)"] == pytest.approx(
        np.std([29.0, 29.25, 29.75], ddof=1))
    assert rows.loc["F16", "run: DIP ensemble"] == 29.0  # one number a record
    assert "run: DIP ensemble (std)" not in df and "run: DIP mean±std" not in df
    assert not any("first seed's value alone" in n for n in df.attrs["notes"])
    assert "6 seed(s) (3 per image, ensembles of 3 a record)" in markdown(df)


def test_an_older_ensemble_falls_back_to_its_first_seed_and_says_so(tmp_path, paper):
    root = tmp_path / "runs"
    _ensemble(root, "F16", [28.0, 28.5, 27.75], [29.0, 29.25, 29.75])
    _ensemble(root, "baboon", [24.0, 24.5, 24.25], None)  # no psnr_seeds_avg
    df = table("denoising", "quick", root=root, paper=paper)
    rows = body(df).set_index("image")
    assert rows.loc["baboon", "run: DIP avg"] == 24.5  # its psnr_avg, the first seed's
    assert math.isnan(rows.loc["baboon", "run: DIP avg (std)"])
    assert rows.loc["baboon", "run: DIP final (std)"] > 0  # psnr_seeds are there
    assert ("Seed-ensemble records without a column's per-seed values give their first "
            "seed's value alone: DIP avg (1 record(s), made before psnr_seeds_avg was "
            "kept).") in df.attrs["notes"]
    mean = df.iloc[-1]
    _same(bootstrap([[24.5], [29.0, 29.25, 29.75]]), mean, "run: DIP avg")


# --- intervals -----------------------------------------------------------------------------

def test_a_mean_row_is_the_bootstrap_of_each_images_seeds(tmp_path, paper):
    _inpainting(tmp_path / "runs")
    df = table("inpainting", "quick", root=tmp_path / "runs", paper=paper)
    mean = df.iloc[-1]
    final = bootstrap([FINAL[i] for i in FINAL])
    assert final.lo < final.mean < final.hi
    _same(final, mean, "run: DIP final")
    _same(bootstrap([[v + 0.25 * s for s, v in enumerate(FINAL[i])] for i in FINAL]), mean,
          "run: DIP avg")
    _same(bootstrap([[_biharmonic(i)] * len(FINAL[i]) for i in FINAL]), mean,
          "run: biharmonic")
    released = bootstrap([[_biharmonic(i) + 1] * len(FINAL[i]) for i in FINAL])
    assert (mean["released: Papyan et al."], mean["released: Papyan et al. (95% lo)"],
            mean["released: Papyan et al. (95% hi)"]) == (released.mean, released.lo,
                                                           released.hi)
    # the paper's numbers: the plain mean of the images that have one
    assert mean["paper: DIP"] == pytest.approx((32.22 + 39.16) / 2)
    assert "paper: DIP (95% lo)" not in df and pd.isna(body(df)["run: DIP final (95% lo)"]).all()
    shown = next(ln for ln in markdown(df).splitlines() if "**mean**" in ln)
    assert f"**{final.text()}**" in shown
    notes = " ".join(df.attrs["notes"])
    assert "95% interval [lo, hi] from a two-level bootstrap" in notes


def test_a_deterministic_column_of_a_single_image_has_a_point_interval(tmp_path, paper):
    _inpainting(tmp_path / "runs", final={"barbara": [30.0]})
    mean = table("inpainting", "quick", root=tmp_path / "runs", paper=paper).iloc[-1]
    assert mean["run: DIP final (95% lo)"] == mean["run: DIP final (95% hi)"] == 30.0


# --- groups ----------------------------------------------------------------------------------

def test_the_groups_in_csv_markdown_and_latex(tmp_path, paper):
    _sr(tmp_path / "runs")
    df = table("sr", "quick", root=tmp_path / "runs", paper=paper)
    paths = write_table(df, "sr", "quick", out_dir=tmp_path / "tables")
    values = ["run: bicubic", "run: DIP final", "run: DIP avg", "released: LapSRN",
              "released: bicubic"]
    expected = ["dataset", "factor", "image", "seeds"]
    for v in values:
        expected += [v, *([f"{v} (std)"] if "DIP" in v else []), f"{v} (95% lo)",
                     f"{v} (95% hi)"]
    expected += ["paper: Bicubic", "paper: LapSRN", "paper: DIP"]
    assert pd.read_csv(paths[1]).columns.tolist() == expected
    lines = paths[0].read_text().splitlines()
    assert lines[2] == ("| dataset | factor | image | seeds | this run (quick, centre 128×128 "
                        "crops) |  |  | released results (through this run's 128×128 crops) |"
                        "  | paper (whole images) |  |  |")
    assert lines[3] == "| --- | --- | --- | ---: |" + " ---: |" * 8
    assert lines[4] == ("|  |  |  |  | **bicubic** | **DIP final** | **DIP avg** | **LapSRN** "
                        "| **bicubic** | **Bicubic** | **LapSRN** | **DIP** |")
    assert lines[5].startswith("| set5 | 4 | baby | 3 | 29.50 | 31.10 ± 0.10 | 31.20 ± 0.20 "
                               "| 33.00 | 30.00 | 31.78 | 33.55 | 31.49 |")
    assert "(this run" not in lines[0] and "(paper)" not in "\n".join(lines)
    assert "released: the compared methods' own released results, made from the whole " \
           "image, scored through this run's crop" in lines[0]
    tex = paths[2].read_text()
    assert ("\\multicolumn{4}{c}{} & \\multicolumn{3}{c}{this run (quick, centre "
            "128$\\times$128 crops)} & \\multicolumn{2}{c}{released results (through this "
            "run's 128$\\times$128 crops)} & \\multicolumn{3}{c}{paper (whole images)} \\\\\n"
            "\\cline{5-7} \\cline{8-9} \\cline{10-12}\n"
            "dataset & factor & image & seeds & bicubic & DIP final & DIP avg & LapSRN & "
            "bicubic & Bicubic & LapSRN & DIP \\\\\n\\hline\n") in tex
    assert "31.10 $\\pm$ 0.10" in tex


def test_released_columns_are_optional(tmp_path, paper):
    _sr(tmp_path / "old", released=False)
    df = table("sr", "quick", root=tmp_path / "old", paper=paper)
    assert not [c for c in df if c.startswith("released:")]
    assert "released:" not in markdown(df).splitlines()[0]
    _sr(tmp_path / "new")
    rows = body(table("sr", "quick", root=tmp_path / "new", paper=paper)).set_index("image")
    assert rows.loc["bird", "released: LapSRN"] == 31.5
    assert rows.loc["bird", "released: bicubic"] == 28.5


@pytest.mark.parametrize("column, expected", [
    ("image", Heading(None, "image")), ("seeds", Heading(None, "seeds")),
    ("run: DIP final", Heading("run", "DIP final")),
    ("run: DIP final (std)", Heading("run", "DIP final", "std")),
    ("released: Papyan et al. (95% hi)", Heading("released", "Papyan et al.", "hi")),
    ("paper: DIP 003", Heading("paper", "DIP 003")),
    ("Δ vs paper: DIP avg (95% lo)", Heading("delta", "DIP avg", "lo")),
    ("DIP final (this run, quick)", Heading(None, "DIP final (this run, quick)")),
])
def test_column_names_read_back(column, expected):
    assert parse(column) == expected
    if expected.group:
        assert name(expected.group, expected.label, expected.part) == column


# --- Δ only on like pixels --------------------------------------------------------------------

def test_no_delta_for_crops_and_the_notes_say_why(tmp_path, paper):
    _inpainting(tmp_path / "runs")
    df = table("inpainting", "quick", root=tmp_path / "runs", paper=paper)
    assert not [c for c in df if c.startswith("Δ")]
    assert ("No Δ vs paper column: this run's images are centre 128×128 crops and the "
            "paper's numbers are for whole images; the released columns compare the methods "
            "with this run on the same pixels.") in df.attrs["notes"]


def test_delta_for_whole_images_is_per_seed_against_the_paper(tmp_path, paper):
    _inpainting(tmp_path / "runs", crop=None, profile="paper")
    df = table("inpainting", "paper", root=tmp_path / "runs", paper=paper)
    rows = body(df).set_index("image")
    theirs = {"barbara": 32.22, "house": 39.16}
    for image, value in theirs.items():
        assert rows.loc[image, "Δ vs paper: DIP final"] == pytest.approx(
            np.mean(FINAL[image]) - value)
    assert math.isnan(rows.loc["hill", "Δ vs paper: DIP final"])  # no paper number
    mean = df.iloc[-1]
    delta = bootstrap([np.array(FINAL[i]) - theirs[i] for i in theirs])
    assert (mean["Δ vs paper: DIP final"], mean["Δ vs paper: DIP final (95% lo)"],
            mean["Δ vs paper: DIP final (95% hi)"]) == (delta.mean, delta.lo, delta.hi)
    assert any(n.startswith("Δ vs paper = run: DIP final − paper: DIP") for n in
               df.attrs["notes"])
    text = markdown(df)
    assert "this run (paper, whole images)" in text and "| Δ vs paper |" in text
    assert f"**{delta.mean:+.2f} [{delta.lo:+.2f}, {delta.hi:+.2f}]**" in text


# --- a task's table and compare ---------------------------------------------------------------

def test_a_tasks_own_table_is_grouped_too(tmp_path):
    root = tmp_path / "runs"
    for image in ("01", "05"):
        for seed in (0, 1):
            write_record(root, f"deb-{image}-{seed}", crop=128, experiment="table_deblurring",
                         task="deblurring", image=f"set12/{image}.png", seed=seed,
                         psnr_final=26.0 + seed, psnr_avg=26.5 + seed,
                         baselines={"richardson_lucy": 24.0, "wiener": 23.5})
    df = table("deblurring", "quick", root=root)
    assert [c for c in df if not parse(c).part] == [
        "image", "seeds", "run: blurred", "run: Richardson-Lucy", "run: Wiener",
        "run: DIP final", "run: DIP avg"]
    assert body(df)["run: DIP final"].tolist() == [26.5, 26.5]
    assert markdown(df).splitlines()[0].endswith(
        "PSNR in dB. run: this run's records, on its own images.")


def _denoising(root, shift=0.0, sigmas=(25, 50)):
    for sigma in sigmas:
        for image, base in (("F16", 28.0), ("baboon", 24.0)):
            finals = [base - sigma / 25 + k / 4 + shift * (image == "F16") for k in range(3)]
            _ensemble(root, image, finals, [f + 1 for f in finals], sigma=sigma)


def test_compare_reads_two_tables_of_this_format_value_by_value(tmp_path, paper, capsys):
    for folder, shift in (("a", 0.0), ("b", 0.0), ("c", 0.5)):
        _denoising(tmp_path / folder, shift)
        df = table("denoising", "quick", root=tmp_path / folder, paper=paper)
        write_table(df, "denoising", "quick", out_dir=tmp_path / folder / "tables")
    csv = {f: tmp_path / f / "tables" / "table_denoising_quick.csv" for f in "abc"}
    assert compare_tables(csv["a"], csv["b"]).empty
    assert main(["compare", str(csv["a"]), str(csv["b"])]) == 0
    diffs = compare_tables(csv["a"], csv["c"])
    changed = set(map(tuple, diffs[["row", "column"]].values.tolist()))
    f16, means = (1, 4), (2, 5)  # baboon, F16, mean per sigma
    for row in f16:
        assert {(row, "run: DIP final"), (row, "run: DIP avg"),
                (row, "run: DIP ensemble")} <= changed
        assert (row, "run: DIP final (std)") not in changed  # shifting every seed
    for row in means:  # F16 is the higher image: the upper bound moves with it
        assert {(row, "run: DIP final"), (row, "run: DIP final (95% hi)")} <= changed
    assert not [c for r, c in changed if c.startswith(("paper:", "released:"))]
    _denoising(tmp_path / "s50", sigmas=(50,))  # a rerun of the σ 50 block
    df = table("denoising", "quick", root=tmp_path / "s50", paper=paper)
    write_table(df, "denoising", "quick", out_dir=tmp_path / "s50")
    block = tmp_path / "s50" / "table_denoising_quick.csv"
    assert compare_tables(csv["a"], block, subset=True).empty
    assert main(["compare", str(csv["a"]), str(block), "--subset"]) == 0
    assert "reproduces its 3 rows of" in capsys.readouterr().out
