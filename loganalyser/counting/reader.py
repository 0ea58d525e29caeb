"""Reads a byte range of a file in bounded chunks and counts its lines.

Ownership rule: a range `[offset, offset + length)` owns exactly the lines that
*start* inside it, so ranges that tile a file count every line once, however
the file is cut. Memory stays at about two chunks whatever the file or line
size: a line longer than a chunk is classified as it streams past, from the
bytes that decide it, and never held whole. A compressed file is read whole,
through its decompressor, in the same bounded chunks.
"""

from __future__ import annotations

import os

from loganalyser.console import shown
from loganalyser.counting.formats.detect import BOM, detect, file_head
from loganalyser.counting.result import PartialResult
from loganalyser.errors import InputError

from .analysis.lines import FileAnalysis
from .compressed import compression_of, reading
from .formats import AUTO, DEFAULT_FORMAT, FormatSet
from .kernel import tally

CHUNK_SIZE = 4 << 20  # the kernel's sweet spot: fits in cache-friendly passes
LONG_LINE_HEAD = 1 << 20  # a line longer than a chunk is classified from this many first bytes (non-seed formats)

_standard: FormatSet | None = None


def standard_formats() -> FormatSet:
    """The built-in formats, canonical levels (the default of every reader call)."""
    global _standard
    if _standard is None:
        _standard = FormatSet.standard()
    return _standard


class LocalFiles:
    """Files as this host sees them: where the reader gets its bytes unless told otherwise
    (cluster/shipping.py gives it bytes shipped from the master instead)."""

    def open(self, path: str):
        """A binary file to seek and read (unbuffered: the scan reads in large chunks)."""
        return open(path, "rb", buffering=0)

    def size(self, path: str) -> int | None:
        """The file's size now, or None if it is gone."""
        try:
            return os.path.getsize(path)
        except OSError:
            return None

    def mtime(self, path: str) -> float | None:
        """None: the statistics take the file's modification time from this host (analysis/lines.py)."""
        return None


LOCAL_FILES = LocalFiles()


def analyse_range(path: str, offset: int = 0, length: int | None = None, chunk_size: int = CHUNK_SIZE, on_chunk=None,
                  fmt: str = "seed", formats: FormatSet | None = None, files=LOCAL_FILES) -> PartialResult:
    """Statistics of the lines of `path` that start in [offset, offset+length), in format `fmt`.

    `on_chunk()` is called after each chunk, so a long task can send heartbeats.
    `files` opens `path` (LocalFiles, or shipped bytes).
    """
    formats = formats or standard_formats()
    dialect = formats.dialect(fmt)
    analysis = FileAnalysis(dialect, formats.analysis, path, files.mtime(path)) if formats.analysis.active else None
    suffix = compression_of(path)
    stop = float("inf") if length is None or suffix else offset + length
    if suffix and offset > 0:
        return PartialResult()  # a compressed file is one piece, at offset 0
    try:
        with files.open(path) as f:
            if suffix:
                with reading(path, suffix, f) as stream:
                    return _Scan(stream, dialect, chunk_size, on_chunk, analysis).run(0, stop)
            return _Scan(f, dialect, chunk_size, on_chunk, analysis).run(offset, stop)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def analyse_appended(path: str, start: int, end: int, whole_tail: bool, fmt: str,
                     formats: FormatSet | None = None) -> tuple[PartialResult, int]:
    """The whole lines of `path` in [start, end) and the offset after them (a followed file).

    A last line without its newline is left for later unless `whole_tail`. When
    `start` is not at a line's start (a tail counted early goes on), the rest of
    that line is skipped: it was counted with its beginning.
    """
    stop = end if whole_tail else last_line_end(path, start, end)
    if stop <= start:
        return PartialResult(), start
    return analyse_range(path, start, stop - start, fmt=fmt, formats=formats), stop


def last_line_end(path: str, start: int, end: int, block: int = 1 << 16) -> int:
    """The offset just after the last "\n" in [start, end) of `path`; `start` when there is none."""
    try:
        with open(path, "rb") as f:
            position = end
            while position > start:
                low = max(start, position - block)
                f.seek(low)
                data = f.read(position - low)
                newline = data.rfind(b"\n")
                if newline >= 0:
                    return low + newline + 1
                position = low
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return start


_buffers: dict[int, bytearray] = {}  # size -> buffer, reused: a batch of small files would otherwise zero 8 MB per file


def _buffer(size: int) -> bytearray:
    if size not in _buffers:
        _buffers[size] = bytearray(size)
    return _buffers[size]


