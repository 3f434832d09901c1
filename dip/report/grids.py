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
The table experiments get the same pair per block (sigma, SR set and factor) from
:func:`build_table_figure`: a row per image with its baselines and DIP's outputs, as the
paper's comparison figures. Every figure carries its profile, iterations, device, seed
and commit.
"""

from __future__ import annotations

import functools
import itertools
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf

from dip import DipError
from dip.config import CONFIG_DIR, IDENTITY_EXCLUDE, LEGACY_EXCLUDE, config_hash
from dip.data import load_image
from dip.metrics import to_hwc
from dip.report.figures import plt, save_figure
from dip.report.records import int_or_none, load_records, with_datasets

__all__ = ["figure_records", "sweep_order", "build_figure", "build_table_figure",
           "image_grid", "curves", "FIGURES", "TABLE_FIGURES"]

FIGURES = ("fig_architectures", "fig_kate", "fig_lr", "fig_vase", "fig_restoration",
           "fig_jpeg", "fig_flash", "fig_prior_curves")
"""The figure experiments (``make figures`` runs them all)."""

BASELINE_NAMES = {"biharmonic": "biharmonic (skimage)", "nlm": "NLM (skimage)",
                  "cbm3d": "CBM3D", "bicubic": "bicubic"}


_SWEEPS: dict[tuple[str, str], tuple] = {}  # composed once per process (sweep_order)


def _sweep_configs(experiment: str, profile: str) -> tuple:
    """The composed config of each run of the sweep that ``experiment`` declares
    (``hydra.sweeper.params``, values in their written order) under ``profile``; empty
    (and not kept) when the configs cannot be composed here (e.g. inside a running Hydra
    app)."""
    if (experiment, profile) in _SWEEPS:
        return _SWEEPS[experiment, profile]
    spec = OmegaConf.load(CONFIG_DIR / "experiment" / f"{experiment}.yaml")
    params = OmegaConf.select(spec, "hydra.sweeper.params") or {}
    keys = list(params)
    choices = [str(params[k]).split(",") for k in keys]
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            configs = tuple(compose("config", overrides=[
                f"experiment={experiment}", f"profile={profile}",
                *(f"{k}={v.strip()}" for k, v in zip(keys, values, strict=True))])
                for values in itertools.product(*choices))
    except (ValueError, HydraException):
        return ()
    _SWEEPS[experiment, profile] = configs
    return configs


def sweep_order(experiment: str, profile: str,
                exclude=IDENTITY_EXCLUDE) -> dict[str, int]:
    """Config hash → position of each run of the sweep that ``experiment`` declares
    (``hydra.sweeper.params``, values in their written order) under ``profile``, hashed
    without the keys ``exclude`` (:data:`dip.config.LEGACY_EXCLUDE`: the earlier identity).

    Empty when the configs cannot be composed here (e.g. inside a running Hydra app).
    """
    return {config_hash(cfg, exclude=exclude): i
            for i, cfg in enumerate(_sweep_configs(experiment, profile))}


def figure_records(experiment: str, profile: str, root="results/runs") -> pd.DataFrame:
    """Records of one figure experiment and profile: the runs of its declared sweep in
    the sweep's order (:func:`sweep_order`), then any others in the order they finished."""
    df = load_records(root, profile=profile)
    df = df[df["experiment"] == experiment]
    if df.empty:
        raise DipError(f"no records of {experiment} with profile {profile} under {root}; "
                       f"run `dip -m experiment={experiment} profile={profile}` first")
    df = df.sort_values("finished", kind="stable")
    order = sweep_order(experiment, profile)
    # records made under the earlier identity take the same places
    ranks = {**sweep_order(experiment, profile, LEGACY_EXCLUDE), **order} if order else {}
    rank = df["config_hash"].map(ranks).fillna(len(order)) if "config_hash" in df else 0
    return df.assign(_rank=rank).sort_values("_rank", kind="stable").drop(
        columns="_rank").reset_index(drop=True)


