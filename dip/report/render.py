"""A paper table's files: markdown, LaTeX and CSV renderings, and its provenance as data.

:func:`markdown` (pandas ``DataFrame.to_markdown``) and :func:`latex` (``Styler.to_latex``)
show the table with a caption line (experiment, profile, runs, iterations, device, CPU,
commit, dates) and its footnotes; :func:`write_table` writes them, the CSV (full
precision, compared by ``python -m dip.report compare``) and ``<stem>.json``: the table's
provenance (``df.attrs``) as data, which is what :func:`table_cpus` reads. Nothing is ever
read back from the rendered text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import tabulate

from dip.atomic import atomic_target
from dip.report.declared import experiment_name

__all__ = ["markdown", "latex", "caption", "write_table", "table_cpus", "fmt_cell",
           "provenance_path", "MEAN", "DAGGER"]

MEAN = "mean"  # the image of the rows that close a block
DAGGER = "†"  # after the DIP values of table rows that include a diverged run
CAPTION_SEP = " · "  # between the caption's parts


def caption(df: pd.DataFrame) -> str:
    """One line: experiment, profile, runs, iterations, devices, commits, dates, sources
    (``paper_path`` None: a table without paper numbers)."""
    a = df.attrs
    parts = [f"{a.get('experiment', 'table')}", f"profile {a.get('profile', '?')}"]
    if "runs" in a:
        parts.append(f"{a['runs']} run(s)")
    if a.get("crops"):
        parts.append("centre crops " + "/".join(f"{c}×{c}" for c in a["crops"]))
    if a.get("iterations"):
        parts.append(f"{'/'.join(map(str, a['iterations']))} iterations")
    if a.get("seeds"):
        parts.append(f"{'/'.join(map(str, a['seeds']))} seeds a run")
    if a.get("devices"):
        parts.append("device " + ", ".join(a["devices"]))
    if a.get("cpus"):
        parts.append("CPU " + ", ".join(a["cpus"]))
    if a.get("commits"):
        parts.append("commit " + ", ".join(_short(c) for c in a["commits"]))
    if a.get("dates"):
        first, last = a["dates"]
        parts.append(first if first == last else f"{first} to {last}")
    if "paper_path" in a and a["paper_path"] is None:  # a table without paper numbers
        return CAPTION_SEP.join(parts) + ". PSNR in dB, from the run records."
    return (CAPTION_SEP.join(parts) + ". PSNR in dB; (paper) columns come from paper_numbers.csv, "
            "(this run) columns from the run records.")


def _short(commit: str) -> str:
    sha, plus, rest = str(commit).partition("+")
    return sha[:12] + plus + rest


def fmt_cell(value, column: str) -> str:
    """A table value as shown: 2 decimals (signed for Δ), integers for counts, '–' if none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    integer = column in ("runs", "sigma", "factor") or column.startswith(("iter ", "steps "))
    if integer and isinstance(value, (int, float, np.number)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:+.2f}" if column.startswith("Δ") else f"{value:.2f}"
    return str(value)


def _marked(column: str) -> bool:
    """Columns that show DIP results of the records (the ones a diverged run spoils)."""
    return "(this run" in column and column.startswith(("DIP ", "Δ ", "gap "))


def _cells(df: pd.DataFrame) -> pd.DataFrame:
    """The shown values as text; DIP values of rows with diverged runs get a dagger."""
    flags = df.attrs.get("diverged") or [0] * len(df)
    rows = [[fmt_cell(v, c) + (DAGGER if n and _marked(c) and fmt_cell(v, c) != "–" else "")
             for c, v in zip(df.columns, row, strict=True)]
            for row, n in zip(df.itertuples(index=False), flags, strict=True)]
    return pd.DataFrame(rows, columns=list(df.columns), index=range(len(df)))


def _text_columns(df: pd.DataFrame) -> int:
    """How many leading columns are text (up to ``image``), the rest right-aligned."""
    return list(df.columns).index("image") + 1 if "image" in df else 1


def _is_mean(cells: pd.DataFrame) -> pd.Series:
    return (cells == MEAN).any(axis=1)


def _pipe(n_text: int, n: int) -> tabulate.TableFormat:
    """GitHub pipe table, cells unpadded: text columns left-, numbers right-aligned."""
    rule = "|" + "|".join(" --- " if i < n_text else " ---: " for i in range(n)) + "|"
    row = tabulate.DataRow("|", "|", "|")
    return tabulate.TableFormat(lineabove=None, linebelowheader=lambda widths, aligns: rule,
                                linebetweenrows=None, linebelow=None, headerrow=row,
                                datarow=row, padding=1, with_header_hide=None)


