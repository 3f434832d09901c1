"""``results/README.md``: the claims scorecard, then the committed tables, figures, studies
and benchmarks, on one page; and the front README's two generated blocks
(:func:`front_readme`): the scorecard's verdicts and the quick tables' mean rows.

Everything on the page is read from the files under ``results/`` (tables written by
``python -m dip.report table``, figures by ``... figure``, studies by ``... study``,
benchmarks by ``make bench``). The one text written by a person is a study's
``reading.md``, beside the study it reads: what its numbers show against the paper's
claim, with the commit of the runs.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from dip.atomic import write_text
from dip.report.headings import SEEDS, name
from dip.report.render import MEAN

__all__ = ["build_readme", "verdicts", "headline", "front_readme", "VERDICTS", "HEADLINE"]

VERDICTS = ("<!-- verdicts: make readme writes this block from results/claims_quick.csv -->",
            "<!-- /verdicts -->")
HEADLINE = ("<!-- headline: make readme writes this block from results/tables/*_quick.csv -->",
            "<!-- /headline -->")

# The headline's rows: label, table, the mean row's keys, then the CSV labels shown of the
# released results (scored through the run's crops) and of the paper (whole images).
HEADLINE_ROWS = (
    ("inpainting, 50 % pixels", "inpainting", {}, ("Papyan et al.",), ("Papyan et al.",)),
    *((f"denoising σ {s}", "denoising", {"sigma": s}, ("CBM3D", "NLM"), ("CBM3D",))
      for s in (25, 50)),
    *((f"SR {d.capitalize()} ×{f}", "sr", {"dataset": d, "factor": f}, ("bicubic", "LapSRN"),
       ("Bicubic", "LapSRN")) for d in ("set5", "set14") for f in (4, 8)),
)

INTRO = """# Results

Tables, figures, studies of sweeps and benchmarks produced by this harness, each labelled
with the profile, iterations, device, seed and commit that made it. `quick` results come
from the CPU profile (documented centre crops or downscaled images, narrower nets, shorter
schedules, one thread per run and the CPU kernels pinned to AVX2, as the captions say, so
that a rerun on the CPU model named in the caption matches them digit for digit; on
another CPU model, even with the same pins, single images move by tenths of a dB and a
long fit can break down where it did not: docs/reproducibility.md); `paper` results use
the official settings. The two are never mixed in one column.

Regenerate: `make claims PROFILE=quick` (the scorecard, from the committed per-seed rows),
`make tables figures PROFILE=quick` (sweeps resume: finished runs are skipped),
`make study-depth-lr`, then `make readme`. Check the inpainting table:
`make reproduce-inpainting`.
"""


def _section(title: str, body: str) -> str:
    return f"\n## {title}\n\n{body.strip()}\n"


def _study(md: Path, results: Path) -> str:
    """A study's table, its reading (``reading.md``, when there is one), files and figures."""
    folder, rel = md.parent, md.parent.relative_to(results).as_posix()
    reading = folder / "reading.md"
    files = [f"[{p.name}]({rel}/{p.name})" for p in sorted(folder.glob("study*"))
             if p.suffix in (".md", ".csv", ".tex")]
    shown = "".join(f"\n\n![{p.stem}]({rel}/{p.name})" for p in
                    (folder / "study.png", folder / "study_curves.png") if p.is_file())
    return (md.read_text().strip()
            + (f"\n\n{reading.read_text().strip()}" if reading.is_file() else "")
            + "\n\nFiles: " + ", ".join(files) + shown)


def build_readme(results="results") -> Path:
    """Write ``<results>/README.md`` from the tables, figures, studies and benchmarks
    found there."""
    results = Path(results)
    parts = [INTRO]
    for md in sorted(results.glob("claims_*.md")):  # the scorecard leads
        png = md.with_suffix(".png")
        shown = f"\n\n![{md.stem}]({png.name})" if png.is_file() else ""
        parts.append(_section(f"Claims scorecard `{md.stem}`", md.read_text() + "\n\nFiles: "
                              + f"[{md.name}]({md.name}), [csv]({md.stem}.csv)" + shown))
    tables = sorted((results / "tables").glob("*.md"))
    figures = sorted((results / "figures").glob("*.png"))
    owner = {}  # a table's own figures (grids, curves) go under it: the longest prefix wins
    for p in figures:
        stems = [t.stem for t in tables if p.stem == t.stem or p.stem.startswith(t.stem + "_")]
        if stems:
            owner[p] = max(stems, key=len)
    for md in tables:
        shown = "".join(f"\n\n![{p.stem}](figures/{p.name})"
                        for p in figures if owner.get(p) == md.stem)
        files = [f"[{md.name}](tables/{md.name})", f"[csv](tables/{md.stem}.csv)",
                 f"[tex](tables/{md.stem}.tex)"]
        if md.with_suffix(".json").is_file():  # the table's provenance, as data
            files.append(f"[provenance](tables/{md.stem}.json)")
        parts.append(_section(f"Table `{md.stem}`", md.read_text()
                              + "\n\nFiles: " + ", ".join(files) + shown))
    figures = [p for p in figures if p not in owner]
    for stem in sorted({p.stem.removesuffix("_curves") for p in figures}):
        shown = [p for p in figures if p.stem in (stem, f"{stem}_curves")]
        parts.append(_section(f"Figure `{stem}`", "\n\n".join(
            f"![{p.stem}](figures/{p.name})" for p in shown)))
    for study in sorted((results / "studies").glob("*/study.md")):
        parts.append(_section(f"Study `{study.parent.name}`", _study(study, results)))
    for md in sorted((results / "bench").glob("*.md")):
        body = md.read_text().split("\n", 1)[-1].replace("\n## ", "\n### ")
        parts.append(_section(f"Benchmark `{md.stem}`", body))
    return write_text(results / "README.md", "".join(parts))


