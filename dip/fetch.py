"""``dip-fetch``: download registry images into a data root and verify them.

Usage::

    dip-fetch set5 paper/inpainting50 [--root DIR] [--mirror URL_OR_DIR] [--only FILE ...]
    dip-fetch --list
    python -m dip.fetch --update-registry PATH/TO/MANIFEST.csv

Each file goes to ``ROOT/DATASET/FILE`` (ROOT as in :func:`dip.data.data_root`),
is checked against its SHA-256 and moved into place atomically. Files already there
with the right hash are skipped. Derived files (masks: :func:`derive_mask`,
:func:`half_mask`) are made from their sources once these are present (a derived file's
sources are fetched with it), and checked too. ``--mirror`` replaces
``https://raw.githubusercontent.com`` by another base URL or by a local folder laid out
as ``REPO_OWNER/REPO/COMMIT/PATH``.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import os
import sys
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from dip import DipError
from dip.data import (
    REGISTRY_CSV,
    Entry,
    atomic_target,
    data_root,
    datasets,
    entries_in,
    file_sha256,
    image_id,
    lookup,
    registry,
    resolve,
)

GITHUB_RAW = "https://raw.githubusercontent.com"
MANIFEST_COLUMNS = ["dataset", "file", "source_repo", "source_path", "source_commit",
                    "width", "height", "mode", "sha256", "bytes"]


# --------------------------------------------------------------------------- registry file


def write_registry(manifest: str | os.PathLike, out: str | os.PathLike = REGISTRY_CSV) -> int:
    """Write the registry CSV from a data ``MANIFEST.csv``, adding the ``url`` column.

    The package's own derived files (rows of the shipped registry whose ``source_repo``
    is ``derived`` and that the manifest lacks, such as the half masks of
    ``paper/inpainting50/mask_half``) are kept, after the manifest's rows.

    Parameters
    ----------
    manifest : str or path-like
        CSV with the columns of :data:`MANIFEST_COLUMNS`.
    out : str or path-like
        Destination (default: the registry shipped in the package).

    Returns
    -------
    int
        Number of entries written.
    """
    with open(manifest, newline="") as f:
        reader = csv.DictReader(f)
        missing = sorted(set(MANIFEST_COLUMNS) - set(reader.fieldnames or []))
        if missing:
            raise DipError(f"{manifest} lacks the columns {', '.join(missing)}; "
                           "give the MANIFEST.csv of the data folder")
        rows = [{**{k: row[k] for k in MANIFEST_COLUMNS}, "url": raw_url(row)} for row in reader]
    rows += _package_derivations({(row["dataset"], row["file"]) for row in rows})
    with atomic_target(out) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*MANIFEST_COLUMNS, "url"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def _package_derivations(listed: set[tuple[str, str]]) -> list[dict[str, str]]:
    """Derived rows of the shipped registry whose (dataset, file) is not in ``listed``."""
    if not Path(REGISTRY_CSV).is_file():
        return []
    with open(REGISTRY_CSV, newline="") as f:
        return [{k: row[k] for k in [*MANIFEST_COLUMNS, "url"]} for row in csv.DictReader(f)
                if row["source_repo"] == "derived" and (row["dataset"], row["file"]) not in listed]


def raw_url(row: dict[str, str]) -> str:
    """Raw GitHub URL of a manifest row ('' for a derived row)."""
    if row["source_repo"] == "derived":
        return ""
    return f"{GITHUB_RAW}/{row['source_repo']}/{row['source_commit']}/{row['source_path']}"


# --------------------------------------------------------------------------- fetching


def mirror_url(url: str, mirror: str | None) -> str:
    """``url`` with its GitHub base replaced by ``mirror`` (URL, ``file://`` URL or folder)."""
    if not mirror:
        return url
    if "://" not in mirror:
        mirror = Path(mirror).expanduser().resolve().as_uri()
    return mirror.rstrip("/") + url.removeprefix(GITHUB_RAW)


def plan(names: Sequence[str], only: Sequence[str] | None = None) -> list[Entry]:
    """Entries to fetch for dataset names or prefixes, downloads first, then derived files.

    ``only`` keeps the files with these names (``FILE`` or ``DATASET/FILE``). The sources
    that derived files need are added (from whichever dataset holds them).
    """
    entries = {e.name: e for name in names for e in entries_in(name)}
    if only:
        wanted = {e.name for e in entries.values() if e.file in only or e.name in only}
        unknown = set(only) - {e.file for e in entries.values()} - set(entries)
        if unknown:
            raise DipError(f"--only: {', '.join(sorted(unknown))} not in the datasets "
                           f"{', '.join(names)}")
        entries = {n: e for n, e in entries.items() if n in wanted}
    for e in list(entries.values()):
        for source in _sources(e):
            entries.setdefault(source, lookup(source))
    order = {e.name: k for k, e in enumerate(registry())}
    return sorted(entries.values(), key=lambda e: (e.derived_from is not None, order[e.name]))


def _sources(entry: Entry) -> list[str]:
    """Registry names a derived entry is made from ([] for a downloaded one)."""
    return [n for n in (entry.derived_from, entry.gt_from) if n]


def fetch_one(entry: Entry, root: Path, mirror: str | None, timeout: float) -> str:
    """Make ``ROOT/DATASET/FILE`` present and verified; return 'ok', 'fetched' or 'derived'."""
    dest = root / entry.dataset / entry.file
    if dest.is_file() and file_sha256(dest) == entry.sha256:
        return "ok"
    with atomic_target(dest) as tmp:
        if entry.derived_from:
            _derive(entry, root, tmp)
            where = f"derived from {entry.derived_from}"
        else:
            where = mirror_url(entry.url, mirror)
            _download(where, tmp, timeout)
        digest = file_sha256(tmp)
        if digest != entry.sha256:
            raise DipError(f"{entry.name}: sha256 mismatch for {where} "
                           f"(expected {entry.sha256[:12]}…, got {digest[:12]}…); "
                           "the source changed or the download is corrupt")
    return "derived" if entry.derived_from else "fetched"


def _download(url: str, dest: Path, timeout: float) -> None:
    """Copy ``url`` to ``dest`` with urllib."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as f:
            for block in iter(lambda: response.read(1 << 16), b""):
                f.write(block)
    except (OSError, ValueError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", None) or err
        raise DipError(f"cannot download {url}: {reason}; check the network or use --mirror"
                       ) from None


def derived_image(entry: Entry, root: str | os.PathLike | None = None) -> np.ndarray:
    """The mask of a derived registry ``entry``, made from its verified sources under
    ``root``: :func:`derive_mask` of its source, or :func:`half_mask` of its source and
    ground truth (the rule its registry row names)."""
    try:
        sources = [resolve(name, root) for name in _sources(entry)]
    except DipError as err:
        raise DipError(f"cannot make {entry.name}: {err}") from None
    if entry.gt_from is None:
        return derive_mask(sources[0])
    return half_mask(sources[0], sources[1], image_id(entry.derived_from))


def _derive(entry: Entry, root: Path, dest: Path) -> None:
    """Write the mask of ``entry`` (:func:`derived_image`) to ``dest``."""
    Image.fromarray(derived_image(entry, root)).save(dest, format="PNG")


def derive_mask(source: str | os.PathLike) -> np.ndarray:
    """uint8 H×W mask of an image file: 255 where the pixel is non-zero (any channel), else 0."""
    with Image.open(source) as img:
        pixels = np.asarray(img)
    nonzero = pixels != 0
    if nonzero.ndim == 3:
        nonzero = nonzero.any(axis=2)
    return np.where(nonzero, 255, 0).astype(np.uint8)


HALF_SEED = 2018
"""Seed of :func:`half_mask` (with a key per image)."""


def half_mask(masked: str | os.PathLike, gt: str | os.PathLike, image: str) -> np.ndarray:
    """uint8 H×W mask of a released masked image: 255 = known, 0 = missing.

    A pixel is known where ``masked`` is non-zero (any channel), missing where it is 0
    and ``gt`` is not. Where both are 0 the released image cannot tell: such a pixel is
    known with probability 1/2, independently, drawn as follows (the same on every
    platform and NumPy version, since a bit generator's raw stream is fixed):
    ``numpy.random.default_rng([HALF_SEED, zlib.crc32(image.encode())])`` (PCG64 seeded
    through SeedSequence) gives one raw 64-bit word per pixel, in row-major order
    (``bit_generator.random_raw(H * W)``); the pixel is known when the word's top bit
    is 1. Every pixel gets a word, so a pixel's draw does not depend on the others.

    Parameters
    ----------
    masked, gt : str or path-like
        The released masked image and its ground truth (same size).
    image : str
        The image's name, the key of its draws (e.g. ``'peppers256'``, its
        :func:`~dip.data.image_id`).

    Returns
    -------
    numpy.ndarray
        uint8 H×W, values 0 and 255.
    """
    known = derive_mask(masked) != 0
    dark = derive_mask(gt) == 0
    if dark.shape != known.shape:
        raise DipError(f"{gt} is {dark.shape[1]}×{dark.shape[0]} but {masked} is "
                       f"{known.shape[1]}×{known.shape[0]}; give the ground truth of the image")
    rng = np.random.default_rng([HALF_SEED, zlib.crc32(image.encode())])
    heads = (rng.bit_generator.random_raw(known.size) >> np.uint64(63)).astype(bool)
    known |= ~known & dark & heads.reshape(known.shape)
    return np.where(known, 255, 0).astype(np.uint8)


# --------------------------------------------------------------------------- command line


def list_datasets() -> list[str]:
    """One line per dataset: name, file count, size in MB."""
    lines = []
    for name in datasets():
        entries = [e for e in registry() if e.dataset == name]
        size = sum(e.bytes for e in entries) / 1e6
        lines.append(f"{name:<32} {len(entries):>3} files {size:>6.1f} MB")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dip-fetch", description="Download registry test images into the data root.")
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help="dataset such as set5 or paper/inpainting50, or a prefix (paper)")
    parser.add_argument("--root", help="data root (default: $DIP_DATA_ROOT, else ./data)")
    parser.add_argument("--mirror", help="base URL or local folder laid out as REPO/COMMIT/PATH "
                                         f"that replaces {GITHUB_RAW}")
    parser.add_argument("--only", nargs="+", metavar="FILE",
                        help="fetch only these files of the datasets (and the sources they need)")
    parser.add_argument("--list", action="store_true", help="list datasets and exit")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per download")
    parser.add_argument("--update-registry", metavar="MANIFEST",
                        help="regenerate the packaged registry.csv from a data MANIFEST.csv")
    args = parser.parse_args(argv)
    if not (args.datasets or args.list or args.update_registry):
        parser.error("give at least one DATASET, or --list")
    return args


def run(args: argparse.Namespace) -> int:
    """Fetch the requested datasets; return the number of files that failed."""
    root = data_root(args.root)
    failed = 0
    for entry in plan(args.datasets, args.only):
        try:
            status = fetch_one(entry, root, args.mirror, args.timeout)
        except DipError as err:
            print(f"dip-fetch: error: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{status:<8} {entry.name}", flush=True)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 when every file is verified)."""
    args = parse_args(argv)
    try:
        if args.update_registry:
            count = write_registry(args.update_registry)
            print(f"wrote {count} entries to {REGISTRY_CSV}")
            return 0
        if args.list:
            print("\n".join(list_datasets()))
            return 0
        _check_mirror(args.mirror)
        failed = run(args)
    except DipError as err:
        print(f"dip-fetch: error: {err}", file=sys.stderr)
        return 1
    if failed:
        print(f"dip-fetch: error: {failed} file(s) failed; see the messages above",
              file=sys.stderr)
    return 1 if failed else 0


def _check_mirror(mirror: str | None) -> None:
    """Raise DipError if a local mirror folder does not exist."""
    if mirror and "://" not in mirror and not Path(mirror).expanduser().is_dir():
        raise DipError(f"mirror folder {mirror} does not exist; give a folder laid out as "
                       "REPO_OWNER/REPO/COMMIT/PATH or a base URL")


if __name__ == "__main__":
    sys.exit(main())
