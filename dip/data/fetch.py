"""``dip-fetch``: download registry images into a data root and verify them.

Usage::

    dip-fetch set5 paper/inpainting50 [--root DIR] [--mirror URL_OR_DIR] [--only FILE ...]
    dip-fetch --list
    python -m dip.data.fetch --update-registry PATH/TO/MANIFEST.csv

Each file goes to ``ROOT/DATASET/FILE`` (ROOT as in :func:`dip.data.registry.data_root`),
is checked against its SHA-256 and moved into place atomically. Files already there
with the right hash are skipped. Derived files (masks, :mod:`dip.data.masks`: :func:`derive_mask`,
:func:`half_mask`) are made from their sources once these are present (a derived file's
sources are fetched with it), and checked too. ``--mirror`` replaces
``https://raw.githubusercontent.com`` by another base URL or by a local folder laid out
as ``REPO_OWNER/REPO/COMMIT/PATH``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pooch
from PIL import Image

from dip.atomic import atomic_target
from dip.data.masks import HALF_SEED, derive_mask, derived_image, half_mask
from dip.data.registry import (
    REGISTRY_CSV,
    Entry,
    data_root,
    datasets,
    entries_in,
    file_sha256,
    lookup,
)
from dip.data.registry import entries as all_entries
from dip.errors import DipError

GITHUB_RAW = "https://raw.githubusercontent.com"
__all__ = [
    "main", "run", "plan", "fetch_one", "download", "copy_file_url", "mirror_url", "raw_url",
    "write_registry", "list_datasets", "derived_image", "derive_mask", "half_mask", "HALF_SEED",
]

MANIFEST_COLUMNS = ["dataset", "file", "source_repo", "source_path", "source_commit",
                    "width", "height", "mode", "sha256", "bytes"]


# --------------------------------------------------------------------------- registry file


def write_registry(manifest: str | os.PathLike, out: str | os.PathLike = REGISTRY_CSV) -> int:
    """Write the registry CSV from a data ``MANIFEST.csv`` (and those of its sub-folders,
    e.g. ``paper_baselines/MANIFEST.csv``), adding the ``url`` column.

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
    rows = []
    for path in [Path(manifest), *sorted(Path(manifest).parent.glob("*/MANIFEST.csv"))]:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = sorted(set(MANIFEST_COLUMNS) - set(reader.fieldnames or []))
            if missing:
                raise DipError(f"{path} lacks the columns {', '.join(missing)}; "
                               "give the MANIFEST.csv of the data folder")
            rows += [{**{k: row[k] for k in MANIFEST_COLUMNS}, "url": raw_url(row)}
                     for row in reader]
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
        for source in e.sources:
            entries.setdefault(source, lookup(source))
    order = {e.name: k for k, e in enumerate(all_entries())}
    return sorted(entries.values(), key=lambda e: (e.derived_from is not None, order[e.name]))


def fetch_one(entry: Entry, root: Path, mirror: str | None, timeout: float) -> str:
    """Make ``ROOT/DATASET/FILE`` present and verified; return 'ok', 'fetched' or 'derived'."""
    dest = root / entry.dataset / entry.file
    if dest.is_file() and file_sha256(dest) == entry.sha256:
        return "ok"
    if entry.derived_from is None:
        download(mirror_url(entry.url, mirror), dest, entry.sha256, timeout=timeout,
                 name=entry.name)
        return "fetched"
    with atomic_target(dest) as tmp:
        _derive(entry, root, tmp)
        digest = file_sha256(tmp)
        if digest != entry.sha256:
            raise DipError(_mismatch(entry.name, f"derived from {entry.derived_from}",
                                     entry.sha256, digest))
    return "derived"


