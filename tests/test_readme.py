"""The README's headline table shows the committed quick tables' mean rows, as they are."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "results" / "tables"


def test_the_readme_headline_is_the_committed_tables_means():
    from dip.report.readme import HEADLINE, headline

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split(HEADLINE[0] + "\n", 1)[1].split("\n" + HEADLINE[1], 1)[0]
    assert block == headline(ROOT / "results" / "tables"), "run make readme"
    for table in ("inpainting", "denoising", "sr"):
        columns = pd.read_csv(TABLES / f"table_{table}_quick.csv", nrows=0).columns
        assert "run: DIP final" in columns, (
            f"results/tables/table_{table}_quick.csv is in an earlier format: remake it "
            f"(make report-{table})")


def test_the_headline_shows_each_mean_row_with_the_released_and_paper_means(tmp_path):
    from dip.report.readme import headline

    pd.DataFrame([
        {"sigma": 25, "image": "a", "seeds": 3},
        {"sigma": 25, "image": "b", "seeds": 3},
        {"sigma": 25, "image": "mean", "seeds": 6, "run: DIP final": 28.061,
         "run: DIP avg": 29.529, "run: DIP ensemble avg": 30.014, "released: CBM3D": 30.51,
         "released: NLM": 29.475, "paper: CBM3D": 31.42, "paper: DIP": 31.29},
        {"sigma": 50, "image": "a", "seeds": 1},
        {"sigma": 50, "image": "b", "seeds": 3},
        {"sigma": 50, "image": "mean", "seeds": 4, "run: DIP final": 24.0,
         "run: DIP avg": 25.0, "paper: CBM3D": 27.0, "paper: DIP": 27.5},
    ]).to_csv(tmp_path / "table_denoising_quick.csv", index=False)
    lines = headline(tmp_path).splitlines()
    assert lines[2:] == [
        "| denoising σ 25 | 2 × 3 | 28.06 / 29.53 (seed ensemble 30.01) | CBM3D 30.51 · "
        "NLM 29.48 | CBM3D 31.42 · DIP 31.29 |",
        "| denoising σ 50 | 2 (4 seeds) | 24.00 / 25.00 |  | CBM3D 27.00 · DIP 27.50 |"]


def test_the_readme_leads_with_the_committed_scorecards_verdicts():
    from dip.report.readme import VERDICTS, verdicts

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Results at a glance", 1)[1].split("\n## ", 1)[0]
    assert section.strip().split("\n\n")[1].startswith(VERDICTS[0]), "the verdicts lead"
    block = section.split(VERDICTS[0] + "\n", 1)[1].split("\n" + VERDICTS[1], 1)[0]
    assert block == verdicts(ROOT / "results" / "claims_quick.csv"), "run make readme"


def test_the_verdicts_block_shows_each_decided_claim_with_its_interval(tmp_path):
    from dip.report.readme import front_readme, verdicts

    csv = tmp_path / "claims_quick.csv"
    pd.DataFrame([
        {"id": "a", "claim": "A beats B", "source": "Table 1 (x)", "link": False,
         "verdict": "reproduced", "measured": 2.5617, "lo": 1.8044, "hi": 3.3315,
         "partial": "4 of 11", "paper": 2.2973, "unit": "dB"},
        {"id": "b", "claim": "C within D", "source": "Table 2 (y)", "link": False,
         "verdict": "contradicted", "measured": -0.984, "lo": -1.27, "hi": -0.676,
         "partial": None, "paper": -0.1253, "unit": "dB"},
        {"id": "s", "claim": "F first", "source": "Fig. 2 (z)", "link": False,
         "verdict": "contradicted", "measured": 450.0, "lo": 440.0, "hi": 460.0,
         "partial": None, "paper": None, "unit": "steps"},
        {"id": "b: x vs y", "claim": "", "source": "", "link": True, "verdict": "no records",
         "measured": None, "lo": None, "hi": None, "partial": "0 of 1", "paper": None,
         "unit": "dB"},
        {"id": "c", "claim": "E", "source": "Fig. 2 (z)", "link": False,
         "verdict": "no records", "measured": None, "lo": None, "hi": None,
         "partial": "0 of 1", "paper": None, "unit": "dB"}]).to_csv(csv, index=False)
    block = verdicts(csv).splitlines()
    assert block[2] == "| `a`: A beats B | **reproduced** | +2.56 [+1.80, +3.33] dB, 4 of 11 " \
                       "images | +2.30 |"
    assert block[3] == "| `b`: C within D | **contradicted** | -0.98 [-1.27, -0.68] dB | -0.13 |"
    assert block[4] == "| `s`: F first | **contradicted** | +450 [+440, +460] steps | – |"
    assert block[-1] == "1 claims await their records (Fig. 2): `experiments/claims_quick.sh`."
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- verdicts: make readme writes this block from "
                      "results/claims_quick.csv -->\nold\n<!-- /verdicts -->\nend\n")
    front_readme(readme, tmp_path)
    assert readme.read_text().endswith(verdicts(csv) + "\n<!-- /verdicts -->\nend\n")


def _python_example() -> list[str]:
    """The README's Python lines ('Restore your own image', after 'From Python')."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Restore your own image", 1)[1].split("\n## ", 1)[0]
    block = section.split("From Python", 1)[1].split("\n\n", 2)[1]
    return [line[4:] for line in block.splitlines()]


