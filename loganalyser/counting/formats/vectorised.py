"""The vectorised path of a format: a short program of field steps run with numpy
over every line of a chunk at once, the spec's regex as its oracle.

A program is a list of steps, each moving a per-line cursor across one field
and narrowing the set of lines it is *sure* of:

    {"fixed": "dddddd dddddd"}   bytes at the cursor: 'd' a digit, 'U' an upper-case and 'l' a
                                  lower-case ASCII letter, anything else itself
    {"spaces": 1}                 a run of at least N spaces (0 allowed with 0); every run step
                                  also takes [N, M]: N to M bytes
    {"blanks": 1}                 a run of at least N spaces or tabs
    {"digits": 1}                 a run of at least N digits
    {"token": 1}                  a run of at least N bytes that are not space, tab, CR or LF
    {"until": ":]"}               a run of bytes other than these, CR and LF, then the first of them
    {"until1": ":]"}              the same with a run of at least one byte
    {"literal": " - "}            those bytes (at most 8)
    {"oneof": " T"}               one byte, any of these
    {"level": [1, 8]}             the level: a run of letters, of the given length bounds (at most
                                  8; a third item "upper" takes upper-case letters only, "digits"
                                  digits only, "token" token bytes; a fourth, bytes of which one
                                  may follow: "12345678" for Apache's trace1-8). A program
                                  without a level step reads records that carry none (NONE)
    {"after": " \\t\\r\\n"}          the byte after the cursor is one of these (or the line ends)
    {"after_word_end": true}      the byte after the cursor is no letter, digit or "_"

A spec may give several programs (alternatives), tried in turn: they must
exclude each other (the tests check that no line fits two), and a line is sure
when one of them runs to the end. Fields are read as little-endian 64-bit words at
the cursors, tested a byte at a time with SWAR masks (no per-line Python).
Lines the program is not sure of (malformed, continuation, odd spacing, a
level longer than 8 letters) take the spec's per-line rule, so the counts are
the rule's exactly; the test suite checks that on random and mutated lines.
Lines that are surely no records (their first byte starts no match; a `fields`
program read them to their end; a `fast_exact` spec's program is not sure of
them) need no regex: a space or tab first, or the spec's `fast_continuation`
program, makes them continuations, and without an own continuation rule the
rest are malformed.
The steps must describe a line the regex matches, with the same level: only
built-in specs carry programs.
"""

from __future__ import annotations

import numpy as np

from loganalyser.counting.result import PartialResult

from .bitmaps import MAX_WINDOWS, Bitmaps, run_lengths, stops_of
from .swar import (HIGH, TOP, U64, blanks, byte_table, class_table, digits, first_clear, letters, lower, not_equal,
                   spaces, token, upper)

_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_LENGTH_TAGS = np.array([k << 56 for k in range(8)] + [0], dtype=np.uint64)
GUARD = 16  # lines ending this close to the buffer's end take the per-line rule (no reads past it)
MAX_RUN_WORDS = 12  # runs (tokens, digits, spaces) longer than 96 bytes: not sure


TEMPLATE_CLASSES = {ord("d"): digits, ord("U"): upper, ord("l"): lower}
LEVEL_CLASSES = {"letters": letters, "upper": upper, "digits": digits, "token": token}


_AT, _CAUSED, _BY = (U64(int.from_bytes(text, "little")) for text in (b"at ", b"Caused b", b"y:"))  # the shared rule
NO_BYTES = np.zeros(256, dtype=bool)  # the first bytes of a continuation rule a spec does not have
NO_KEY = U64((1 << 64) - 1)  # the key of a line no program is sure of (no level's key: its tag byte is 0xFF)


