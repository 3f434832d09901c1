"""The paper's tables, rebuilt from run records next to the paper's own numbers.

:func:`~dip.report.records.load_records` gathers the run records into a DataFrame;
:func:`table` averages the runs of each image (over seeds, within one profile) and puts
them beside the paper's numbers read from ``paper_numbers.csv``; :func:`write_table`
writes markdown, CSV and LaTeX.

Paper numbers only ever fill the "(paper)" columns; "(this run, PROFILE)" columns come
only from records.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dip import DipError
from dip.official import OFFICIAL_BACKTRACK
from dip.report.records import int_or_none, load_records, with_datasets

__all__ = ["paper_numbers", "table", "write_table", "table_cpus",
           "markdown", "latex", "experiment_name", "match_image", "compare_tables",
           "write_text", "TABLES"]

TABLES = {"table_inpainting": "inpainting50", "table_denoising": "denoising", "table_sr": "sr"}
"""Table experiments → their ``experiment`` in paper_numbers.csv."""

PAPER_ENV = "DIP_PAPER_NUMBERS"
PAPER_COLUMNS = ["experiment", "dataset", "factor", "image", "method", "psnr_recomputed",
                 "psnr_printed"]
MEAN = "mean"


# --- names --------------------------------------------------------------------------

def _loose(name: str) -> str:
    return re.sub(r"\d+$", "", name.casefold())


def match_image(name: str, candidates) -> str | None:
    """The candidate that names the same image as ``name``, or None.

    Tries an exact match, then a case-insensitive one, then one that also ignores
    trailing digits (``cameraman`` ~ ``Cameraman256``); a looser match must be unique.
    """
    candidates = list(dict.fromkeys(candidates))
    if name in candidates:
        return name
    for key in (str.casefold, _loose):
        hits = [c for c in candidates if key(c) == key(name)]
        if len(hits) == 1:
            return hits[0]
    return None


def experiment_name(experiment: str) -> str:
    """Canonical table name: 'inpainting', 'table-inpainting' → 'table_inpainting'."""
    name = str(experiment).replace("-", "_")
    name = name if name.startswith("table_") else f"table_{name}"
    if name not in TABLES:
        raise DipError(f"unknown table {experiment!r}; choose one of {', '.join(TABLES)}")
    return name


def _natural(value) -> tuple:
    """Sort key: case-insensitive, numbers by value (set5 < set14, kodim2 < kodim12)."""
    parts = re.split(r"(\d+)", str(value).casefold())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


# --- paper numbers ------------------------------------------------------------------

def _default_paper_path() -> Path:
    root = Path(__file__).resolve().parents[2]
    return root.parent / "shared" / "reference" / "paper_numbers.csv"


def paper_numbers(path=None) -> pd.DataFrame:
    """The paper's per-image PSNRs (paper_numbers.csv).

    Parameters
    ----------
    path : str or Path, optional
        The CSV; default ``$DIP_PAPER_NUMBERS``, else
        ``<project root>/../shared/reference/paper_numbers.csv``.

    Returns
    -------
    pandas.DataFrame
        The CSV's columns plus ``psnr_paper`` (the printed number where the CSV has one,
        else the recomputed one) and ``source`` ('printed' or 'recomputed').

    Raises
    ------
    DipError
        When no file is found.
    """
    if path is None:
        path = os.environ.get(PAPER_ENV) or _default_paper_path()
    path = Path(path)
    if not path.is_file():
        raise DipError(f"paper numbers not found at {path}; set {PAPER_ENV}=PATH "
                       "(or --paper PATH) to paper_numbers.csv")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PAPER_COLUMNS if c not in df]
    if missing:
        raise DipError(f"{path} lacks the column(s) {', '.join(missing)}; "
                       "is it paper_numbers.csv?")
    for col in ("factor", "psnr_recomputed", "psnr_printed"):  # Python's exact float parsing
        df[col] = [float(v) if v.strip() else math.nan for v in df[col]]
    printed = df["psnr_printed"].notna()
    df["psnr_paper"] = df["psnr_printed"].where(printed, df["psnr_recomputed"])
    df["source"] = np.where(printed, "printed", "recomputed")
    df.attrs["path"] = str(path)
    return df


class _Paper:
    """Look-ups into paper_numbers.csv for one experiment, remembering what was used."""

    def __init__(self, df: pd.DataFrame, experiment: str):
        self.rows = df[df["experiment"] == experiment]
        self.sources: dict[str, set] = {}

    def value(self, method: str, image: str, factor=None, dataset=None) -> tuple[float, str]:
        rows = self.rows[self.rows["method"] == method]
        if factor is not None:
            rows = rows[rows["factor"].map(int_or_none) == factor]
        if dataset is not None and (rows["dataset"] == dataset).any():
            rows = rows[rows["dataset"] == dataset]
        name = match_image(image, rows["image"])
        hit = rows[rows["image"] == name]
        if len(hit) != 1:
            return math.nan, ""
        return float(hit["psnr_paper"].iloc[0]), str(hit["source"].iloc[0])

    def column(self, label: str, methods, images, factors=None, datasets=None) -> list:
        """Values of one paper column, one per row (``methods`` a str or one per row)."""
        n = len(images)
        methods = [methods] * n if isinstance(methods, str) else list(methods)
        factors = [None] * n if factors is None else list(factors)
        datasets = [None] * n if datasets is None else list(datasets)
        out = []
        rows = zip(methods, images, factors, datasets, strict=True)
        for method, image, factor, dataset in rows:
            value, source = self.value(method, image, factor, dataset) if method else (
                math.nan, "")
            if source:
                self.sources.setdefault(label, set()).add(source)
            out.append(value)
        return out

    def note(self) -> str:
        parts = [f"{label}: {' and '.join(sorted(s))}" for label, s in self.sources.items()]
        return ("Paper columns: the number printed in the paper where paper_numbers.csv has "
                "one (psnr_printed), otherwise the PSNR recomputed from the authors' released "
                "results (psnr_recomputed). Used here: " + ("; ".join(parts) or "none") + ".")


# --- tables -------------------------------------------------------------------------

def _aggregate(records: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean of every metric per group of ``keys`` (over seeds), with a ``runs`` count."""
    cols = [c for c in records if c.startswith(("psnr_", "baseline_"))
            or c in ("iter_stop", "steps")]
    groups = records.groupby(keys, dropna=False, sort=False)
    out = groups[cols].mean()
    out["runs"] = groups.size()
    out = out.reset_index()
    return out.sort_values(keys, key=lambda s: s.map(_natural)).reset_index(drop=True)


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