def markdown(df: pd.DataFrame) -> str:
    """Caption line, a markdown table (2 decimals; mean rows in bold) and footnotes."""
    cells = _cells(df)
    cells[_is_mean(cells)] = cells[_is_mean(cells)].map(lambda c: f"**{c}**")
    body = cells.to_markdown(index=False, tablefmt=_pipe(_text_columns(df), len(df.columns)),
                             stralign=None, numalign=None, disable_numparse=True)
    notes = df.attrs.get("notes", [])
    lines = [caption(df), "", body] + ([""] + [f"- {n}" for n in notes] if notes else [])
    return "\n".join(lines) + "\n"


# characters LaTeX's text mode lacks (after pandas' escaping of &%$#_{}~^\)
_TEX = {"Δ": r"$\Delta$", "×": r"$\times$", "−": "--", "–": "--", "·": r"$\cdot$",
        "†": r"$^\dagger$"}
_TEX_ASCII = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
              "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}


def _unicode(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def _tex(text: str) -> str:
    """Caption and footnote text for LaTeX."""
    return _unicode("".join(_TEX_ASCII.get(ch, ch) for ch in str(text)))


def latex(df: pd.DataFrame) -> str:
    """A self-contained ``table`` environment (plain tabular, \\hline rules around mean
    rows; no extra packages), caption and footnotes included."""
    n_text = _text_columns(df)
    cells = _cells(df)
    mean = _is_mean(cells)
    rule = mean | mean.shift(fill_value=False)  # before each mean row and after it
    styler = cells.style.hide(axis="index").format(escape="latex", formatter=_unicode)
    styler = styler.format_index(escape="latex", formatter=_unicode, axis=1)
    styler.apply(lambda col: ["hline: ;" if r else "" for r in rule], subset=cells.columns[:1])
    styler.set_table_styles([{"selector": s, "props": ":hline;"}
                             for s in ("toprule", "midrule", "bottomrule")])
    tabular = styler.to_latex(column_format="l" * n_text + "r" * (len(df.columns) - n_text))
    lines = [r"\begin{table}", r"\centering", rf"\caption{{{_tex(caption(df))}}}",
             tabular.rstrip("\n")]
    lines += [r"\par\footnotesize " + _tex(n) for n in df.attrs.get("notes", [])]
    return "\n".join(lines + [r"\end{table}"]) + "\n"


def _write(path: Path, text: str) -> Path:
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def provenance_path(path) -> Path:
    """The provenance file of a table (``<stem>.json`` beside ``<stem>.csv``)."""
    return Path(path).with_suffix(".json")


def write_table(df: pd.DataFrame, experiment: str, profile: str,
                out_dir="results/tables") -> list[Path]:
    """Write ``<experiment>_<profile>.md``, ``.csv``, ``.tex`` and ``.json`` atomically.

    The JSON holds ``df.attrs`` (runs, iterations, devices, CPUs, commits, dates, notes):
    the table's provenance as data.

    Returns
    -------
    list of Path
        The markdown, CSV, LaTeX and provenance files.
    """
    out_dir = Path(out_dir)
    stem = f"{experiment_name(experiment)}_{profile}"
    attrs = json.dumps(df.attrs, indent=1, ensure_ascii=False, default=_plain) + "\n"
    return [_write(out_dir / f"{stem}.md", markdown(df)),
            _write(out_dir / f"{stem}.csv", df.to_csv(index=False, float_format="%.4f")),
            _write(out_dir / f"{stem}.tex", latex(df)),
            _write(out_dir / f"{stem}.json", attrs)]


def _plain(value):
    """JSON for numpy scalars (and anything else: its text)."""
    return value.item() if isinstance(value, np.generic) else str(value)


def table_cpus(path) -> str | None:
    """The CPU model(s) of the records behind a table, from its provenance file
    (:func:`provenance_path` of the CSV ``path``); None when there is none or it names
    no CPU (GPU runs, or a table written before provenance files)."""
    try:
        attrs = json.loads(provenance_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cpus = attrs.get("cpus") if isinstance(attrs, dict) else None
    return ", ".join(map(str, cpus)) if cpus else None