class _Scan:
    """One pass over a stream: whole lines go to the dialect a chunk at a time."""

    def __init__(self, f, dialect, chunk_size: int, on_chunk, analysis: FileAnalysis | None = None):
        self.f = f
        self.dialect = dialect
        self.chunk_size = chunk_size
        self.on_chunk = on_chunk or _nothing
        self.analysis = analysis  # statistics and filters beyond level counts, when the job asks

    def run(self, offset: int, stop: float) -> PartialResult:
        f, chunk_size = self.f, self.chunk_size
        result = PartialResult()
        pos = offset  # stream offset of the next unread byte
        # One buffer for the whole scan: the unfinished last line of a chunk is
        # moved to its front and the next chunk read in behind it.
        buf = _buffer(2 * chunk_size + len(BOM))
        view = memoryview(buf)
        carry = 0  # bytes at the front of buf: a line whose end is not read yet
        self.skip = 0  # bytes at the front of buf that belong to no line (a byte-order mark)
        if offset > 0:
            f.seek(offset - 1)
            if f.read(1) != b"\n":  # the line at `offset` began in the previous range
                pos = offset + _skip_line(f, chunk_size, stop - offset)
        elif stop > 0:
            head = f.read(len(BOM))
            pos = carry = len(head)
            buf[:carry] = head
            self.skip = len(BOM) if head == BOM else 0
        while pos - carry < stop:
            got = f.readinto(view[carry : carry + chunk_size])
            pos += got
            filled = carry + got
            base = pos - filled  # stream offset of buf[0]
            if pos >= stop:  # the last line we own ends at the first "\n" at or after stop - 1
                end = buf.find(b"\n", max(int(stop) - 1 - base, 0), filled)
                if end >= 0:
                    result.add(self._count(buf, end + 1, base))
                    return result
            if not got:  # the end of the file ends the last line
                if filled:
                    result.add(self._count(buf, filled, base))
                return result
            cut = buf.rfind(b"\n", 0, filled) + 1
            if cut:
                result.add(self._count(buf, cut, base))
            self.on_chunk()
            carry = filled - cut
            buf[:carry] = buf[cut:filled]
            if carry >= chunk_size:  # a line longer than a chunk: stream it
                line, rest = self._long_line(bytes(view[self.skip : carry]), pos - carry + self.skip)
                line.bytes += self.skip
                self.skip = 0
                result.add(line)
                pos += line.bytes - carry + len(rest)  # bytes the line streamed past, and what it read beyond
                carry = len(rest)
                buf[:carry] = rest
        return result

    def _count(self, buf, end: int, base: int) -> PartialResult:
        """The lines of buf[:end], buf[0] being at stream offset `base` (after a byte-order
        mark, which only the first count sees)."""
        if self.analysis is not None:
            part = self.analysis.count(self.dialect, buf, end, self.skip, base + self.skip)
        else:
            part = self.dialect.count(buf, end, self.skip)
        part.bytes += self.skip
        self.skip = 0
        return part

    def _long_line(self, start: bytes, offset: int) -> tuple[PartialResult, bytes]:
        """Counts one line that begins with `start` (at stream offset `offset`) and goes on in
        the stream; returns its result and the bytes read past its end (at most a chunk)."""
        seed = self.dialect.spec.kernel == "seed"
        # What decides a line: its first bytes (a continuation, a blank "\r"), and
        # for the seed format the bytes after its first "]" (kernel.classify_line).
        keep = SEED_HEAD if seed and self.analysis is None else LONG_LINE_HEAD  # statistics read the message too
        head = bytearray()
        after_close = None  # seed: up to 19 bytes after the first "]", once one is seen
        size = 0
        data, rest = start, b""
        while data:
            nl = data.find(b"\n")
            part = data if nl < 0 else data[:nl]
            if len(head) < keep:
                head += part[: keep - len(head)]
            if seed and after_close is None:
                close = part.find(b"]")
                if close >= 0:
                    after_close = part[close + 1 : close + 20]
            elif seed and len(after_close) < 19:
                after_close += part[: 19 - len(after_close)]
            if nl >= 0:
                size += nl + 1
                rest = data[nl + 1 :]
                break
            size += len(data)
            self.on_chunk()
            data = self.f.read(self.chunk_size)
        if seed and head[:1] == b"[":  # a level line, or malformed: never blank or continued
            level = self.dialect.classify(b"[]" + after_close) if after_close is not None else None
        else:
            level = self.dialect.classify(bytes(head))
        result = PartialResult(bytes=size)
        tally(result, level)
        if self.analysis is not None:  # its statistics come from its first bytes
            self.analysis.apply_line(result, bytes(head), level, offset)
        return result, rest


SEED_HEAD = 64  # enough for every continuation prefix


def _nothing() -> None:
    pass


def _skip_line(f, chunk_size: int, limit: float) -> int:
    """Reads past the next newline; returns how many bytes that took. After `limit` bytes
    without one it stops (returning at least `limit`): a range in the middle of a long line
    owns none of it, and reading on to the line's end (a gigabyte away, perhaps) would be
    every such range's cost."""
    skipped = 0
    while skipped < limit:
        data = f.read(int(min(chunk_size, limit - skipped)))
        if not data:
            return skipped
        nl = data.find(b"\n")
        if nl >= 0:
            f.seek(nl + 1 - len(data), 1)
            return skipped + nl + 1
        skipped += len(data)
    return skipped