def test_the_readmes_python_example_runs_as_written(tmp_path, monkeypatch):
    import functools
    import math

    from conftest import smooth_png

    import dip

    lines = _python_example()
    assert lines[0] == "import dip"
    monkeypatch.chdir(tmp_path)
    smooth_png(tmp_path / "photo.png", size=(80, 96))
    tiny = ("crop=64", "fit.num_iter=20")  # the example's fit, on a 64² crop for 20 steps
    monkeypatch.setattr(dip, "restore", functools.partial(dip.restore, overrides=tiny))
    scope: dict = {}
    exec("\n".join(lines), scope)
    keys = re.findall(r'out\.metrics\["(\w+)"\]', "\n".join(lines))
    assert keys and all(math.isfinite(scope["out"].metrics[k]) for k in keys), keys
    assert scope["out"].image.shape == (3, 64, 64)


def test_the_readmes_demo_output_is_the_committed_demo_record():
    """The demo's lines in the README are what ``dip`` prints for the committed record of
    ``make demo`` (results/demo/metrics.json), and the text names its CPU and threads."""
    import json

    from dip.cli.main import summary

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("    $ make demo\n", 1)[1].split("\n\n", 1)[0]
    shown = [line[4:] for line in block.splitlines()]
    m = json.loads((ROOT / "results" / "demo" / "metrics.json").read_text())
    m["out_dir"] = "outputs/demo"
    lines = summary(m).splitlines()
    assert shown[-len(lines):] == lines
    size = "×".join(str(v) for v in m["size"][1:])
    assert shown[1].startswith(f"{m['task']} of {m['image']} ({size} pixels")
    assert f", {m['num_iter']} steps, on cpu with " in shown[1]
    intro = text.split("`make demo` denoises", 1)[1].split("    $ make demo", 1)[0]
    cpu, threads = m["machine"]["cpu"], m["device_name"].split(", ")[1]
    named = cpu.replace("(R)", "").replace("(TM)", "").replace(" Processor", "").strip()
    assert named in intro and threads in intro, (named, threads)
    assert "the thread count and the CPU model change the last digits" in intro


def test_the_readmes_functional_route_runs_as_written(tmp_path):
    """Problem, net and fit in five lines: the README's block runs (3 steps instead of
    900) and scores the averaged output; `dip.nets` and `dip.fit` work after a plain
    `import dip` in a fresh interpreter."""
    import math

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Restore your own image", 1)[1].split("\n## ", 1)[0]
    block = section.split("piece by piece", 1)[1].split("\n\n", 2)[1]
    lines = [line[4:] for line in block.splitlines()]
    assert len(lines) == 5 and "num_iter=900" in lines[3]
    code = "\n".join(["import dip", *lines[:-1], f"value = {lines[-1].split('#')[0]}"])
    scope: dict = {}
    exec(code.replace("num_iter=900", "num_iter=3"), scope)
    assert math.isfinite(scope["value"])
    fresh = subprocess.run([sys.executable, "-c", "\n".join(
        ["import dip", lines[2].split("#")[0], "dip.fit, dip.FitSettings, dip.problems"])],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert fresh.returncode == 0, fresh.stderr
