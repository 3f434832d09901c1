"""The paper's figures from run records: image grids with zoomed insets, and curves.

A figure experiment (``conf/experiment/fig_*.yaml``) runs one or more fits whose
records share ``experiment``; its ``figure`` node says how to show them:

``kind``
    'grid': ground truth, the corrupted input (and the network's input image when it
    is one), the classical baselines and every run's restoration side by side, each
    with a zoomed inset; 'curves': only the curves.
``title``, ``inset``
    Title, and the zoomed box as (top, left, side) fractions of the image.

:func:`build_figure` writes ``<out>/<experiment>_<profile>.png`` (grid) and
``<experiment>_<profile>_curves.png`` (PSNR or MSE against iteration for every run).
The experiments that declare a table (:mod:`dip.report.declared`) get the same pair per
block of the table's cells (sigma, SR set and factor) from :func:`build_table_figure`: a
row per image with its baselines and DIP's outputs, as the paper's comparison figures,
as the table's ``figure`` declares them. Every figure carries its profile, iterations, device, seed
and commit.
"""

from __future__ import annotations

import functools
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from dip.data.images import load_image, save_image
from dip.data.registry import data_root
from dip.errors import DipError
from dip.plots import curves, histories, image_grid
from dip.report.declared import run_hint, table_experiments, table_spec
from dip.report.records import int_or_none, load_records, with_datasets
from dip.report.sweeps import figure_records, sweep_order
from dip.runs.inputs import build_problem
from dip.runs.records import RunRecord
from dip.runs.spec import RunSpec

__all__ = ["figure_records", "sweep_order", "build_figure", "build_table_figure",
           "image_grid", "curves", "FIGURES"]

FIGURES = ("fig_architectures", "fig_kate", "fig_lr", "fig_vase", "fig_restoration",
           "fig_jpeg", "fig_flash", "fig_prior_curves")
"""The figure experiments (``make figures`` runs them all)."""

BASELINE_NAMES = {"biharmonic": "biharmonic (skimage)", "nlm": "NLM (skimage)",
                  "cbm3d": "CBM3D", "bicubic": "bicubic"}


def _spec(record: str) -> dict:
    """The ``figure`` block of a record's config ({} when none)."""
    loaded = RunRecord.load(record)
    return dict((loaded.config if loaded is not None else {}).get("figure") or {})


def _provenance(df: pd.DataFrame) -> str:
    def values(col):
        vals = sorted({str(v) for v in df[col].dropna()}) if col in df else []
        return "/".join(vals) or "?"

    return (f"profile {values('profile')} · {values('num_iter')} it · "
            f"{values('device_name') if 'device_name' in df else values('device')} · "
            f"seed {values('seed')} · commit {values('commit')[:12]}")


# Images of a record that only restate the input data; records committed without them
# (results/paper-runs/, see .gitignore: the test images stay out of the repository) get
# them rebuilt from their config and this machine's data root.
DATA_PANELS = ("gt.png", "corrupted.png")


def _read(record: str, name: str):
    path = Path(record) / name
    if path.is_file():
        return load_image(path)
    if name in DATA_PANELS:
        return _rebuilt(str(record)).get(name)
    return None


@functools.lru_cache(maxsize=16)
def _rebuilt(record: str) -> dict:
    """``gt.png`` and ``corrupted.png`` of ``record`` rebuilt from its ``config.yaml``
    (the problem as the run built it, with the data root of this machine), as 8-bit
    images like the stored ones; {} with a warning when the data is not at hand."""

    try:
        config = dict(RunRecord.load(record).config)
        config["data"] = {**(config.get("data") or {}), "root": str(data_root())}
        problem = build_problem(RunSpec.read(config))
    except (DipError, OSError, ValueError) as err:
        warnings.warn(f"{record}: ground truth and corrupted panels left out, they could not "
                      f"be rebuilt from the data root: {str(err).splitlines()[0]}",
                      stacklevel=3)
        return {}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, img in (("corrupted.png", problem.observation),
                          ("gt.png", problem.gt)):
            if img is not None:  # through a PNG: the same 8-bit values as a stored one
                save_image(Path(tmp) / name, problem.unpad(img).cpu())
                out[name] = load_image(Path(tmp) / name)
    return out


