"""The statistics of a whole chunk at once: exactly LinePass's, without Python per line.

LinePass (lines.py) stays the definition. This path gives the same counts and
LineStats for the same bytes, for a regex format whose regex never consumes or
looks at a "\\n" (`chunk_safe` for LF alone): then, in a copy of the chunk
where each line is its content (the CR before each LF dropped) between two
"\\n"s, one `findall` of the regex behind a "\\n" finds exactly the records that
`Dialect.classify` finds line by line, with the same groups. The seed format's
records of the usual shape are read by numpy instead, from the kernel's own
reading of the lines (fixed.py), the regex taking the rest. Everything after is done once per distinct value (a level
spelling, a second, a template, a group) on lists and arrays built by C-level
calls (`Counter(zip(...))`, `map`, `compress`, numpy).

Any other format (JSON lines, logfmt's pairs, a regex that could see a line's end) keeps LinePass.
"""

from __future__ import annotations

import re
import weakref
from collections import Counter
from functools import lru_cache
from itertools import compress, repeat

import numpy as np

from ..formats.engine import _strip_caret
from ..formats.spec import chunk_safe, sre_constants, sre_parse
from ..kernel import BLANK, CONTINUATION, classify_line, count_lines
from . import fixed
from .clock import Clock
from .lines import EXAMPLE_CHARS, LinePass
from .stats import LineStats
from .templates import digit_blind

