"""The vectorised path of a format: a short program of field steps run with numpy
over every line of a chunk at once, the spec's regex as its oracle.

A program is a list of steps (field_steps.py), each moving a per-line cursor
across one field and narrowing the set of lines it is *sure* of.

A spec may give several programs (alternatives), tried in turn: they must
exclude each other (the tests check that no line fits two), and a line is sure
when one of them runs to the end. Fields are read as little-endian 64-bit words at
the cursors, tested a byte at a time with SWAR masks (no per-line Python).
Lines the program is not sure of (malformed, continuation, odd spacing, a
level longer than 8 letters) take the spec's per-line rule, so the counts are
the rule's exactly; the test suite checks that on random and mutated lines.
Lines that are surely no records (their first byte starts no match; a `fields`
program read them to their end; a `fast_exact` spec's program is not sure of
them; a `fast_no_record` program fits them) need no regex: a space or tab
first, or the spec's `fast_continuation` program, makes them continuations, and
without an own continuation rule the rest are malformed.
The steps must describe a line the regex matches, with the same level: only
built-in specs carry programs.
"""

from __future__ import annotations

import numpy as np

from loganalyser.counting.native import load
from loganalyser.counting.result import PartialResult

from .bitmaps import Bitmaps
from .field_steps import Cursor
from .native_steps import compile_program
from .swar import U64, newline_offsets, word_view

_STEPS = load("steps")  # the compiled key count, or None
KEY_SLOTS = 1 << 12  # its hash table, for up to half as many distinct keys (syslog: 1-3 digits, at most 1,110)
GUARD = 16  # lines ending this close to the buffer's end take the per-line rule (no reads past it)
_AT, _CAUSED, _BY = (U64(int.from_bytes(text, "little")) for text in (b"at ", b"Caused b", b"y:"))  # the shared rule
NO_BYTES = np.zeros(256, dtype=bool)  # the first bytes of a continuation rule a spec does not have
NO_KEY = U64((1 << 64) - 1)  # the key of a line no program is sure of (no level's key: its tag byte is 0xFF)


