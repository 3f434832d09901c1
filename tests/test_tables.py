"""Tables from fake run records: rows, means, paper columns, profiles, seeds, files, CLI
(what the seeds, intervals and groups look like: tests/test_table_format.py)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import PAPER_CSV, body, inpainting_record, needs_paper, write_record

from dip import DipError
from dip.data import image_id
from dip.report import tables
from dip.report.__main__ import main
from dip.report.headings import parse
from dip.report.records import load_records
from dip.report.tables import match_image, table, write_table


def paper_value(experiment, image, method, factor="", dataset=None) -> float:
    """The paper's number read independently: printed where present, else recomputed."""
    with open(PAPER_CSV, newline="") as f:
        for row in csv.DictReader(f):
            if (row["experiment"], row["image"], row["method"]) != (experiment, image, method):
                continue
            if str(factor) != row["factor"] or dataset not in (None, row["dataset"]):
                continue
            return float(row["psnr_printed"] or row["psnr_recomputed"])
    raise KeyError((experiment, image, method, factor, dataset))


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    inpainting_record(root, "barbara", 0, 30.0)
    inpainting_record(root, "barbara", 1, 31.0)
    inpainting_record(root, "Cameraman256", 0, 28.0)
    inpainting_record(root, "barbara", 0, 99.0, profile="paper", num_iter=5000)
    inpainting_record(root, "house", 0, 50.0, profile="paper")
    inpainting_record(root / ".x.tmp-1", "barbara", 0, 77.0)  # unfinished: hidden
    (root / "no-metrics").mkdir()
    for sigma, final in ((25, 29.0), (50, 26.0)):
        for image in ("F16", "kodim01"):
            write_record(root, f"den-{image}-{sigma}", experiment="table_denoising",
                         task="denoising", image=f"paper/denoising/sigma{sigma}/"
                         f"{image}_noisy.png", sigma=sigma, psnr_final=final,
                         psnr_avg=final + 1, baselines={"nlm": final - 1, "cbm3d": None})
    for dataset, factor, image in (("set5", 4, "baby"), ("set5", 8, "baby"),
                                   ("set14", 4, "zebra")):
        write_record(root, f"sr-{dataset}-{factor}-{image}", experiment="table_sr", task="sr",
                     image=f"{dataset}/{image}.png", dataset=dataset, factor=factor,
                     psnr_final=27.0 + factor / 4, psnr_avg=27.25 + factor / 4,
                     baselines={"bicubic": 25.0})
    return root


@pytest.mark.parametrize("spec, expected", [
    ("paper/inpainting50/barbara_GT.png", "barbara"),
    ("paper/inpainting50/Cameraman256_masked.png", "Cameraman256"),
    ("paper/inpainting50/Lena512_mask.png", "Lena512"),
    ("paper/denoising/sigma25/F16_noisy.png", "F16"),
    ("set5/baby.png", "baby"), ("kodim01", "kodim01"), ("skimage:coffee", "coffee"),
    ("/abs/dir/zebra_GT.png", "zebra"),
])
def test_image_id(spec, expected):
    assert image_id(spec) == expected


def test_match_image():
    names = ["Cameraman256", "Lena512", "barbara", "peppers256"]
    assert match_image("barbara", names) == "barbara"
    assert match_image("cameraman", names) == "Cameraman256"
    assert match_image("Barbara", names) == "barbara"
    assert match_image("zebra", names) is None


def test_load_records_skips_hidden_and_empty_dirs(runs):
    df = load_records(runs, "table_inpainting")
    assert len(df) == 5 and 77.0 not in set(df["psnr_final"])
    assert "baseline_biharmonic" in df
    assert len(load_records(runs, "table_inpainting", "quick")) == 3
    assert load_records(runs / "nowhere").empty


def test_load_records_derives_image_id(runs):
    df = load_records(runs, "table_denoising")
    assert set(df["image_id"]) == {"F16", "kodim01"}
    assert df["baseline_cbm3d"].isna().all()


