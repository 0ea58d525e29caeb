"""The statistics of whole lines, one line at a time (only when a job asks for them).

A record's fields come from its format's spec: the `timestamp`, `host`,
`component` and `message` groups of its regex (a JSON line's keys), the
message being the rest of the line after the match where the regex names
none. Continuation, blank and malformed lines carry no statistics of their
own; they stay in `lines`, `continuation`, `malformed` and `blank`.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone

from loganalyser.console import shown

from ..kernel import BLANK, CONTINUATION, count_lines
from .options import Analysis
from .pairs import logfmt_fields
from .stats import LineStats
from .templates import Masker
from .timestamps import RFC3339, compile_layout, epoch_ms

NOT_RECORDS = (BLANK, CONTINUATION)
EXAMPLE_CHARS = 500  # an example line is cut to this many characters
MESSAGE_STRIP = " \t:-"  # stripped from the start of a message its regex does not name (the rest of the line)
WHOLE_CHUNKS_FROM = 16 << 10  # bytes: smaller buffers are quicker one line at a time (both passes agree)
NO_GROUP = "(none)"
JSON_TIME_KEYS = ("timestamp", "time", "ts", "@timestamp", "datetime")
JSON_MESSAGE_KEYS = ("message", "msg", "event")
JSON_FIELD_KEYS = {"host": ("host", "hostname", "host.name"), "component": ("logger", "component", "name", "module")}
_ISO = re.compile(RFC3339)


class LinePass:
    """Looks at each line of a buffer of one file in one format and adds what passes to a LineStats."""

    def __init__(self, dialect, analysis: Analysis):
        self.dialect = dialect
        self.analysis = analysis
        spec = dialect.spec
        self.json = spec.kind == "json"
        self.regex = None if self.json else spec.pattern
        self.pairs = spec.record == "logfmt"  # fields from key=value pairs (pairs.py)
        self.stamp = compile_layout(spec.timestamp) if spec.timestamp and not self.json else None
        self.masker = Masker(analysis.masks) if analysis.top else None
        self.grep = re.compile(analysis.grep) if analysis.grep else None
        self.host_from_path = re.compile(analysis.host_from_path) if analysis.host_from_path else None
        self._shown: dict[str, str] = {}  # path -> as the console shows it (relpath is slow per line)

    def new_stats(self) -> LineStats:
        return LineStats(max_templates=self.analysis.max_templates if self.analysis.top else 0,
                         max_groups=self.analysis.max_groups if self.analysis.by else 0)

    def run(self, data: bytes, path: str, offset: int, year: int | None, stats: LineStats,
            counts: dict[str, int]) -> None:
        """Adds the lines of `data` (whole lines, the first at file offset `offset`) to `stats`,
        and the level of each passing record to `counts`."""
        position = offset
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for line in lines:
            self.line(line, self.dialect.classify(line), path, position, year, stats, counts)
            position += len(line) + 1
        stats.cap()

    def line(self, line: bytes, level, path: str, offset: int, year: int | None, stats: LineStats,
             counts: dict[str, int]) -> None:
        """One line whose classification is `level` (a level, or None / BLANK / CONTINUATION)."""
        if level is None or level in NOT_RECORDS:
            return
        a = self.analysis
        if a.levels is not None and level not in a.levels:
            return
        content = line[:-1] if line.endswith(b"\r") else line
        fields = self._fields(content)
        if self.grep is not None and not self.grep.search(fields.get("message", "")):
            return
        ms = self._time(fields.get("timestamp"), year)
        if (a.since_ms is not None or a.until_ms is not None) and (
                ms is None or (a.since_ms is not None and ms < a.since_ms)
                or (a.until_ms is not None and ms >= a.until_ms)):
            return
        counts[level] = counts.get(level, 0) + 1
        if ms is None:
            stats.untimed += 1
        else:
            if stats.first_ms is None or ms < stats.first_ms:
                stats.first_ms = ms
            if stats.last_ms is None or ms > stats.last_ms:
                stats.last_ms = ms
            span = stats.file_ranges.get(path)
            if span is None:
                stats.file_ranges[path] = [ms, ms]
            elif ms < span[0]:
                span[0] = ms
            elif ms > span[1]:
                span[1] = ms
            if a.bucket_s:
                start = ms // 1000 // a.bucket_s * a.bucket_s
                bucket = stats.timeline.setdefault(start, {})
                bucket[level] = bucket.get(level, 0) + 1
        if self.masker is not None:
            template = self.masker.template(fields.get("message", ""))
            stats.count_template(level, template, path, offset,
                                 content[:EXAMPLE_CHARS].decode("utf-8", "replace"))
        if a.by:
            group = self._group(fields, path)
            counter = stats.groups.setdefault(group, {})
            counter[level] = counter.get(level, 0) + 1

    def _fields(self, content: bytes) -> dict[str, str]:
        """The text of a record's timestamp, host, component and message (those it has)."""
        if self.json:
            return _json_fields(content)
        if self.pairs:
            return logfmt_fields(content)
        m = self.regex.match(content)
        if m is None:  # a record the fast path settled that the regex does not (never for built-ins)
            return {"message": content.decode("utf-8", "replace")}
        groups = {k: v.decode("utf-8", "replace") for k, v in m.groupdict().items()
                  if v is not None and k in ("timestamp", "host", "component", "message")}
        if "message" not in groups:
            groups["message"] = content[m.end():].decode("utf-8", "replace").lstrip(MESSAGE_STRIP)
        return groups

    def _time(self, text: str | None, year: int | None) -> int | None:
        if not text:
            return None
        if text.isdigit() and len(text) in (10, 13):  # epoch seconds or milliseconds (JSON lines)
            return int(text) * 1000 if len(text) == 10 else int(text)
        text = text.strip()
        m = (self.stamp.match(text) if self.stamp else None) or _ISO.match(text)  # variants: 'T', '.', a zone
        return epoch_ms(m, year) if m else None

    def _group(self, fields: dict[str, str], path: str) -> str:
        by = self.analysis.by
        if by == "file":
            name = self._shown.get(path)
            if name is None:
                name = self._shown[path] = shown(path)
            return name
        if fields.get(by):
            return fields[by]
        if by == "host" and self.host_from_path is not None:
            m = self.host_from_path.search(path)
            if m:
                return m.group(1) if m.groups() and m.group(1) is not None else m.group(0)
        return NO_GROUP


