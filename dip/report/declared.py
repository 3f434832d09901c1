"""A table is a declaration: the ``table:`` block of an experiment config, read and checked.

An experiment (``conf/experiment/<name>.yaml``) that declares a ``table:`` block gets its
table from ``python -m dip.report table <name>`` and ``make table-<name>`` with no code
written (docs/experiments.md, "Tables as declarations")::

    table:
      paper: denoising           # its `experiment` in paper_numbers.csv (null: none)
      cells: [sigma]             # record fields that, with the image, make one cell
      match: {sigma: factor}     # cell field -> paper_numbers.csv column it pairs with
      columns:                   # by group, in this order, after the cells, image, seeds
        run:                     # this run's record fields ("run: noisy" in the CSV)
          - {label: noisy, record: psnr_corrupted}
          - {label: CBM3D, record: baseline_cbm3d, optional: true}  # only when present
          - {label: DIP avg, record: psnr_avg, seeds: true}  # mean ± std over seeds
        released:                # the compared methods' released results, this run's crop
          - {label: CBM3D, record: released_cbm3d, optional: true}
        paper:                   # paper_numbers.csv methods ("paper: DIP")
          - {label: DIP, method: deep_prior}
          - {label: DIP 003, method: {factor: {8: deep_prior_003}}, note: "..."}  # per cell
      delta: {this: DIP avg, paper: DIP, note: "..."}  # Δ = run − paper (whole images)
      notes: ["..."]                                   # footnotes of the table
      figure: {corrupted: noisy, images: [F16], panels: [...], curves: psnr_gt_avg}

:func:`table_spec` reads one (through :func:`dip.report.configs.table_block`, the report's
reader of configs) into a :class:`TableSpec`; a bad declaration is one line of
:class:`~dip.errors.DipError`. The block is no part of a run's identity
(:data:`dip.runs.config.IDENTITY_EXCLUDE`): editing it never reruns anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from dip.errors import DipError
from dip.report.configs import experiment_names, table_block
from dip.report.headings import name
from dip.report.records import int_or_none

__all__ = ["Column", "Delta", "Figure", "TableSpec", "table_spec", "table_experiments",
           "experiment_name", "cell_key", "run_hint", "PAPER_KEYS", "COLUMN_GROUPS"]

PAPER_KEYS = ("factor", "dataset")
"""The columns of paper_numbers.csv that a cell field can be matched with (beside image)."""
KEYS = {"paper", "cells", "match", "columns", "delta", "notes", "figure"}
COLUMN_GROUPS = ("run", "released", "paper")
"""The declared groups of columns, in the order a table shows them."""
COLUMN_KEYS = {"run": {"label", "record", "optional", "note", "seeds"},
               "released": {"label", "record", "optional", "note"},
               "paper": {"label", "method", "optional", "note"}}
DEFAULT = "default"  # the method of a per-cell paper column for the values it does not name


def cell_key(value) -> str:
    """A cell value as a key of a per-cell method table: 8.0 and 8 → '8', 'set5' → 'set5'."""
    return value if isinstance(value, str) else str(int_or_none(value))


@dataclass(frozen=True)
class Column:
    """One declared column of group ``group`` ('run', 'released' or 'paper'): a record
    field ``record``, or the paper's method (``method``; per cell: the value of cell field
    ``by`` picks it from ``methods``, else ``default``). ``seeds``: a run column of DIP's
    outputs, shown per image as mean ± std over the image's seeds."""

    label: str
    group: str = "run"
    record: str | None = None
    method: str | None = None
    by: str | None = None
    methods: tuple[tuple[str, str], ...] = ()
    default: str | None = None
    optional: bool = False
    note: str | None = None
    seeds: bool = False

    @property
    def is_paper(self) -> bool:
        return self.group == "paper"

    @property
    def heading(self) -> str:
        """The column's name in the table: 'paper: DIP', 'run: DIP avg'."""
        return name(self.group, self.label)

    def method_of(self, value) -> str:
        """The paper method of a row whose cell field ``by`` is ``value`` ('' for none)."""
        if self.by is None:
            return self.method or ""
        return dict(self.methods).get(cell_key(value), self.default) or ""

    def all_methods(self) -> list[str]:
        """Every paper method the column may read."""
        names = [self.method, self.default, *(m for _, m in self.methods)]
        return [m for m in names if m]


@dataclass(frozen=True)
class Delta:
    """The Δ column: this run's column ``this`` minus the paper's column ``paper``."""

    this: str
    paper: str
    note: str | None = None


