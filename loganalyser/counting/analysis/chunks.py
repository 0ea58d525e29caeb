"""The statistics of a whole chunk at once: exactly LinePass's, without Python per line.

LinePass (lines.py) stays the definition. This path gives the same counts and
LineStats for the same bytes, for a regex format whose regex never consumes or
looks at a "\\n" (`chunk_safe` for LF alone): then, in a copy of the chunk
where each line is its content (the CR before each LF dropped) between two
"\\n"s, one `findall` of the regex behind a "\\n" finds exactly the records that
`Dialect.classify` finds line by line, with the same groups. The seed format's
records of the usual shape are read by numpy instead, from the kernel's own
reading of the lines (seed_chunks.py, fixed.py), the regex taking the rest.
Everything after is done once per distinct value (a level spelling, a second,
a template, a group) on lists and arrays built by C-level calls (`Counter(zip(...))`, `map`, `compress`, numpy).

Any other format (JSON lines, logfmt's pairs, a regex that could see a line's end) keeps LinePass.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from itertools import compress, repeat

import numpy as np

from ..formats.engine import _strip_caret
from ..formats.spec import chunk_safe, sre_constants, sre_parse
from ..kernel import count_lines
from . import fixed
from .chunk_stats import add_counts, add_groups, add_range, add_templates, add_timeline, remembered, time_window
from .clock import Clock
from .lines import MESSAGE_STRIP, LinePass
from .seed_chunks import SeedRecords
from .stats import LineStats

_LINE = "_chunk_line"  # the record's whole content (only when templates are asked for)
_TAIL = "_chunk_tail"  # the message of a format whose regex names none: the rest, lstripped


class ChunkPass:
    """LinePass.run for a whole chunk of one format at once (see the module docstring)."""

    def __init__(self, lines: LinePass, records: re.Pattern, clock: Clock, numpy_lines: bool):
        self.lines = lines  # the per-line pass: its options, masker, grep and the readers of one value
        self.analysis = lines.analysis
        self.records = records  # the spec's regex behind a "\n", with the content and the rest of the line
        self.clock = clock
        self.seed = SeedRecords(lines) if numpy_lines else None  # the seed format: its usual records by numpy
        self._message_templates: dict[bytes, str] = {}  # a message's key (Masker.keys) -> its template
        self.column = {name: records.groupindex[name] - 1 for name in
                       ("level", "timestamp", "host", "component", "message", _LINE, _TAIL)
                       if name in records.groupindex}

    @classmethod
    def build(cls, lines: LinePass) -> "ChunkPass | None":
        """The whole-chunk pass of a LinePass's format, or None where only LinePass is exact."""
        spec = lines.dialect.spec
        if spec.kind != "regex" or lines.json or lines.pairs or not _line_safe(spec.regex):
            return None  # (pairs: the fields come from no group of the regex)
        records = _records_pattern(_strip_caret(spec.regex), with_line=lines.masker is not None)
        if records is None:
            return None
        return cls(lines, records, Clock(lines, spec.timestamp), fixed.fits(spec))

    def run(self, data: bytes, path: str, offset: int, year: int | None, stats: LineStats,
            counts: dict[str, int], kept: dict | None = None) -> None:
        """What LinePass.run adds for the same arguments (`kept`: what the seed kernel's
        count_lines(data, keep) kept, and whether data holds a CR ("cr"), when it has counted
        data already; data may then be a memoryview, if the kernel read some lines)."""
        if self.seed is not None:
            if kept is None:
                kept = {"cr": b"\r" in data}
                count_lines(data, kept)
            if "v" in kept:  # the kernel read some lines: fixed.py takes them from there
                pieces, at = self.seed.run(data, kept, path, offset, year, stats, counts)
                if pieces:
                    buf = b"\n" + b"\n".join(pieces) + b"\n"
                    rows = self.records.findall(buf)
                    if rows:
                        self._add_found(buf, rows, lambda k: offset + at[k], path, year, stats, counts)
                stats.cap()
                return
        buf = b"\n" + data if data.endswith(b"\n") else b"\n" + data + b"\n"
        cr = b"\r" in data
        if cr:
            buf = buf.replace(b"\r\n", b"\n")
        where = _LineOffsets(data, offset)
        rows = self.records.findall(buf) if buf else []
        if rows:
            self._add_found(buf, rows, where, path, year, stats, counts)
        stats.cap()

    # -- the records the regex found -------------------------------------------------

    def _add_found(self, buf, rows, where, path, year, stats, counts) -> None:
        a, lines = self.analysis, self.lines
        field = {name: column for name, column in zip(self.column, _columns(rows, self.column.values()))}
        if "timestamp" not in field:
            field["timestamp"] = (b"",) * len(rows)
        if "message" not in field:
            field["message"] = field.pop(_TAIL)
        level_of = {s: lines.dialect.level(s) for s in set(field["level"])}
        field["level"] = list(map(level_of.__getitem__, field["level"]))
        if a.levels is not None:  # the filters, cheapest first, each on what the previous kept
            passes = {level: level in a.levels for level in level_of.values()}
            field = _kept(field, map(passes.__getitem__, field["level"]))
        if lines.grep is not None:
            field = _kept(field, [m is not None for m in map(lines.grep.search, _decoded(field["message"]))])
        keys, base = self.clock.read(field["timestamp"], year)
        if a.since_ms is not None or a.until_ms is not None:
            since, until = time_window(a)
            times = self.clock.each_ms(field["timestamp"], keys, base)
            keep = [ms is not None and since <= ms < until for ms in times]
            field, keys = _kept(field, keep), list(compress(keys, keep))
        levels, texts, messages = field["level"], field["timestamp"], field["message"]
        if not levels:
            return
        add_counts(counts, Counter(levels).items())
        timeline = Counter(zip(levels, keys))
        untimed = sum(n for (_, key), n in timeline.items() if base[key] is None)
        timed = {key for key in set(keys) if base[key] is not None}
        if timed:
            add_range(stats, path, self.clock.extreme(min, timed, base, texts, keys),
                       self.clock.extreme(max, timed, base, texts, keys))
        stats.untimed += untimed
        if a.bucket_s:
            add_timeline(stats, a.bucket_s, ((level, base[key], n) for (level, key), n in timeline.items()
                                              if base[key] is not None))
        if lines.masker is not None:
            self._add_found_templates(stats, buf, levels, messages, field[_LINE], where, path)
        if a.by:
            self._add_found_groups(stats, levels, field, path)

    def _add_found_templates(self, stats, buf, levels, messages, contents, where, path) -> None:
        masker = self.lines.masker
        keys = masker.keys(b"\n".join(messages)).split(b"\n")
        template_of = remembered(self._message_templates, set(keys),
                                       lambda new: masker.templates(_decoded(new)))
        pairs = list(zip(levels, map(template_of.__getitem__, keys)))
        first = dict(zip(reversed(pairs), range(len(pairs) - 1, -1, -1)))  # pair -> index of its first record
        find = _FirstLines(buf)
        line = {i: find.line(contents[i]) for i in sorted(first.values())}
        add_templates(stats, path, ((level, template, n, where(line[first[level, template]]),
                                      contents[first[level, template]])
                                     for (level, template), n in Counter(pairs).items()))

    def _add_found_groups(self, stats, levels, field, path) -> None:
        by = self.analysis.by
        if by == "file" or by not in field:  # one group: the file's, or what a format without the field gets
            pairs = Counter(zip(repeat(self.lines._group({}, path)), levels))
        else:
            pairs, named = Counter(), {}
            for (value, level), n in Counter(zip(field[by], levels)).items():
                if value not in named:
                    text = value.decode("utf-8", "replace")
                    named[value] = self.lines._group({by: text} if text else {}, path)
                pairs[(named[value], level)] += n
        add_groups(stats, pairs.items())


