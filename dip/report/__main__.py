"""``python -m dip.report``: tables and figures from run records.

    python -m dip.report table table_inpainting --profile quick
    python -m dip.report table sr --profile paper --root results/runs --out results/tables
    python -m dip.report figure fig_architectures --profile quick
    python -m dip.report compare results/tables/table_inpainting_quick.csv rerun.csv
    python -m dip.report readme
    python -m dip.report export --root results/runs --profile quick [--out results/records]
    python -m dip.report claims --profile quick [--records results/records] [--out results]
    python -m dip.report study --root results/lr_sweep [--out O] [--metric psnr_avg]
                               [--by fit.lr net.depth] [--profile quick] [--name NAME]

``table`` prints the markdown table and writes ``<out>/<experiment>_<profile>.{md,csv,tex}``;
``figure`` writes ``<out>/<experiment>_<profile>.png`` (and ``..._curves.png``).
``study`` reports a sweep (``dip -m ... records=R``): it finds the settings that differ
across the records under ``--root`` (or takes ``--by``), averages the seeds, prints the
markdown table and writes ``study.{csv,md,tex,png}``, ``study_settings.csv`` and
``study_curves.png`` into
``--out`` (default ``<root>/studies/<name>_<profile>``, beside the records); see
:mod:`dip.report.study`.

On bad input a command prints one ``error:`` line and exits 2 (as ``dip`` does);
``compare`` exits 1 when the tables differ. ``export`` writes the records' per-seed rows,
``results/records/<experiment>_<profile>.csv`` (:mod:`dip.report.export`); ``claims``
builds the scorecard of ``conf/claims.yaml`` from those alone
(:mod:`dip.report.claims`): ``<out>/claims_<profile>.{md,csv,png}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dip.errors import DipError

__all__ = ["main"]


def _record_options(parser: argparse.ArgumentParser, out: str) -> None:
    """--profile, --root and --out of the commands that read records."""
    parser.add_argument("--profile", default="quick",
                        help="profile whose records are used (default: quick)")
    parser.add_argument("--root", default="results/runs",
                        help="records root (default: results/runs)")
    parser.add_argument("--out", default=out, help=f"where the files go (default: {out})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dip.report",
                                     description="Reports built from run records.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table", help="a table (markdown, CSV, LaTeX) from the records",
                       description="Build the table that an experiment declares (the "
                                   "table: block of its config) from the run records of "
                                   "one profile, beside the paper's numbers.")
    t.add_argument("experiment",
                   help="an experiment that declares a table: table_inpainting, "
                        "table_denoising, table_sr, ... (or inpainting, ...)")
    _record_options(t, "results/tables")
    t.add_argument("--stop", default="fixed", choices=["fixed", "wmv", "emv"],
                   help="only records of this stopping rule (default: fixed; the files of "
                        "wmv/emv get a _stop-RULE suffix)")
    t.add_argument("--paper", default=None,
                   help="paper_numbers.csv (default: $DIP_PAPER_NUMBERS, else "
                        "../shared/reference/paper_numbers.csv beside the project)")
    f = sub.add_parser("figure", help="a paper figure (image grid, curves) from the records",
                       description="Build one of the paper's figures from the run records "
                                   "of one profile.")
    f.add_argument("experiment", help="fig_architectures, fig_kate, fig_lr, fig_vase, "
                                      "fig_restoration, fig_jpeg, fig_flash, fig_prior_curves, "
                                      "or an experiment that declares a table "
                                      "(table_inpainting, ...: a grid of its images and "
                                      "their curves)")
    _record_options(f, "results/figures")
    c = sub.add_parser("compare", help="check that a rerun reproduces a table exactly",
                       description="Compare two table CSVs value by value, in the "
                                   "columns both have (a note names the others); exit 1 "
                                   "on any difference.")
    c.add_argument("reference", help="the committed table, e.g. "
                                     "results/tables/table_inpainting_quick.csv")
    c.add_argument("candidate", help="the table rebuilt from the rerun's records")
    c.add_argument("--subset", action="store_true",
                   help="the rerun is a block of the table (e.g. Set5 x4): compare the "
                        "reference's rows that it has")
    r = sub.add_parser("readme", help="results/README.md from the tables, figures, benchmarks",
                       description="Write <results>/README.md showing every table, figure "
                                   "and benchmark found under <results> (for ./results, also "
                                   "the verdicts block of ./README.md).")
    r.add_argument("--results", default="results", help="results folder (default: results)")
    _study_parser(sub)
    _claims_parsers(sub)
    return parser


def _claims_parsers(sub) -> None:
    e = sub.add_parser("export", help="the records' per-seed rows as committed CSVs",
                       description="Write <out>/<experiment>_<profile>.csv, one row per seed "
                                   "of each record, for the claims scorecard.")
    e.add_argument("--root", default="results/runs", help="records root (default: "
                                                           "results/runs)")
    e.add_argument("--profile", default="quick", help="profile (default: quick)")
    e.add_argument("--out", default="results/records", help="where the CSVs go (default: "
                                                             "results/records)")
    c = sub.add_parser("claims", help="which of the paper's claims hold (conf/claims.yaml)",
                       description="Decide each claim of conf/claims.yaml from the exported "
                                   "per-seed rows, with a bootstrap interval; write "
                                   "claims_<profile>.{md,csv,png}.")
    c.add_argument("--profile", default="quick", help="profile (default: quick)")
    c.add_argument("--records", default="results/records",
                   help="the exported rows (default: results/records)")
    c.add_argument("--claims", default=None, help="the claims file (default: conf/claims.yaml)")
    c.add_argument("--out", default="results", help="where the files go (default: results)")
    c.add_argument("--paper", default=None, help="paper_numbers.csv (default: as for table)")


def _study_parser(sub) -> None:
    s = sub.add_parser("study", help="a sweep's table and figures, setting by setting",
                       description="Tell the settings of a sweep apart: a table (CSV, "
                                   "markdown, LaTeX) of the seeds' mean per image and "
                                   "setting, and its figures.")
    s.add_argument("--root", default="results/runs",
                   help="the sweep's records root (default: results/runs)")
    s.add_argument("--out", default=None, help="where the files go (default: "
                                               "ROOT/studies/<name>_<profile>)")
    s.add_argument("--metric", default="psnr_avg",
                   help="field of the table and figures: psnr_avg (default), psnr_final, "
                        "psnr_oracle or psnr_stop")
    s.add_argument("--by", nargs="+", default=None, metavar="KEY",
                   help="the settings' config keys (default: the keys that vary)")
    s.add_argument("--profile", default=None,
                   help="profile whose records are used (needed when the root holds several)")
    s.add_argument("--name", default=None, help="the study's name (default: the root "
                                                "folder's name)")


def _table(args) -> int:
    from dip.report.tables import markdown, table, write_table

    df = table(args.experiment, args.profile, root=args.root, paper=args.paper, stop=args.stop)
    suffix = f"_stop-{args.stop}" if args.stop not in (None, "fixed") else ""
    paths = write_table(df, args.experiment, args.profile + suffix, out_dir=args.out)
    sys.stdout.write(markdown(df))
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


def _figure(args) -> int:
    from dip.report.grids import build_figure

    paths = build_figure(args.experiment, args.profile, root=args.root, out=args.out)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


def _compare(args) -> int:
    from dip.report.compare import compare_tables
    from dip.report.render import table_cpus

    diffs = compare_tables(args.reference, args.candidate, subset=args.subset)
    left_out = [f"{', '.join(cols)} (only in the {side})" for side, cols in
                (("reference", diffs.attrs["only_reference"]),
                 ("candidate", diffs.attrs["only_candidate"])) if cols]
    if left_out:  # e.g. an optional baseline whose package one of the machines lacks
        print(f"note: not compared: {'; '.join(left_out)}", file=sys.stderr)
    if diffs.empty:
        rows = args.reference
        if args.subset:
            rows = f"its {diffs.attrs['rows']} rows of {rows}"
        cols = " in the columns both have" if left_out else ""
        print(f"identical: {args.candidate} reproduces {rows}{cols}")
        return 0
    print(diffs.to_string(index=False))
    made, rerun = table_cpus(args.reference), table_cpus(args.candidate)
    if made != rerun:  # CPU numbers match only on the CPU model that made them
        print(f"note: the reference was made on CPU {made or '(not named)'}, the rerun on "
              f"CPU {rerun or '(not named)'}; CPU runs reproduce to the digit only on the "
              "same CPU model", file=sys.stderr)
    print(f"error: {len(diffs)} value(s) differ from {args.reference}", file=sys.stderr)
    return 1


def _readme(args) -> int:
    from dip.report.readme import build_readme, front_readme

    print(f"wrote {build_readme(args.results)}", file=sys.stderr)
    if Path(args.results).resolve() == (Path.cwd() / "results").resolve():
        front_readme("README.md", args.results)
    return 0


def _study(args) -> int:
    from dip.report.study import build_study

    text, paths = build_study(args.root, args.out, metric=args.metric, by=args.by,
                              profile=args.profile, name=args.name)
    sys.stdout.write(text)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


def _export(args) -> int:
    from dip.report.export import export_records

    paths = export_records(args.root, args.profile, args.out)
    print("wrote " + (", ".join(str(p) for p in paths) or f"nothing (no {args.profile} records "
                      f"under {args.root})"), file=sys.stderr)
    return 0


def _claims(args) -> int:
    from dip.report.claims import read_claims, scorecard
    from dip.report.scorecard import markdown, write_scorecard

    df = scorecard(args.profile, args.records, read_claims(args.claims), args.paper)
    paths = write_scorecard(df, args.profile, args.out)
    sys.stdout.write(markdown(df))
    lacking = df[~df["link"] & (df["verdict"] == "no records")]["id"].tolist()
    if lacking:
        print(f"note: {len(lacking)} claim(s) have no records: {', '.join(lacking)}",
              file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (on error one line on stderr and 2)."""
    args = _parser().parse_args(argv)
    try:
        commands = {"table": _table, "figure": _figure, "compare": _compare, "readme": _readme,
                    "study": _study, "export": _export, "claims": _claims}
        return commands[args.command](args)
    except DipError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
