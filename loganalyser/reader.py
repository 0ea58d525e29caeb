"""Reads a byte range of a file in bounded chunks and counts its lines.

Ownership rule: a range `[offset, offset + length)` owns exactly the lines that
*start* inside it, so ranges that tile a file count every line once, however
the file is cut. Memory stays at about two chunks whatever the file or line
size: a line longer than a chunk is classified as it streams past, from the
few bytes around its level field, and never held whole.
"""

from __future__ import annotations

import os

from .errors import InputError
from .inputs import shown
from .kernel import classify_line, count_lines
from .result import PartialResult

CHUNK_SIZE = 4 << 20  # the kernel's sweet spot: fits in cache-friendly passes


def analyse_range(path: str, offset: int = 0, length: int | None = None, chunk_size: int = CHUNK_SIZE, on_chunk=None) -> PartialResult:
    """Statistics of the lines of `path` that start in [offset, offset+length).

    `on_chunk()` is called after each chunk, so a long task can send heartbeats.
    """
    stop = float("inf") if length is None else offset + length
    try:
        with open(path, "rb", buffering=0) as f:
            return _scan(f, offset, stop, chunk_size, on_chunk or _nothing)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _nothing() -> None:
    pass


_buffers: dict[int, bytearray] = {}  # size -> buffer, reused: a batch of small files would otherwise zero 8 MB per file


def _buffer(size: int) -> bytearray:
    if size not in _buffers:
        _buffers[size] = bytearray(size)
    return _buffers[size]


def _scan(f, offset: int, stop: float, chunk_size: int, on_chunk) -> PartialResult:
    result = PartialResult()
    pos = offset  # file offset of the next unread byte
    if offset > 0:
        f.seek(offset - 1)
        if f.read(1) != b"\n":  # the line at `offset` began in the previous range
            pos = offset + _skip_line(f, chunk_size)
    else:
        f.seek(0)
    # One buffer for the whole scan: the unfinished last line of a chunk is
    # moved to its front and the next chunk read in behind it (no copies).
    buf = _buffer(2 * chunk_size)
    view = memoryview(buf)
    carry = 0  # bytes at the front of buf: a line whose end is not read yet
    while pos - carry < stop:
        got = f.readinto(view[carry : carry + chunk_size])
        if not got:
            if carry:
                result.add(count_lines(view[:carry]))
            return result
        pos += got
        filled = carry + got
        base = pos - filled  # file offset of buf[0]
        if pos >= stop:  # the last line we own ends at the first "\n" at or after stop - 1
            end = buf.find(b"\n", max(int(stop) - 1 - base, 0), filled)
            if end >= 0:
                result.add(count_lines(view[: end + 1]))
                return result
        cut = buf.rfind(b"\n", 0, filled) + 1
        if cut:
            result.add(count_lines(view[:cut]))
        on_chunk()
        carry = filled - cut
        buf[:carry] = bytes(view[cut:filled])  # a copy: the ranges may overlap
        if carry >= chunk_size:  # a line longer than a chunk: stream it
            result.add(_stream_long_line(f, bytes(view[:carry]), chunk_size, on_chunk))
            pos = f.tell()
            carry = 0
    return result


def _skip_line(f, chunk_size: int) -> int:
    """Reads past the next newline; returns how many bytes that took."""
    skipped = 0
    while True:
        data = f.read(chunk_size)
        if not data:
            return skipped
        nl = data.find(b"\n")
        if nl >= 0:
            f.seek(nl + 1 - len(data), 1)
            return skipped + nl + 1
        skipped += len(data)