class _Cursor:
    """Cursors of the lines being read and whether each line still fits the program.

    Invariant: a line that still fits has its cursor at or before its "\\n" (no
    step takes a "\\n"), so a step that reads a byte other than "\\n" there
    needs no bounds check of its own.
    """

    def __init__(self, v, words, starts, ends, exact: bool = False, maps: Bitmaps | None = None):
        self.v = v  # the bytes
        self.maps = maps or Bitmaps(v)  # the chunk's stop bitmaps (bitmaps.py)
        self.words = words  # 8-byte little-endian words at every byte offset
        self.limit = words.size - 1  # the last offset a word may be read at
        self.p = starts.copy()  # cursor per line
        self.end = ends  # the "\n" of each line
        self.ok = np.ones(starts.shape, dtype=bool)
        self.key = np.zeros(starts.shape, dtype=np.uint64)  # the level's key; 0 without a level step (NONE)
        # An exact program's lines that met their end (CR or LF) where a step needed a byte: no records.
        self.ended = np.zeros(starts.shape, dtype=bool) if exact else None

    def _needs_a_byte(self, w) -> None:
        """Marks the lines still read whose cursor is at CR or LF (`w`: the word or byte there)."""
        if self.ended is not None:
            low = w & w.dtype.type(0xFF)  # the byte at the cursor
            self.ended |= self.ok & ((low == 10) | (low == 13))

    def word(self, offset=0):
        return self.words[np.minimum(self.p + offset if offset else self.p, self.limit)]

    def byte(self):
        return self.v[np.minimum(self.p, self.v.size - 1)]  # a u8 gather: four times cheaper than a word's

    def run(self, predicate, at_least: int, at_most: int | None = None) -> None:
        """Moves over a run of bytes in the class; fails lines whose run is too short or too long."""
        w = self.word()
        if at_least:
            self._needs_a_byte(w)
        total = first_clear(predicate(w))
        open_ = np.flatnonzero(total == 8)  # lines whose run goes on past the first word
        for _ in range(MAX_RUN_WORDS - 1):
            if open_.size == 0:
                break
            step = first_clear(predicate(self.words[np.minimum(self.p[open_] + total[open_], self.limit)]))
            total[open_] += step
            open_ = open_[step == 8]
        self.ok[open_] = False
        if at_least:
            self.ok &= total >= at_least
        if at_most is not None:
            self.ok &= total <= at_most
        self.p += total

    def run_short(self, predicate, at_least: int, at_most: int | None = None) -> float:
        """`run` for runs mostly one byte long (a space between fields): two byte gathers
        settle the runs of 0 or 1 byte; the words are read only for the longer ones.
        Returns the share of longer runs."""
        table = class_table(predicate)
        last = self.v.size - 1
        first = self.v[np.minimum(self.p, last)]
        one = table[first]
        longer = np.flatnonzero(one & table[self.v[np.minimum(self.p + 1, last)]])
        total = one.astype(np.int64)
        if longer.size:
            rest = _Cursor(self.v, self.words, self.p[longer], self.end[longer], maps=self.maps)
            rest.run(predicate, 0)
            total[longer] = rest.p - self.p[longer]
            self.ok[longer[~rest.ok]] = False
        if at_least:
            self._needs_a_byte(first)
            self.ok &= total >= at_least
        if at_most is not None:
            self.ok &= total <= at_most
        self.p += total
        return longer.size / max(self.p.size, 1)

    def run_map(self, stops, predicate, at_least: int, at_most: int | None = None) -> None:
        """`run` read from the chunk's bitmap of the class's stops (bitmaps.stops_of), made
        once per chunk: for a few lines (an alternative tried on the lines left) the words'."""
        if not self.maps.has(stops[0]) and self.p.size * FEW_LINES < self.v.size:
            self.run(predicate, at_least, at_most)
            return
        p = np.minimum(self.p, self.v.size - 1)
        if at_least:
            self._needs_a_byte(self.v[p])
        total = run_lengths(self.maps.get(*stops), p)
        self.ok &= total < 64 * MAX_WINDOWS
        if at_least:
            self.ok &= total >= at_least
        if at_most is not None:
            self.ok &= total <= at_most
        self.p += total

    def level(self, shortest: int, longest: int, kind="letters", suffix: str = "") -> None:
        """The level: the longest run of its class, then one byte of `suffix` if there is
        one (Apache's trace1-8); its key is one word (masked, tagged with its length below 8).
        An 8-byte level's key is the whole word: its top byte is no length tag, since the
        class takes no byte 0-7 (nor 0xFF: NO_KEY stays free)."""
        test = LEVEL_CLASSES[kind] if isinstance(kind, str) else kind  # a name, or a class test
        if shortest == longest == 1:
            self._one_byte_level(class_table(test))
            return
        w = self.word()
        length = first_clear(test(w))
        if shortest > 0:
            self._needs_a_byte(w)
            self.ok &= length >= shortest
        if longest >= 8 and not (test(_LOW_AND_FF) & HIGH).any():
            self.ok &= length <= 8
            eight = np.flatnonzero(length == 8)  # ... if the run stops there
            if eight.size:
                after = self.words[np.minimum(self.p[eight] + 8, self.limit)]
                self.ok[eight[(test(after) & U64(0x80)) != 0]] = False
        else:
            self.ok &= length <= min(longest, 7)  # longer: the per-line rule
        if suffix:  # a class byte never is one: the run stopped before it
            length = length + byte_table(suffix.encode())[self.v[np.minimum(self.p + length, self.v.size - 1)]]
            self.ok &= length <= 8
            length = np.minimum(length, 8)
        self.key = (w & _MASKS[length]) | _LENGTH_TAGS[length]
        self.p += length


    def _one_byte_level(self, table) -> None:
        """A one-byte level (logcat's V/D/I/W/E): two byte gathers, no word."""
        first = self.byte()
        if self.ended is not None:
            self.ended |= self.ok & ((first == 10) | (first == 13))
        self.ok &= table[first]
        self.ok &= ~table[self.v[np.minimum(self.p + 1, self.v.size - 1)]]
        self.key = first.astype(np.uint64) | _LENGTH_TAGS[1]
        self.p += 1