class FieldProgram:
    """A spec's vectorised path: counts the lines it is sure of, hands back the rest."""

    def __init__(self, alternatives: list[list[dict]], words: list[str] | None = None, exact: bool = False,
                 compiled: list | None = None, first_bytes=None, continuation: list | None = None,
                 unsure_is_no_record: bool = False, own_first=NO_BYTES, no_record: list | None = None):
        self.alternatives = alternatives
        # The steps as functions of a cursor (regex_program.py passes its own).
        self._compiled = [compiled] if compiled else [compile_program(program) for program in alternatives]
        self.words = set(words) if words else None  # level spellings (exact case) the regex surely takes
        # Exact: one program whose lines that are still read when a step needing a byte
        # meets CR or LF are surely no records (its steps are the regex's, token for token).
        self.exact = exact and len(self._compiled) == 1
        self.first_bytes = first_bytes  # table of the bytes a record can start with (regex_program.first_bytes)
        # Programs whose lines surely match the spec's own continuation rule (built-ins' fast_continuation).
        self.continuation = FieldProgram(continuation) if continuation else None
        self.unsure_is_no_record = unsure_is_no_record  # built-ins' fast_exact: a line not sure is no record
        # Programs whose lines surely are no records (built-ins' fast_no_record: shapes the program leaves, common).
        self.no_record = FieldProgram(no_record) if no_record else None
        self.own_first = own_first  # the bytes the spec's own continuation rule can start with; None: any

    def count(self, data, start: int, end: int, dialect) -> PartialResult:
        v = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
        n = v.size
        result = PartialResult(bytes=n)
        newlines = newline_offsets(v)
        k = int(np.searchsorted(newlines, n - GUARD))  # lines ending before the guard zone
        tail_from = int(newlines[k - 1]) + 1 if k else 0
        if tail_from < n:
            result.add(dialect.count_reference(v[tail_from:].tobytes()))
            result.bytes = n
        if k == 0:
            return result
        ends = newlines[:k]
        starts = np.empty_like(ends)
        starts[0] = 0
        np.add(ends[:-1], 1, out=starts[1:])
        head = v[starts]
        blank = np.flatnonzero(ends - starts <= 1)  # few: the blank lines among them
        blank = blank[(ends[blank] == starts[blank]) | (head[blank] == 13)]
        result.lines += k
        result.blank += blank.size
        words = word_view(v)
        maps = Bitmaps(v)
        sure, keys, ended = self._run(v, words, starts, ends, maps)
        sure[blank] = False
        distinct, counts = sure_key_counts(keys, sure)
        for key, n_key in zip(distinct.tolist(), counts.tolist()):
            spelling = key.to_bytes(8, "little")[: key >> 56]
            if self.words is not None and spelling.decode("ascii") not in self.words:
                sure &= keys != U64(key)  # the regex takes only its listed words: the rule decides
                continue
            name = dialect.level(spelling)
            result.counts[name] = result.counts.get(name, 0) + n_key
        sure[blank] = True
        unsure = np.flatnonzero(~sure)  # worked on alone from here: few lines, but for jul's headers
        if self.unsure_is_no_record:  # all of them
            unsure = unsure[~self.count_no_records(result, unsure, head, v, words, starts, ends, maps)]
            no_record = None
        else:
            no_record = ~self.first_bytes[head[unsure]] if self.first_bytes is not None else np.zeros(unsure.size, bool)
            if ended is not None:
                no_record |= ended[unsure]
            if self.no_record is not None:
                left = np.flatnonzero(~no_record)
                if left.size:
                    at = unsure[left]
                    no_record[left[self.no_record._run(v, words, starts[at], ends[at], maps)[0]]] = True
        if no_record is not None and no_record.any():
            settled = np.flatnonzero(no_record)
            settled = settled[self.count_no_records(result, unsure[settled], head, v, words, starts, ends, maps)]
            keep = np.ones(unsure.size, dtype=bool)
            keep[settled] = False
            unsure = unsure[keep]
        ruled = _by_the_rule(v, starts[unsure], ends[unsure], dialect)
        ruled.lines = ruled.malformed = 0  # in `lines` already; malformed is derived below
        result.add(ruled)
        result.malformed = result.lines - result.blank - result.continuation - sum(result.counts.values())
        return result

    def _run(self, v, words, starts, ends, maps: Bitmaps):
        """(sure, key) per line. Alternatives are tried in turn on the lines no
        earlier one fits: they must exclude each other (a byte where they differ),
        which `fits` lets the tests check."""
        if len(self._compiled) == 1:
            cur = self._cursor(self._compiled[0], v, words, starts, ends, self.exact, maps)
            return cur.ok, cur.key, cur.ended
        sure = np.zeros(starts.shape, dtype=bool)
        keys = np.zeros(starts.shape, dtype=np.uint64)
        left = np.arange(starts.size)
        for program in self._compiled:
            cur = self._cursor(program, v, words, starts[left], ends[left], maps=maps)
            hit = left[cur.ok]
            sure[hit] = True
            keys[hit] = cur.key[cur.ok]
            left = left[~cur.ok]
            if left.size == 0:
                break
        return sure, keys, None

    def count_no_records(self, result: PartialResult, lines, head, v, words, starts, ends, maps):
        """Counts the continuations among `lines` (indices), which surely are no records;
        returns which of them that settled. A space or tab first, or the spec's continuation
        program, makes one, as does `at ` or `Caused by:` first (read as words); the rest are
        malformed where their first byte starts no own continuation, but for `... N more`
        (the rule decides)."""
        if lines.size == 0:
            return np.zeros(0, dtype=bool)
        if self.continuation is not None:  # first: it may take most of them (jul's headers)
            continued = self.continuation._run(v, words, starts[lines], ends[lines], maps)[0]
            rest = np.flatnonzero(~continued)
        else:
            continued = np.zeros(lines.size, dtype=bool)
            rest = np.arange(lines.size)
        first_byte = head[lines[rest]]
        continued[rest[(first_byte == 32) | (first_byte == 9)]] = True
        shared = np.flatnonzero((first_byte == 97) | (first_byte == 67))
        if shared.size:
            at = starts[lines[rest[shared]]]
            first = words[at]
            caused = (first == _CAUSED) & ((words[at + 8] & U64(0xFFFF)) == _BY)
            continued[rest[shared[((first & U64(0xFFFFFF)) == _AT) | caused]]] = True
        settled = continued.copy()
        if self.own_first is not None:
            settled[rest[~self.own_first[first_byte] & (first_byte != 46)]] = True
        result.continuation += int(np.count_nonzero(continued))
        return settled

    @staticmethod
    def _cursor(program, v, words, starts, ends, exact: bool = False, maps: Bitmaps | None = None) -> Cursor:
        cur = Cursor(v, words, starts, ends, exact, maps)
        for step in program:
            step(cur)
        return cur

    def fits(self, data: bytes):
        """Per alternative, which lines of `data` (all but the last GUARD bytes' lines) it fits."""
        v = np.frombuffer(data, dtype=np.uint8)
        newlines = newline_offsets(v)
        ends = newlines[: int(np.searchsorted(newlines, v.size - GUARD))]
        starts = np.concatenate([[0], ends[:-1] + 1]) if ends.size else ends
        words = word_view(v)
        return [self._cursor(program, v, words, starts, ends).ok for program in self._compiled]


def sure_key_counts(keys, sure):
    """(distinct keys, counts) of the keys of the lines that are sure: by the compiled hash
    table (native/steps.c) where it was built and the keys are few, else by distinct_keys."""
    if _STEPS is not None:
        slot_keys, slot_counts = np.empty(KEY_SLOTS, dtype=np.uint64), np.zeros(KEY_SLOTS, dtype=np.int64)
        if _STEPS.count_keys(keys, sure, slot_keys, slot_counts):
            used = np.flatnonzero(slot_counts)
            return slot_keys[used], slot_counts[used]
    distinct, counts = distinct_keys(np.where(sure, keys, NO_KEY))
    real = distinct != NO_KEY
    return distinct[real], counts[real]


def distinct_keys(keys):
    """(distinct keys, counts), without sorting when keys are few: hashed into 256 bins,
    or 65536 when two keys share one (syslog's many PRI values), sorted only if still so."""
    for shift in (56, 48):
        slots = ((keys * U64(0x9E3779B97F4A7C15)) >> U64(shift)).view(np.int64)
        first = np.zeros(1 << (64 - shift), dtype=np.uint64)
        first[slots] = keys
        if np.array_equal(first[slots], keys):  # no two distinct keys share a bin
            counts = np.bincount(slots, minlength=first.size)
            used = np.flatnonzero(counts)
            return first[used], counts[used]
    return np.unique(keys, return_counts=True)


def _by_the_rule(v, starts, ends, dialect) -> PartialResult:
    """The lines v[starts[i]:ends[i]] counted by the spec's rule: gathered into one
    buffer (each behind a "\\n") and counted by its whole-chunk patterns."""
    if starts.size == 0:
        return PartialResult()
    sizes = ends - starts + 1  # with its "\n"
    offsets = np.cumsum(sizes) - sizes
    gather = np.repeat(starts - offsets, sizes) + np.arange(int(sizes.sum()))
    joined = b"\n" + v[gather].tobytes()
    part = PartialResult()
    dialect.count_lines_after_newlines(joined, part)
    return part
