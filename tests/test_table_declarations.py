"""A table is a declaration: the paper's three tables, declared in their configs, come out
byte for byte as their hand-written builders made them (frozen in tests/tables_before/,
and the committed results/tables/), declaring a table changes no run's identity, and a
new experiment gets a table from its config alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import PAPER_CSV, needs_paper, write_record
from table_scenarios import FIGURE_SCENARIOS, FROZEN, SCENARIOS, build, figure_calls, files

from dip import DipError
from dip.report import configs, declared
from dip.report.__main__ import main
from dip.report.tables import table

ROOT = Path(__file__).resolve().parents[1]
EXTS = ("md", "csv", "tex", "json", "full.csv")


@needs_paper
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_declared_tables_write_the_files_the_hand_written_ones_wrote(scenario, tmp_path):
    df = build(scenario, tmp_path / "runs")
    made = files(df, tmp_path / "tables")
    for ext in EXTS:
        before = (FROZEN / f"{scenario}.{ext}").read_text(encoding="utf-8")
        assert made[ext] == before, f"{scenario}.{ext} differs"


@pytest.mark.parametrize("scenario", sorted(FIGURE_SCENARIOS))
def test_the_declared_tables_draw_the_figures_the_hand_written_ones_drew(scenario, tmp_path,
                                                                         monkeypatch):
    before = json.loads((FROZEN / "figures.json").read_text(encoding="utf-8"))[scenario]
    assert figure_calls(scenario, tmp_path / "runs", monkeypatch) == before


# --- the committed tables ------------------------------------------------------------------

FIELDS = {"noisy": "psnr_corrupted", "DIP final": "psnr_final", "DIP avg": "psnr_avg",
          "DIP ensemble": "psnr_ensemble", "DIP ensemble avg": "psnr_ensemble_avg"}
"""The committed tables' "(this run)" columns and the record fields they show (the others
are baselines: 'NLM' is baseline_nlm)."""
IMAGES = {"table_inpainting": "paper/inpainting50/{image}_GT.png",
          "table_denoising": "paper/denoising/sigma{sigma}/{image}_noisy.png",
          "table_sr": "paper/sr/{dataset}/x{factor}/{image}_GT.png"}
TASKS = {"table_inpainting": "inpainting", "table_denoising": "denoising", "table_sr": "sr"}


def _rollbacks(notes: list[str], n: int) -> list[int]:
    """Per record, rollbacks adding up to what the backtracking note says."""
    hit = next(re.search(r"(\d+) rollbacks? over (\d+) of", s) for s in notes
               if s.startswith("Backtracking"))
    if hit is None:
        return [0] * n
    total, fired = int(hit[1]), int(hit[2])
    return [total - fired + 1] + [1] * (fired - 1) + [0] * (n - fired)


def _metrics(row: pd.Series, this: str) -> dict:
    """A record's metrics from one row of a committed table."""
    out, baselines = {}, {}
    for col, value in row.items():
        if not str(col).endswith(f"({this})") or col.startswith(("Δ", "DIP mean±std")):
            continue
        label = col.removesuffix(f" ({this})")
        value = None if pd.isna(value) else float(value)
        if label in FIELDS:
            out[FIELDS[label]] = value
        else:
            baselines[label.lower()] = value  # 'NLM (this run, ...)': baseline_nlm
    text = row.get(f"DIP mean±std ({this})")
    if isinstance(text, str) and "±" in text:
        mean, std = text.split("±")
        out.update(psnr_seeds_mean=float(mean), psnr_seeds_std=float(std))
    return {**out, "baselines": baselines}


def _records_of(experiment: str, root: Path) -> None:
    """Records that make the committed table of ``experiment`` again: its per-image values,
    its provenance (commit, CPU, device, dates, iterations, crop, seeds) and its rollbacks."""
    stem = ROOT / "results" / "tables" / f"{experiment}_quick"
    committed = pd.read_csv(f"{stem}.csv", na_values=[""])
    facts = json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))
    rows = committed[committed["image"] != "mean"].reset_index(drop=True)
    rollbacks = _rollbacks(facts["notes"], len(rows))
    seeds = facts["seeds"][0] if facts["seeds"] else 1
    for i, row in rows.iterrows():
        keys = {k: row[k] for k in ("sigma", "factor", "dataset") if k in row}
        metrics = _metrics(row, "this run, quick")
        if seeds > 1:
            metrics["seeds"] = list(range(seeds))
        write_record(root, f"r{i:03d}", crop=facts["crops"][0], experiment=experiment,
                     task=TASKS[experiment], image=IMAGES[experiment].format(image=row["image"],
                                                                             **keys),
                     image_id=row["image"], **keys, profile="quick",
                     num_iter=facts["iterations"][i % len(facts["iterations"])],
                     device_name=facts["devices"][0], machine={"cpu": facts["cpus"][0]},
                     commit=facts["commits"][0], backtracks=rollbacks[i],
                     finished=facts["dates"][i % 2] + "T10:00:00+0000", **metrics)