_LOW_AND_FF = np.array([0x0706050403020100, (1 << 64) - 1], dtype=np.uint64)  # bytes 0-7 and 0xFF


def _bytes_step(pattern: bytes, classes: dict):
    """A step taking `pattern` at the cursor, where a byte that is a key of `classes`
    stands for any byte of that class. Digits are tested with two masked compares
    per word: the high nibble is 3, and adding 6 leaves it 3."""
    if len(pattern) == 1 and pattern[0] not in classes:
        byte = pattern[0]

        def one(cur: _Cursor) -> None:
            cur.ok &= cur.byte() == byte
            cur.p += 1
        return one
    blocks = []
    for block in range(0, len(pattern), 8):
        mask = value = high = nibble = carry = 0
        tests: dict = {}  # class test -> the high bits of the bytes it must pass
        for i, b in enumerate(pattern[block : block + 8]):
            at = 8 * i
            if classes.get(b) is digits:
                mask, value, high = mask | 0xF0 << at, value | 0x30 << at, high | 0xF0 << at
                nibble, carry = nibble | 0x30 << at, carry | 0x06 << at
            elif b in classes:
                tests[classes[b]] = tests.get(classes[b], 0) | 0x80 << at
            else:
                mask, value = mask | 0xFF << at, value | b << at
        blocks.append((block, U64(mask), U64(value), U64(high), U64(nibble), U64(carry),
                       [(test, U64(bits)) for test, bits in tests.items()]))
    size, crosses = len(pattern), 10 in pattern

    def bytes_are(cur: _Cursor) -> None:
        for block, mask, value, high, nibble, carry, tests in blocks:
            w = cur.word(block)
            good = (w & mask) == value
            if high:  # the high nibbles are 3 (above): no digit byte carries into the next
                good &= ((w + carry) & high) == nibble
            for test, bits in tests:
                good &= (test(w) & bits) == bits
            cur.ok &= good
        if crosses:
            cur.ok &= cur.p + size <= cur.end
        cur.p += size
    return bytes_are


def _byte_in_step(allowed, advance: bool):
    """The byte at the cursor is one of `allowed` (a table lookup); `advance` moves past it."""
    table = byte_table(allowed)

    def byte_in(cur: _Cursor) -> None:
        cur.ok &= table[cur.byte()]
        if advance:
            cur.p += 1
    return byte_in


