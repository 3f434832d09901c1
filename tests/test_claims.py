"""The claims scorecard: a claim decided from per-seed rows by its bootstrap interval,
orderings link by link, the paper's own margin beside it, records exported per seed, and
files that rebuild to the byte from the committed rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import write_record

from dip import DipError
from dip.report.__main__ import main
from dip.report.claims import Claim, read_claims, scorecard, verdict
from dip.report.export import export_records
from dip.report.stats import Interval, bootstrap

PAPER = pd.DataFrame({
    "experiment": ["t"] * 4, "dataset": [""] * 4, "factor": [float("nan")] * 4,
    "image": ["a", "a", "b", "b"], "method": ["dip", "base", "dip", "base"],
    "psnr_paper": [31.0, 30.0, 29.0, 29.5]})


@pytest.mark.parametrize("lo,hi,relation,expected", [
    (0.2, 0.9, ">", "reproduced"), (-0.9, -0.2, ">", "contradicted"),
    (-0.2, 0.3, ">", "inconclusive"), (-0.9, -0.2, "<", "reproduced"),
    (0.2, 0.9, "<", "contradicted"), (-0.2, 0.3, "<", "inconclusive"),
])
def test_the_verdict_reads_the_interval_against_the_threshold(lo, hi, relation, expected):
    assert verdict(Interval((lo + hi) / 2, lo, hi, 3, 3), relation, 0.0) == expected
    assert verdict(Interval(float("nan"), float("nan"), float("nan"), 0, 0), ">", 0) == \
        "no records"


def _rows(tmp_path, name="exp", **columns):
    folder = tmp_path / "records"
    folder.mkdir(exist_ok=True)
    pd.DataFrame(columns).to_csv(folder / f"{name}_quick.csv", index=False)
    return folder


def test_a_claim_is_the_bootstrap_of_a_minus_b_over_images_and_seeds(tmp_path):
    folder = _rows(tmp_path, image_id=["a", "a", "b", "b", "c"], seed=[0, 1, 0, 1, 0],
                   sigma=[25.0] * 4 + [50.0], dip=[31.0, 31.4, 30.0, 30.2, 9.0],
                   base=[30.0, 30.0, 30.5, 30.5, 1.0])
    claim = Claim("c", "dip beats base", "T", "exp", a="dip", b="base", images=3,
                  where={"sigma": 25}, paper={"experiment": "t", "a": "dip", "b": "base"})
    row = scorecard("quick", folder, [claim], PAPER).iloc[0]
    expected = bootstrap([[31.0 - 30.0, 31.4 - 30.0], [30.0 - 30.5, 30.2 - 30.5]])
    assert (row["measured"], row["lo"], row["hi"]) == pytest.approx(
        (expected.mean, expected.lo, expected.hi), abs=1e-12)
    assert row["verdict"] == verdict(expected, ">", 0.0)
    assert (row["images"], row["seeds"], row["partial"]) == (2, 2, "2 of 3")
    assert row["holds_on"] == "1 of 2"  # a's seed mean beats b on image a, not on b
    assert row["paper"] == pytest.approx(((31 - 30) + (29 - 29.5)) / 2)
    assert row["paper_holds_on"] == "1 of 2"


def test_an_ordering_is_decided_link_by_link(tmp_path):
    folder = _rows(tmp_path, image_id=["x"] * 9, seed=[0, 1, 2] * 3,
                   label=["deep"] * 3 + ["mid"] * 3 + ["shallow"] * 3,
                   psnr=[30.0, 30.1, 30.2, 29.0, 29.1, 29.0, 29.05, 29.2, 28.9])
    claim = Claim("o", "deep > mid > shallow", "F", "exp", a="psnr", by="label",
                  links=(("deep", "mid"), ("mid", "shallow")))
    df = scorecard("quick", folder, [claim], PAPER)
    assert list(df["id"]) == ["o", "o: deep vs mid", "o: mid vs shallow"]
    assert df.iloc[1]["verdict"] == "reproduced"  # +1.0 dB on every seed
    assert df.iloc[1]["measured"] == pytest.approx((1.0 + 1.0 + 1.2) / 3)
    assert df.iloc[2]["verdict"] == "inconclusive"  # -0.05, -0.1, +0.1
    assert df.iloc[0]["verdict"] == "inconclusive" and df.iloc[0]["holds_on"] == \
        "1 of 2 links"


def test_missing_rows_are_no_records_and_bad_claims_are_one_line(tmp_path):
    claim = Claim("m", "missing", "T", "nowhere", a="x", b="y", images=11)
    row = scorecard("quick", tmp_path, [claim], PAPER).iloc[0]
    assert row["verdict"] == "no records" and row["partial"] == "0 of 11"
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n- {id: x, claim: c, experiment: e, a: p}\n")
    with pytest.raises(DipError, match="claim x: give b"):
        read_claims(bad)


def test_the_projects_claims_read_and_name_known_experiments():
    from dip.report.configs import experiment_names

    claims = read_claims()
    assert len(claims) >= 18 and len({c.id for c in claims}) == len(claims)
    assert {c.experiment for c in claims} <= set(experiment_names())


def test_records_export_one_row_per_seed_and_the_steps_to_fit(tmp_path):
    root = tmp_path / "runs"
    single = write_record(root, "one", experiment="e", image_id="a", seed=0,
                          psnr_final=30.0, psnr_avg=31.0, steps=40)
    (single / "history.csv").write_text("step,loss,psnr_obs\n0,1,10\n10,1,21\n20,1,26\n")
    ensemble = write_record(root, "ens", experiment="e", image_id="b", seed=0,
                            psnr_final=29.0, psnr_avg=30.0, steps=40)
    metrics = json.loads((ensemble / "metrics.json").read_text())
    metrics.update(seeds=[0, 1, 2], psnr_seeds=[29.0, 29.5, 28.5],
                   psnr_seeds_avg=[30.0, 30.5, 29.5], psnr_ensemble=30.2)
    (ensemble / "metrics.json").write_text(json.dumps(metrics))
    [path] = export_records(root, "quick", tmp_path / "records")
    rows = pd.read_csv(path)
    assert list(zip(rows.image_id, rows.seed, rows.psnr_avg, strict=True)) == [
        ("a", 0, 31.0), ("b", 0, 30.0), ("b", 1, 30.5), ("b", 2, 29.5)]
    assert (rows.psnr_ensemble.iloc[1:] == 30.2).all()
    a = rows.iloc[0]
    assert (a.steps_to_obs_20, a.steps_to_obs_25, a.steps_to_obs_30) == (10, 20, 41)
    again = export_records(root, "quick", tmp_path / "again")[0]
    assert again.read_bytes() == path.read_bytes()


def test_the_scorecard_files_rebuild_to_the_byte(tmp_path):
    folder = _rows(tmp_path, name="table_inpainting", image_id=["a", "b"], seed=[0, 0],
                   psnr_final=[31.0, 30.0], released_papyan=[30.0, 29.0])
    args = ["claims", "--profile", "quick", "--records", str(folder)]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two")]) == 0
    for suffix in ("md", "csv", "png"):
        one = (tmp_path / "one" / f"claims_quick.{suffix}").read_bytes()
        assert one == (tmp_path / "two" / f"claims_quick.{suffix}").read_bytes(), suffix
    text = (tmp_path / "one" / "claims_quick.md").read_text()
    assert "**inpainting-papyan**" in text and "2 of 11 images" in text
    assert "no records" in text  # the other claims' experiments have no rows here
