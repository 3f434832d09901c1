"""The claims scorecard as files: ``claims_<profile>.md``, ``.csv`` and ``.png``.

:func:`write_scorecard` renders :func:`dip.report.claims.scorecard`: a markdown table (one
row per claim, an ordering's links below it), its CSV, and a forest plot: each measured
difference with its 95 % interval, the paper's difference where it gives one, and the
claim's threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dip.atomic import write_text
from dip.plots import plt, save_figure

__all__ = ["write_scorecard", "markdown", "COLOURS"]

COLOURS = {"reproduced": "tab:green", "contradicted": "tab:red",
           "inconclusive": "tab:orange", "no records": "tab:gray"}


def _number(value, unit: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:+.0f}" if unit == "steps" else f"{value:+.2f}"


def _measured(row) -> str:
    if row["verdict"] == "no records":
        return "–"
    lo, hi = _number(row["lo"], row["unit"]), _number(row["hi"], row["unit"])
    return f"{_number(row['measured'], row['unit'])} [{lo}, {hi}] {row['unit']}"


def _rests_on(row) -> str:
    if row["verdict"] == "no records":
        return row["partial"] or "no records"
    text = f"{row['images']} image{'s' if row['images'] != 1 else ''} × {row['seeds']} seeds"
    return f"{text} ({row['partial']} images)" if row["partial"] else text


def markdown(df: pd.DataFrame) -> str:
    """The scorecard as a markdown table with its caption and reading notes."""
    facts = df.attrs
    lines = [f"Claims scorecard · profile {facts.get('profile')} · "
             f"{facts.get('rows', 0)} rows of per-seed records · commits "
             f"{', '.join(facts.get('commits') or ['–'])} · CPU "
             f"{', '.join(facts.get('cpus') or ['–'])} · crops "
             f"{', '.join(map(str, facts.get('crops') or [])) or 'none (whole images)'}.", "",
             "| claim | source | verdict | measured a − b [95 % interval] | needs | holds on "
             "| paper a − b (holds on) | rests on |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for _, row in df.iterrows():
        name = f"↳ {row['id'].split(': ', 1)[1]}" if row["link"] else \
            f"**{row['id']}**: {row['claim']}"
        paper = row["paper_text"] or (
            f"{_number(row['paper'], row['unit'])} ({row['paper_holds_on']})"
            if not pd.isna(row["paper"]) else "–")
        needs = f"{row['relation']} {row['threshold']:g}"
        verdict = f"**{row['verdict']}**" if not row["link"] else row["verdict"]
        lines.append(f"| {name} | {'' if row['link'] else row['source']} | {verdict} | "
                     f"{_measured(row)} | {needs} | {row['holds_on']} | {paper} | "
                     f"{_rests_on(row)} |")
    lines += ["", "- a − b: the claim's two sides on the same pixels (this run's DIP, the "
              "compared method's released whole-image result seen through the same crop, "
              "a baseline run on the same observation), the mean over images of each image's "
              "mean over its seeds; the interval: a two-level bootstrap, images then seeds "
              "(10 000 resamples, seeded).",
              "- reproduced: the interval clears the threshold on the claim's side; "
              "contradicted: on the other side; inconclusive: it straddles it. An ordering "
              "is reproduced when each link is.",
              "- paper: the same difference over the paper's images (paper_numbers.csv: "
              "printed numbers, else recomputed from the released results)"
              + ("; quick-profile runs see centre crops with narrower nets and shorter "
                 "schedules, so the paper's margins are a reference, not a target."
                 if facts.get("profile") != "paper" else
                 ": the paper profile's runs should land on them."), ""]
    return "\n".join(lines)


def _forest(df: pd.DataFrame, path: Path, title: str) -> Path:
    """Each row's measured difference and interval, the paper's value (◆) and the
    threshold (|), one panel per unit (dB, steps)."""
    units = [u for u in ("dB", "steps") if (df["unit"] == u).any()]
    heights = [max(2.0, 0.38 * (df["unit"] == u).sum() + 1) for u in units]
    fig, axes = plt.subplots(len(units), 1, figsize=(9, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, unit in zip(axes[:, 0], units, strict=True):
        part = df[df["unit"] == unit].reset_index(drop=True)
        y = np.arange(len(part))[::-1]
        for yi, (_, row) in zip(y, part.iterrows(), strict=True):
            colour = COLOURS[row["verdict"]]
            if row["verdict"] != "no records":
                ax.plot([row["lo"], row["hi"]], [yi, yi], color=colour, lw=2.5)
                ax.plot(row["measured"], yi, "o", color=colour, ms=5)
            if not pd.isna(row["paper"]):
                ax.plot(row["paper"], yi, "D", color="black", ms=4, mfc="none")
            ax.plot(row["threshold"], yi, "|", color="black", ms=12)
        ax.set_yticks(y)
        ax.set_yticklabels([("   " + r["id"].split(": ", 1)[1]) if r["link"] else r["id"]
                            for _, r in part.iterrows()], fontsize=7)
        ax.axvline(0, color="0.8", lw=0.8, zorder=0)
        ax.set_xlabel(f"a − b ({unit}); ● this run with its 95 % interval, ◆ the paper, "
                      "| the claim's threshold", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_title(title, fontsize=9)
    handles = [plt.Line2D([], [], color=c, lw=2.5, label=v) for v, c in COLOURS.items()]
    axes[0, 0].legend(handles=handles, fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def write_scorecard(df: pd.DataFrame, profile: str, out="results") -> list[Path]:
    """Write ``<out>/claims_<profile>.md``, ``.csv`` and ``.png``; returns the paths."""
    out = Path(out)
    md = write_text(out / f"claims_{profile}.md", markdown(df))
    csv = write_text(out / f"claims_{profile}.csv", df.to_csv(index=False,
                                                             float_format="%.4f"))
    png = _forest(df, out / f"claims_{profile}.png",
                  f"Claims scorecard, profile {profile}: measured a − b and its interval")
    return [md, csv, png]