def _run_step(kind: str, bounds):
    """A run of at least `bounds` bytes of the class, or [at least, at most]."""
    at_least, at_most = bounds if isinstance(bounds, list) else (bounds, None)
    if kind in BITMAP_RUNS:
        stops = stops_of(kind)
        return lambda cur: cur.run_map(stops, RUNS[kind], at_least, at_most)
    if kind == "spaces":
        return _ShortRun(RUNS[kind], at_least, at_most)
    return lambda cur: cur.run(RUNS[kind], at_least, at_most)


class _ShortRun:
    """A run step that reads runs of 0 or 1 byte by two byte gathers (Cursor.run_short),
    until a chunk shows that a quarter of its runs are longer: then by words."""

    def __init__(self, predicate, at_least: int, at_most: int | None):
        self.predicate, self.at_least, self.at_most = predicate, at_least, at_most
        self.short = True  # runs seen so far were mostly short

    def __call__(self, cur: _Cursor) -> None:
        if not self.short:
            cur.run(self.predicate, self.at_least, self.at_most)
        elif cur.run_short(self.predicate, self.at_least, self.at_most) > 0.25 and cur.p.size >= 1000:
            self.short = False


def _until_step(stops: bytes, at_least: int):
    """[^STOPS\\r\\n]* (or +) then STOPS's first byte."""
    bitmap = stops_of("until", stops)
    first = _bytes_step(stops[:1], {})

    def other(w):
        m = not_equal(w, 0x0D) & not_equal(w, 0x0A)
        for b in stops:
            m &= not_equal(w, b)
        return m

    def until(cur: _Cursor) -> None:
        cur.run_map(bitmap, other, at_least)
        first(cur)
    return until


RUNS = {"spaces": spaces, "blanks": blanks, "digits": digits, "token": token}
BITMAP_RUNS = {"token", "blanks"}  # runs read from bitmaps: long ones, or classes most steps use
FEW_LINES = 512  # fewer lines than a chunk's bytes / this: a bitmap costs more than it saves
_WORD_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"


def compile_step(step: dict):
    """One step of a program as a function of the cursor."""
    (kind, arg), = step.items()
    if kind == "fixed":
        return _bytes_step(arg.encode(), TEMPLATE_CLASSES)
    if kind == "literal":
        return _bytes_step(arg.encode(), {})
    if kind in RUNS:
        return _run_step(kind, arg)
    if kind in ("until", "until1"):
        return _until_step(arg.encode(), 1 if kind == "until1" else 0)
    if kind == "oneof":
        if 10 in arg.encode():
            raise TypeError("a oneof step never takes a newline")
        return _byte_in_step(arg.encode(), advance=True)
    if kind == "level":
        return lambda cur: cur.level(*arg)
    if kind == "after":  # "\n": the line ends there
        return _byte_in_step(set(arg.encode()) | {10}, advance=False)
    if kind == "after_word_end":
        return _byte_in_step(set(range(256)) - set(_WORD_BYTES), advance=False)
    raise TypeError(f"unknown step {kind!r}")


STEP_KINDS = ("fixed", "literal", "oneof", *RUNS, "until", "until1", "level", "after", "after_word_end")