# -- lines and their offsets ----------------------------------------------------------

class _LineOffsets:
    """The file offset of line k of a chunk."""

    def __init__(self, data: bytes, offset: int):
        self.data, self.offset = data, offset
        self.starts = None  # where each line of data starts

    def __call__(self, k: int) -> int:
        if self.starts is None:
            self.starts = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == 10) + 1
        return self.offset + (0 if k == 0 else int(self.starts[k - 1]))


class _FirstLines:
    """Line numbers of contents, asked for in file order: the first line of that
    content after the previous answer (a line of the same content before it
    would be a record of the same key, and so would have been asked for first)."""

    def __init__(self, buf: bytes):
        self.buf = buf
        self.at = 0  # where the next search starts
        self.lines = -1  # "\n"s in buf[:at], less the first (before line 0)

    def line(self, content: bytes) -> int:
        found = self.buf.find(b"\n" + content + b"\n", self.at)
        self.lines += self.buf.count(b"\n", self.at, found + 1)
        self.at = found + 1
        return self.lines


@lru_cache(maxsize=64)
def _line_safe(regex: str) -> bool:
    return chunk_safe(regex, line_ends=(10,))


@lru_cache(maxsize=64)
def _records_pattern(regex: str, with_line: bool) -> re.Pattern | None:
    """The spec's regex behind a "\\n" that is no blank line's, capturing the
    rest of the line (lstripped, as LinePass takes a message) where it names no
    message, and the whole line where asked (what follows the regex always
    matches, so the regex matches as it does alone); None where findall could
    not stand for the match of each line."""
    try:
        own = re.compile(regex.encode("utf-8"))
        parsed = sre_parse.parse(regex.encode("utf-8"))
    except (re.error, UnicodeEncodeError):
        return None
    if _LINE in own.groupindex or _TAIL in own.groupindex or re.search(r"\\[1-9]", regex):
        return None  # our groups' names taken, or numbered references our first group would shift
    message = own.groupindex.get("message")
    if message is not None and not any(op is sre_constants.SUBPATTERN and arg[0] == message
                                        for op, arg in parsed):
        return None  # a message group that may not take part: LinePass then takes the rest of the line
    rest = f"[{re.escape(MESSAGE_STRIP)}]*(?P<{_TAIL}>[^\\n]*)" if message is None else "[^\\n]*" if with_line else ""
    record = f"(?P<{_LINE}>(?:{regex}){rest})" if with_line else f"(?:{regex}){rest}"  # the line, to its end
    try:
        return re.compile(f"\\n(?!\\n){record}".encode("utf-8"))
    except re.error:
        return None


def _columns(rows: list[tuple], wanted) -> list[tuple]:
    columns = list(zip(*rows))
    return [columns[i] for i in wanted]


def _decoded(values) -> list[str]:
    """Each of some "\\n"-free byte strings decoded as LinePass decodes a field."""
    if not values:
        return []
    joined = b"\n".join(values)
    if joined.isascii():
        return joined.decode("ascii").split("\n")
    return [v.decode("utf-8", "replace") for v in values]


def _kept(field: dict, keep) -> dict:
    """The columns of the records `keep` (an iterable of booleans, one a record) says to keep."""
    keep = list(keep)
    return {name: list(compress(column, keep)) for name, column in field.items()}
