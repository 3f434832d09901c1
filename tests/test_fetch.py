"""Tests of dip.data.fetch's downloads through pooch: a local HTTP server, local mirrors, errors.

The machine running the tests needs no network: the HTTP server runs in a thread on
127.0.0.1 and serves a temporary folder laid out as raw GitHub (REPO_OWNER/REPO/COMMIT/PATH).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import pooch
import pytest
import requests

from dip import DipError, data
from dip.data.fetch import download
from dip.data.fetch import main as fetch_main

NAME = "dip_official/inpainting/vase_mask.png"  # 930 bytes
ARGS = ["dip_official/inpainting", "--only", "vase_mask.png"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request lines on stderr
        pass


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1: yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def publish(data_root: Path, folder: Path, name: str = NAME, corrupt: bool = False) -> Path:
    """Copy a registry file to ``folder`` as REPO/COMMIT/PATH (one byte changed if ``corrupt``)."""
    e = data.lookup(name)
    dest = folder / e.source_repo / e.source_commit / e.source_path
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_root / name, dest)
    if corrupt:
        content = bytearray(dest.read_bytes())
        content[len(content) // 2] ^= 0xFF
        dest.write_bytes(bytes(content))
    return dest


def everything_under(root: Path) -> list[str]:
    """Every file and folder under ``root`` (hidden ones too), relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_http_download_with_the_right_hash_is_placed(data_root, served, tmp_path, capsys):
    folder, url = served
    publish(data_root, folder)
    root = tmp_path / "root"
    assert fetch_main([*ARGS, "--root", str(root), "--mirror", url]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"fetched  {NAME}"]
    assert captured.err == ""  # pooch's "Downloading data from ..." is silenced
    assert data.file_sha256(root / NAME) == data.lookup(NAME).sha256
    assert everything_under(root) == ["dip_official", "dip_official/inpainting", NAME]
    assert fetch_main([*ARGS, "--root", str(root), "--mirror", url]) == 0
    assert capsys.readouterr().out.split() == ["ok", NAME]


def test_http_download_with_a_wrong_hash_leaves_nothing(data_root, served, tmp_path, capsys):
    folder, url = served
    publish(data_root, folder, corrupt=True)
    root = tmp_path / "root"
    assert fetch_main([*ARGS, "--root", str(root), "--mirror", url]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"dip-fetch: error: {NAME}: sha256 mismatch for {url}/")
    expected = data.lookup(NAME).sha256
    assert f"expected {expected[:12]}…, got " in err[0] and len(err) == 2  # + the count line
    assert everything_under(root) == ["dip_official", "dip_official/inpainting"]


def test_download_mismatch_keeps_the_old_file(served, tmp_path):
    folder, url = served
    (folder / "a.bin").write_bytes(b"new content")
    dest = tmp_path / "out" / "a.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(DipError, match=r"^a\.bin: sha256 mismatch") as info:
        download(f"{url}/a.bin", dest, wrong)
    assert "\n" not in str(info.value)
    assert dest.read_bytes() == b"old" and everything_under(dest.parent) == ["a.bin"]
    right = hashlib.sha256(b"new content").hexdigest()
    assert download(f"{url}/a.bin", dest, right) == dest
    assert dest.read_bytes() == b"new content" and everything_under(dest.parent) == ["a.bin"]


def test_http_not_found_is_one_line(served, tmp_path):
    _, url = served
    dest = tmp_path / "out" / "missing.png"
    with pytest.raises(DipError, match=rf"^cannot download {url}/missing\.png: 404") as info:
        download(f"{url}/missing.png", dest, "0" * 64)
    assert "\n" not in str(info.value) and "--mirror" in str(info.value)
    assert everything_under(tmp_path / "out") == []


def test_unreachable_server_is_one_line(tmp_path):
    with pytest.raises(DipError, match=r"^cannot download http://127\.0\.0\.1:9/x\.png: "
                                       r"\[Errno \d+\] .*check the network") as info:
        download("http://127.0.0.1:9/x.png", tmp_path / "x.png", "0" * 64, timeout=5)
    assert "\n" not in str(info.value)
    assert everything_under(tmp_path) == []


def test_local_mirror_does_not_use_the_network(data_root, tmp_path, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("a local mirror must not go through pooch's HTTP downloader")

    monkeypatch.setattr(pooch, "HTTPDownloader", no_network)
    monkeypatch.setattr(pooch.core, "choose_downloader", no_network)
    monkeypatch.setattr(requests.Session, "request", no_network)
    mirror = tmp_path / "mirror"
    publish(data_root, mirror)
    root = tmp_path / "root"
    assert fetch_main([*ARGS, "--root", str(root), "--mirror", str(mirror)]) == 0
    assert capsys.readouterr().out.split() == ["fetched", NAME]
    assert data.resolve(NAME, root) == root / NAME


def test_local_mirror_missing_file_names_the_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    url = (mirror / "a.png").as_uri()
    with pytest.raises(DipError, match=r"^cannot download file://.*a\.png: No such file.*"
                                       r"mirror folder holds REPO_OWNER/REPO/COMMIT/PATH"):
        download(url, tmp_path / "root" / "a.png", "0" * 64)
    assert everything_under(tmp_path / "root") == []
