"""A table is a declaration: the paper's three tables are declared in their configs and
draw the figures their hand-written builders drew (frozen in
tests/tables_before/figures.json), declaring a table changes no run's identity
(tests/tables_before/identities.json), a new experiment gets a table from its config
alone, and a bad declaration is one line. What the tables show is specified in
tests/test_table_format.py."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from conftest import write_record
from table_scenarios import FIGURE_SCENARIOS, FROZEN, figure_calls

from dip import DipError
from dip.report import configs, declared
from dip.report.__main__ import main


@pytest.mark.parametrize("scenario", sorted(FIGURE_SCENARIOS))
def test_the_declared_tables_draw_the_figures_the_hand_written_ones_drew(scenario, tmp_path,
                                                                         monkeypatch):
    before = json.loads((FROZEN / "figures.json").read_text(encoding="utf-8"))[scenario]
    assert figure_calls(scenario, tmp_path / "runs", monkeypatch) == before


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
    run:
      - {label: noisy, record: psnr_corrupted}
      - {label: NLM, record: baseline_nlm, optional: true}
      - {label: DIP, record: psnr_final, seeds: true}
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
    shown = [c for c in df.columns if not c.endswith(("(std)", "lo)", "hi)"))]
    assert shown == ["sigma", "image", "seeds", "run: noisy", "run: NLM", "run: DIP"]
    assert "run: DIP (std)" in df and "run: NLM (std)" not in df
    assert df["image"].tolist() == ["F16", "lena", "mean", "F16", "mean"]
    assert df["run: DIP"].tolist() == [30.0, 31.0, 30.5, 27.0, 27.0]
    facts = json.loads((tmp_path / "tables" / "table_colour_quick.json").read_text())
    assert facts["notes"][0] == "A table that no code names." and facts["paper_path"] is None
    out = capsys.readouterr().out
    assert "| **25** | **mean** | **2** |" in out
    assert "PSNR in dB. run: this run's records, on its own images." in out
    assert "paper" not in out.split("\n\n")[1]  # no paper group


def test_an_experiment_without_a_table_is_one_line_naming_those_with_one(capsys):
    assert main(["table", "fig_kate", "--root", "nowhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "fig_kate declares no table" in err
    assert "table_deblurring, table_denoising, table_inpainting, table_sr" in err
    with pytest.raises(DipError, match="unknown table 'nope'; choose one of table_deblurring"):
        declared.table_spec("nope")


def _run(*columns) -> dict:
    return {"run": list(columns)}


@pytest.mark.parametrize("block, message", [
    ({"cells": [], "columns": [{"label": "a", "record": "x"}]},
     "columns must map groups (run, released, paper) to lists of columns"),
    ({"cells": [], "columns": {"runs": [{"label": "a", "record": "x"}]}},
     "unknown key 'runs' in columns"),
    ({"cells": [], "columns": _run({"label": "a", "record": "x", "method": "y"})},
     "unknown key 'method' in run column 'a'"),
    ({"cells": [], "columns": _run({"label": "a"})}, "run column 'a' needs record:"),
    ({"cells": [], "columns": {"paper": [{"label": "a", "record": "x"}]}},
     "unknown key 'record' in paper column 'a'"),
    ({"cells": [], "columns": {"released": [{"label": "a", "record": "x", "seeds": True}]}},
     "unknown key 'seeds' in released column 'a'"),
    ({"cells": [], "colums": []}, "unknown key 'colums' in table"),
    ({"cells": [], "columns": {"paper": [{"label": "a", "method": "m"}]}},
     "paper columns need paper:"),
    ({"paper": "sr", "cells": ["sigma"], "columns": _run({"label": "a", "record": "x"})},
     "cell field 'sigma' is not matched with paper_numbers.csv"),
    ({"paper": "sr", "cells": ["factor"],
      "columns": {"paper": [{"label": "a", "method": {"sigma": {25: "m"}}}]}},
     "picks its paper method by 'sigma', which is not a cell field"),
    ({"cells": [], "columns": _run({"label": "a", "record": "x"}),
      "delta": {"this": "a", "paper": "b"}}, "delta.paper must be the label of a paper"),
    ({"cells": [], "columns": _run({"label": "a", "record": "x"}, {"label": "a", "record": "y"})},
     "two columns of the same group share a label"),
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


@pytest.mark.parametrize("experiment, released", [
    ("inpainting", ["released_papyan", "released_voronoi"]),
    ("denoising", ["released_cbm3d", "released_nlm"]),
    ("sr", ["released_lapsrn", "released_bicubic"]),
])
def test_the_declarations_group_their_columns(experiment, released):
    """Run columns, then the released results (optional: older records lack them), then
    the paper's; DIP's outputs are shown over seeds, nothing else is."""
    spec = declared.table_spec(experiment)
    groups = [c.group for c in spec.columns]
    assert groups == sorted(groups, key=declared.COLUMN_GROUPS.index)
    assert [c.record for c in spec.columns if c.group == "released"] == released
    assert all(c.optional for c in spec.columns if c.group == "released")
    assert {c.record for c in spec.columns if c.seeds} == {"psnr_final", "psnr_avg"}
    assert spec.delta is not None and spec.delta.this in {c.label for c in spec.columns
                                                          if c.group == "run"}