def _signed(x: float, unit: str = "dB") -> str:
    return f"{x:+.2f}" if unit == "dB" else f"{x:+.0f}"


def verdicts(csv) -> str:
    """The front README's table of a scorecard's decided claims (verdict, a − b with its
    interval, the images it rests on when fewer than the claim's, the paper's a − b) and
    a line counting those still without records."""
    card = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    card = card[~card["link"].astype(bool)]
    lines = ["| claim | verdict | a − b [95 %] | paper |", "| --- | --- | --- | ---: |"]
    for _, c in card[card["verdict"] != "no records"].iterrows():
        unit = str(c.get("unit", "dB"))
        measured = "each link" if pd.isna(c["measured"]) else (
            f"{_signed(c['measured'], unit)} [{_signed(c['lo'], unit)}, "
            f"{_signed(c['hi'], unit)}] {unit}")
        if pd.notna(c["partial"]):
            measured += f", {c['partial']} images"
        paper = "–" if pd.isna(c["paper"]) or not math.isfinite(c["paper"]) else \
            _signed(c["paper"])
        lines.append(f"| `{c['id']}`: {c['claim']} | **{c['verdict']}** | {measured} | "
                     f"{paper} |")
    waiting = card[card["verdict"] == "no records"]
    if len(waiting):
        sources = dict.fromkeys(str(s).split(" (")[0] for s in waiting["source"])
        lines += ["", f"{len(waiting)} claims await their records ({', '.join(sources)}): "
                      "`experiments/claims_quick.sh`."]
    return "\n".join(lines)


def _mean_row(tables: Path, table: str, keys: dict):
    """The mean row of ``results/tables/table_<table>_quick.csv`` with ``keys`` and the
    seeds of each of its images; None without one (or in an earlier format)."""
    path = tables / f"table_{table}_quick.csv"
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    if name("run", "DIP final") not in df:  # a table in an earlier format: remake it
        return None
    for key, value in keys.items():
        df = df[df[key].astype(str) == str(value)]
    mean = df[df["image"] == MEAN]
    return (mean.iloc[0], df[df["image"] != MEAN][SEEDS]) if len(mean) == 1 else None


def _means(row, group: str, names) -> str:
    """``NAME value`` of each of ``names`` the mean row has in column group ``group``."""
    return " · ".join(f"{n} {row[name(group, n)]:.2f}" for n in names
                      if pd.notna(row.get(name(group, n))))


def headline(tables="results/tables") -> str:
    """The front README's table of the committed quick tables' mean rows: DIP's final and
    averaged outputs (and a seed ensemble's), the released results of the compared methods
    through the same crops, and the paper's whole-image means of the same images."""
    lines = ["| table | images × seeds | DIP final / avg (quick) | released, same crops "
             "| paper, whole images |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, table, keys, released, paper in HEADLINE_ROWS:
        found = _mean_row(Path(tables), table, keys)
        if found is None:
            continue
        row, seeds = found
        dip = f"{row[name('run', 'DIP final')]:.2f} / {row[name('run', 'DIP avg')]:.2f}"
        if pd.notna(row.get(name("run", "DIP ensemble avg"))):
            dip += f" (seed ensemble {row[name('run', 'DIP ensemble avg')]:.2f})"
        runs = f"{len(seeds)} × {seeds.iloc[0]}" if seeds.nunique() == 1 else \
            f"{len(seeds)} ({seeds.sum()} seeds)"
        lines.append(f"| {label} | {runs} | {dip} | {_means(row, 'released', released)} "
                     f"| {_means(row, 'paper', (*paper, 'DIP'))} |")
    return "\n".join(lines)


def _rewrite(text: str, markers: tuple[str, str], block: str) -> str:
    start, end = markers
    if start not in text or end not in text:
        return text
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}"


def front_readme(readme="README.md", results="results") -> Path:
    """Rewrite the front README's blocks between the :data:`VERDICTS` markers (with
    :func:`verdicts` of ``results/claims_quick.csv``) and the :data:`HEADLINE` markers (with
    :func:`headline` of ``results/tables``); a README without the markers is left as it is."""
    readme, results = Path(readme), Path(results)
    text = readme.read_text(encoding="utf-8")
    if (results / "claims_quick.csv").is_file():
        text = _rewrite(text, VERDICTS, verdicts(results / "claims_quick.csv"))
    text = _rewrite(text, HEADLINE, headline(results / "tables"))
    return write_text(readme, text)
