"""The paper's tables, rebuilt from run records next to the paper's own numbers.

:func:`~dip.report.records.load_records` gathers the run records into a DataFrame;
:func:`table` averages the runs of each image (over seeds, within one profile, and only
over seeds: records of one image that differ in any other setting are refused, see
:func:`dip.report.configs.check_seeds_only`) and puts them beside the paper's numbers
(:mod:`dip.report.paper`); :func:`~dip.report.render.write_table` writes markdown, CSV,
LaTeX and the table's provenance (:mod:`dip.report.render`); rerun checks are in
:mod:`dip.report.compare`.

Paper numbers only ever fill the "(paper)" columns; "(this run, PROFILE)" columns come
only from records.
"""

from __future__ import annotations

import math

import pandas as pd

from dip.atomic import write_text
from dip.errors import DipError
from dip.report.compare import compare_tables
from dip.report.configs import check_seeds_only, record_settings
from dip.report.notes import (
    backtrack_note,
    bad_runs,
    diverged_note,
    ensembles,
    flagged,
    partial_blocks,
    provenance,
)
from dip.report.paper import (
    PAPER_ENV,
    TABLES,
    PaperColumns,
    experiment_name,
    match_image,
    natural_key,
    paper_numbers,
)
from dip.report.records import int_or_none, load_records, with_datasets
from dip.report.render import MEAN, caption, latex, markdown, table_cpus, write_table

__all__ = ["paper_numbers", "table", "write_table", "table_cpus", "markdown", "latex",
           "caption", "experiment_name", "match_image", "compare_tables", "backtrack_note",
           "no_records_message", "write_text", "TABLES", "PAPER_ENV", "CELLS"]

CELLS = {"table_inpainting": [], "table_denoising": ["sigma"],
         "table_sr": ["dataset", "factor"]}
"""Per table, the record columns that, with ``image_id``, make one cell of the table."""


# --- tables -------------------------------------------------------------------------