def _panels(experiment: str, spec: dict, df: pd.DataFrame, labels: list[str]) -> list:
    """The grid of a figure experiment: its input data (from the first record), the
    classical baselines and every run's restoration (with PSNR when there is a ground
    truth)."""
    first, has_gt = df.record.iloc[0], df.psnr_final.notna().any()
    panels = []
    gt = _read(first, "gt.png")
    if gt is not None:
        panels.append(("ground truth", gt, None))
    corrupted_name = "target (no-flash)" if df.task.iloc[0] == "fitting" else "corrupted"
    panels.append((corrupted_name, _read(first, "corrupted.png"),
                   df.psnr_corrupted.iloc[0] if has_gt else None))
    inp = _read(first, "input.png")
    if inp is not None:
        panels.insert(0, (spec.get("input_panel", "network input"), inp, None))
    for col in [c for c in df if c.startswith("baseline_")]:
        name = col.removeprefix("baseline_")
        img = _read(first, f"baseline_{name}.png")
        if img is not None:
            panels.append((BASELINE_NAMES.get(name, name), img, df[col].iloc[0]))
    for label, row in zip(labels, df.itertuples(), strict=True):
        panels.append((f"DIP: {label}", _read(row.record, "restored.png"),
                       row.psnr_final if has_gt else None))
        if experiment == "fig_jpeg":
            panels.append((f"DIP (averaged): {label}",
                           _read(row.record, "restored_avg.png"), None))
    return panels


