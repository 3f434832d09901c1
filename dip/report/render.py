"""A paper table's files: markdown, LaTeX and CSV renderings, and its provenance as data.

:func:`markdown` and :func:`latex` (``Styler.to_latex``) show the table with its column
groups (this run, the released results, the paper, Δ: :mod:`dip.report.headings`) over
the column labels, a caption line (experiment, profile, records and seeds, iterations,
device, CPU, commit, dates, what each group is) and its footnotes; an image row shows a
DIP column as mean ± std over the image's seeds, a mean row a column of this run as mean
[lo, hi]. :func:`write_table` writes them, the CSV (4 decimals, every number in its own
column: compared by ``python -m dip.report compare``) and ``<stem>.json``: the table's
provenance (``df.attrs``) as data, which is what :func:`table_cpus` reads. Nothing is ever
read back from the rendered text.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from dip.atomic import atomic_target
from dip.report.declared import experiment_name
from dip.report.headings import SEEDS, group_title, name, parse

__all__ = ["markdown", "latex", "caption", "write_table", "table_cpus", "fmt_cell",
           "provenance_path", "MEAN", "DAGGER"]

MEAN = "mean"  # the image of the rows that close a block
DAGGER = "†"  # after the DIP values of table rows that include a diverged run
CAPTION_SEP = " · "  # between the caption's parts
SOURCES = {"run": "run: this run's records, on its own images",
           "released": "released: the compared methods' own released results, made from the "
                       "whole image, scored through this run's crop",
           "paper": "paper: paper_numbers.csv, whole images",
           "delta": "Δ vs paper: this run's column − the paper's, both on whole images"}


def _seeds(a: dict) -> str | None:
    """'54 seeds (3 per image, ensembles of 3 a record)'."""
    if "seeds" not in a:
        return None
    per = "/".join(map(str, a.get("seeds_per_image") or []))
    extra = [f"{per} per image"] if per else []
    if a.get("ensembles"):
        extra.append(f"ensembles of {'/'.join(map(str, a['ensembles']))} a record")
    return f"{a['seeds']} seed(s)" + (f" ({', '.join(extra)})" if extra else "")


def caption(df: pd.DataFrame) -> str:
    """One line: experiment, profile, records and seeds, iterations, devices, commits,
    dates, and where each group of columns comes from."""
    a = df.attrs
    parts = [f"{a.get('experiment', 'table')}", f"profile {a.get('profile', '?')}"]
    if "records" in a:
        parts.append(f"{a['records']} record(s)")
    parts += [_seeds(a)] if _seeds(a) else []
    if a.get("crops"):
        parts.append("centre crops " + "/".join(f"{c}×{c}" for c in a["crops"]))
    if a.get("iterations"):
        parts.append(f"{'/'.join(map(str, a['iterations']))} iterations")
    if a.get("devices"):
        parts.append("device " + ", ".join(a["devices"]))
    if a.get("cpus"):
        parts.append("CPU " + ", ".join(a["cpus"]))
    if a.get("commits"):
        parts.append("commit " + ", ".join(_short(c) for c in a["commits"]))
    if a.get("dates"):
        first, last = a["dates"]
        parts.append(first if first == last else f"{first} to {last}")
    groups = dict.fromkeys(h.group for h in map(parse, df.columns) if h.group)
    sources = "; ".join(SOURCES[g] for g in groups)
    return CAPTION_SEP.join(parts) + ". PSNR in dB" + (f". {sources}." if sources else ".")


def _short(commit: str) -> str:
    sha, plus, rest = str(commit).partition("+")
    return sha[:12] + plus + rest


def fmt_cell(value, column: str) -> str:
    """A table value as shown: 2 decimals (signed for Δ), integers for counts, '–' if none
    (``column``: its name in the table, e.g. 'sigma', 'run: iter stop')."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    head = parse(column)
    integer = head.label in (SEEDS, "sigma", "factor") or head.label.startswith(
        ("iter ", "steps "))
    if integer and isinstance(value, (int, float, np.number)):
        return f"{value:.0f}" if isinstance(value, (float, np.floating)) else str(value)
    if isinstance(value, (float, np.floating)):
        return f"{value:+.2f}" if head.group == "delta" else f"{value:.2f}"
    return str(value)


def _marked(column: str) -> bool:
    """Columns that show DIP results of the records (the ones a diverged run spoils)."""
    head = parse(column)
    return head.group == "delta" or (head.group == "run"
                                     and head.label.startswith(("DIP", "gap ")))


def _part(df: pd.DataFrame, column: str, part: str) -> list:
    head = parse(column)
    other = None if head.group is None else name(head.group, head.label, part)
    return list(df[other]) if other in df else [math.nan] * len(df)


