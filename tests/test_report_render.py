"""A table's renderings: markdown (group titles over bold labels), LaTeX (Styler, with
\\multicolumn groups) and CSV (one number a column), exactly."""

from __future__ import annotations

import math

import pandas as pd

from dip.report.render import latex, markdown, write_table

NAN = math.nan


def _table() -> pd.DataFrame:
    df = pd.DataFrame({"sigma": [25, 25], "image": ["F16", "mean"], "seeds": [2, 2],
                       "run: DIP final": [17.0, 17.0], "run: DIP final (std)": [0.5, NAN],
                       "run: DIP final (95% lo)": [NAN, 16.5],
                       "run: DIP final (95% hi)": [NAN, 17.5],
                       "run: noisy": [20.25, 20.25], "run: noisy (95% lo)": [NAN, 20.25],
                       "run: noisy (95% hi)": [NAN, 20.25],
                       "paper: DIP": [31.234, NAN],
                       "Δ vs paper: DIP final": [-14.234, NAN],
                       "Δ vs paper: DIP final (95% lo)": [NAN, NAN],
                       "Δ vs paper: DIP final (95% hi)": [NAN, NAN]})
    df.attrs.update(experiment="table_denoising", profile="quick", records=1, seeds=2,
                    seeds_per_image=[2], ensembles=[2], iterations=[10], cpus=["Xeon_X & co"],
                    notes=["Δ = a − b."], diverged=[1, 1])
    return df


def test_markdown_shows_groups_over_labels_with_a_caption_and_notes():
    assert markdown(_table()) == (
        "table_denoising · profile quick · 1 record(s) · 2 seed(s) (2 per image, ensembles "
        "of 2 a record) · 10 iterations · CPU Xeon_X & co. PSNR in dB. run: this run's "
        "records, on its own images; paper: paper_numbers.csv, whole images; Δ vs paper: "
        "this run's column − the paper's, both on whole images.\n\n"
        "| sigma | image | seeds | this run (quick, whole images) |  | paper (whole images) "
        "| Δ vs paper |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
        "|  |  |  | **DIP final** | **noisy** | **DIP** | **DIP final** |\n"
        "| 25 | F16 | 2 | 17.00 ± 0.50† | 20.25 | 31.23 | -14.23† |\n"
        "| **25** | **mean** | **2** | **17.00 [16.50, 17.50]†** | **20.25 [20.25, 20.25]** "
        "| **–** | **–** |\n"
        "\n- Δ = a − b.\n")


def test_latex_groups_the_columns_escapes_and_rules_the_mean_rows():
    tex = latex(_table())
    assert tex.startswith("\\begin{table}\n\\centering\n\\caption{table\\_denoising $\\cdot$ "
                          "profile quick")
    assert "CPU Xeon\\_X \\& co." in tex
    assert ("\\begin{tabular}{llrrrrr}\n\\hline\n"
            "\\multicolumn{3}{c}{} & \\multicolumn{2}{c}{this run (quick, whole images)} & "
            "paper (whole images) & $\\Delta$ vs paper \\\\\n"
            "\\cline{4-5} \\cline{6-6} \\cline{7-7}\n"
            "sigma & image & seeds & DIP final & noisy & DIP & DIP final \\\\\n\\hline\n"
            "25 & F16 & 2 & 17.00 $\\pm$ 0.50$^\\dagger$ & 20.25 & 31.23 & -14.23$^\\dagger$ "
            "\\\\\n"
            "\\hline 25 & mean & 2 & 17.00 [16.50, 17.50]$^\\dagger$ & 20.25 [20.25, 20.25] & "
            "-- & -- \\\\\n"
            "\\hline\n\\end{tabular}\n") in tex
    assert tex.endswith("\\par\\footnotesize $\\Delta$ = a -- b.\n\\end{table}\n")


def test_csv_keeps_every_number_in_its_own_column_at_four_decimals(tmp_path):
    paths = write_table(_table(), "denoising", "quick", out_dir=tmp_path)
    assert paths[1].read_text().splitlines() == [
        "sigma,image,seeds,run: DIP final,run: DIP final (std),run: DIP final (95% lo),"
        "run: DIP final (95% hi),run: noisy,run: noisy (95% lo),run: noisy (95% hi),"
        "paper: DIP,Δ vs paper: DIP final,Δ vs paper: DIP final (95% lo),"
        "Δ vs paper: DIP final (95% hi)",
        "25,F16,2,17.0000,0.5000,,,20.2500,,,31.2340,-14.2340,,",
        "25,mean,2,17.0000,,16.5000,17.5000,20.2500,20.2500,20.2500,,,,"]