@needs_paper
@pytest.mark.parametrize("experiment", sorted(IMAGES))
def test_the_committed_tables_come_out_of_their_own_values_again(experiment, tmp_path):
    """The committed quick tables (made by the hand-written builders) rebuilt from records
    holding their per-image values: the same files, byte for byte (the mean rows, averaged
    here from the 4-decimal values, come out the same too), and the same provenance."""
    _records_of(experiment, tmp_path / "runs")
    df = table(experiment, "quick", root=tmp_path / "runs", paper=PAPER_CSV)
    out = files(df, tmp_path / "tables")
    stem = ROOT / "results" / "tables" / f"{experiment}_quick"
    for ext in ("csv", "md", "tex"):
        assert out[ext] == Path(f"{stem}.{ext}").read_text(encoding="utf-8"), ext
    facts = json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))
    now = json.loads(out["json"])
    assert {**now, "paper_path": None} == {**facts, "paper_path": None}


# --- identities -----------------------------------------------------------------------------

def test_the_table_block_is_no_part_of_a_runs_identity():
    from dip.runs.config import IDENTITY_EXCLUDE, LEGACY_EXCLUDE

    assert "table" in IDENTITY_EXCLUDE and "table" in LEGACY_EXCLUDE
    assert "table" in configs.IGNORED  # nor of the settings that tell records apart


def _identities_kept(experiment: str, profiles, pick=None) -> int:
    """Check that the declared runs of ``experiment`` (those ``pick`` of them) keep, with
    the table block composed into their config, the identity (and the legacy one) they had
    before the configs declared tables (tests/tables_before/identities.json, computed at the
    commit before). Returns how many runs were checked."""
    from hydra import compose, initialize_config_dir

    from dip.runs.config import CONFIG_DIR, LEGACY_EXCLUDE, config_hash, identify
    from dip.runs.experiments import declared_runs

    before = json.loads((FROZEN / "identities.json").read_text())
    runs = list(enumerate(declared_runs(experiment)))
    runs = runs if pick is None else [runs[i] for i in pick]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        for profile in profiles:
            for i, run in runs:
                cfg = compose("config", overrides=[f"experiment={experiment}",
                                                   f"profile={profile}", *run, "records=/x"])
                assert "columns" in cfg.table  # the block is in the composed config
                identify(cfg, [])
                key = f"{experiment}|{profile}|{i}"
                assert config_hash(cfg) == before[key], key
                assert config_hash(cfg, exclude=LEGACY_EXCLUDE) == before[f"{key}|legacy"], key
    return len(runs) * len(profiles)


@pytest.mark.parametrize("experiment", ["table_inpainting", "table_denoising", "table_sr"])
def test_declaring_a_table_changes_no_identity(experiment):
    """The first two and the last declared runs under each profile (all of them: the slow
    test below)."""
    assert _identities_kept(experiment, ("paper", "quick", "smoke"), pick=[0, 1, -1]) == 9


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["table_inpainting", "table_denoising", "table_sr"])
def test_declaring_a_table_changes_the_identity_of_no_declared_run(experiment):
    assert _identities_kept(experiment, ("paper", "quick", "smoke")) > 30


# --- a new table, declared -----------------------------------------------------------------

NEW = """# @package _global_
name: table_colour
table:
  paper: null
  cells: [sigma]
  columns:
    - {label: noisy, record: psnr_corrupted}
    - {label: NLM, record: baseline_nlm, optional: true}
    - {label: DIP, record: psnr_final}
  notes: ["A table that no code names."]
"""