def _ensembles(records: pd.DataFrame) -> bool:
    return "psnr_seeds_std" in records and bool(records["psnr_seeds_std"].notna().any())


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
    if _ensembles(records):
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
    ref = _Paper(paper, "inpainting50")
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
    ref = _Paper(paper, "denoising")
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
    ref = _Paper(paper, "sr")
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


BLOCK_TO_PAPER = {"sigma": "factor", "factor": "factor", "dataset": "dataset"}


def _partial_blocks(df: pd.DataFrame, paper_rows: pd.DataFrame) -> list[str]:
    """'N of M images[ for KEY]' for each block showing fewer images than the paper has."""
    block = [c for c in ("dataset", "factor", "sigma") if c in df]
    rows = df[df["image"] != MEAN]
    out = []
    for key, part in (rows.groupby(block, sort=False, dropna=False) if block else [((), rows)]):
        key = key if isinstance(key, tuple) else (key,)
        sub = paper_rows
        for col, value in zip(block, key, strict=True):
            col = BLOCK_TO_PAPER[col]
            sub = sub[sub[col].map(int_or_none if col == "factor" else str) == value]
        total = sub["image"].nunique()
        if len(part) < total:
            where = ", ".join(f"{c} {_fmt(v, c)}" for c, v in zip(block, key, strict=True))
            out.append(f"{len(part)} of {total} images" + (f" for {where}" if where else ""))
    return out