@needs_paper
def test_inpainting_table(runs):
    df = table("table_inpainting", "quick", root=runs, paper=PAPER_CSV)
    assert list(df["image"]) == ["barbara", "Cameraman256", "mean"]
    rows = body(df).set_index("image")
    # seeds averaged, profiles not mixed (the paper-profile 99 dB barbara is left out)
    assert rows.loc["barbara", "seeds"] == 2
    assert rows.loc["barbara", "run: DIP final"] == 30.5
    assert rows.loc["barbara", "run: DIP avg"] == 31.0
    assert rows.loc["barbara", "run: biharmonic"] == 28.5
    for image in ("barbara", "Cameraman256"):
        assert rows.loc[image, "paper: DIP"] == paper_value("inpainting50", image,
                                                            "deep_prior")
        assert rows.loc[image, "paper: Papyan et al."] == paper_value("inpainting50", image,
                                                                      "papyan")
    delta = rows["run: DIP final"] - rows["paper: DIP"]  # whole images (no crop)
    assert rows["Δ vs paper: DIP final"].tolist() == pytest.approx(delta.tolist())
    mean = df.iloc[-1]
    assert mean["seeds"] == 3
    for col in [c for c in df.columns[2:] if not parse(c).part]:
        assert mean[col] == pytest.approx(body(df)[col].mean())


@needs_paper
def test_profiles_are_never_mixed(runs):
    df = table("inpainting", "paper", root=runs, paper=PAPER_CSV)
    assert list(df["image"]) == ["barbara", "house", "mean"]
    assert "this run (paper, whole images)" in tables.markdown(df)
    assert df.loc[0, "run: DIP final"] == 99.0
    assert df.attrs["iterations"] == [1500, 5000]


@needs_paper
def test_denoising_table_blocks_per_sigma(runs):
    df = table("table_denoising", "quick", root=runs, paper=PAPER_CSV)
    assert list(zip(df["sigma"], df["image"], strict=True)) == [
        (25, "F16"), (25, "kodim01"), (25, "mean"), (50, "F16"), (50, "kodim01"), (50, "mean")]
    assert "run: CBM3D" not in df  # no record has a CBM3D number
    for _, row in body(df).iterrows():
        sigma, image = int(row["sigma"]), row["image"]
        assert row["paper: NLM"] == paper_value("denoising", image, "nlm", sigma)
        assert row["paper: CBM3D"] == paper_value("denoising", image, "bm3d", sigma)
        assert row["paper: DIP"] == paper_value("denoising", image, "deep_prior", sigma)
        assert row["Δ vs paper: DIP avg"] == row["run: DIP avg"] - row["paper: DIP"]
    block = df[df["sigma"] == 50]
    assert block.iloc[-1]["paper: DIP"] == pytest.approx(block.iloc[:2]["paper: DIP"].mean())


@needs_paper
def test_sr_table(runs):
    df = table("sr", "quick", root=runs, paper=PAPER_CSV)
    keys = list(zip(df["dataset"], df["factor"], df["image"], strict=True))
    assert keys == [("set5", 4, "baby"), ("set5", 4, "mean"), ("set5", 8, "baby"),
                    ("set5", 8, "mean"), ("set14", 4, "zebra"), ("set14", 4, "mean")]
    rows = body(df).set_index(["dataset", "factor", "image"])
    assert rows.loc[("set5", 4, "baby"), "paper: DIP"] == paper_value(
        "sr", "baby", "deep_prior", 4, "set5")
    assert rows.loc[("set5", 8, "baby"), "paper: DIP"] == paper_value(
        "sr", "baby", "deep_prior_005", 8, "set5")
    assert rows.loc[("set5", 8, "baby"), "paper: DIP 003"] == paper_value(
        "sr", "baby", "deep_prior_003", 8, "set5")
    assert rows.loc[("set14", 4, "zebra"), "paper: LapSRN"] == paper_value(
        "sr", "zebra", "LapSRN", 4, "set14")
    assert rows.loc[("set14", 4, "zebra"), "paper: Bicubic"] == paper_value(
        "sr", "zebra", "bicubic", 4, "set14")
    assert (rows["Δ vs paper: DIP final"] == rows["run: DIP final"] - rows["paper: DIP"]).all()
    assert (rows["run: DIP avg"] == rows["run: DIP final"] + 0.25).all()