def _lowest_seed(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """One record per value of ``key`` (a figure's setting, a table's image): the one of
    the lowest seed (the one whose images a seed ensemble's record keeps), in ``df``'s
    order; the claims scorecard takes every seed."""
    keep = df.sort_values("seed", kind="stable").drop_duplicates(key).index
    return df[df.index.isin(keep)]


def build_figure(experiment: str, profile: str = "quick", root="results/runs",
                 out="results/figures") -> list[Path]:
    """Write the figure(s) of ``experiment`` from its records; return the paths.

    An experiment that declares a table gets its grids and curves from
    :func:`build_table_figure`.
    """
    tables = table_experiments()
    if experiment in tables:
        return build_table_figure(experiment, profile, root=root, out=out)
    if experiment not in FIGURES:
        raise DipError(f"unknown figure {experiment!r}; choose one of "
                       f"{', '.join(FIGURES + tuple(tables))}")
    df = figure_records(experiment, profile, root)
    if "label" in df and df["label"].notna().all() and "seed" in df:  # each setting once
        df = _lowest_seed(df, "label").reset_index(drop=True)
    spec = _spec(df.record.iloc[0])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    footer = _provenance(df)
    title = spec.get("title", experiment) + f" — profile {profile}"
    labels = [str(v) if isinstance(v, str) and v else f"run {i}"
              for i, v in enumerate(df.get("label", pd.Series([None] * len(df))))]
    paths = []
    if spec.get("kind", "grid") == "grid":
        paths.append(image_grid(_panels(experiment, spec, df, labels),
                                out / f"{experiment}_{profile}.png", title=title,
                                footer=footer, inset=spec.get("inset")))
    y = "psnr_gt" if df.psnr_final.notna().any() else "loss"
    paths.append(curves(histories(labels, df.record), out / f"{experiment}_{profile}_curves.png",
                        y=y, logx=spec.get("kind") == "curves", title=title, footer=footer))
    return paths


# --- table figures ------------------------------------------------------------------

# How a cell field names a block in a figure's file name (others: FIELD then value).
_BLOCK_NAMES = {"sigma": "sigma{}", "factor": "x{}", "dataset": "{}"}


def _block_suffix(block: list[str], key) -> str:
    key = key if isinstance(key, tuple) else (key,)
    return "_".join(_BLOCK_NAMES.get(col, col + "{}").format(
        value if isinstance(value, str) else int_or_none(value))
        for col, value in zip(block, key, strict=True))


def build_table_figure(experiment: str, profile: str = "quick", root="results/runs",
                       out="results/figures", rows=None) -> list[Path]:
    """Image grid and PSNR curves of a table experiment, one pair per block.

    Each row of a grid is one image: ground truth, corrupted input, the classical
    baselines and DIP's outputs, each with its PSNR (dB) and a zoomed inset. The curves
    show the PSNR of every image's run against iteration (the averaged output for
    denoising, as the paper reports it). Runs with early stopping are left out.

    Parameters
    ----------
    experiment : str
        An experiment that declares a table; its ``table.figure`` says what the grids show
        (:class:`dip.report.declared.Figure`) and its ``table.cells`` make the blocks.
    profile : str
        Profile of the records shown.
    root, out : path-like
        Records root; folder of the PNGs.
    rows : list of str, optional
        Images of the grids (``image_id`` values, in this order); default: the declared
        ``figure.images`` a block has, else its first four.

    Returns
    -------
    list of Path
        ``<out>/<experiment>_<profile>[_<block>].png`` and ``..._curves.png``, with
        block e.g. ``sigma25`` or ``set5_x4``.
    """
    table = table_spec(experiment)
    experiment, spec, block = table.experiment, table.figure, list(table.cells)
    records = load_records(root, experiment=experiment, profile=profile, stop="fixed")
    if records.empty:
        raise DipError(f"no records of {experiment} with profile {profile} under {root}; "
                       f"run `{run_hint(experiment, profile)}` first")
    if "dataset" in block:  # records without one: as the table names it
        records = with_datasets(records)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    groups = records.groupby(block, sort=True, dropna=False) if block else [((), records)]
    paths = []
    for key, part in groups:
        runs = _lowest_seed(part.sort_values("image_id", kind="stable"), "image_id"
                            ).set_index("image_id", drop=False)
        shown = [i for i in (rows or spec.images) if i in runs.index] or list(runs.index[:4])
        # the columns every shown image has (a baseline may be missing, e.g. CBM3D)
        cols = [p for p in spec.panels
                if all((Path(runs.record[i]) / p[1]).is_file() for i in shown)]
        suffix = _block_suffix(block, key) if block else ""
        stem = "_".join(x for x in (experiment, profile, suffix) if x)
        title = " — ".join(x for x in (experiment, suffix.replace("_", " "),
                                       f"profile {profile}") if x)
        footer = _provenance(part)
        if any(file.startswith("restored") for _, file, _ in cols):  # DIP's outputs
            panels = []
            for i in shown:
                run = runs.loc[i]
                panels.append((f"{i}: ground truth", _read(run.record, "gt.png"), None))
                panels.append((spec.corrupted, _read(run.record, "corrupted.png"),
                               run.psnr_corrupted))
                panels += [(name, _read(run.record, file), run.get(col))
                           for name, file, col in cols]
            paths.append(image_grid(panels, out / f"{stem}.png", title=title, footer=footer,
                                    inset=(0.35, 0.35, 0.3), ncols=2 + len(cols),
                                    panel_in=2.2))
        else:  # records committed without their images (results/quick-runs, paper-runs)
            warnings.warn(f"{stem}.png not written: the records under {root} keep no "
                          "restored.png (committed without images); the machine that made "
                          "the runs can draw it", stacklevel=2)
        paths.append(curves(histories(runs.image_id, runs.record),
                            out / f"{stem}_curves.png", y=spec.curves, title=title,
                            footer=footer))
    return paths
