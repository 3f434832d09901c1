"""Atomic writes: a file appears complete at its path, or not at all.

Every file the harness writes (records' files, tables, figures, checkpoints, fetched data)
goes through :func:`atomic_target`: the content is written to a hidden temporary file in
the same folder (same file system), which is renamed onto the path when the block ends.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_target", "write_text"]


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block ends.

    The temporary file is hidden (``.<name>.<random>.tmp<suffix>``, so record and table
    readers skip it) and keeps ``path``'s suffix (so writers that infer the format from
    it, such as matplotlib's ``savefig``, still do). On an exception it is deleted and
    ``path`` is left untouched. Missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_target`) in UTF-8; returns
    the path."""
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