@needs_paper
def test_sr_table_shows_tv_and_srresnet_only_where_the_paper_numbers_have_them(runs):
    ref = tables.paper_numbers(PAPER_CSV)
    df = table("sr", "quick", root=runs, paper=ref)
    assert "paper: TV prior" not in df and "paper: SRResNet" not in df
    assert any(n.startswith("No column for TV prior (method TV) or SRResNet")
               for n in df.attrs["notes"])
    extra = ref[(ref["method"] == "LapSRN") & (ref["image"] == "baby")].copy()
    extra["method"], extra["psnr_paper"] = "SRResNet", [31.5 + i for i in range(len(extra))]
    df = table("sr", "quick", root=runs, paper=pd.concat([ref, extra], ignore_index=True))
    rows = body(df).set_index(["dataset", "factor", "image"])
    expected = extra.set_index(extra["factor"].astype(int))["psnr_paper"]
    assert rows.loc[("set5", 4, "baby"), "paper: SRResNet"] == expected[4]
    assert pd.isna(rows.loc[("set14", 4, "zebra"), "paper: SRResNet"])
    assert "paper: TV prior" not in df
    assert any("No column for TV prior (method TV):" in n for n in df.attrs["notes"])
    tv = extra.assign(method="TV")
    df = table("sr", "quick", root=runs, paper=pd.concat([ref, extra, tv], ignore_index=True))
    cols = [c for c in df if c.startswith("paper:") and not c.startswith("paper: DIP")]
    # the paper's order, DIP's columns after them
    assert cols == ["paper: Bicubic", "paper: TV prior", "paper: LapSRN", "paper: SRResNet"]
    assert list(df).index("paper: SRResNet") < list(df).index("paper: DIP")


@needs_paper
def test_write_table_files(runs, tmp_path):
    df = table("table_inpainting", "quick", root=runs, paper=PAPER_CSV)
    paths = write_table(df, "table_inpainting", "quick", out_dir=tmp_path / "tables")
    assert [p.name for p in paths] == ["table_inpainting_quick.md", "table_inpainting_quick.csv",
                                       "table_inpainting_quick.tex", "table_inpainting_quick.json"]
    md = paths[0].read_text()
    first = md.splitlines()[0]
    for part in ("profile quick", "3 record(s)", "3 seed(s) (1/2 per image)", "1500 iterations",
                 "cpu (x86_64, 2 threads)", "CPU Some CPU 9000", "0123456789ab", "2025-03-01",
                 "paper_numbers.csv"):
        assert part in first
    assert "| **mean** |" in md
    back = pd.read_csv(paths[1])
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    tex = paths[2].read_text()
    assert r"\begin{tabular}" in tex and r"$\Delta$ vs paper" in tex
    assert "\\hline mean & 3 &" in tex  # a rule above the mean row
    facts = json.loads(paths[3].read_text())  # the caption's facts, as data
    assert facts["cpus"] == ["Some CPU 9000"] and facts["records"] == 3 and facts["seeds"] == 3
    assert facts["iterations"] == [1500] and facts["diverged"] == [0, 0, 0]
    assert tables.table_cpus(paths[1]) == "Some CPU 9000"
    assert not list((tmp_path / "tables").glob(".*"))  # no temp files left


def test_paper_numbers_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(tables.PAPER_ENV, str(tmp_path / "none.csv"))
    with pytest.raises(DipError, match="DIP_PAPER_NUMBERS"):
        tables.paper_numbers()


def test_paper_numbers_from_env(tmp_path, monkeypatch):
    path = tmp_path / "p.csv"
    path.write_text("experiment,dataset,factor,image,method,psnr_recomputed,psnr_printed\n"
                    "inpainting50,csc11,,barbara,deep_prior,32.183,32.22\n"
                    "sr,set5,4,baby,bicubic,31.779,\n")
    monkeypatch.setenv(tables.PAPER_ENV, str(path))
    df = tables.paper_numbers()
    assert list(df["psnr_paper"]) == [32.22, 31.779]
    assert list(df["source"]) == ["printed", "recomputed"]


def test_unknown_experiment(runs):
    with pytest.raises(DipError, match="unknown table"):
        table("table_colorization", "quick", root=runs)


@needs_paper
def test_cli_prints_and_writes(runs, tmp_path, capsys):
    out = tmp_path / "tables"
    status = main(["table", "table_sr", "--profile", "quick", "--root", str(runs),
                   "--out", str(out), "--paper", str(PAPER_CSV)])
    assert status == 0
    assert "| set5 | 4 | baby |" in capsys.readouterr().out
    assert (out / "table_sr_quick.tex").is_file()