@pytest.fixture
def new_table(tmp_path, monkeypatch):
    """conf/experiment/ plus table_colour.yaml (a table without paper numbers) and
    fig_x.yaml (no table)."""
    folder = tmp_path / "experiment"
    folder.mkdir()
    for path in configs.EXPERIMENTS.glob("*.yaml"):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "table_colour.yaml").write_text(NEW, encoding="utf-8")
    monkeypatch.setattr(configs, "EXPERIMENTS", folder)
    root = tmp_path / "runs"
    for sigma, image, final in ((25, "F16", 30.0), (25, "lena", 31.0), (50, "F16", 27.0)):
        write_record(root, f"c{sigma}{image}", experiment="table_colour", task="denoising",
                     image=f"{image}.png", sigma=sigma, psnr_final=final,
                     baselines={"nlm": final - 1})
    return root


def test_a_new_experiment_gets_its_table_from_its_declaration(new_table, tmp_path, capsys):
    assert "table_colour" in declared.table_experiments()
    assert main(["table", "colour", "--root", str(new_table), "--out",
                 str(tmp_path / "tables"), "--paper", str(tmp_path / "none.csv")]) == 0
    df = pd.read_csv(tmp_path / "tables" / "table_colour_quick.csv")
    assert list(df.columns) == ["sigma", "image", "runs", "noisy (this run, quick)",
                                "NLM (this run, quick)", "DIP (this run, quick)"]
    assert df["image"].tolist() == ["F16", "lena", "mean", "F16", "mean"]
    assert df["DIP (this run, quick)"].tolist() == [30.0, 31.0, 30.5, 27.0, 27.0]
    facts = json.loads((tmp_path / "tables" / "table_colour_quick.json").read_text())
    assert facts["notes"][0] == "A table that no code names." and facts["paper_path"] is None
    out = capsys.readouterr().out
    assert "| **25** | **mean** |" in out
    assert "PSNR in dB, from the run records." in out and "(paper)" not in out


def test_an_experiment_without_a_table_is_one_line_naming_those_with_one(capsys):
    assert main(["table", "fig_kate", "--root", "nowhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "fig_kate declares no table" in err
    assert "table_deblurring, table_denoising, table_inpainting, table_sr" in err
    with pytest.raises(DipError, match="unknown table 'nope'; choose one of table_deblurring"):
        declared.table_spec("nope")


@pytest.mark.parametrize("block, message", [
    ({"cells": [], "columns": [{"label": "a", "record": "x", "paper": "y"}]},
     "column 'a' needs one of record"),
    ({"cells": [], "colums": []}, "unknown key 'colums' in table"),
    ({"cells": [], "columns": [{"label": "a", "paper": "m"}]}, "paper columns need paper:"),
    ({"paper": "sr", "cells": ["sigma"], "columns": [{"label": "a", "record": "x"}]},
     "cell field 'sigma' is not matched with paper_numbers.csv"),
    ({"paper": "sr", "cells": ["factor"],
      "columns": [{"label": "a", "paper": {"sigma": {25: "m"}}}]},
     "picks its paper method by 'sigma', which is not a cell field"),
    ({"cells": [], "columns": [{"label": "a", "record": "x"}],
      "delta": {"this": "a", "paper": "b"}}, "delta.paper must be the label of a paper"),
    ({"cells": [], "columns": [{"label": "a", "record": "x"}, {"label": "a", "record": "y"}]},
     "share a label"),
])
def test_a_bad_declaration_is_one_line(block, message, tmp_path, monkeypatch):
    (tmp_path / "table_bad.yaml").write_text(json.dumps({"table": block}))
    monkeypatch.setattr(configs, "EXPERIMENTS", tmp_path)
    with pytest.raises(DipError, match=re.escape(message)) as err:
        declared.table_spec("bad")
    assert "\n" not in str(err.value) and "table_bad" in str(err.value)


def test_the_three_declarations():
    sr = declared.table_spec("sr")
    dip, dip003 = (c for c in sr.columns if c.label in ("DIP", "DIP 003"))
    assert [dip.method_of(f) for f in (4, 8, 8.0, 2)] == [
        "deep_prior", "deep_prior_005", "deep_prior_005", "deep_prior"]
    assert [dip003.method_of(f) for f in (4, 8)] == ["", "deep_prior_003"]
    assert dict(sr.match) == {"dataset": "dataset", "factor": "factor"}
    assert dict(declared.table_spec("denoising").match) == {"sigma": "factor"}
    assert declared.table_spec("table-inpainting").cells == ()