def _aggregate(records: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean of every metric per group of ``keys`` (over seeds), with a ``runs`` count."""
    cols = [c for c in records if c.startswith(("psnr_", "baseline_"))
            or c in ("iter_stop", "steps")]
    groups = records.groupby(keys, dropna=False, sort=False)
    out = groups[cols].mean()
    out["runs"] = groups.size()
    out = out.reset_index()
    return out.sort_values(keys, key=lambda s: s.map(natural_key)).reset_index(drop=True)


def _col(agg: pd.DataFrame, name: str) -> pd.Series:
    return agg[name] if name in agg else pd.Series(math.nan, index=agg.index)


def _with_means(df: pd.DataFrame, block: list[str]) -> pd.DataFrame:
    """Append a 'mean' row after each block (mean of each column; ``runs`` summed)."""
    parts = []
    groups = df.groupby(block, sort=False, dropna=False) if block else [((), df)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        mean = part.drop(columns=block + ["image", "runs"]).mean(numeric_only=True)
        row = {**dict(zip(block, key, strict=True)), "image": MEAN, "runs": int(part["runs"].sum()),
               **mean.to_dict()}
        parts += [part, pd.DataFrame([row], columns=df.columns)]
    return pd.concat(parts, ignore_index=True)


def _this(profile: str) -> str:
    return f"this run, {profile}"


def _early_stopping(records: pd.DataFrame) -> bool:
    return "stop" in records and bool((records["stop"].fillna("fixed") != "fixed").any())


def _trust_columns(df: pd.DataFrame, agg: pd.DataFrame, records: pd.DataFrame,
                   t: str) -> list[str]:
    """Detected stop vs oracle, and seed-ensemble columns, when the records have them.

    Returns the footnotes for the added columns.
    """
    notes = []
    if _early_stopping(records):
        modes = "/".join(sorted(set(records["stop"].dropna()) - {"fixed"}))
        df[f"DIP stop ({t})"] = agg["psnr_stop"]
        df[f"iter stop ({t})"] = agg["iter_stop"]
        df[f"steps run ({t})"] = _col(agg, "steps")
        df[f"DIP oracle ({t})"] = agg["psnr_oracle"]
        df[f"gap to oracle ({t})"] = df[f"DIP oracle ({t})"] - df[f"DIP stop ({t})"]
        notes.append(f"DIP stop: output at the step detected without ground truth ({modes}, "
                     "Wang et al.); gap to oracle = DIP oracle − DIP stop, where the oracle is "
                     "the best step of the same run.")
    if ensembles(records):
        df[SEEDS_MEAN.format(t)] = agg["psnr_seeds_mean"]
        df[SEEDS_STD.format(t)] = agg["psnr_seeds_std"]
        df[f"DIP ensemble ({t})"] = agg["psnr_ensemble"]
        note = ("mean±std: PSNR of each seed's final output over the seeds of a run (sample "
                "std); ensemble: PSNR of the mean of those outputs")
        if _col(agg, "psnr_ensemble_avg").notna().any():
            df[f"DIP ensemble avg ({t})"] = agg["psnr_ensemble_avg"]
            note += "; ensemble avg: of the mean of the seeds' averaged outputs"
        notes.append(note + ". Mean rows average the means and the stds.")
    return notes


SEEDS_MEAN, SEEDS_STD = "seeds mean ({})", "seeds std ({})"


def _mean_std(df: pd.DataFrame, t: str) -> pd.DataFrame:
    """Replace the seeds mean and std columns by one 'mean±std' text column."""
    mean, std = SEEDS_MEAN.format(t), SEEDS_STD.format(t)
    if mean not in df:
        return df
    text = [f"{m:.2f}±{s:.2f}" if m == m and s == s else "–"
            for m, s in zip(df[mean], df[std], strict=True)]
    df.insert(list(df.columns).index(mean), f"DIP mean±std ({t})", text)
    return df.drop(columns=[mean, std])


def _inpainting(records, paper, profile):
    t = _this(profile)
    agg = _aggregate(records, ["image_id"])
    ref = PaperColumns(paper, "inpainting50")
    images = list(agg["image_id"])
    df = pd.DataFrame({"image": images, "runs": agg["runs"]})
    df["Papyan et al. (paper)"] = ref.column("Papyan et al. (paper)", "papyan", images)
    df["DIP (paper)"] = ref.column("DIP (paper)", "deep_prior", images)
    df[f"biharmonic ({t})"] = _col(agg, "baseline_biharmonic")
    df[f"DIP final ({t})"] = agg["psnr_final"]
    df[f"DIP avg ({t})"] = agg["psnr_avg"]
    df[f"Δ vs paper ({t})"] = df[f"DIP final ({t})"] - df["DIP (paper)"]
    notes = [ref.note(), f"Δ = DIP final ({t}) − DIP (paper)."]
    notes += _trust_columns(df, agg, records, t)
    return _mean_std(_with_means(df, []), t), notes, ref


def _denoising(records, paper, profile):
    t = _this(profile)
    agg = _aggregate(records, ["sigma", "image_id"])
    ref = PaperColumns(paper, "denoising")
    images, sigmas = list(agg["image_id"]), [int_or_none(s) for s in agg["sigma"]]
    df = pd.DataFrame({"sigma": sigmas, "image": images, "runs": agg["runs"]})
    df[f"noisy ({t})"] = agg["psnr_corrupted"]
    df["noisy (paper)"] = ref.column("noisy (paper)", "noisy", images, sigmas)
    df[f"NLM ({t})"] = _col(agg, "baseline_nlm")
    if _col(agg, "baseline_cbm3d").notna().any():
        df[f"CBM3D ({t})"] = agg["baseline_cbm3d"]
    df["NLM (paper)"] = ref.column("NLM (paper)", "nlm", images, sigmas)
    df["CBM3D (paper)"] = ref.column("CBM3D (paper)", "bm3d", images, sigmas)
    df["DIP (paper)"] = ref.column("DIP (paper)", "deep_prior", images, sigmas)
    df[f"DIP avg ({t})"] = agg["psnr_avg"]
    df[f"DIP final ({t})"] = agg["psnr_final"]
    df[f"Δ vs paper ({t})"] = df[f"DIP avg ({t})"] - df["DIP (paper)"]
    notes = [ref.note(),
             f"Δ = DIP avg ({t}) − DIP (paper): the paper's denoising numbers are those of "
             "the exponentially averaged output."]
    notes += _trust_columns(df, agg, records, t)
    return _mean_std(_with_means(df, ["sigma"]), t), notes, ref


SR_DIP = {4: "deep_prior", 8: "deep_prior_005"}
# Paper columns of the SR table before DIP's, in the paper's order: (label, method,
# optional). An optional one is shown only where paper_numbers.csv has rows for it (the
# paper prints these methods, the released results may lack them).
SR_PAPER = (("Bicubic (paper)", "bicubic", False), ("TV prior (paper)", "TV", True),
            ("LapSRN (paper)", "LapSRN", False), ("SRResNet (paper)", "SRResNet", True))
SR_OPTIONAL = tuple((label, method) for label, method, optional in SR_PAPER if optional)


def _sr(records, paper, profile):
    t = _this(profile)
    records = with_datasets(records)
    agg = _aggregate(records, ["dataset", "factor", "image_id"])
    ref = PaperColumns(paper, "sr")
    images, factors = list(agg["image_id"]), [int_or_none(f) for f in agg["factor"]]
    datasets = list(agg["dataset"])
    df = pd.DataFrame({"dataset": datasets, "factor": factors, "image": images,
                       "runs": agg["runs"]})
    df[f"bicubic ({t})"] = _col(agg, "baseline_bicubic")
    notes, absent = [], []
    for label, method, optional in SR_PAPER:
        if not optional or (ref.rows["method"] == method).any():
            df[label] = ref.column(label, method, images, factors, datasets)
        else:
            absent.append(f"{label.removesuffix(' (paper)')} (method {method})")
    if absent:
        notes.append(f"No column for {' or '.join(absent)}: paper_numbers.csv has no "
                     "per-image numbers for it.")
    dip = [SR_DIP.get(f, "deep_prior") for f in factors]
    df["DIP (paper)"] = ref.column("DIP (paper)", dip, images, factors, datasets)
    if 8 in factors:
        alt = ["deep_prior_003" if f == 8 else "" for f in factors]
        df["DIP 003 (paper)"] = ref.column("DIP 003 (paper)", alt, images, factors, datasets)
        notes.append("×8: DIP (paper) is paper_numbers.csv's deep_prior_005 and DIP 003 (paper) "
                     "its deep_prior_003; we read the suffixes as reg_noise_std 0.05 and 0.03 "
                     "(the official ×8 setting, and the one our runs use, is 0.05). "
                     "×4: DIP (paper) is deep_prior.")
    df[f"DIP final ({t})"] = agg["psnr_final"]
    df[f"DIP avg ({t})"] = agg["psnr_avg"]
    df[f"Δ vs paper ({t})"] = df[f"DIP final ({t})"] - df["DIP (paper)"]
    notes = [ref.note(), *notes,
             f"Δ = DIP final ({t}) − DIP (paper): the official SR notebook reports the final "
             "output. DIP avg is the exponential average of the outputs (exp_weight 0.99, as "
             "in the denoising notebook). PSNR on BT.601 Y after the authors' border shave."]
    notes += _trust_columns(df, agg, records, t)
    return _mean_std(_with_means(df, ["dataset", "factor"]), t), notes, ref


BUILDERS = {"table_inpainting": _inpainting, "table_denoising": _denoising, "table_sr": _sr}


def no_records_message(experiment: str, profile: str, root) -> str:
    """The one-line error for an empty selection of records."""
    target = experiment.replace("_", "-")
    return (f"no records for {experiment} with profile {profile} under {root}; "
            f"run `make {target} PROFILE={profile}` first")


def _records(name: str, profile: str, root, stop) -> pd.DataFrame:
    """The records of one table: one profile, one stopping rule, datasets named."""
    records = load_records(root, name, profile, stop)
    if stop is None and "stop" in records:
        rules = sorted(set(records["stop"].fillna("fixed")))
        if len(rules) > 1:
            raise DipError(f"the {profile} records of {name} mix stopping rules "
                           f"({', '.join(rules)}); choose one with stop= (--stop)")
    if records.empty:
        raise DipError(no_records_message(name, profile, root))
    return with_datasets(records) if "dataset" in CELLS[name] else records


def table(experiment: str, profile: str = "quick", root="results/runs",
          paper=None, stop=None) -> pd.DataFrame:
    """Per-image table of one table experiment, beside the paper's numbers.

    Parameters
    ----------
    experiment : {'table_inpainting', 'table_denoising', 'table_sr'}
        Short names ('inpainting', ...) are accepted.
    profile : str
        Only records of this profile are used (profiles are never mixed).
    root : str or Path
        Records root.
    paper : str, Path or pandas.DataFrame, optional
        paper_numbers.csv or its :func:`paper_numbers` frame; default as there.
    stop : {'fixed', 'wmv', 'emv'}, optional
        Only records of this stopping rule. Records with early stopping add the columns
        DIP stop, iter stop, steps run, DIP oracle and gap to oracle; seed ensembles add
        DIP mean±std, DIP ensemble and DIP ensemble avg.

    Returns
    -------
    pandas.DataFrame
        One row per image (runs of several seeds averaged; ``runs`` counts them) and a
        'mean' row closing each block (per sigma for denoising, per dataset and factor
        for SR). ``df.attrs`` holds the caption's provenance and footnotes.

    Raises
    ------
    DipError
        When no record matches, when the records of one image differ in anything but
        their seed (that is a study: ``python -m dip.report study``), or when the paper
        numbers cannot be found.
    """
    name = experiment_name(experiment)
    records = _records(name, profile, root, stop)
    settings = record_settings(records)
    check_seeds_only(records, settings, [*CELLS[name], "image_id"], f"{name} ({profile})",
                     root)
    ref = paper if isinstance(paper, pd.DataFrame) else paper_numbers(paper)
    df, notes, _ = BUILDERS[name](records, ref, profile)
    partial = partial_blocks(df, ref[ref["experiment"] == TABLES[name]])
    if partial:
        notes.append("Mean rows average only the images shown (" + "; ".join(partial)
                     + "), so they are not the paper's dataset means.")
    bad = bad_runs(records)
    if not bad.empty:
        notes.append(diverged_note(bad))
    notes.append(backtrack_note(records, settings))
    facts = provenance(records)
    if facts["crops"]:
        sides = "/".join(f"{c}×{c}" for c in facts["crops"])
        notes.append(f"This run's images are centre {sides} crops (profile {profile}); the "
                     "paper's numbers are for whole images, so Δ compares different images.")
    df.attrs.update(facts, experiment=name, profile=profile, notes=notes,
                    paper_path=ref.attrs.get("path", "paper_numbers.csv"),
                    diverged=flagged(df, bad))
    return df
