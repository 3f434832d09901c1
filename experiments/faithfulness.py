"""Effect of each paper-era switch on quick-profile records (docs/faithfulness.md).

Reads every record under ROOT (made by `experiments/faithfulness.sh`), pairs each run
with a switch on against the run of the same experiment, image, noise level or factor
and seed at today's defaults, and prints a Markdown table: per switch and table, the
mean difference of the final and averaged outputs' PSNR, the latter by seed and its
range over images, and the seed spread of the defaults (the mean over images of seed 1
minus seed 0), with the runs' commit and CPU.

    python experiments/faithfulness.py results/faithfulness/runs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from dip.report.records import load_records

# switch: (config key, today's value); a run's switch is the one key not at today's value
SWITCHES = {"bn_init=uniform": ("net.bn_init", "ones"),
            "align_corners=true": ("net.align_corners", False),
            "final_input=perturbed": ("fit.final_input", "clean"),
            "backtrack=official": ("fit.backtrack", "guard")}
KEYS = ["experiment", "image_id", "sigma", "factor", "crop", "seed"]


def _switch(record: str) -> str | None:
    """'defaults', the one switch a record's config turns on, or None (more than one)."""
    cfg = OmegaConf.load(Path(record) / "config.yaml")
    on = [name for name, (key, today) in SWITCHES.items()
          if OmegaConf.select(cfg, key, default=today) != today]
    return "defaults" if not on else on[0] if len(on) == 1 else None


def effects(root) -> pd.DataFrame:
    """One row per (switch, experiment, sigma/factor): mean Δ, its range, seed spread."""
    df = load_records(root)
    df["switch"] = [_switch(r) for r in df["record"]]
    df = df[df["switch"].notna()]
    for col in ("sigma", "factor", "crop"):  # crop 0: a whole image
        df[col] = df[col].fillna(0)
    base = df[df["switch"] == "defaults"][[*KEYS, "psnr_final", "psnr_avg"]]
    rows = []
    for switch, runs in df[df["switch"] != "defaults"].groupby("switch"):
        paired = runs.merge(base, on=KEYS, suffixes=("", "_0"))
        for (exp, sigma, factor, crop), part in paired.groupby(["experiment", "sigma",
                                                                "factor", "crop"]):
            d_final = part["psnr_final"] - part["psnr_final_0"]
            d_avg = part["psnr_avg"] - part["psnr_avg_0"]
            per_image = d_avg.groupby(part["image_id"]).mean()
            per_seed = d_avg.groupby(part["seed"]).mean()
            ref = base[(base["experiment"] == exp) & (base["sigma"] == sigma)
                       & (base["factor"] == factor) & (base["crop"] == crop)]
            seeds = ref.groupby("seed")["psnr_avg"].mean()
            spread = seeds.get(1, float("nan")) - seeds.get(0, float("nan"))
            rows.append({"switch": switch, "table": exp.removeprefix("table_"),
                         "setting": f"σ {sigma:g}" if sigma else f"×{factor:g}" if factor
                         else f"{crop:g}² crops" if crop else "whole images",
                         "runs": len(part), "Δ final": d_final.mean(),
                         "Δ averaged": d_avg.mean(),
                         "Δ averaged by seed": " / ".join(f"{v:+.2f}" for v in per_seed),
                         "image range (averaged)": f"{per_image.min():+.2f} … "
                                                   f"{per_image.max():+.2f}",
                         "seed spread (averaged)": spread})
    out = pd.DataFrame(rows)
    cpus = df["cpu_model"].dropna() if "cpu_model" in df else pd.Series(dtype=str)
    out.attrs["provenance"] = (f"commit {', '.join(sorted(set(df['commit'].dropna())))}; "
                               f"CPU {', '.join(sorted(set(cpus)))}")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="records folder of the measurement sweeps")
    args = parser.parse_args(argv)
    table = effects(args.root)
    cells = [[("—" if v != v else f"{v:+.2f}") if isinstance(v, float) else str(v)
              for v in row]
             for row in table.itertuples(index=False)]
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in cells:
        print("| " + " | ".join(row) + " |")
    print(f"\nRecords under {args.root}: {table.attrs['provenance']}.")


if __name__ == "__main__":
    main()