@dataclass(frozen=True)
class Figure:
    """The grid of a table's images (``python -m dip.report figure``): the corrupted
    input's title, the images shown (default: a block's first four), the panels after the
    ground truth and the corrupted input (title, image file, PSNR field) and the curves'
    field."""

    corrupted: str = "corrupted"
    images: tuple[str, ...] = ()
    panels: tuple[tuple[str, str, str], ...] = (("DIP", "restored.png", "psnr_final"),
                                                ("DIP (averaged)", "restored_avg.png",
                                                 "psnr_avg"))
    curves: str = "psnr_gt"


@dataclass(frozen=True)
class TableSpec:
    """An experiment's table, as its config declares it (see the module's docstring)."""

    experiment: str
    cells: tuple[str, ...]
    paper: str | None
    match: tuple[tuple[str, str], ...]
    columns: tuple[Column, ...]
    delta: Delta | None
    notes: tuple[str, ...]
    figure: Figure

    def paper_key(self, column: str) -> str | None:
        """The cell field matched with paper_numbers.csv's ``column`` ('factor', ...)."""
        return next((cell for cell, key in self.match if key == column), None)


def table_experiments() -> list[str]:
    """The experiments whose config declares a table, sorted."""
    return [name for name in experiment_names() if table_block(name) is not None]


def experiment_name(experiment: str) -> str:
    """The experiment of a table: 'inpainting', 'table-inpainting' → 'table_inpainting'.

    Raises
    ------
    DipError
        When no experiment of that name declares a table (naming those that do).
    """
    name = str(experiment).replace("-", "_")
    known = experiment_names()
    for candidate in (name, f"table_{name}"):
        if candidate in known and table_block(candidate) is not None:
            return candidate
    tables = ", ".join(table_experiments()) or "none"
    if name in known:
        raise DipError(f"experiment {name} declares no table (no table: block in "
                       f"conf/experiment/{name}.yaml); the experiments with one: {tables}")
    raise DipError(f"unknown table {experiment!r}; choose one of {tables}")


def run_hint(experiment: str, profile: str) -> str:
    """The command that makes the records of a table: ``make table-NAME PROFILE=P`` for
    ``table_NAME`` (the Makefile's ``table-%``), else the experiment's sweep."""
    if experiment.startswith("table_"):
        return f"make {experiment.replace('_', '-')} PROFILE={profile}"
    return f"dip -m experiment={experiment} profile={profile}"


def table_spec(experiment: str) -> TableSpec:
    """The declared table of ``experiment`` (short names as :func:`experiment_name`)."""
    name = experiment_name(experiment)
    return _spec(name, table_block(name))


# --- reading a declaration ---------------------------------------------------------------

def _fail(where: str, what: str) -> DipError:
    return DipError(f"the table of {where}: {what} (see docs/experiments.md, Tables as "
                    "declarations)")


def _unknown(where: str, node: dict, known: set, what: str) -> None:
    extra = sorted(set(node) - known)
    if extra:
        raise _fail(where, f"unknown key {extra[0]!r} in {what}; known: "
                    f"{', '.join(sorted(known))}")


def _text_list(where: str, value, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"{what} must be a list of text")
    return tuple(value)


def _paper_source(where: str, label: str, method, cells: tuple) -> dict:
    """The paper method of a column: a method, or ``{FIELD: {VALUE: method, default: m}}``."""
    if isinstance(method, str) and method:
        return {"method": method}
    if (isinstance(method, dict) and len(method) == 1
            and isinstance(next(iter(method.values())), dict)):
        (by, table), = method.items()
        if by not in cells:
            raise _fail(where, f"column {label!r} picks its paper method by {by!r}, which is "
                        f"not a cell field ({', '.join(cells) or 'none'})")
        methods = tuple((str(k), str(v)) for k, v in table.items() if str(k) != DEFAULT)
        return {"by": by, "methods": methods, "default": table.get(DEFAULT)}
    raise _fail(where, f"column {label!r}: method must be a paper_numbers.csv method or "
                "{FIELD: {VALUE: method, default: method}}")


def _column(where: str, group: str, node, cells: tuple) -> Column:
    if not isinstance(node, dict) or not isinstance(node.get("label"), str):
        raise _fail(where, f"each column needs a label (got {node!r})")
    label = node["label"]
    _unknown(where, node, COLUMN_KEYS[group], f"{group} column {label!r}")
    common = {"group": group, "optional": bool(node.get("optional", False)),
              "note": node.get("note")}
    if group == "paper":
        if "method" not in node:
            raise _fail(where, f"paper column {label!r} needs method: (a paper_numbers.csv "
                        "method)")
        return Column(label, **_paper_source(where, label, node["method"], cells), **common)
    if not isinstance(node.get("record"), str) or not node["record"]:
        raise _fail(where, f"{group} column {label!r} needs record: (a record field)")
    return Column(label, record=node["record"], seeds=bool(node.get("seeds", False)),
                  **common)


