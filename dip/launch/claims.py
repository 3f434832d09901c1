"""Claims: a run is fitted by one process at a time.

Before a run is fitted it is claimed: an exclusive, non-blocking ``flock`` on a lock
file beside its record (``<parent>/.<record name>.lock``, hidden so that record readers
skip it) that names the holder (host, pid, start time). Concurrent sweeps into one
records folder, joblib workers and Slurm array jobs therefore never fit the same run
twice: the second finds it taken and moves on. The operating system drops the lock when
its process dies (also on NFS, whose locks lapse with the client), so the lock file of a
killed run is taken over by the next one. The holder deletes the file when it is done.
"""

from __future__ import annotations

import errno
import os
import socket
import time
import warnings
from pathlib import Path

from dip.errors import DipNote

try:
    import fcntl
except ImportError:  # not POSIX: claims are exclusive creates (no take-over)
    fcntl = None

__all__ = ["Claim", "claim", "lock_path"]


def lock_path(out_dir: str | os.PathLike) -> Path:
    """The lock file of the run whose record goes to ``out_dir``."""
    out_dir = Path(out_dir)
    return out_dir.with_name(f".{out_dir.name}.lock")


class Claim:
    """A held claim (see :func:`claim`); :meth:`release` (or leaving a ``with``) ends it."""

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still held: no one has it in between
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "another process"
    return text or "another process"


def claim(out_dir: str | os.PathLike) -> Claim | str:
    """Claim the run whose record goes to ``out_dir``.

    Returns
    -------
    Claim or str
        The held :class:`Claim`, or, when another live process holds it, a text naming
        that holder (``'host pid 1234 since 2026-12-04T15:00:00'``).
    """
    path = lock_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        if fcntl is None:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return _holder(path)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return _holder(path)
                raise
            try:  # the holder before us may have deleted the file in between: retry
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    os.close(fd)
                    continue
            except FileNotFoundError:
                os.close(fd)
                continue
        break
    left = os.read(fd, 4096).decode(errors="replace").strip()
    if left:
        warnings.warn(f"taking over the claim on {Path(out_dir).name} of a process that "
                      f"ended without finishing ({left})", DipNote, stacklevel=2)
    me = f"{socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S')}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, (me + "\n").encode(), 0)
    return Claim(path, fd)
