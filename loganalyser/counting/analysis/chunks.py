"""The statistics of a whole chunk at once: exactly LinePass's, without Python per line.

LinePass (lines.py) stays the definition. This path gives the same counts and
LineStats for the same bytes, for a regex format whose regex never consumes or
looks at a "\\n" (`chunk_safe` for LF alone): then, in a copy of the chunk
where each line is its content (one CR before each LF dropped) between two
"\\n"s, one `findall` of the regex behind a "\\n" finds exactly the records that
`Dialect.classify` finds line by line, with the same groups. Everything after
is done once per distinct value (a level spelling, a second, a template, a
group) on lists built by C-level calls (`Counter(zip(...))`, `map`, `compress`).

Any other format (JSON lines, a regex that could see a line's end) keeps LinePass.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import compress, repeat
from operator import and_

import numpy as np

from ..formats.engine import _strip_caret
from ..formats.spec import chunk_safe, sre_constants, sre_parse
from .lines import EXAMPLE_CHARS, NO_GROUP, LinePass
from .stats import LineStats
from .templates import finish
from .timestamps import compile_layout

_LINE = "_chunk_line"  # the record's whole content (only when templates are asked for)
_TAIL = "_chunk_tail"  # the message of a format whose regex names none: the rest, lstripped
_NOT_STRIPPED = rb"(?![ \t\r\x0b\x0c\x1c-\x1f])"  # what str.strip removes from ASCII text, but "\n"
_FRACTION = re.compile(r"(.*?)(\[)?([.,])S+(\])?")  # a layout that ends with its fraction of a second


class ChunkPass:
    """LinePass.run for a whole chunk of one format at once (see the module docstring)."""

    def __init__(self, lines: LinePass, records: re.Pattern, clock: "_Clock"):
        self.lines = lines  # the per-line pass: its options, masker, grep and the readers of one value
        self.records = records  # the spec's regex behind a "\n", with the content and the rest of the line
        self.clock = clock
        self.column = {name: records.groupindex[name] - 1 for name in
                       ("level", "timestamp", "host", "component", "message", _LINE, _TAIL)
                       if name in records.groupindex}

    @classmethod
    def build(cls, lines: LinePass) -> "ChunkPass | None":
        """The whole-chunk pass of a LinePass's format, or None where only LinePass is exact."""
        spec = lines.dialect.spec
        if spec.kind != "regex" or lines.json or not chunk_safe(spec.regex, line_ends=(10,)):
            return None
        records = _records_pattern(_strip_caret(spec.regex), with_line=lines.masker is not None)
        if records is None:
            return None
        return cls(lines, records, _Clock(lines, spec.timestamp))

    def run(self, data: bytes, path: str, offset: int, year: int | None, stats: LineStats,
            counts: dict[str, int]) -> None:
        """What LinePass.run adds for the same arguments."""
        buf = (b"\n" + data + b"\n").replace(b"\r\n", b"\n")
        if data.endswith(b"\n"):
            buf = buf[:-1]
        rows = self.records.findall(buf)
        if rows:
            self._add(buf, data, rows, path, offset, year, stats, counts)
        stats.cap()

    def _add(self, buf, data, rows, path, offset, year, stats, counts) -> None:
        a, lines = self.analysis, self.lines
        columns = list(zip(*rows))
        field = {name: columns[i] for name, i in self.column.items()}
        spellings = field["level"]
        level_of = {s: lines.dialect.level(s) for s in set(spellings)}
        levels = list(map(level_of.__getitem__, spellings))
        texts = field.get("timestamp", (b"",) * len(rows))
        messages = _decoded(field["message"] if "message" in field else field[_TAIL]) \
            if lines.grep is not None or lines.masker is not None else None
        keys, base = self.clock.read(texts, year)

        keep = None
        if a.levels is not None:
            passes = {level: level in a.levels for level in level_of.values()}
            keep = list(map(passes.__getitem__, levels))
        if lines.grep is not None:
            keep = _both(keep, [m is not None for m in map(lines.grep.search, messages)])
        if a.since_ms is not None or a.until_ms is not None:
            since = a.since_ms if a.since_ms is not None else -float("inf")
            until = a.until_ms if a.until_ms is not None else float("inf")
            keep = _both(keep, [ms is not None and since <= ms < until
                                for ms in self.clock.each_ms(texts, keys, base)])
        if keep is not None:
            levels, texts, keys = _kept(keep, levels), _kept(keep, texts), _kept(keep, keys)
            messages = _kept(keep, messages) if messages is not None else None
            field = {name: _kept(keep, column) for name, column in field.items()}
        if not levels:
            return
        for level, n in Counter(levels).items():
            counts[level] = counts.get(level, 0) + n
        self._add_times(stats, levels, texts, keys, base, path)
        if lines.masker is not None:
            self._add_templates(stats, buf, data, levels, messages, field[_LINE], path, offset)
        if a.by:
            self._add_groups(stats, levels, field, path)

    @property
    def analysis(self):
        return self.lines.analysis

    def _add_times(self, stats, levels, texts, keys, base, path) -> None:
        bucket_s = self.analysis.bucket_s
        timed = set()
        for (level, key), n in Counter(zip(levels, keys)).items():
            ms = base[key]
            if ms is None:
                stats.untimed += n
                continue
            timed.add(key)
            if bucket_s:
                bucket = stats.timeline.setdefault(ms // 1000 // bucket_s * bucket_s, {})
                bucket[level] = bucket.get(level, 0) + n
        if not timed:
            return
        first = self.clock.extreme(min, timed, base, texts, keys)
        last = self.clock.extreme(max, timed, base, texts, keys)
        if stats.first_ms is None or first < stats.first_ms:
            stats.first_ms = first
        if stats.last_ms is None or last > stats.last_ms:
            stats.last_ms = last
        span = stats.file_ranges.get(path)
        stats.file_ranges[path] = [first, last] if span is None else [min(span[0], first), max(span[1], last)]

    def _add_templates(self, stats, buf, data, levels, messages, contents, path, offset) -> None:
        masked = self.lines.masker.mask_all(messages)
        template_of = {m: finish(m) for m in set(masked)}
        keys = list(zip(levels, map(template_of.__getitem__, masked)))
        first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1)))  # key -> index of its first record
        where = _Offsets(buf, data, offset)
        example = {i: where.of(contents[i]) for i in sorted(first.values())}
        for (level, template), n in Counter(keys).items():
            i = first[(level, template)]
            stats.count_template(level, template, path, example[i],
                                 contents[i][:EXAMPLE_CHARS].decode("utf-8", "replace"), n)

    def _add_groups(self, stats, levels, field, path) -> None:
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
        for (group, level), n in pairs.items():
            counter = stats.groups.setdefault(group, {})
            counter[level] = counter.get(level, 0) + n


