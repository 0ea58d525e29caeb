"""Atomic file writes: a reader sees the old content or the new, never a mix."""

from __future__ import annotations

import os
import tempfile

_UMASK = os.umask(0o022)  # read once at start-up (reading it means setting it), then put back
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() would give a new file: results are for people to read


def write_atomic(path: str, data: bytes, durable: bool = True) -> None:
    """Writes `data` to `path` through a temporary file and a rename (and fsyncs, if `durable`):
    a reader sees the old content or the new."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_folder(folder)


def fsync_folder(folder: str) -> None:
    """Makes a rename or a new file in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