def analyse_pieces(pieces, on_chunk=None, warn=None, formats: FormatSet | None = None,
                   files=LOCAL_FILES) -> PartialResult:
    """Statistics of a sequence of pieces; a piece at offset 0 counts its file.

    What is counted is what existed at scan time; `warn(text)` hears of a file
    whose size changed since (it grew: the new lines are not counted), and of
    a small file of format AUTO that no format fits. `files` opens the files
    (see analyse_range).
    """
    formats = formats or standard_formats()
    total = PartialResult()
    batch = _SmallFiles(formats, files)
    for piece in pieces:
        if piece.whole and piece.offset == 0 and piece.length <= SMALL_FILE and not piece.compressed:
            content = _read_small(piece, warn, files)
            fmt = _detected(content, piece.path, formats, warn) if piece.format == AUTO else piece.format
            full = batch.take(content, fmt, piece.path)
            if full is not None:
                total.add(full)
                if on_chunk:
                    on_chunk()
            continue
        part = analyse_range(piece.path, piece.offset, piece.length, on_chunk=on_chunk, fmt=piece.format, formats=formats,
                             files=files)
        if piece.offset == 0:
            part.files = 1
            part.formats = {piece.format: 1}
        if piece.offset + piece.length == piece.file_size:
            _check_size(piece, files.size(piece.path), warn)
        total.add(part)
    return total.add(batch.count())


def _read_small(piece, warn, files) -> bytes:
    """A whole small file as it was at scan time (its first `length` bytes)."""
    try:
        with files.open(piece.path) as f:
            content = f.read(piece.length)
            _check_size(piece, files.size(piece.path), warn)
    except OSError as exc:
        raise InputError(f"cannot read {piece.path}: {exc.strerror or exc}") from None
    return content


def _detected(content: bytes, path: str, formats: FormatSet, warn) -> str:
    """The format of a small file left to the reader (AUTO): the planner's rule on the same head."""
    name, fits = detect(file_head(content), formats)
    if not fits and warn:
        warn(unfit_warning(path))
    return name


def unfit_warning(path: str) -> str:
    return f"no known format fits {shown(path)}: counted with the {DEFAULT_FORMAT} rules (see --format and --format-file)"


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
    """Whole small files of one format joined into one buffer, so the kernel's fixed cost is paid once."""

    def __init__(self, formats: FormatSet, files=LOCAL_FILES, limit: int = CHUNK_SIZE):
        self.formats = formats
        self.source = files  # where the files came from (their modification times, for the statistics)
        self.limit = limit
        self.format: str | None = None  # the format of the files held
        self.data = bytearray()
        self.files = 0
        self.bytes = 0  # file bytes, without the newlines added between files
        self.segments: list[tuple[str, int, int, int]] = []  # path, start, end in data, BOM bytes skipped

    def take(self, content: bytes, fmt: str, path: str = "") -> PartialResult | None:
        """Adds a file's content; returns the count of the files held before when
        this one does not fit with them (the buffer is full, or another format)."""
        flushed = None
        if self.files and (len(self.data) + len(content) + 1 > self.limit or fmt != self.format):
            flushed = self.count()
        self.format = fmt
        self.bytes += len(content)
        skipped = len(content)
        content = content.removeprefix(BOM)
        self.segments.append((path, len(self.data), len(self.data) + len(content), skipped - len(content)))
        self.data += content
        if content and not content.endswith(b"\n"):
            self.data += b"\n"  # end its last line here, not in the next file
        self.files += 1
        return flushed

    def count(self) -> PartialResult:
        if not self.files:
            return PartialResult()
        dialect = self.formats.dialect(self.format)
        result = dialect.count(self.data)
        if self.formats.analysis.active:
            self._analyse(dialect, result)
        result.bytes, result.files = self.bytes, self.files
        result.formats = {self.format: self.files}
        self.data, self.files, self.bytes, self.format = bytearray(), 0, 0, None
        self.segments = []
        return result

    def _analyse(self, dialect, result: PartialResult) -> None:
        """Each file's statistics from its own lines (they know their path and offsets)."""
        counts, stats = {}, None
        for path, start, end, bom in self.segments:
            part = PartialResult(counts=dict(result.counts) if not self.formats.analysis.per_line else {})
            analysis = FileAnalysis(dialect, self.formats.analysis, path, self.source.mtime(path))
            analysis.apply(part, bytes(self.data[start:end]), bom)
            if not self.formats.analysis.per_line:  # a level filter alone: the batch's counts, filtered once
                result.counts = part.counts
                return
            for level, n in part.counts.items():
                counts[level] = counts.get(level, 0) + n
            stats = part.stats if stats is None else stats.add(part.stats)
        result.counts, result.stats = counts, stats