DAGGER = "†"  # after the DIP values of table rows that include a diverged run
GOOD_STATUS = ("ok", "stopped")  # 'stopped': early stopping ended the run, as it should


def _bad_runs(records: pd.DataFrame) -> pd.DataFrame:
    """Records whose status is other than ok (records without one count as ok)."""
    if "status" not in records:
        return records.iloc[:0]
    return records[~records["status"].fillna("ok").isin(GOOD_STATUS)]


def _block_key(row, block: list[str]) -> tuple:
    """A record's or table row's dataset, factor and sigma (those in ``block``), comparable."""
    return tuple((row[c] if isinstance(row[c], str) else None) if c == "dataset"
                 else int_or_none(row[c]) for c in block)


def _flagged(df: pd.DataFrame, bad: pd.DataFrame) -> list[int]:
    """Per table row, how many of ``bad`` it averages (a mean row: those of its block)."""
    block = [c for c in ("dataset", "factor", "sigma") if c in df]
    runs = [(_block_key(r, block), r["image_id"]) for _, r in bad.iterrows()]
    return [sum(key == _block_key(row, block) and row["image"] in (MEAN, image)
                for key, image in runs) for _, row in df.iterrows()]


def _marked(column: str) -> bool:
    """Columns that show DIP results of the records (the ones a diverged run spoils)."""
    return "(this run" in column and column.startswith(("DIP ", "Δ ", "gap "))


def no_records_message(experiment: str, profile: str, root) -> str:
    """The one-line error for an empty selection of records."""
    target = experiment.replace("_", "-")
    return (f"no records for {experiment} with profile {profile} under {root}; "
            f"run `make {target} PROFILE={profile}` first")


def _provenance(records: pd.DataFrame) -> dict:
    def values(col):
        return sorted({str(v) for v in records[col].dropna()}) if col in records else []

    devices = values("device_name") or values("device")
    dates = sorted(str(v)[:10] for v in records["finished"].dropna())
    iters = sorted({int(v) for v in records["num_iter"].dropna()})
    crops = sorted({int(v) for v in records["crop"].dropna()}) if "crop" in records else []
    seeds = sorted({int(v) for v in records["n_seeds"].dropna()}) if "n_seeds" in records else []
    return {"runs": len(records), "iterations": iters, "devices": devices,
            "cpus": values("cpu_model"),
            "commits": values("commit"), "dates": (dates[0], dates[-1]) if dates else None,
            "crops": crops, "seeds": seeds if any(k > 1 for k in seeds) else []}


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
        When no record matches, or the paper numbers cannot be found.
    """
    name = experiment_name(experiment)
    records = load_records(root, name, profile, stop)
    if stop is None and "stop" in records:
        rules = sorted(set(records["stop"].fillna("fixed")))
        if len(rules) > 1:
            raise DipError(f"the {profile} records of {name} mix stopping rules "
                           f"({', '.join(rules)}); choose one with stop= (--stop)")
    if records.empty:
        raise DipError(no_records_message(name, profile, root))
    ref = paper if isinstance(paper, pd.DataFrame) else paper_numbers(paper)
    df, notes, used = BUILDERS[name](records, ref, profile)
    partial = _partial_blocks(df, ref[ref["experiment"] == TABLES[name]])
    if partial:
        notes.append("Mean rows average only the images shown (" + "; ".join(partial)
                     + "), so they are not the paper's dataset means.")
    bad = _bad_runs(with_datasets(records) if "dataset" in df else records)
    if not bad.empty:
        statuses = ", ".join(sorted(set(bad["status"])))
        notes.append(f"{DAGGER} diverged: {len(bad)} run(s) (status {statuses}: the final "
                     "output fits the observation worse than a flat image, or the fit blew "
                     f"up); the DIP values marked {DAGGER} include them.")
    notes.append(backtrack_note(records))
    provenance = _provenance(records)
    if provenance["crops"]:
        sides = "/".join(f"{c}×{c}" for c in provenance["crops"])
        notes.append(f"This run's images are centre {sides} crops (profile {profile}); the "
                     "paper's numbers are for whole images, so Δ compares different images.")
    df.attrs.update(provenance, experiment=name, profile=profile, notes=notes,
                    paper_path=ref.attrs.get("path", "paper_numbers.csv"),
                    diverged=_flagged(df, bad))
    return df


def _fit_setting(record, key: str, default: str) -> str:
    """``fit.<key>`` of a record's config.yaml; ``default`` when the record predates it."""
    import yaml

    try:
        config = yaml.safe_load((Path(str(record)) / "config.yaml").read_text())
    except (OSError, TypeError, yaml.YAMLError):
        config = None
    fit = config.get("fit") if isinstance(config, dict) else None
    value = fit.get(key) if isinstance(fit, dict) else None
    return default if value is None else str(value)