def download(url: str, dest: str | os.PathLike, sha256: str, *, timeout: float = 60.0,
             name: str | None = None) -> Path:
    """Download ``url`` to ``dest`` with :func:`pooch.retrieve`, checked against ``sha256``.

    pooch downloads into a hidden working folder beside ``dest`` and checks the file's
    SHA-256 there; the verified file is then moved onto ``dest`` atomically. On any
    failure (network, missing file, hash mismatch) ``dest`` is left as it was and nothing
    else remains beside it. ``http(s)://`` URLs go through pooch's HTTP downloader;
    ``file://`` URLs (a local ``--mirror`` folder) are copied, without the network.

    Parameters
    ----------
    url : str
        ``http(s)://`` or ``file://`` URL (other schemes: whatever pooch supports).
    dest : str or path-like
        Destination file; missing parent folders are created.
    sha256 : str
        Expected hex SHA-256 of the file.
    timeout : float
        Seconds to wait for the server (HTTP only).
    name : str, optional
        Name of the file in error messages (default: ``dest``'s file name).

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DipError
        One line: the download failed, or the file's SHA-256 is not ``sha256``.
    """
    dest = Path(dest)
    name = name or dest.name
    with (atomic_target(dest) as tmp,
          tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as work,
          _quiet(pooch.get_logger())):
        try:
            got = pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=dest.name,
                                 path=work, downloader=_downloader(url, timeout),
                                 progressbar=False)
        except OSError as err:  # requests' errors are OSErrors too
            raise DipError(_cannot_download(url, err)) from None
        except ValueError as err:
            found = re.search(r"but got ([0-9a-f]{64})", str(err))
            if found is None:
                raise DipError(_cannot_download(url, err)) from None
            raise DipError(_mismatch(name, url, sha256, found.group(1))) from None
        os.replace(got, tmp)
    return dest


def _downloader(url: str, timeout: float):
    """pooch downloader for ``url``: local copy (file://), HTTP with ``timeout``, or pooch's."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "file":
        return copy_file_url
    if scheme in ("http", "https"):
        return pooch.HTTPDownloader(progressbar=False, timeout=timeout)
    return None


def copy_file_url(url: str, output_file: str | os.PathLike, pooch_obj=None) -> None:
    """pooch downloader of ``file://`` URLs: copy the local file to ``output_file``."""
    source = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    shutil.copyfile(source, output_file)


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Silence ``logger``'s info messages (pooch's 'Downloading data from …') in the block."""
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _cannot_download(url: str, err: Exception) -> str:
    """One-line message of a failed download of ``url``."""
    reason = (err.strerror if isinstance(err, OSError) and err.strerror else str(err))
    errno = re.search(r"\[Errno -?\d+\] [^'\"()]+", reason)  # requests wraps the cause
    reason = errno.group(0).strip() if errno else (reason.splitlines() or [type(err).__name__])[0]
    where = ("check that the mirror folder holds REPO_OWNER/REPO/COMMIT/PATH"
             if url.startswith("file:") else "check the network or use --mirror")
    return f"cannot download {url}: {reason}; {where}"


def _mismatch(name: str, where: str, expected: str, got: str) -> str:
    """One-line message of a file whose SHA-256 is not the registry's."""
    return (f"{name}: sha256 mismatch for {where} (expected {expected[:12]}…, got {got[:12]}…);"
            " the source changed or the download is corrupt")


def _derive(entry: Entry, root: Path, dest: Path) -> None:
    """Write the mask of ``entry`` (:func:`derived_image`) to ``dest``."""
    Image.fromarray(derived_image(entry, root)).save(dest, format="PNG")


# --------------------------------------------------------------------------- command line


def list_datasets() -> list[str]:
    """One line per dataset: name, file count, size in MB."""
    lines = []
    for name in datasets():
        entries = [e for e in all_entries() if e.dataset == name]
        size = sum(e.bytes for e in entries) / 1e6
        lines.append(f"{name:<32} {len(entries):>3} files {size:>6.1f} MB")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line of ``dip-fetch`` (argparse exits with a usage line on bad options)."""
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