def _shown(df: pd.DataFrame, column: str) -> list[str]:
    """A column's cells as shown: the value, ± the seeds' std (image rows) or [lo, hi]
    (mean rows), and a dagger where a diverged run is in a DIP value."""
    flags = df.attrs.get("diverged") or [0] * len(df)
    out = []
    rows = zip(df[column], _part(df, column, "std"), _part(df, column, "lo"),
               _part(df, column, "hi"), flags, strict=True)
    for value, std, lo, hi, bad in rows:
        text = fmt_cell(value, column)
        if text != "–" and std == std:
            text += f" ± {fmt_cell(float(std), column)}"
        elif text != "–" and lo == lo and hi == hi:
            text += f" [{fmt_cell(lo, column)}, {fmt_cell(hi, column)}]"
        out.append(text + (DAGGER if bad and _marked(column) and text != "–" else ""))
    return out


def _display(df: pd.DataFrame) -> tuple[list[tuple[str, str]], pd.DataFrame]:
    """The shown columns as (group title, label) — row keys have no title — and their
    cells as text (companions folded into their value's cell)."""
    a = df.attrs
    heads, cells = [], {}
    for column in df.columns:
        head = parse(column)
        if head.part:
            continue
        title = "" if head.group is None else group_title(head.group, a.get("profile"),
                                                          a.get("crops") or ())
        heads.append((title, head.label))
        cells[len(cells)] = _shown(df, column)
    return heads, pd.DataFrame(cells, index=range(len(df)))


def _text_columns(df: pd.DataFrame) -> int:
    """How many leading columns are text (up to ``image``), the rest right-aligned."""
    return list(df.columns).index("image") + 1 if "image" in df else 1


def _is_mean(cells: pd.DataFrame) -> pd.Series:
    return (cells == MEAN).any(axis=1)


def _group_row(heads: list[tuple[str, str]]) -> list[str]:
    """Each group's title over its first column; a row key's name over itself."""
    return [label if not title else (title if i == 0 or heads[i - 1][0] != title else "")
            for i, (title, label) in enumerate(heads)]


def _line(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(df: pd.DataFrame) -> str:
    """Caption line, a markdown table (group titles in its header, the column labels in
    bold below; 2 decimals; mean rows in bold) and footnotes."""
    heads, cells = _display(df)
    mean = _is_mean(cells)
    cells[mean] = cells[mean].map(lambda c: f"**{c}**")
    n_text = _text_columns(df)
    rule = ["---" if i < n_text else "---:" for i in range(len(heads))]
    labels = ["" if not title else f"**{label}**" for title, label in heads]
    body = [_line(_group_row(heads)), _line(rule)]
    body += [_line(labels)] if any(labels) else []
    body += [_line(row) for row in cells.itertuples(index=False)]
    notes = df.attrs.get("notes", [])
    lines = [caption(df), "", *body] + ([""] + [f"- {n}" for n in notes] if notes else [])
    return "\n".join(lines) + "\n"


# characters LaTeX's text mode lacks (after pandas' escaping of &%$#_{}~^\)
_TEX = {"Δ": r"$\Delta$", "×": r"$\times$", "−": "--", "–": "--", "·": r"$\cdot$",
        "†": r"$^\dagger$", "±": r"$\pm$"}
_TEX_ASCII = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
              "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}


def _unicode(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def _tex(text: str) -> str:
    """Caption and footnote text for LaTeX."""
    return _unicode("".join(_TEX_ASCII.get(ch, ch) for ch in str(text)))


def _clines(heads: list[tuple[str, str]]) -> str:
    """``\\cline`` under each group title (plain LaTeX, no package)."""
    spans, start = [], 0
    for title, run in itertools.groupby(title for title, _ in heads):
        width = len(list(run))
        spans += [rf"\cline{{{start + 1}-{start + width}}}"] if title else []
        start += width
    return " ".join(spans)


def latex(df: pd.DataFrame) -> str:
    """A self-contained ``table`` environment (plain tabular; the column groups as
    ``\\multicolumn`` titles over the labels; \\hline rules around mean rows; no extra
    packages), caption and footnotes included."""
    n_text = _text_columns(df)
    heads, cells = _display(df)
    cells.columns = pd.MultiIndex.from_tuples(heads)
    mean = _is_mean(cells)
    rule = mean | mean.shift(fill_value=False)  # before each mean row and after it
    styler = cells.style.hide(axis="index").format(escape="latex", formatter=_unicode)
    styler = styler.format_index(escape="latex", formatter=_unicode, axis=1)
    styler.apply(lambda col: ["hline: ;" if r else "" for r in rule], subset=cells.columns[:1])
    styler.set_table_styles([{"selector": s, "props": ":hline;"}
                             for s in ("toprule", "midrule", "bottomrule")])
    tabular = styler.to_latex(column_format="l" * n_text + "r" * (len(heads) - n_text),
                              multicol_align="c").rstrip("\n").split("\n")
    tabular.insert(3, _clines(heads))  # under the group titles (after begin, hline, titles)
    lines = [r"\begin{table}", r"\centering", rf"\caption{{{_tex(caption(df))}}}", *tabular]
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

    The JSON holds ``df.attrs`` (records, seeds, iterations, devices, CPUs, commits,
    dates, notes): the table's provenance as data.

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