def backtrack_note(records: pd.DataFrame) -> str:
    """How often the backtracking rolled a fit back, per mode (``fit.backtrack``; records
    made before the setting existed ran the guard), from the records' ``backtracks``."""
    counts = pd.to_numeric(records["backtracks"], errors="coerce") if "backtracks" in records \
        else pd.Series(math.nan, index=records.index)
    modes = pd.Series([_fit_setting(r, "backtrack", "guard") for r in records["record"]],
                      index=records.index)
    parts = []
    for mode in sorted(set(modes)):
        mine = modes == mode
        known, n = counts[mine].dropna(), int(mine.sum())
        label = f"Backtracking guard ({mode})"
        if mode == "official" and not set(records.loc[mine, "task"]) & set(OFFICIAL_BACKTRACK):
            label = "Backtracking (official: none in this task's notebook)"
        if known.empty:
            parts.append(f"{label}: rollbacks unknown ({n} run(s) recorded without a count)")
            continue
        total, fired = int(known.sum()), int((known > 0).sum())
        text = (f"{total} rollback{'s' * (total != 1)} over {fired} of {len(known)} run(s)"
                if total else f"no rollbacks in {len(known)} run(s)")
        if len(known) < n:
            text += f", unknown for {n - len(known)} run(s) recorded without a count"
        parts.append(f"{label}: {text}")
    note = "; ".join(parts) + "."
    if _ensembles(records):
        note += " For seed ensembles the count is the first seed's."
    return note


# --- output -------------------------------------------------------------------------

CAPTION_SEP = " · "  # between the caption's parts; table_cpus reads them back
CPU_PART = "CPU "


def caption(df: pd.DataFrame) -> str:
    """One line: experiment, profile, runs, iterations, devices, commits, dates, sources."""
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
        parts.append(CPU_PART + ", ".join(a["cpus"]))
    if a.get("commits"):
        parts.append("commit " + ", ".join(_short(c) for c in a["commits"]))
    if a.get("dates"):
        first, last = a["dates"]
        parts.append(first if first == last else f"{first} to {last}")
    return (CAPTION_SEP.join(parts) + ". PSNR in dB; (paper) columns come from paper_numbers.csv, "
            "(this run) columns from the run records.")


def _short(commit: str) -> str:
    sha, plus, rest = str(commit).partition("+")
    return sha[:12] + plus + rest