def test_cli_no_records(tmp_path, capsys):
    status = main(["table", "table_inpainting", "--profile", "quick",
                   "--root", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "no records for table_inpainting with profile quick" in err
    assert "make table-inpainting PROFILE=quick" in err


def test_cli_module_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dip.report", "table", "denoising",
                           "--root", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: no records for table_denoising")


@needs_paper
def test_crops_are_stated(tmp_path):
    root = tmp_path / "runs"
    write_record(root, "sr", crop=128, experiment="table_sr", task="sr",
                 image="paper/sr/set5/x4/baby_GT.png", dataset=None, factor=4)
    df = table("sr", "quick", root=root, paper=PAPER_CSV)
    assert df.loc[0, "dataset"] == "set5"  # derived from the spec when the record has none
    assert df.loc[0, "paper: DIP"] == paper_value("sr", "baby", "deep_prior", 4, "set5")
    text = tables.markdown(df)
    assert "centre crops 128×128" in text.splitlines()[0]
    assert "this run (quick, centre 128×128 crops)" in text
    assert "No Δ vs paper column: this run's images are centre 128×128 crops" in text
    assert not [c for c in df if c.startswith("Δ")]


@needs_paper
def test_early_stopping_and_ensemble_columns(tmp_path):
    root = tmp_path / "runs"
    common = dict(experiment="table_denoising", task="denoising", sigma=25, psnr_final=28.0,
                  image="paper/denoising/sigma25/F16_noisy.png")
    write_record(root, "fixed", **common)
    write_record(root, "wmv-0", stop="wmv", psnr_stop=30.0, iter_stop=400, steps=1401,
                 psnr_oracle=30.5, seed=0, **common)
    write_record(root, "wmv-1", stop="wmv", psnr_stop=29.0, iter_stop=600, steps=1601,
                 psnr_oracle=30.3, seed=1, psnr_seeds_mean=29.5, psnr_seeds_std=0.25,
                 psnr_ensemble=30.9, psnr_ensemble_avg=31.2, seeds=[1, 2], **common)
    plain = table("denoising", "quick", root=root, paper=PAPER_CSV, stop="fixed")
    assert plain["seeds"].tolist() == [1, 1] and "run: DIP stop" not in plain
    assert "run: DIP ensemble" not in plain
    df = table("denoising", "quick", root=root, paper=PAPER_CSV, stop="wmv")
    row = body(df).iloc[0]
    assert row["seeds"] == 3  # one record of seed 0, an ensemble of seeds 1 and 2
    # the ensemble keeps no per-seed stop: its first seed's stands for it
    assert row["run: DIP stop"] == 29.5 and row["run: iter stop"] == 500
    assert row["run: gap to oracle"] == pytest.approx(30.4 - 29.5)
    assert row["run: iter stop (std)"] == pytest.approx(141.42, abs=0.01)
    assert row["run: DIP ensemble"] == 30.9
    assert row["run: DIP ensemble avg"] == 31.2
    text = tables.markdown(df)
    assert "| 500 ± 141 |" in text and "gap to oracle" in text and "Wang et al." in text
    assert "· 3 seed(s) (3 per image, ensembles of 2 a record) ·" in text.splitlines()[0]
    assert "first seed's value alone: DIP final (1 record(s), made before psnr_seeds" in text
    assert "DIP stop (1 record(s), no per-seed psnr_stop)" in text
    assert "ensembles of" not in tables.markdown(plain)
    with pytest.raises(DipError, match="mix stopping rules"):  # never in one column
        table("denoising", "quick", root=root, paper=PAPER_CSV)


def test_compare_tables_finds_every_changed_value(tmp_path):
    from dip.report.__main__ import main
    from dip.report.tables import compare_tables

    a = pd.DataFrame({"image": ["boat", "mean"], "psnr": [31.2345, 30.1], "paper": [None, 1.0]})
    a.to_csv(tmp_path / "a.csv", index=False)
    a.to_csv(tmp_path / "same.csv", index=False)
    b = a.copy()
    b.loc[1, "psnr"] = 30.1001
    b.to_csv(tmp_path / "b.csv", index=False)
    assert compare_tables(tmp_path / "a.csv", tmp_path / "same.csv").empty
    diffs = compare_tables(tmp_path / "a.csv", tmp_path / "b.csv")
    assert diffs[["row", "column"]].values.tolist() == [[1, "psnr"]]
    a.iloc[:1].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DipError, match="other rows or columns"):
        compare_tables(tmp_path / "a.csv", tmp_path / "short.csv")
    assert main(["compare", str(tmp_path / "a.csv"), str(tmp_path / "same.csv")]) == 0
    assert main(["compare", str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]) == 1


def test_a_rerun_block_is_compared_with_its_rows(tmp_path, capsys):
    """make reproduce-sr ARGS="factor=4 ...": the block's rows (keys before 'seeds'), in the
    candidate's order; a row the reference lacks is an error."""
    from dip.report.__main__ import main
    from dip.report.tables import compare_tables

    ref = pd.DataFrame({"dataset": ["set5"] * 4, "factor": [4, 4, 8, 8],
                        "image": ["baby", "mean", "baby", "mean"], "seeds": [1, 1, 1, 1],
                        "psnr": [31.5, 31.5, 26.1, 26.1]})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    block = ref.iloc[[3, 2]].copy()
    block.to_csv(tmp_path / "x8.csv", index=False)
    assert compare_tables(tmp_path / "ref.csv", tmp_path / "x8.csv", subset=True).empty
    assert main(["compare", str(tmp_path / "ref.csv"), str(tmp_path / "x8.csv"),
                 "--subset"]) == 0
    assert "reproduces its 2 rows of" in capsys.readouterr().out
    block.loc[2, "psnr"] = 26.2
    block.to_csv(tmp_path / "off.csv", index=False)
    diffs = compare_tables(tmp_path / "ref.csv", tmp_path / "off.csv", subset=True)
    assert diffs[["row", "column", "candidate"]].values.tolist() == [[1, "psnr", 26.2]]
    with pytest.raises(DipError, match="other rows or columns"):  # a block needs --subset
        compare_tables(tmp_path / "ref.csv", tmp_path / "x8.csv")
    block.loc[2, "image"] = "bird"
    block.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(DipError, match="rows the reference has not: set5 8 bird"):
        compare_tables(tmp_path / "ref.csv", tmp_path / "new.csv", subset=True)


def test_compare_leaves_out_a_column_one_table_lacks(tmp_path, capsys):
    """A rerun without the optional bm3d package has no CBM3D column: the columns both
    tables have are compared, and the note names the one left out."""
    from dip.report.__main__ import main
    from dip.report.tables import compare_tables

    ref = pd.DataFrame({"sigma": [25, 25], "image": ["F16", "mean"], "seeds": [1, 1],
                        "run: CBM3D": [31.0, 31.0], "DIP avg": [30.5, 30.5]})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    rerun = ref.drop(columns="run: CBM3D")
    rerun.to_csv(tmp_path / "rerun.csv", index=False)
    diffs = compare_tables(tmp_path / "ref.csv", tmp_path / "rerun.csv")
    assert diffs.empty and diffs.attrs["only_reference"] == ["run: CBM3D"]
    assert main(["compare", str(tmp_path / "ref.csv"), str(tmp_path / "rerun.csv")]) == 0
    out, err = capsys.readouterr()
    assert "reproduces" in out and "in the columns both have" in out
    assert "not compared: run: CBM3D (only in the reference)" in err
    rerun.loc[0, "DIP avg"] = 30.6  # a shared column still counts
    rerun.to_csv(tmp_path / "off.csv", index=False)
    assert compare_tables(tmp_path / "ref.csv", tmp_path / "off.csv")[
        ["row", "column"]].values.tolist() == [[0, "DIP avg"]]
    for name, cols in (("keys", ["image"]), ("values", ["DIP avg"])):
        ref.drop(columns=["run: CBM3D"] + cols).to_csv(tmp_path / f"{name}.csv",
                                                                    index=False)
        with pytest.raises(DipError, match="other rows or columns"):  # nothing to compare by
            compare_tables(tmp_path / "ref.csv", tmp_path / f"{name}.csv")
    block = rerun.iloc[[1]]  # a block of the rerun (--subset) also leaves the column out
    block.to_csv(tmp_path / "block.csv", index=False)
    assert compare_tables(tmp_path / "ref.csv", tmp_path / "block.csv", subset=True).empty


def test_compare_names_the_cpus_when_they_differ(tmp_path, capsys):
    from dip.report.__main__ import main

    for name, psnr, cpu in (("a", 31.0, "Xeon X"), ("b", 31.5, "EPYC Y"), ("c", 31.5, "Xeon X")):
        pd.DataFrame({"image": ["boat"], "psnr": [psnr]}).to_csv(tmp_path / f"{name}.csv",
                                                                 index=False)
        (tmp_path / f"{name}.json").write_text(json.dumps({"cpus": [cpu], "runs": 1}))
    assert tables.table_cpus(tmp_path / "a.csv") == "Xeon X"
    assert tables.table_cpus(tmp_path / "none.csv") is None
    # a caption is never read back: without the provenance file the CPU is unknown
    (tmp_path / "md.md").write_text("table_inpainting · profile quick · CPU Xeon X · "
                                    "commit abc. PSNR in dB\n\n| image |\n")
    assert tables.table_cpus(tmp_path / "md.csv") is None
    assert main(["compare", str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]) == 1
    err = capsys.readouterr().err
    assert "made on CPU Xeon X, the rerun on CPU EPYC Y" in err
    assert main(["compare", str(tmp_path / "a.csv"), str(tmp_path / "c.csv")]) == 1
    assert "made on CPU" not in capsys.readouterr().err  # same CPU, so no such note
