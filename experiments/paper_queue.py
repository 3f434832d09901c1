"""The paper-profile runs that a records folder still lacks, in the order a GPU session
fits them (experiments/gpu_session.sh).

Blocks, in the paper tables' order of priority: the inpainting table (11 images), SR Set5
(×4 and ×8), denoising (9 images × σ 25 and 50), SR Set14 (×4 and ×8). Within a block the
cheapest run goes first: cost = pixels × iterations × seeds, in megapixel-steps, so that
a short GPU window finishes as many runs as it can. The runs are those each experiment's
sweep declares (``hydra.sweeper.params``); a run whose record exists under RECORDS (the
same identity the run itself computes, with the same overrides) is left out.

    python experiments/paper_queue.py RECORDS [--items "house set5/baby ..."] [OVERRIDE ...]

prints one line per missing run: its cost, a tab, then the overrides that make it (the
experiment, ``profile=paper``, its sweep values and the given OVERRIDEs, not ``records``).
A summary goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from PIL import Image

from dip.data.registry import resolve
from dip.errors import DipError
from dip.runs.config import CONFIG_DIR, identify, spelled, unspelled
from dip.runs.experiments import declared_runs
from dip.runs.records import existing_record

BLOCKS = [  # (block, experiment, the item prefix that picks the block's runs)
    ("inpainting", "table_inpainting", ""),
    ("sr set5", "table_sr", "set5/"),
    ("denoising", "table_denoising", ""),
    ("sr set14", "table_sr", "set14/"),
]


def item_of(run: list[str]) -> str:
    """The ``item=`` value of a run's overrides ('' without one)."""
    return next((o.split("=", 1)[1] for o in run if o.startswith("item=")), "")


def cost(cfg) -> float:
    """Megapixel-steps of a run: the image's (or crop's) pixels × iterations × seeds."""
    path = Path(str(cfg.image))
    if not path.is_file():
        path = resolve(str(cfg.image), verify=False)
    with Image.open(path) as img:
        width, height = img.size
    crop = cfg.get("crop")
    if crop is not None:  # a side, or [height, width]
        height, width = (crop, crop) if isinstance(crop, int) else tuple(crop)
    return width * height * int(cfg.fit.num_iter) * int(cfg.seeds) / 1e6


def queue(records: str, overrides: list[str], items: set[str] | None = None):
    """(block, cost, overrides) of every missing run, blocks in order, cheapest first."""
    out = []
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        for block, experiment, prefix in BLOCKS:
            rows = []
            for run in declared_runs(experiment):
                item = item_of(run)
                if not item.startswith(prefix) or (items is not None and item not in items):
                    continue
                made = [f"experiment={experiment}", "profile=paper", *unspelled(run),
                        *overrides]
                cfg = compose("config", overrides=spelled([*made, f"records={records}"]))
                if existing_record(identify(cfg)) is None:
                    rows.append((block, cost(cfg), made))
            out += sorted(rows, key=lambda row: row[1])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", help="the records folder the runs write to")
    parser.add_argument("--items", help="only these items (space-separated, e.g. "
                        "'house set5/baby F16')")
    parser.add_argument("overrides", nargs="*", help="overrides of every run")
    args = parser.parse_intermixed_args(argv)
    items = set(args.items.split()) if args.items else None
    try:
        rows = queue(args.records, args.overrides, items)
    except DipError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for _, mps, made in rows:
        print(f"{mps:.1f}\t{' '.join(made)}")
    blocks = {}
    for block, mps, _ in rows:
        n, total = blocks.get(block, (0, 0.0))
        blocks[block] = (n + 1, total + mps)
    said = ", ".join(f"{b} {n} ({t:.0f} Mpx-steps)" for b, (n, t) in blocks.items())
    print(f"missing paper runs under {args.records}: {len(rows)}"
          + (f": {said}" if said else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