_LINE = "_chunk_line"  # the record's whole content (only when templates are asked for)
_TAIL = "_chunk_tail"  # the message of a format whose regex names none: the rest, lstripped
_MESSAGE_STRIP = " \t:-"  # what LinePass strips from the start of such a message
# dialect -> analysis -> the key groups of fixed.py's records and what each means (_Meanings), lasting
# across chunks and files: a dialect reports each spelling as one level, an analysis masks and greps alike
_LASTING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ChunkPass:
    """LinePass.run for a whole chunk of one format at once (see the module docstring)."""

    def __init__(self, lines: LinePass, records: re.Pattern, clock: Clock, numpy_lines: bool):
        self.lines = lines  # the per-line pass: its options, masker, grep and the readers of one value
        self.analysis = lines.analysis
        self.records = records  # the spec's regex behind a "\n", with the content and the rest of the line
        self.clock = clock
        self.numpy_lines = numpy_lines  # the seed format: its usual records are read by fixed.py
        self._key_templates: dict[bytes, tuple] = {}  # a key fixed.py numbered apart -> level, template, passes --grep
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
        if self.numpy_lines:
            if kept is None:
                kept = {"cr": b"\r" in data}
                count_lines(data, kept)
            if "v" in kept:  # the kernel read some lines: fixed.py takes them from there
                self._run_seed(data, kept, path, offset, year, stats, counts)
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
            since, until = _window(a)
            times = self.clock.each_ms(field["timestamp"], keys, base)
            keep = [ms is not None and since <= ms < until for ms in times]
            field, keys = _kept(field, keep), list(compress(keys, keep))
        levels, texts, messages = field["level"], field["timestamp"], field["message"]
        if not levels:
            return
        _add_counts(counts, Counter(levels).items())
        timeline = Counter(zip(levels, keys))
        untimed = sum(n for (_, key), n in timeline.items() if base[key] is None)
        timed = {key for key in set(keys) if base[key] is not None}
        if timed:
            _add_range(stats, path, self.clock.extreme(min, timed, base, texts, keys),
                       self.clock.extreme(max, timed, base, texts, keys))
        stats.untimed += untimed
        if a.bucket_s:
            _add_timeline(stats, a.bucket_s, ((level, base[key], n) for (level, key), n in timeline.items()
                                              if base[key] is not None))
        if lines.masker is not None:
            self._add_found_templates(stats, buf, levels, messages, field[_LINE], where, path)
        if a.by:
            self._add_found_groups(stats, levels, field, path)

    def _add_found_templates(self, stats, buf, levels, messages, contents, where, path) -> None:
        masker = self.lines.masker
        keys = masker.keys(b"\n".join(messages)).split(b"\n")
        template_of = self._remembered(self._message_templates, set(keys),
                                       lambda new: masker.templates(_decoded(new)))
        pairs = list(zip(levels, map(template_of.__getitem__, keys)))
        first = dict(zip(reversed(pairs), range(len(pairs) - 1, -1, -1)))  # pair -> index of its first record
        find = _FirstLines(buf)
        line = {i: find.line(contents[i]) for i in sorted(first.values())}
        _add_templates(stats, path, ((level, template, n, where(line[first[level, template]]),
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
        _add_groups(stats, pairs.items())

    # -- the seed format's usual records (fixed.py) ------------------------------------

    def _run_seed(self, data: bytes, kept: dict, path, offset, year, stats, counts) -> None:
        """run() for data whose lines the seed kernel read (kept: count_lines' `keep`)."""
        level = self.lines.dialect.level
        found = fixed.Records(kept, lambda spelling: None if spelling is None else level(spelling),
                              keys=self.lines.masker is not None or self.lines.grep is not None, cr=kept["cr"])
        lettered = self._add_records(data, found, path, offset, year, stats, counts)
        starts, newlines = kept["line_start"], kept["newline_at"]
        pieces, at = [], []  # the other lines that may be records: their contents and where they start
        for a, b, fit in zip(starts[found.others].tolist(), newlines[found.others].tolist(),
                             kept["fits"][found.others].tolist()):
            pieces.append(bytes(data[a:b - 1] if data[b - 1] == 13 else data[a:b]))
            at.append(a)
            lettered += fit and kept["keys"] is None and classify_line(pieces[-1]) not in (None, CONTINUATION, BLANK)
        kept["lettered"] = lettered  # lines of a level of 1 to 8 letters the kernel left to us (when it did)
        a = found.tail_start
        for line in bytes(data[a:]).split(b"\n"):
            if line.startswith(b"["):
                pieces.append(line[:-1] if line.endswith(b"\r") else line)
                at.append(a)
            a += len(line) + 1
        if pieces:
            buf = b"\n" + b"\n".join(pieces) + b"\n"
            rows = self.records.findall(buf)
            if rows:
                self._add_found(buf, rows, lambda k: offset + at[k], path, year, stats, counts)

    def _add_records(self, data: bytes, found: fixed.Records, path, offset, year, stats, counts) -> int:
        """Adds the records `found`; returns how many have a level of letters (LinePass's records)."""
        a, lines = self.analysis, self.lines
        if not len(found.start):
            return 0
        keep = None  # the records that pass the filters (None: every one)
        tally = None  # the records of each key
        if lines.masker is not None or lines.grep is not None:
            key, meaning = self._keys(found)
            tally = _counted(key, None, len(meaning))
        if found.level is None:  # the kernel left the levels to us: each key's
            level, names, keep = _levels_of_keys(key, meaning, tally)
        else:
            level, names = found.level, found.names
        lettered = len(level) if keep is None else int(np.count_nonzero(keep))
        found.times(lines._time, year)
        timed = found.timed()
        if a.levels is not None:
            keep = _each(np.array([name in a.levels for name in names], dtype=bool), level, keep)
        window = a.since_ms is not None or a.until_ms is not None
        ms = found.ms() if window or a.bucket_s and a.bucket_s % 60 else None  # a bucket of whole minutes: by run
        if window:
            since, until = _window(a)
            inside = timed & (ms >= since) & (ms < until)
            keep = inside if keep is None else keep & inside
        if lines.grep is not None:
            keep = _each(meaning.passes(), key, keep)
        if keep is not None and keep.all():
            keep = None
        if keep is None and found.level is None:  # each key's records, by its level
            met = np.flatnonzero(tally)
            of_level = np.bincount(meaning.code[met], weights=tally[met], minlength=len(names)).astype(np.int64)
        else:
            of_level = _counted(level, keep, len(names))
        per_level = [(names[i], n) for i, n in enumerate(of_level.tolist()) if n]
        if not per_level:
            return lettered
        _add_counts(counts, per_level)
        if keep is not None:
            timed = timed & keep
        untimed = sum(n for _, n in per_level) - int(np.count_nonzero(timed))
        stats.untimed += untimed
        extremes = found.extremes(keep)
        if extremes is not None:
            _add_range(stats, path, *extremes)
        if a.bucket_s and extremes is not None:
            if ms is None:  # runs of one minute, each in one bucket
                runs = len(found.firsts)
                table = _counted(found.run * len(names) + level, None if keep is None and not untimed else timed,
                                 runs * len(names)).reshape(runs, len(names))
                run, of = np.nonzero(table)
                _add_timeline(stats, a.bucket_s, zip(map(names.__getitem__, of.tolist()),
                                                     found.minute_ms[run].tolist(), table[run, of].tolist()))
            else:
                at, of = (ms, level) if timed.all() else (ms[timed], level[timed])
                _add_timeline(stats, a.bucket_s, ((names[i], b * a.bucket_s * 1000, n) for b, i, n in
                                                  _pairs(at // (a.bucket_s * 1000), of, len(names))))
        if lines.masker is not None:
            numbered = np.arange(len(key))
            chosen = key if keep is None else np.where(keep, key, len(meaning))
            first = np.full(len(meaning) + 1, len(key), dtype=np.intp)
            np.minimum.at(first, chosen, numbered)
            if keep is not None:
                tally = _counted(key, keep, len(meaning))
            met = np.flatnonzero(tally)
            pairs, pair = np.unique(meaning.pair[met], return_inverse=True)  # of each key met: its (level, template)
            records = np.bincount(pair, weights=tally[met]).astype(np.int64)
            firsts = np.full(len(pairs), len(key), dtype=np.intp)
            np.minimum.at(firsts, pair, first[met])
            for p, n, start, end in zip(pairs.tolist(), records.tolist(), found.start[firsts].tolist(),
                                        found.end[firsts].tolist()):
                level, template = meaning.pairs[p]
                stats.count_template(level, template, path, offset + start,
                                     bytes(data[start:min(end, start + EXAMPLE_CHARS)]).decode("utf-8", "replace"), n)
        if a.by:  # the seed format names no host or component: one group
            _add_groups(stats, (((lines._group({}, path), name), n) for name, n in per_level))
        return lettered

    def _keys(self, found: fixed.Records) -> tuple[np.ndarray, "_ChunkMeanings"]:
        """Each record's key number, and (level, template, passes --grep) of each number."""
        masker, grep = self.lines.masker, self.lines.grep
        lasting = _LASTING.setdefault(self.lines.dialect, {})  # shared by the files of a job
        if self.analysis not in lasting:
            groups = fixed.KeyGroups((masker is None or masker.digit_blind)
                                     and (grep is None or digit_blind(grep.pattern)))
            lasting[self.analysis] = groups, _Meanings(groups.meaning)
        groups, meanings = lasting[self.analysis]

        def work_out(new: list[bytes]) -> list[tuple]:
            fields = [text[3:].partition(b"]") for text in new]
            messages = [rest.decode("utf-8", "replace").lstrip(_MESSAGE_STRIP) for _, _, rest in fields]
            templates = masker.templates(messages) if masker is not None else [None] * len(new)
            passes = [True] * len(new) if grep is None else [grep.search(m) is not None for m in messages]
            levels = [self.lines.dialect.level(spelling) if spelling.isalpha() else None for spelling, _, _ in fields]
            return list(zip(levels, templates, passes))
        key, apart = found.keys(groups)
        if len(meanings.code) != groups.count or len(meanings.code) != len(groups.meaning):
            meanings.extend(work_out(groups.keys[len(groups.meaning):]))
        known = self._remembered(self._key_templates, apart, work_out) if apart else {}
        return key, meanings.chunk([known[text] for text in apart])

    @staticmethod
    def _remembered(memo: dict, keys, work_out) -> dict:
        """memo[key] for each of `keys`, working out at once those not known yet."""
        new = [key for key in keys if key not in memo]
        if new:
            if len(memo) + len(new) > 100_000:
                memo.clear()
                new = list(keys)
            memo.update(zip(new, work_out(new)))
        return memo


class _Meanings:
    """(level, template, passes --grep) of each lasting key group (`rows`, which is KeyGroups.meaning),
    with each group's level number (-1: no level of letters) and whether it passes, as arrays."""

    def __init__(self, rows: list):
        self.rows = rows
        self.names: list[str] = []  # the level of each level number
        self.code = np.zeros(0, dtype=np.intp)
        self.passing = np.zeros(0, dtype=bool)
        self.pairs: list[tuple] = []  # each (level, template) met, by number
        self._pair_number: dict[tuple, int] = {}
        self.pair = np.zeros(0, dtype=np.intp)  # each group's (level, template) number

    def extend(self, rows: list) -> None:
        """Adds the meaning of new groups (after the groups started again, if they did)."""
        if len(self.code) != len(self.rows):  # KeyGroups.clear() emptied rows
            self.code, self.passing, self.pair = self.code[:0], self.passing[:0], self.pair[:0]
            self.pairs, self._pair_number = [], {}
            rows = self.rows + rows
            self.rows.clear()
        self.rows.extend(rows)
        self.code = np.concatenate([self.code, self.codes(rows)])
        self.passing = np.concatenate([self.passing, np.array([p for _, _, p in rows], dtype=bool)])
        self.pair = np.concatenate([self.pair, self.pair_numbers(rows)])

    def pair_numbers(self, rows: list) -> np.ndarray:
        """The (level, template) number of each row (numbering pairs not met yet)."""
        number = self._pair_number
        for level, template, _ in rows:
            if (level, template) not in number:
                number[level, template] = len(self.pairs)
                self.pairs.append((level, template))
        return np.array([number[level, template] for level, template, _ in rows], dtype=np.intp)

    def codes(self, rows: list) -> np.ndarray:
        """The level number of each row (numbering levels not met yet)."""
        out = []
        for level, _, _ in rows:
            if level is not None and level not in self.names:
                self.names.append(level)
            out.append(-1 if level is None else self.names.index(level))
        return np.array(out, dtype=np.intp)

    def chunk(self, own: list) -> "_ChunkMeanings":
        return _ChunkMeanings(self, own)


class _ChunkMeanings:
    """The meanings of a chunk's key numbers: the lasting groups', then its own keys'."""

    def __init__(self, lasting: _Meanings, own: list):
        self.lasting, self.own = lasting, own
        self.names = lasting.names
        self.code = np.concatenate([lasting.code, lasting.codes(own)]) if own else lasting.code
        self.passing = np.concatenate([lasting.passing, np.array([p for _, _, p in own], dtype=bool)]) \
            if own else lasting.passing
        self.pair = np.concatenate([lasting.pair, lasting.pair_numbers(own)]) if own else lasting.pair
        self.pairs = lasting.pairs

    def __len__(self) -> int:
        return len(self.lasting.rows) + len(self.own)

    def __getitem__(self, k: int) -> tuple:
        rows = self.lasting.rows
        return rows[k] if k < len(rows) else self.own[k - len(rows)]

    def passes(self) -> np.ndarray:
        """Whether each number's key passes --grep."""
        return self.passing


def _levels_of_keys(key: np.ndarray, meaning: _ChunkMeanings,
                    tally: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Each record's level number from its key's (tally: the records of each key), the level of
    each number, and which records have a level of letters (None: all; the others are no records)."""
    level = meaning.code[key]
    if meaning.code[np.flatnonzero(tally)].min(initial=0) >= 0:
        return level, meaning.names, None
    keep = level >= 0
    level[~keep] = 0
    return level, meaning.names, keep


def _each(passes: np.ndarray, of: np.ndarray, keep: np.ndarray | None) -> np.ndarray | None:
    """`keep` and whether each record passes, given whether each value of `of` (a record's) passes."""
    if passes.all():
        return keep
    return passes[of] if keep is None else keep & passes[of]


def _counted(values: np.ndarray, keep: np.ndarray | None, n: int) -> np.ndarray:
    """How many records `keep` says (None: all) have each value in range(n)."""
    if keep is None:
        return np.bincount(values, minlength=n)
    return np.bincount(np.where(keep, values, n), minlength=n + 1)[:n]


def _pairs(buckets: np.ndarray, levels: np.ndarray, n_levels: int):
    """(bucket, level, records) of each distinct pair."""
    low = int(buckets.min())
    span = int(buckets.max()) - low + 1
    if span * n_levels <= 1 << 20:
        counted = np.bincount((buckets - low) * n_levels + levels)
        at = np.flatnonzero(counted)
        return zip((at // n_levels + low).tolist(), (at % n_levels).tolist(), counted[at].tolist())
    pairs, n = np.unique(np.column_stack([buckets, levels]), axis=0, return_counts=True)
    return zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), n.tolist())


# -- adding what was found to the statistics (as LinePass.line adds one record) ---------

def _add_counts(counts: dict, items) -> None:
    for level, n in items:
        counts[level] = counts.get(level, 0) + n


def _add_range(stats: LineStats, path: str, first: int, last: int) -> None:
    if stats.first_ms is None or first < stats.first_ms:
        stats.first_ms = first
    if stats.last_ms is None or last > stats.last_ms:
        stats.last_ms = last
    span = stats.file_ranges.get(path)
    stats.file_ranges[path] = [first, last] if span is None else [min(span[0], first), max(span[1], last)]


def _add_timeline(stats: LineStats, bucket_s: int, items) -> None:
    """(level, a time in ms, records) for records of that level in that time's second."""
    for level, ms, n in items:
        bucket = stats.timeline.setdefault(ms // 1000 // bucket_s * bucket_s, {})
        bucket[level] = bucket.get(level, 0) + n


def _add_templates(stats: LineStats, path: str, items) -> None:
    """(level, template, records, file offset of the first, its content)."""
    for level, template, n, offset, content in items:
        stats.count_template(level, template, path, offset, content[:EXAMPLE_CHARS].decode("utf-8", "replace"), n)


def _add_groups(stats: LineStats, items) -> None:
    for (group, level), n in items:
        counter = stats.groups.setdefault(group, {})
        counter[level] = counter.get(level, 0) + n


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
    rest = f"[{re.escape(_MESSAGE_STRIP)}]*(?P<{_TAIL}>[^\\n]*)" if message is None else "[^\\n]*" if with_line else ""
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


def _window(analysis) -> tuple:
    return (analysis.since_ms if analysis.since_ms is not None else -float("inf"),
            analysis.until_ms if analysis.until_ms is not None else float("inf"))


def _kept(field: dict, keep) -> dict:
    """The columns of the records `keep` (an iterable of booleans, one a record) says to keep."""
    keep = list(keep)
    return {name: list(compress(column, keep)) for name, column in field.items()}