def _spec(record: str) -> dict:
    cfg = OmegaConf.load(Path(record) / "config.yaml")
    return OmegaConf.to_container(cfg.get("figure") or {}, resolve=False)


def _provenance(df: pd.DataFrame) -> str:
    def values(col):
        vals = sorted({str(v) for v in df[col].dropna()}) if col in df else []
        return "/".join(vals) or "?"

    return (f"profile {values('profile')} · {values('num_iter')} it · "
            f"{values('device_name') if 'device_name' in df else values('device')} · "
            f"seed {values('seed')} · commit {values('commit')[:12]}")


def _draw(ax, img: np.ndarray, title: str, inset) -> None:
    a = np.clip(to_hwc(img), 0, 1)
    grey = a.shape[2] == 1
    show = dict(cmap="gray", vmin=0, vmax=1) if grey else {}
    data = a[..., 0] if grey else a
    ax.imshow(data, interpolation="nearest", **show)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    if not inset:
        return
    h, w = a.shape[:2]
    top, left, side = inset
    s = max(4, int(round(side * min(h, w))))
    y0, x0 = int(round(top * h)), int(round(left * w))
    y0, x0 = min(y0, h - s), min(x0, w - s)
    ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), s, s, fill=False, ec="#ff3030", lw=1))
    sub = ax.inset_axes([0.6, 0.0, 0.4, 0.4 * w / h if h > w else 0.4])
    sub.imshow(data[y0:y0 + s, x0:x0 + s], interpolation="nearest", **show)
    sub.set_xticks([])
    sub.set_yticks([])
    for spine in sub.spines.values():
        spine.set_edgecolor("#ff3030")


def _title(name: str, value) -> str:
    return name if value is None or not math.isfinite(value) else f"{name}\n{value:.2f} dB"


def image_grid(panels, path, title: str = "", footer: str = "", inset=None,
               ncols: int = 4, panel_in: float = 3.0) -> Path:
    """Images in a grid, each titled (name and PSNR) and with a zoomed inset.

    Parameters
    ----------
    panels : list of (name, image, psnr or None)
        Images as arrays H×W(×C) or tensors in [0, 1].
    path : path-like
        PNG to write.
    inset : (top, left, side), optional
        Zoomed box as fractions of the image height/width/shorter side.
    ncols : int
        Panels per row.
    panel_in : float
        Width of a panel in inches (110 dpi).
    """
    n = len(panels)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    h, w = to_hwc(panels[0][1]).shape[:2]
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                             figsize=(panel_in * ncols,
                                      panel_in * nrows * h / w + 0.6 * nrows + 0.4))
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, img, value) in zip(axes.flat, panels, strict=False):
        _draw(ax, img, _title(name, value), inset)
    if title:
        fig.suptitle(title, fontsize=10)
    if footer:
        fig.text(0.5, -0.01, footer, ha="center", va="top", fontsize=7, color="#555555")
    return save_figure(fig, path)


