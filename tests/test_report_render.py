"""A table's renderings: markdown (pandas + tabulate), LaTeX (Styler) and CSV, exactly."""

from __future__ import annotations

import math

import pandas as pd

from dip.report.render import latex, markdown, write_table


def _table() -> pd.DataFrame:
    df = pd.DataFrame({"sigma": [25, 25], "image": ["F16", "mean"], "runs": [2, 2],
                       "DIP (paper)": [31.234, math.nan],
                       "DIP final (this run, quick)": [17.0, 17.0],
                       "Δ vs paper (this run, quick)": [-14.234, math.nan]})
    df.attrs.update(experiment="table_denoising", profile="quick", runs=2, iterations=[10],
                    cpus=["Xeon_X & co"], notes=["Δ = a − b."], diverged=[1, 1])
    return df


def test_markdown_is_a_pipe_table_with_a_caption_and_notes():
    assert markdown(_table()) == (
        "table_denoising · profile quick · 2 run(s) · 10 iterations · CPU Xeon_X & co. PSNR "
        "in dB; (paper) columns come from paper_numbers.csv, (this run) columns from the run "
        "records.\n\n"
        "| sigma | image | runs | DIP (paper) | DIP final (this run, quick) | "
        "Δ vs paper (this run, quick) |\n"
        "| --- | --- | ---: | ---: | ---: | ---: |\n"
        "| 25 | F16 | 2 | 31.23 | 17.00† | -14.23† |\n"
        "| **25** | **mean** | **2** | **–** | **17.00†** | **–** |\n"
        "\n- Δ = a − b.\n")


def test_latex_escapes_and_rules_the_mean_rows():
    tex = latex(_table())
    assert tex.startswith("\\begin{table}\n\\centering\n\\caption{table\\_denoising $\\cdot$ "
                          "profile quick")
    assert "CPU Xeon\\_X \\& co." in tex
    assert ("\\begin{tabular}{llrrrr}\n\\hline\n"
            "sigma & image & runs & DIP (paper) & DIP final (this run, quick) & "
            "$\\Delta$ vs paper (this run, quick) \\\\\n\\hline\n"
            "25 & F16 & 2 & 31.23 & 17.00$^\\dagger$ & -14.23$^\\dagger$ \\\\\n"
            "\\hline 25 & mean & 2 & -- & 17.00$^\\dagger$ & -- \\\\\n"
            "\\hline\n\\end{tabular}\n") in tex
    assert tex.endswith("\\par\\footnotesize $\\Delta$ = a -- b.\n\\end{table}\n")


def test_csv_keeps_four_decimals_and_empty_cells(tmp_path):
    paths = write_table(_table(), "denoising", "quick", out_dir=tmp_path)
    assert paths[1].read_text().splitlines() == [
        'sigma,image,runs,DIP (paper),"DIP final (this run, quick)",'
        '"Δ vs paper (this run, quick)"',
        "25,F16,2,31.2340,17.0000,-14.2340", "25,mean,2,,17.0000,"]