class _Clock:
    """LinePass._time of many timestamp texts, parsing each distinct second once.

    A layout that ends with its fraction (`...ss[.SSS]`, `...ss,SSS`) compiles
    to a head regex P followed by the fraction. When every text of a chunk is
    a head, the fraction's separator and 1 to 9 digits (checked by one regex
    over them all, P atomic: its first match, the one `match` takes, must end
    right before the fraction), P's match is the same for every text of one
    head, so a text's time is its head's time (that of any text of the head,
    less that text's fraction) plus its own fraction's milliseconds.
    Otherwise each distinct text is read whole."""

    def __init__(self, lines: LinePass, layout: str | None):
        self.lines = lines
        self.check = self.head = None
        split = _FRACTION.fullmatch(layout or "")
        if split is None or lines.stamp is None or bool(split.group(2)) != bool(split.group(4)):
            return
        head = compile_layout(split.group(1))
        sep = re.escape(split.group(3))
        fraction = f"{sep}(?P<f>[0-9]{{1,9}})"
        if split.group(2):
            fraction = f"(?:{fraction})?"
        if head is None or lines.stamp.pattern != head.pattern + fraction or not chunk_safe(head.pattern) \
                or "(?=" in head.pattern or "(?!" in head.pattern or "\\b" in head.pattern:
            return
        sep_b, head_b = sep.encode(), head.pattern.encode()
        digits = sep_b + rb"[0-9]{1,9}(?=\n)"
        self.check = re.compile(rb"\n(?:" + _NOT_STRIPPED + rb"(?!" + digits + rb")(?>" + head_b + rb")" + digits
                                + rb"|(?=\n))")
        self.head = re.compile(rb"\n([^\n]*?)(?:" + digits + rb")?(?=\n)")

    def read(self, texts, year) -> tuple[list, dict]:
        """Each text's key, and each key's time in ms (None: untimed); see each_ms for a text's."""
        if self.check is not None:
            joined = b"\n" + b"\n".join(texts) + b"\n"
            if joined.isascii() and self.check.subn(b"", joined)[1] == len(texts):
                keys = self.head.findall(joined)
                base = {}
                for key, text in dict(zip(keys, texts)).items():
                    ms = self.lines._time(text.decode("ascii"), year) if key else None
                    base[key] = None if ms is None else ms - _fraction_ms(text, key)
                return keys, base
        return list(texts), {text: self.lines._time(text.decode("utf-8", "replace"), year) for text in set(texts)}

    def each_ms(self, texts, keys, base) -> list:
        """The time of each text (keys and base from `read`)."""
        return [None if base[k] is None else base[k] + _fraction_ms(t, k) for t, k in zip(texts, keys)]

    def extreme(self, choose, timed: set, base: dict, texts, keys) -> int:
        """min or max of the times of the texts whose keys are in `timed`."""
        edge = choose(base[k] for k in timed)
        at_edge = {k for k in timed if base[k] == edge}
        picked = compress(zip(texts, keys), map(at_edge.__contains__, keys))
        return choose(edge + _fraction_ms(t, k) for t, k in picked)