def _columns(where: str, node, cells: tuple) -> tuple[Column, ...]:
    """The declared columns, group by group (``{run: [...], released: [...], paper:
    [...]}``), in the groups' order."""
    if isinstance(node, dict):
        _unknown(where, node, set(COLUMN_GROUPS), "columns")
    if not isinstance(node, dict) or not any(node.get(g) for g in COLUMN_GROUPS):
        raise _fail(where, "columns must map groups (run, released, paper) to lists of "
                    "columns")
    out = []
    for group in COLUMN_GROUPS:
        columns = node.get(group) or []
        if not isinstance(columns, list):
            raise _fail(where, f"columns.{group} must be a list of columns")
        out += [_column(where, group, c, cells) for c in columns]
    return tuple(out)


def _delta(where: str, node, columns: tuple[Column, ...]) -> Delta | None:
    if node is None:
        return None
    if not isinstance(node, dict):
        raise _fail(where, "delta must be {this: LABEL, paper: LABEL, note: TEXT}")
    _unknown(where, node, {"this", "paper", "note"}, "delta")
    for key, group in (("this", "run"), ("paper", "paper")):
        if not any(c.label == node.get(key) and c.group == group for c in columns):
            raise _fail(where, f"delta.{key} must be the label of a {group} column "
                        f"(got {node.get(key)!r})")
    return Delta(node["this"], node["paper"], node.get("note"))


def _figure(where: str, node) -> Figure:
    if node is None:
        return Figure()
    if not isinstance(node, dict):
        raise _fail(where, "figure must be a mapping")
    _unknown(where, node, {"corrupted", "images", "panels", "curves"}, "figure")
    panels = node.get("panels")
    if panels is not None:
        if not all(isinstance(p, dict) and {"label", "image", "psnr"} <= set(p)
                   for p in panels):
            raise _fail(where, "each figure panel is {label: ..., image: FILE, psnr: FIELD}")
        panels = tuple((p["label"], p["image"], p["psnr"]) for p in panels)
    out = {"corrupted": node.get("corrupted"), "images": _text_list(where, node.get("images"),
                                                                     "figure.images") or None,
           "panels": panels, "curves": node.get("curves")}
    return Figure(**{k: v for k, v in out.items() if v is not None})


def _match(where: str, block: dict, cells: tuple, paper) -> tuple:
    """Each cell field and the paper_numbers.csv column it pairs with."""
    match = block.get("match") or {}
    if not isinstance(match, dict):
        raise _fail(where, "match must map cell fields to paper_numbers.csv columns")
    match = {**{c: c for c in cells if c in PAPER_KEYS}, **match}
    for cell, key in match.items():
        if cell not in cells or key not in PAPER_KEYS:
            raise _fail(where, f"match: {cell}: {key} must pair a cell field with one of "
                        f"{', '.join(PAPER_KEYS)}")
    missing = [c for c in cells if c not in match]
    if paper is not None and missing:
        raise _fail(where, f"cell field {missing[0]!r} is not matched with paper_numbers.csv; "
                    f"add match: {{{missing[0]}: factor}} (or dataset)")
    return tuple((c, match[c]) for c in cells if c in match)


def _spec(where: str, block) -> TableSpec:
    """Read and check the ``table:`` block of experiment ``where``."""
    if not isinstance(block, dict):
        raise _fail(where, "table must be a mapping")
    _unknown(where, block, KEYS, "table")
    cells = _text_list(where, block.get("cells"), "cells")
    paper = block.get("paper")
    if paper is not None and not isinstance(paper, str):
        raise _fail(where, "paper must be the experiment's name in paper_numbers.csv or null")
    columns = _columns(where, block.get("columns"), cells)
    headings = [c.heading for c in columns]
    if len(set(headings)) < len(headings):
        raise _fail(where, "two columns of the same group share a label")
    if paper is None and any(c.is_paper for c in columns):
        raise _fail(where, "paper columns need paper: (the experiment's name in "
                    "paper_numbers.csv)")
    return TableSpec(where, cells, paper, _match(where, block, cells, paper), columns,
                     _delta(where, block.get("delta"), columns),
                     _text_list(where, block.get("notes"), "notes"),
                     _figure(where, block.get("figure")))
