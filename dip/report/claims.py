"""The claims scorecard: which of the paper's claims hold, with seeds and intervals.

Each claim of ``conf/claims.yaml`` (its first comment says how one is written) is decided
from the committed per-seed rows of one experiment (``results/records/<experiment>_
<profile>.csv``: :mod:`dip.report.export`), on like pixels: the difference a − b per image
and seed, the mean over images of the per-image seed means and its two-level bootstrap
interval (:func:`dip.report.stats.bootstrap`). :func:`verdict` reads the interval against
the claim's threshold. :func:`scorecard` gives one row per claim (and per link of an
ordering) beside the paper's own difference (paper_numbers.csv), and :func:`write_scorecard`
writes ``claims_<profile>.{md,csv,png}`` (the figure: each measured difference with its
interval beside the paper's value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dip.errors import DipError
from dip.report.configs import claims_block
from dip.report.paper import paper_numbers
from dip.report.stats import Interval, bootstrap

__all__ = ["Claim", "read_claims", "verdict", "scorecard", "UNIT_FIELDS", "VERDICTS"]

UNIT_FIELDS = ("dataset", "factor", "sigma", "image_id")
"""The record fields that make one unit of a claim (an image of one table cell)."""
VERDICTS = ("reproduced", "contradicted", "inconclusive", "no records")
KEYS = {"id", "claim", "source", "experiment", "images", "where", "order", "a", "b",
        "relation", "threshold", "paper"}


@dataclass(frozen=True)
class Claim:
    """One claim of ``conf/claims.yaml`` (see its first comment)."""

    id: str
    claim: str
    source: str
    experiment: str
    a: str
    b: str | None = None
    relation: str = ">"
    threshold: float = 0.0
    images: int | None = None
    where: dict = field(default_factory=dict)
    links: tuple = ()  # an ordering's (better, worse) values of `by`
    by: str | None = None
    paper: dict = field(default_factory=dict)


def _claim(node: dict) -> Claim:
    name = node.get("id", "?")
    extra = set(node) - KEYS
    if extra or not {"id", "claim", "experiment", "a"} <= set(node):
        raise DipError(f"claim {name}: unknown keys {sorted(extra)} or missing id, claim, "
                       "experiment or a; see conf/claims.yaml's first comment")
    if str(node.get("relation", ">")) not in (">", "<"):
        raise DipError(f"claim {name}: relation must be '>' or '<'")
    order = node.get("order") or {}
    values = list(order.get("values") or [])
    links = tuple(zip(values, values[1:], strict=False)) + tuple(
        tuple(p) for p in order.get("also") or [])
    if not links and node.get("b") is None:
        raise DipError(f"claim {name}: give b (what a is compared with) or an order")
    return Claim(id=str(name), claim=str(node["claim"]), source=str(node.get("source", "")),
                 experiment=str(node["experiment"]), a=str(node["a"]), b=node.get("b"),
                 relation=str(node.get("relation", ">")),
                 threshold=float(node.get("threshold", 0)), images=node.get("images"),
                 where=dict(node.get("where") or {}), links=links, by=order.get("field"),
                 paper=dict(node.get("paper") or {}))


def read_claims(path=None) -> list[Claim]:
    """The claims of ``conf/claims.yaml`` (or ``path``), checked (one-line DipErrors)."""
    return [_claim(node) for node in claims_block(path)]


def verdict(interval: Interval, relation: str, threshold: float) -> str:
    """'reproduced' when the interval clears ``threshold`` on the side ``relation`` says
    (``>``: a − b above it), 'contradicted' when it clears it on the other side,
    'inconclusive' when it straddles it, 'no records' without a value."""
    if interval.images == 0 or np.isnan(interval.mean):
        return "no records"
    above, below = interval.lo > threshold, interval.hi < threshold
    if relation == ">":
        return "reproduced" if above else "contradicted" if below else "inconclusive"
    return "reproduced" if below else "contradicted" if above else "inconclusive"


def _rows(claim: Claim, folder: Path, profile: str) -> pd.DataFrame:
    """The claim's rows: its experiment's per-seed rows of ``profile``, those of ``where``."""
    path = folder / f"{claim.experiment}_{profile}.csv"
    if not path.is_file():
        return pd.DataFrame()
    rows = pd.read_csv(path)
    for key, value in claim.where.items():
        if key not in rows:
            return rows.iloc[0:0]
        numeric = pd.to_numeric(rows[key], errors="coerce")
        same = (numeric == float(value)) if isinstance(value, (int, float)) else \
            (rows[key].astype(str) == str(value))
        rows = rows[same]
    return rows


def _units(rows: pd.DataFrame) -> list[str]:
    return [c for c in UNIT_FIELDS if c in rows and rows[c].notna().any()]


def _differences(claim: Claim, rows: pd.DataFrame, link=None) -> pd.DataFrame:
    """Long frame of (unit, seed, value = a − b): against ``b`` on the same rows, or for
    an ordering's ``link`` (better, worse) between the rows of the two values of ``by``,
    paired by unit and seed."""
    units = _units(rows)
    if rows.empty or claim.a not in rows:
        return pd.DataFrame(columns=["unit", "seed", "value"])
    if link is None:
        if claim.b not in rows:
            return pd.DataFrame(columns=["unit", "seed", "value"])
        diff = rows[units + ["seed"]].copy()
        diff["value"] = rows[claim.a] - rows[claim.b]
    else:
        keys = units + ["seed"]
        better = rows[rows[claim.by] == link[0]][keys + [claim.a]]
        worse = rows[rows[claim.by] == link[1]][keys + [claim.a]]
        diff = better.merge(worse, on=keys, suffixes=("", "_worse"))
        diff["value"] = diff[claim.a] - diff[f"{claim.a}_worse"]
    diff["unit"] = diff[units].astype(str).agg("/".join, axis=1) if units else "all"
    return diff[["unit", "seed", "value"]].dropna()


def _paper(claim: Claim, paper: pd.DataFrame | None) -> tuple[float, str]:
    """The paper's mean difference a − b over its images, and on how many it holds."""
    spec = claim.paper
    if "a" not in spec or paper is None:
        return np.nan, str(spec.get("text", ""))
    rows = paper[paper["experiment"] == spec["experiment"]]
    for key in ("dataset", "factor"):
        if key in spec:
            rows = rows[rows[key].astype(str).str.replace(r"\.0$", "", regex=True)
                        == str(spec[key])]
    a = rows[rows["method"] == spec["a"]].set_index("image")["psnr_paper"]
    b = rows[rows["method"] == spec["b"]].set_index("image")["psnr_paper"]
    d = (a - b).dropna()
    if d.empty:
        return np.nan, ""
    holds = int(((d > claim.threshold) if claim.relation == ">" else
                 (d < claim.threshold)).sum())
    return float(d.mean()), f"{holds} of {len(d)}"