def _fraction_ms(text: bytes, key: bytes) -> int:
    """The milliseconds of a text's fraction: none when its key is the whole text."""
    return int((text[len(key) + 1:len(key) + 4] + b"000")[:3]) if len(text) > len(key) else 0


class _Offsets:
    """File offsets of record lines, asked for in file order: the first line of
    a given content at or after the previous answer (a line of the same content
    before it would be a record of the same key, and so would have been asked first)."""

    def __init__(self, buf: bytes, data: bytes, offset: int):
        self.buf, self.data, self.offset = buf, data, offset
        self.at = 0  # where the next search starts in buf
        self.lines = 0  # lines of buf before self.at (with CRs: lines and buf positions differ)
        self.newlines = None  # positions of data's "\n"s, when it has CRs

    def of(self, content: bytes) -> int:
        found = self.buf.find(b"\n" + content + b"\n", self.at)
        if b"\r" not in self.data:
            self.at = found + 1
            return self.offset + found
        if self.newlines is None:
            self.newlines = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == 10)
        self.lines += self.buf.count(b"\n", self.at, found + 1)
        self.at = found + 1
        k = self.lines - 1  # lines before this one
        return self.offset + (0 if k == 0 else int(self.newlines[k - 1]) + 1)


def _records_pattern(regex: str, with_line: bool) -> re.Pattern | None:
    """The spec's regex behind a "\\n" that is no blank line's, capturing the
    rest of the line (lstripped, as LinePass takes a message) where it names no
    message, and the content where asked; None where findall could not stand
    for the match of each line."""
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
    line = f"(?=(?P<{_LINE}>[^\\n]*))" if with_line else ""
    rest = f"[ \\t:-]*(?P<{_TAIL}>[^\\n]*)" if message is None else ""
    try:
        return re.compile(f"\\n(?!\\n){line}(?:{regex}){rest}".encode("utf-8"))
    except re.error:
        return None


def _decoded(values) -> list[str]:
    """Each of some "\\n"-free byte strings decoded as LinePass decodes a field."""
    joined = b"\n".join(values)
    if joined.isascii():
        return joined.decode("ascii").split("\n") if values else []
    return [v.decode("utf-8", "replace") for v in values]


def _both(keep, more: list) -> list:
    return more if keep is None else list(map(and_, keep, more))


def _kept(keep: list, values) -> list:
    return list(compress(values, keep))