def _stream_long_line(f, start: bytes, chunk_size: int, on_chunk) -> PartialResult:
    """Counts one line that begins with `start` and goes on in `f`."""
    # Only the first byte and the 19 bytes after the first "]" decide a line
    # (see kernel.classify_line): keep those, let the rest stream past.
    first = start[:1]
    after_close = None  # bytes after the first "]", once one is seen
    size = 0
    ended = False  # the line's "\n" was seen (not just the end of the file)
    data = start
    while data:
        nl = data.find(b"\n")
        part = data if nl < 0 else data[:nl]
        if after_close is None:
            close = part.find(b"]")
            if close >= 0:
                after_close = part[close + 1 : close + 20]
        elif len(after_close) < 19:
            after_close += part[: 19 - len(after_close)]
        if nl >= 0:
            f.seek(nl + 1 - len(data), 1)
            size += nl + 1
            ended = True
            break
        size += len(data)
        on_chunk()
        data = f.read(chunk_size)
    result = PartialResult(lines=1, bytes=size)
    if size - ended == 1 and first == b"\r":  # only with a chunk of 1 byte: a blank CRLF line
        result.blank = 1
        return result
    level = classify_line(first + b"]" + after_close) if after_close is not None and first == b"[" else None
    if level:
        result.counts[level] = 1
    else:
        result.malformed = 1
    return result


def analyse_pieces(pieces, on_chunk=None, warn=None) -> PartialResult:
    """Statistics of a sequence of pieces; a piece at offset 0 counts its file.

    What is counted is what existed at scan time; `warn(text)` hears of a file
    whose size changed since (it grew: the new lines are not counted).
    """
    total = PartialResult()
    batch = _SmallFiles(warn=warn)
    for piece in pieces:
        if piece.whole and piece.offset == 0 and piece.length <= SMALL_FILE:
            if batch.add(piece):
                continue
            total.add(batch.count())
            if on_chunk:
                on_chunk()
            batch.add(piece)
            continue
        part = analyse_range(piece.path, piece.offset, piece.length, on_chunk=on_chunk)
        part.files = 1 if piece.offset == 0 else 0
        if piece.offset + piece.length == piece.file_size:
            _check_size(piece, os.path.getsize(piece.path) if os.path.exists(piece.path) else None, warn)
        total.add(part)
    return total.add(batch.count())


SMALL_FILE = 1 << 20  # whole files up to this size are counted in batches


def _check_size(piece, size_now: int | None, warn) -> None:
    """Says so when a file changed size between the scan and its reading."""
    if warn is None or piece.file_size is None or size_now == piece.file_size:
        return
    name = shown(piece.path)
    if size_now is None:
        warn(f"{name} was removed during the analysis; its lines read before that are counted")
    elif size_now > piece.file_size:
        warn(f"{name} grew during the analysis; counted its first {piece.file_size} bytes (its size at scan time)")
    else:
        warn(f"{name} shrank during the analysis ({piece.file_size} -> {size_now} bytes); counted what was left")


class _SmallFiles:
    """Whole small files joined into one buffer, so the kernel's fixed cost is paid once."""

    def __init__(self, limit: int = CHUNK_SIZE, warn=None):
        self.limit = limit
        self.warn = warn
        self.data = bytearray()
        self.files = 0
        self.bytes = 0  # file bytes, without the newlines added between files

    def add(self, piece) -> bool:
        """Reads the file in; False (nothing read) if the buffer is full."""
        if self.files and len(self.data) + piece.length + 1 > self.limit:
            return False
        try:
            with open(piece.path, "rb") as f:
                content = f.read(piece.length)  # what existed at scan time
                _check_size(piece, os.fstat(f.fileno()).st_size, self.warn)
        except OSError as exc:
            raise InputError(f"cannot read {piece.path}: {exc.strerror or exc}") from None
        self.data += content
        if content and not content.endswith(b"\n"):
            self.data += b"\n"  # end its last line here, not in the next file
        self.files += 1
        self.bytes += len(content)
        return True

    def count(self) -> PartialResult:
        result = count_lines(self.data)
        result.bytes, result.files = self.bytes, self.files
        self.data, self.files, self.bytes = bytearray(), 0, 0
        return result