def _count(claim: Claim, diff: pd.DataFrame) -> str:
    """On how many units the seeds' mean difference holds the claim's relation."""
    means = diff.groupby("unit")["value"].mean()
    holds = (means > claim.threshold) if claim.relation == ">" else (means < claim.threshold)
    return f"{int(holds.sum())} of {len(means)}" if len(means) else ""


def _row(claim: Claim, diff: pd.DataFrame, link, paper) -> dict:
    groups = [g.to_numpy(float) for _, g in diff.groupby("unit")["value"]]
    interval = bootstrap(groups)
    value, count = _paper(claim, paper) if link is None else (np.nan, "")
    found = diff["unit"].nunique()
    partial = f"{found} of {claim.images}" if claim.images and found < claim.images else ""
    return {"id": claim.id + ("" if link is None else f": {link[0]} vs {link[1]}"),
            "claim": claim.claim, "source": claim.source, "link": link is not None,
            "verdict": verdict(interval, claim.relation, claim.threshold),
            "relation": claim.relation, "threshold": claim.threshold,
            "measured": interval.mean, "lo": interval.lo, "hi": interval.hi,
            "images": interval.images, "seeds": interval.seeds, "partial": partial,
            "holds_on": _count(claim, diff), "paper": value,
            "paper_holds_on": count if link is None else "",
            "paper_text": claim.paper.get("text", "") if link is None else "",
            "unit": "steps" if claim.a.startswith("steps_") else "dB"}


def _combined(claim: Claim, links: list[dict]) -> dict:
    """An ordering's own row: reproduced when every link is, contradicted when one is."""
    verdicts = [r["verdict"] for r in links]
    if "no records" in verdicts:
        final = "no records"
    elif "contradicted" in verdicts:
        final = "contradicted"
    else:
        final = "reproduced" if set(verdicts) == {"reproduced"} else "inconclusive"
    weakest = min(links, key=lambda r: (r["lo"] if claim.relation == ">" else -r["hi"])
                  if r["images"] else -np.inf)
    return {**weakest, "id": claim.id, "link": False, "verdict": final,
            "holds_on": f"{verdicts.count('reproduced')} of {len(links)} links",
            "paper": np.nan, "paper_holds_on": "", "paper_text": claim.paper.get("text", "")}


def scorecard(profile: str = "quick", folder="results/records", claims=None,
              paper=None) -> pd.DataFrame:
    """One row per claim (an ordering: its row, then one per link), in the file's order.

    ``paper``: paper_numbers.csv or its frame (default: as :func:`dip.report.paper.
    paper_numbers` finds it; without it the paper columns stay empty).
    """
    claims = read_claims() if claims is None else claims
    if paper is None or isinstance(paper, (str, Path)):
        try:
            paper = paper_numbers(paper)
        except DipError:
            paper = None
    folder, rows_out, provenance = Path(folder), [], []
    for claim in claims:
        rows = _rows(claim, folder, profile)
        provenance.append(rows)
        if not claim.links:
            rows_out.append(_row(claim, _differences(claim, rows), None, paper))
            continue
        links = [_row(claim, _differences(claim, rows, link), link, paper)
                 for link in claim.links]
        rows_out += [_combined(claim, links), *links]
    df = pd.DataFrame(rows_out)
    df.attrs.update(_facts(pd.concat([p for p in provenance if not p.empty] or
                                     [pd.DataFrame()]), profile))
    return df


def _facts(rows: pd.DataFrame, profile: str) -> dict:
    """How the rows were made: commits, CPU models, crops, records and seeds."""
    def values(col):
        return sorted({str(v) for v in rows[col].dropna()}) if col in rows else []

    return {"profile": profile, "commits": [c[:12] for c in values("commit")],
            "cpus": values("cpu"), "crops": values("crop_side"), "rows": len(rows)}