def curves(histories, path, *, y: str = "psnr_gt", logx: bool = False, title: str = "",
           footer: str = "") -> Path:
    """One line per run of a history column against iteration.

    Parameters
    ----------
    histories : list of (label, DataFrame)
        History tables (``history.csv`` of the records).
    y : {'psnr_gt', 'psnr_gt_avg', 'psnr_obs', 'loss'}
        Column to plot; 'loss' is shown as MSE.
    logx : bool
        Logarithmic iteration axis (as in the paper's Fig. 2).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    if len(histories) > 10:  # the default cycle repeats after 10 colours
        ax.set_prop_cycle(color=plt.cm.tab20.colors)
    for label, hist in histories:
        steps = hist["step"] + (1 if logx else 0)
        ax.plot(steps, hist[y], lw=1.2, label=label)
    if logx:
        ax.set_xscale("log")
    names = {"psnr_gt": "PSNR to ground truth (dB)", "psnr_gt_avg": "PSNR, averaged (dB)",
             "psnr_obs": "PSNR to the observation (dB)", "loss": "MSE"}
    ax.set(xlabel="iteration" + (" + 1" if logx else ""), ylabel=names.get(y, y))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    if footer:
        fig.text(0.5, -0.01, footer, ha="center", va="top", fontsize=7, color="#555555")
    return save_figure(fig, path)


def _histories(labels, records) -> list:
    """(label, history table) of each record, for :func:`curves`."""
    return [(label, pd.read_csv(Path(r) / "history.csv"))
            for label, r in zip(labels, records, strict=True)]


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
    from dip.data import data_root, save_image
    from dip.run import build_problem

    try:
        cfg = OmegaConf.load(Path(record) / "config.yaml")
        cfg.data.root = str(data_root())
        problem = build_problem(cfg)
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


def build_figure(experiment: str, profile: str = "quick", root="results/runs",
                 out="results/figures") -> list[Path]:
    """Write the figure(s) of ``experiment`` from its records; return the paths.

    A table experiment gets its grids and curves from :func:`build_table_figure`.
    """
    if experiment in TABLE_FIGURES:
        return build_table_figure(experiment, profile, root=root, out=out)
    if experiment not in FIGURES:
        raise DipError(f"unknown figure {experiment!r}; choose one of "
                       f"{', '.join(FIGURES + tuple(TABLE_FIGURES))}")
    df = figure_records(experiment, profile, root)
    spec = _spec(df.record.iloc[0])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    footer = _provenance(df)
    title = spec.get("title", experiment) + f" — profile {profile}"
    labels = [str(v) if isinstance(v, str) and v else f"run {i}"
              for i, v in enumerate(df.get("label", pd.Series([None] * len(df))))]
    paths = []
    first = df.record.iloc[0]
    has_gt = df.psnr_final.notna().any()
    if spec.get("kind", "grid") == "grid":
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
        paths.append(image_grid(panels, out / f"{experiment}_{profile}.png", title=title,
                                footer=footer, inset=spec.get("inset")))
    histories = _histories(labels, df.record)
    y = "psnr_gt" if has_gt else "loss"
    paths.append(curves(histories, out / f"{experiment}_{profile}_curves.png", y=y,
                        logx=spec.get("kind") == "curves", title=title, footer=footer))
    return paths


# --- table figures ------------------------------------------------------------------

# Per table: the groups that get a figure each, the images shown (image_id, those of a
# group's; the first four when none of them ran), the title of the corrupted input and the
# panels of a row after the ground truth and the corrupted input: (title, image file,
# metric column).
TABLE_FIGURES = {
    "table_inpainting": {
        "block": [], "corrupted": "masked", "rows": ["barbara", "house", "Lena512", "hill"],
        "panels": [("biharmonic", "baseline_biharmonic.png", "baseline_biharmonic"),
                   ("DIP", "restored.png", "psnr_final"),
                   ("DIP (averaged)", "restored_avg.png", "psnr_avg")]},
    "table_denoising": {
        "block": ["sigma"], "corrupted": "noisy", "rows": ["F16", "kodim03", "baboon"],
        "panels": [("NLM", "baseline_nlm.png", "baseline_nlm"),
                   ("CBM3D", "baseline_cbm3d.png", "baseline_cbm3d"),
                   ("DIP (averaged)", "restored_avg.png", "psnr_avg"),
                   ("DIP ensemble (averaged)", "restored_ensemble_avg.png",
                    "psnr_ensemble_avg")]},
    "table_sr": {
        "block": ["dataset", "factor"], "corrupted": "low resolution",
        "rows": ["baby", "butterfly", "bird", "zebra", "ppt3", "baboon"],
        "panels": [("bicubic", "baseline_bicubic.png", "baseline_bicubic"),
                   ("DIP", "restored.png", "psnr_final"),
                   ("DIP (averaged)", "restored_avg.png", "psnr_avg")]},
}
"""The table experiments that have figures (``dip.report figure table_...``)."""

_BLOCK_NAMES = {"sigma": "sigma{}", "factor": "x{}", "dataset": "{}"}


def _block_suffix(block: list[str], key) -> str:
    key = key if isinstance(key, tuple) else (key,)
    return "_".join(_BLOCK_NAMES[col].format(int_or_none(value) if col != "dataset" else value)
                    for col, value in zip(block, key, strict=True))


def _first_seed(records: pd.DataFrame) -> pd.DataFrame:
    """One record per image: the lowest seed (the one whose images the record keeps)."""
    return records.sort_values(["image_id", "seed"], kind="stable").groupby(
        "image_id", sort=False).head(1)


def build_table_figure(experiment: str, profile: str = "quick", root="results/runs",
                       out="results/figures", rows=None) -> list[Path]:
    """Image grid and PSNR curves of a table experiment, one pair per block.

    Each row of a grid is one image: ground truth, corrupted input, the classical
    baselines and DIP's outputs, each with its PSNR (dB) and a zoomed inset. The curves
    show the PSNR of every image's run against iteration (the averaged output for
    denoising, as the paper reports it). Runs with early stopping are left out.

    Parameters
    ----------
    experiment : {'table_inpainting', 'table_denoising', 'table_sr'}
    profile : str
        Profile of the records shown.
    root, out : path-like
        Records root; folder of the PNGs.
    rows : list of str, optional
        Images of the grids (``image_id`` values, in this order); default: those of
        :data:`TABLE_FIGURES`, else the first four.

    Returns
    -------
    list of Path
        ``<out>/<experiment>_<profile>[_<block>].png`` and ``..._curves.png``, with
        block e.g. ``sigma25`` or ``set5_x4``.
    """
    spec = TABLE_FIGURES[experiment]
    records = load_records(root, experiment=experiment, profile=profile, stop="fixed")
    if records.empty:
        raise DipError(f"no records of {experiment} with profile {profile} under {root}; "
                       f"run `make {experiment.replace('_', '-')} PROFILE={profile}` first")
    if "dataset" in spec["block"]:  # records without one: as the SR table names it
        records = with_datasets(records)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    block = spec["block"]
    groups = records.groupby(block, sort=True, dropna=False) if block else [((), records)]
    y = "psnr_gt_avg" if experiment == "table_denoising" else "psnr_gt"
    paths = []
    for key, part in groups:
        runs = _first_seed(part).set_index("image_id", drop=False)
        shown = [i for i in (rows or spec["rows"]) if i in runs.index] or list(runs.index[:4])
        # the columns every shown image has (a baseline may be missing, e.g. CBM3D)
        cols = [p for p in spec["panels"]
                if all((Path(runs.record[i]) / p[1]).is_file() for i in shown)]
        suffix = _block_suffix(block, key) if block else ""
        stem = "_".join(x for x in (experiment, profile, suffix) if x)
        title = " — ".join(x for x in (experiment, suffix.replace("_", " "),
                                       f"profile {profile}") if x)
        panels = []
        for i in shown:
            run = runs.loc[i]
            panels.append((f"{i}: ground truth", _read(run.record, "gt.png"), None))
            panels.append((spec["corrupted"], _read(run.record, "corrupted.png"),
                           run.psnr_corrupted))
            panels += [(name, _read(run.record, file), run.get(col)) for name, file, col in cols]
        footer = _provenance(part)
        paths.append(image_grid(panels, out / f"{stem}.png", title=title, footer=footer,
                                inset=(0.35, 0.35, 0.3), ncols=2 + len(cols),
                                panel_in=2.2))
        paths.append(curves(_histories(runs.image_id, runs.record),
                            out / f"{stem}_curves.png", y=y, title=title, footer=footer))
    return paths