def _fmt(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    integer = column in ("runs", "sigma", "factor") or column.startswith(("iter ", "steps "))
    if integer and isinstance(value, (int, float, np.number)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:+.2f}" if column.startswith("Δ") else f"{value:.2f}"
    return str(value)


def _cells(df: pd.DataFrame) -> list[list[str]]:
    """Formatted values; DIP values of rows with diverged runs get a dagger."""
    flags = df.attrs.get("diverged") or [0] * len(df)
    return [[_fmt(v, c) + (DAGGER if n and _marked(c) and _fmt(v, c) != "–" else "")
             for c, v in zip(df.columns, row, strict=True)]
            for row, n in zip(df.itertuples(index=False), flags, strict=True)]


def markdown(df: pd.DataFrame) -> str:
    """Caption line, a markdown table (2 decimals; mean rows in bold) and footnotes."""
    lines = [caption(df), "", "| " + " | ".join(df.columns) + " |",
             "|" + "|".join(" --- " if i < _text_columns(df) else " ---: "
                            for i in range(len(df.columns))) + "|"]
    for cells in _cells(df):
        if MEAN in cells:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    notes = df.attrs.get("notes", [])
    return "\n".join(lines + ([""] + [f"- {n}" for n in notes] if notes else [])) + "\n"


def _text_columns(df: pd.DataFrame) -> int:
    return list(df.columns).index("image") + 1 if "image" in df else 1


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}",
        "Δ": r"$\Delta$", "×": r"$\times$", "−": "--", "–": "--", "·": r"$\cdot$",
        "†": r"$^\dagger$"}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def latex(df: pd.DataFrame) -> str:
    """A self-contained ``table`` environment (plain tabular; no extra packages)."""
    n_text = _text_columns(df)
    spec = "l" * n_text + "r" * (len(df.columns) - n_text)
    lines = [r"\begin{table}", r"\centering", rf"\caption{{{_tex(caption(df))}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\hline",
             " & ".join(_tex(c) for c in df.columns) + r" \\", r"\hline"]
    for cells in _cells(df):
        row = " & ".join(_tex(c) for c in cells) + r" \\"
        lines += [r"\hline", row, r"\hline"] if MEAN in cells else [row]
    lines += [r"\end{tabular}"]
    lines += [r"\par\footnotesize " + _tex(n) for n in df.attrs.get("notes", [])]
    return "\n".join(lines + [r"\end{table}"]) + "\n"


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file + rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_table(df: pd.DataFrame, experiment: str, profile: str,
                out_dir="results/tables") -> list[Path]:
    """Write ``<experiment>_<profile>.md``, ``.csv`` and ``.tex`` atomically.

    Returns
    -------
    list of Path
        The markdown, CSV and LaTeX files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{experiment_name(experiment)}_{profile}"
    return [write_text(out_dir / f"{stem}.md", markdown(df)),
            write_text(out_dir / f"{stem}.csv", df.to_csv(index=False, float_format="%.4f")),
            write_text(out_dir / f"{stem}.tex", latex(df))]


def compare_tables(reference, candidate) -> pd.DataFrame:
    """Differences between two table CSVs (a committed table and a rerun of it).

    Parameters
    ----------
    reference, candidate : str or Path
        CSV files written by :func:`write_table`.

    Returns
    -------
    pandas.DataFrame
        One row per (row, column) whose values differ (``reference``, ``candidate``);
        empty when the tables are identical at the precision they were written with.

    Raises
    ------
    DipError
        When the files cannot be read or have different rows or columns.
    """
    try:
        a, b = pd.read_csv(reference), pd.read_csv(candidate)
    except (OSError, ValueError) as err:
        raise DipError(f"cannot read the tables to compare: {err}") from err
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        raise DipError(f"{candidate} has other rows or columns than {reference} "
                       f"({b.shape} vs {a.shape}); rerun the same sweep")
    diffs = []
    for col in a.columns:
        for i, (x, y) in enumerate(zip(a[col], b[col], strict=True)):
            same = (pd.isna(x) and pd.isna(y)) or x == y
            if not same:
                diffs.append({"row": i, "column": col, "reference": x, "candidate": y})
    return pd.DataFrame(diffs, columns=["row", "column", "reference", "candidate"])


def table_cpus(path) -> str | None:
    """The CPU model(s) named in the caption of the Markdown table beside a table CSV
    (``<name>.md`` next to ``<name>.csv``), or None when there is none or no such part."""
    md = Path(path).with_suffix(".md")
    try:
        first = md.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    for part in first.split(CAPTION_SEP):  # the CPU part is never the last one
        if part.startswith(CPU_PART):
            return part[len(CPU_PART):]
    return None
