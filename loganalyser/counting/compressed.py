"""Compressed log files, read as plain streams.

A file is compressed when its name ends in .gz, .bz2, .xz or .zst (as
`app.log.2.gz` after logrotate). Such a file is one task: it cannot be cut by
byte offsets. It is streamed in bounded memory through the fastest reader at
hand: ISA-L's igzip for gzip where the `isal` package is installed, the
`zstandard` package for zstd, the standard library otherwise.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from contextlib import contextmanager

from loganalyser.errors import InputError

try:
    from isal import igzip as _fast_gzip
except ImportError:  # pragma: no cover - isal is a declared dependency, but optional
    _fast_gzip = None
try:
    import zstandard as _zstd
except ImportError:  # pragma: no cover
    _zstd = None

SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def compression_of(path: str) -> str | None:
    """The compression suffix of a file name, or None for a plain file."""
    for suffix in SUFFIXES:
        if path.endswith(suffix):
            return suffix
    return None


# What the decompressors raise on a damaged stream.
ERRORS: tuple = (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, OSError)
if _zstd is not None:
    ERRORS += (_zstd.ZstdError,)
if _fast_gzip is not None:
    ERRORS += tuple(e for e in (getattr(_fast_gzip, "BadGzipFile", None),) if e)


def open_decompressed(path: str, suffix: str, raw=None):
    """A binary stream of the decompressed content (read/readinto; close it), from `path`
    or, if given, from the open binary file `raw` (bytes shipped from another host)."""
    source = path if raw is None else raw
    if suffix == ".gz":
        return (_fast_gzip or gzip).open(source, "rb")
    if suffix == ".bz2":
        return bz2.open(source, "rb")
    if suffix == ".xz":
        return lzma.open(source, "rb")
    if suffix == ".zst":
        if _zstd is None:
            raise OSError("reading .zst files needs the zstandard package (pip install zstandard)")
        raw = open(path, "rb") if raw is None else raw
        return _ZstdStream(raw, _zstd.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    raise ValueError(suffix)


class _ZstdStream:
    """A zstd reader that also closes the file under it."""

    def __init__(self, raw, reader):
        self._raw, self._reader = raw, reader

    def read(self, size: int = -1) -> bytes:
        return self._reader.read(size)

    def readinto(self, buffer) -> int:
        return self._reader.readinto(buffer)

    def close(self) -> None:
        self._reader.close()
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextmanager
def reading(path: str, suffix: str, raw=None):
    """The decompressed stream of `path` (or of `raw`, see open_decompressed); any failure
    is an InputError naming the file."""
    try:
        stream = open_decompressed(path, suffix, raw)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        with stream:
            yield stream
    except ERRORS as exc:
        raise InputError(f"cannot read {path}: damaged or truncated {suffix} data ({exc})") from None
