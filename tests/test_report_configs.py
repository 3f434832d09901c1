"""A paper table averages seeds only: records of one image that differ in any other
setting (their resolved config.yaml, or the overrides their metrics.json keeps) are
refused with one line pointing to a study."""

from __future__ import annotations

import json

import pytest
from conftest import PAPER_CSV, body, inpainting_record, needs_paper

from dip import DipError
from dip.report.__main__ import main
from dip.report.configs import check_seeds_only, flat_config, record_settings
from dip.report.records import load_records
from dip.report.tables import table


def _config(record, text: str) -> None:
    (record / "config.yaml").write_text(text)


def test_flat_config_leaves_out_what_does_not_change_a_result():
    config = {"seed": 3, "out_dir": "/x", "records": "r", "force": True, "progress": False,
              "data": {"root": "/d"}, "threads": 2, "fit": {"lr": 0.01, "backtrack": "guard"},
              "fast": {"amp": "off", "keep_memory": True}, "stop": "fixed",
              "stopping": {"window": 100}, "net": {"num_channels_down": [8, 8]}}
    assert flat_config(config) == {"fit.lr": 0.01, "net.num_channels_down": [8, 8]}
    assert flat_config({"stop": "wmv", "stopping": {"window": 100}}) == {
        "stop": "wmv", "stopping.window": 100}


@needs_paper
def test_records_of_one_image_with_different_settings_are_refused(tmp_path, capsys):
    root = tmp_path / "runs"
    for seed, lr in ((0, 0.01), (1, 0.001)):
        _config(inpainting_record(root, "barbara", seed, 30.0 + seed),
                f"seed: {seed}\nfit:\n  lr: {lr}\n")
    message = ("the records of table_inpainting (quick) differ in fit.lr (0.01, 0.001) for the "
               "same image; a table averages seeds only: make a study instead: "
               f"python -m dip.report study --root {root}")
    with pytest.raises(DipError) as err:
        table("inpainting", "quick", root=root, paper=PAPER_CSV)
    assert str(err.value) == message
    status = main(["table", "inpainting", "--root", str(root), "--paper", str(PAPER_CSV),
                   "--out", str(tmp_path / "tables")])
    assert status != 0 and capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "tables").exists()


@needs_paper
def test_seeds_of_one_setting_are_averaged(tmp_path):
    root = tmp_path / "runs"
    for seed in (0, 1):  # seeds, outputs and threads differ; the settings do not
        _config(inpainting_record(root, "barbara", seed, 30.0 + seed),
                f"seed: {seed}\nout_dir: /runs/{seed}\nthreads: {seed + 1}\nfit:\n  lr: 0.01\n")
    # a record made before fit.backtrack existed ran what its neutral value computes
    _config(inpainting_record(root, "house", 0, 29.0), "seed: 0\nfit:\n  lr: 0.01\n")
    _config(inpainting_record(root, "house", 1, 31.0),
            "seed: 1\nfit:\n  lr: 0.01\n  backtrack: guard\n")
    # another image may have other settings: it is another cell
    _config(inpainting_record(root, "hill", 0, 28.0), "seed: 0\nfit:\n  lr: 0.001\n")
    rows = body(table("inpainting", "quick", root=root, paper=PAPER_CSV)).set_index("image")
    assert rows["seeds"].to_dict() == {"barbara": 2, "house": 2, "hill": 1}
    assert rows.loc["barbara", "run: DIP final"] == 30.5
    assert rows.loc["house", "run: DIP final"] == 30.0


def test_a_record_without_config_is_judged_by_its_overrides(tmp_path):
    root = tmp_path / "runs"
    for seed, lr in ((0, "0.01"), (1, "0.001")):
        record = inpainting_record(root, "barbara", seed, 30.0)
        (record / "config.yaml").unlink()
        metrics = json.loads((record / "metrics.json").read_text())
        metrics["overrides"] = [f"seed={seed}", f"fit.lr={lr}", "experiment=table_inpainting"]
        (record / "metrics.json").write_text(json.dumps(metrics))
    records = load_records(root)
    settings = record_settings(records)
    assert list(settings["fit.lr"]) == ["0.01", "0.001"] and "seed" not in settings
    with pytest.raises(DipError, match=r"differ in fit\.lr \(0\.01, 0\.001\) for the same"):
        check_seeds_only(records, settings, ["image_id"], "table_inpainting (quick)", root)
    check_seeds_only(records, settings.drop(columns="fit.lr"), ["image_id"], "t", root)


def test_every_differing_setting_is_named_and_a_missing_one_is_unset(tmp_path):
    root = tmp_path / "runs"
    _config(inpainting_record(root, "barbara", 0, 30.0), "fit:\n  lr: 0.01\n  num_iter: 10\n")
    _config(inpainting_record(root, "barbara", 1, 30.0), "fit:\n  num_iter: 20\n")
    records = load_records(root)
    with pytest.raises(DipError, match=r"differ in fit\.lr \(0\.01, unset\) and "
                                       r"fit\.num_iter \(10, 20\) for"):
        check_seeds_only(records, record_settings(records), ["image_id"], "t (quick)", root)
