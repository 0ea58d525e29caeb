"""The seed format's usual records of a chunk, read by numpy from the seed kernel's own
reading of its lines (fixed.py), for ChunkPass (chunks.py): their statistics by key
groups that last across chunks and files, each group's meaning (level, template,
whether it passes --grep) worked out once."""

from __future__ import annotations

import weakref

import numpy as np

from ..kernel import BLANK, CONTINUATION, classify_line
from . import fixed
from .chunk_stats import add_counts, add_groups, add_range, add_timeline, remembered, time_window
from .lines import EXAMPLE_CHARS, MESSAGE_STRIP, LinePass
from .templates import digit_blind

# dialect -> analysis -> the key groups of fixed.py's records and what each means (_Meanings), lasting
# across chunks and files: a dialect reports each spelling as one level, an analysis masks and greps alike
_LASTING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class SeedRecords:
    """Adds the records of the usual shape (see the module docstring) of the chunks of one LinePass."""

    def __init__(self, lines: LinePass):
        self.lines = lines
        self.analysis = lines.analysis
        self._key_templates: dict[bytes, tuple] = {}  # a key fixed.py numbered apart -> level, template, passes --grep

    def run(self, data: bytes, kept: dict, path, offset, year, stats, counts) -> tuple[list[bytes], list[int]]:
        """Adds the usual records of data whose lines the seed kernel read (kept: count_lines'
        `keep`); returns the other lines that may be records (their contents) and where each
        starts, for the regex."""
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
        return pieces, at

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
            since, until = time_window(a)
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
        add_counts(counts, per_level)
        if keep is not None:
            timed = timed & keep
        untimed = sum(n for _, n in per_level) - int(np.count_nonzero(timed))
        stats.untimed += untimed
        extremes = found.extremes(keep)
        if extremes is not None:
            add_range(stats, path, *extremes)
        if a.bucket_s and extremes is not None:
            if ms is None:  # runs of one minute, each in one bucket
                runs = len(found.firsts)
                table = _counted(found.run * len(names) + level, None if keep is None and not untimed else timed,
                                 runs * len(names)).reshape(runs, len(names))
                run, of = np.nonzero(table)
                add_timeline(stats, a.bucket_s, zip(map(names.__getitem__, of.tolist()),
                                                     found.minute_ms[run].tolist(), table[run, of].tolist()))
            else:
                at, of = (ms, level) if timed.all() else (ms[timed], level[timed])
                add_timeline(stats, a.bucket_s, ((names[i], b * a.bucket_s * 1000, n) for b, i, n in
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
            add_groups(stats, (((lines._group({}, path), name), n) for name, n in per_level))
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
            messages = [rest.decode("utf-8", "replace").lstrip(MESSAGE_STRIP) for _, _, rest in fields]
            templates = masker.templates(messages) if masker is not None else [None] * len(new)
            passes = [True] * len(new) if grep is None else [grep.search(m) is not None for m in messages]
            levels = [self.lines.dialect.level(spelling) if spelling.isalpha() else None for spelling, _, _ in fields]
            return list(zip(levels, templates, passes))
        key, apart = found.keys(groups)
        if len(meanings.code) != groups.count or len(meanings.code) != len(groups.meaning):
            meanings.extend(work_out(groups.keys[len(groups.meaning):]))
        known = remembered(self._key_templates, apart, work_out) if apart else {}
        return key, meanings.chunk([known[text] for text in apart])


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