class FieldProgram:
    """A spec's vectorised path: counts the lines it is sure of, hands back the rest."""

    def __init__(self, alternatives: list[list[dict]], words: list[str] | None = None, exact: bool = False,
                 compiled: list | None = None, first_bytes=None, continuation: list | None = None,
                 unsure_is_no_record: bool = False, own_first=NO_BYTES):
        self.alternatives = alternatives
        # The steps as functions of a cursor (regex_program.py passes its own).
        self._compiled = [compiled] if compiled else [[compile_step(step) for step in program] for program in alternatives]
        self.words = set(words) if words else None  # level spellings (exact case) the regex surely takes
        # Exact: one program whose lines that are still read when a step needing a byte
        # meets CR or LF are surely no records (its steps are the regex's, token for token).
        self.exact = exact and len(self._compiled) == 1
        self.first_bytes = first_bytes  # table of the bytes a record can start with (regex_program.first_bytes)
        # Programs whose lines surely match the spec's own continuation rule (built-ins' fast_continuation).
        self.continuation = FieldProgram(continuation) if continuation else None
        self.unsure_is_no_record = unsure_is_no_record  # built-ins' fast_exact: a line not sure is no record
        self.own_first = own_first  # the bytes the spec's own continuation rule can start with; None: any

    def count(self, data, start: int, end: int, dialect) -> PartialResult:
        v = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
        n = v.size
        result = PartialResult(bytes=n)
        newlines = np.flatnonzero(v == 10)
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
        length = ends - starts
        head = v[starts]
        blank = length == 0
        blank |= (length == 1) & (head == 13)
        result.lines += k
        result.blank += int(np.count_nonzero(blank))
        words = np.ndarray(shape=(n - 7,), dtype="<u8", buffer=v, strides=(1,))
        maps = Bitmaps(v)
        sure, keys, ended = self._run(v, words, starts, ends, maps)
        sure &= ~blank
        keys = np.where(sure, keys, NO_KEY)
        distinct, counts = _distinct(keys)
        for key, n_key in zip(distinct.tolist(), counts.tolist()):
            if key == NO_KEY:
                continue
            spelling = key.to_bytes(8, "little")[: key >> 56]
            if self.words is not None and spelling.decode("ascii") not in self.words:
                sure &= keys != U64(key)  # the regex takes only its listed words: the rule decides
                continue
            name = dialect.level(spelling)
            result.counts[name] = result.counts.get(name, 0) + n_key
        sure |= blank
        if self.unsure_is_no_record:
            no_record = ~sure
        else:
            no_record = ended if self.first_bytes is None else ~self.first_bytes[head]
            if ended is not None and self.first_bytes is not None:
                no_record |= ended
        if no_record is not None:
            sure |= self._no_records(result, no_record & ~sure, head, v, words, starts, ends, maps)
        unsure = np.flatnonzero(~sure)
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

    def _no_records(self, result: PartialResult, no_record, head, v, words, starts, ends, maps):
        """Counts the continuations among lines that are surely no records; returns which
        lines that settled. A space or tab first, or the spec's continuation program, makes
        one, as does `at ` or `Caused by:` first (read as words); the rest are malformed where
        their first byte starts no own continuation, but for `... N more` (the rule decides)."""
        continued = no_record & ((head == 32) | (head == 9))
        shared = np.flatnonzero(no_record & ((head == 97) | (head == 67)))
        if shared.size:
            at = starts[shared]
            first = words[at]
            caused = (first == _CAUSED) & ((words[at + 8] & U64(0xFFFF)) == _BY)
            continued[shared[((first & U64(0xFFFFFF)) == _AT) | caused]] = True
        if self.continuation is not None:
            others = np.flatnonzero(no_record & ~continued)
            if others.size:
                continued[others[self.continuation._run(v, words, starts[others], ends[others], maps)[0]]] = True
        settled = continued
        if self.own_first is not None:
            settled = settled | (no_record & ~self.own_first[head] & (head != 46))
        result.continuation += int(np.count_nonzero(continued))
        return settled

    @staticmethod
    def _cursor(program, v, words, starts, ends, exact: bool = False, maps: Bitmaps | None = None) -> _Cursor:
        cur = _Cursor(v, words, starts, ends, exact, maps)
        for step in program:
            step(cur)
        return cur

    def fits(self, data: bytes):
        """Per alternative, which lines of `data` (all but the last GUARD bytes' lines) it fits."""
        v = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(v == 10)
        ends = newlines[: int(np.searchsorted(newlines, v.size - GUARD))]
        starts = np.concatenate([[0], ends[:-1] + 1]) if ends.size else ends
        words = np.ndarray(shape=(v.size - 7,), dtype="<u8", buffer=v, strides=(1,))
        return [self._cursor(program, v, words, starts, ends).ok for program in self._compiled]


def _distinct(keys):
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