def _json_fields(content: bytes) -> dict[str, str]:
    try:
        record = json.loads(content)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(record, dict):
        return {}
    out = {}
    for name, keys in (("timestamp", JSON_TIME_KEYS), ("message", JSON_MESSAGE_KEYS),
                       *JSON_FIELD_KEYS.items()):
        for key in keys:
            value = record.get(key)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                out[name] = _printable(str(value))
                break
    return out


def _printable(text: str) -> str:
    """`text`, its lone surrogates (JSON's "\\ud800", which no UTF-8 can print) written as
    the escapes of their bytes, as a level's spelling is."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")


def file_year(path: str, analysis: Analysis, mtime: float | None = None) -> int | None:
    """The year given to year-less timestamps of `path`: --year, else its mtime year (UTC);
    `mtime` if given (a file shipped from another host), else this host's."""
    if analysis.year is not None:
        return analysis.year
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime if mtime is None else mtime, tz=timezone.utc).year
    except (OSError, OverflowError, ValueError):
        return None


class FileAnalysis:
    """The analysis of one file's lines as a reader counts them: replaces each
    counted part's level counts by those of the lines that pass, and adds the
    part's statistics."""

    def __init__(self, dialect, analysis: Analysis, path: str, mtime: float | None = None):
        self.analysis = analysis
        self.path = path
        self.lines = LinePass(dialect, analysis) if analysis.per_line else None
        self.year = file_year(path, analysis, mtime) if analysis.per_line else None
        from .chunks import ChunkPass  # it builds on LinePass, the definition it must agree with

        self.chunks = ChunkPass.build(self.lines) if self.lines is not None else None  # whole chunks, where exact

    def apply(self, part, data: bytes, offset: int) -> None:
        """`part` counted the whole lines of `data`, the first at file offset `offset`."""
        whole = self.chunks is not None and len(data) >= WHOLE_CHUNKS_FROM
        self._replace(part, lambda stats, counts: (self.chunks if whole else self.lines).run(
            data, self.path, offset, self.year, stats, counts))

    def count(self, dialect, buf, end: int, start: int, offset: int):
        """dialect.count(buf, end, start), then apply() to those lines (the first at file offset
        `offset`). The seed kernel's reading of the lines is handed to the statistics, not redone."""
        if dialect.spec.kernel == "seed" and self.chunks is not None and self.chunks.seed is not None \
                and end - start >= WHOLE_CHUNKS_FROM:
            view = memoryview(buf)[start:end]  # not copied: the statistics are done before the reader reuses buf
            kept: dict = {}
            # Its counts are of spellings (_replace replaces them). Where the statistics read each record's
            # key, which holds its level, the kernel leaves the levels to them and they tell it which were letters.
            keyed = self.lines.masker is not None or self.lines.grep is not None
            part = count_lines(view, kept, levels=not keyed)
            data = view if kept else bytes(view)  # ChunkPass.run reads a view only with the kernel's lines
            kept["cr"] = buf.find(b"\r", start, end) >= 0
            self._replace(part, lambda stats, counts: self.chunks.run(data, self.path, offset, self.year,
                                                                      stats, counts, kept))
            if keyed:
                part.malformed -= kept.get("lettered", 0)
            return part
        data = bytes(memoryview(buf)[start:end])
        part = dialect.count(buf, end, start)
        self.apply(part, data, offset)
        return part

    def apply_line(self, part, head: bytes, level, offset: int) -> None:
        """A line too long to hold, classified as `level` from its first bytes `head`."""
        self._replace(part, lambda stats, counts: self.lines.line(head, level, self.path, offset, self.year,
                                                                  stats, counts))

    def _replace(self, part, look) -> None:
        """A level filter alone filters the part's counts; otherwise `look(stats, counts)` gives
        the counts of the lines that pass and their statistics."""
        if self.lines is None:
            part.counts = {k: n for k, n in part.counts.items() if self.analysis.passes_level(k)}
            return
        counts: dict[str, int] = {}
        stats = self.lines.new_stats()
        look(stats, counts)
        part.counts, part.stats = counts, stats
