"""The vectorised path of a format: a short program of field steps run with numpy
over every line of a chunk at once, the spec's regex as its oracle.

A program is a list of steps, each moving a per-line cursor across one field
and narrowing the set of lines it is *sure* of:

    {"fixed": "dddddd dddddd"}   bytes at the cursor: 'd' a digit, 'U' an upper-case and 'l' a
                                  lower-case ASCII letter, anything else itself
    {"spaces": 1}                 a run of at least N spaces (0 allowed with 0)
    {"digits": 1}                 a run of at least N digits
    {"token": 1}                  a run of at least N bytes that are not space, tab, CR or LF
    {"until": ":]"}               a run of bytes other than these, CR and LF, then the first of them
    {"until1": ":]"}              the same with a run of at least one byte
    {"literal": " - "}            those bytes (at most 8)
    {"oneof": " T"}               one byte, any of these
    {"level": [1, 7]}             the level: a run of letters, of the given length bounds (at most
                                  7; a third item "upper" takes upper-case letters only, "digits"
                                  digits only). A program without a level step reads records
                                  that carry none (NONE)
    {"after": " \\t\\r\\n"}          the byte after the cursor is one of these (or the line ends)
    {"after_word_end": true}      the byte after the cursor is no letter, digit or "_"

A spec may give several programs (alternatives), tried in turn: they must
exclude each other (the tests check that no line fits two), and a line is sure
when one of them runs to the end. Fields are read as little-endian 64-bit words at
the cursors, tested a byte at a time with SWAR masks (no per-line Python).
Lines the program is not sure of (malformed, continuation, odd spacing, a
level longer than 8 letters) take the spec's per-line rule, so the counts are
the rule's exactly; the test suite checks that on random and mutated lines.
The steps must describe a line the regex matches, with the same level: only
built-in specs carry programs.
"""

from __future__ import annotations

import numpy as np

from loganalyser.counting.result import PartialResult

U64 = np.uint64
ONES = U64(0x0101010101010101)
HIGH = U64(0x8080808080808080)
LOW7 = U64(0x7F7F7F7F7F7F7F7F)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_LENGTH_TAGS = np.array([k << 56 for k in range(8)] + [0], dtype=np.uint64)
GUARD = 16  # lines ending this close to the buffer's end take the per-line rule (no reads past it)
MAX_RUN_WORDS = 12  # runs (tokens, digits, spaces) longer than 96 bytes: not sure


def _splat(byte: int) -> np.uint64:
    return U64(byte * 0x0101010101010101)


def _not_equal(w, byte: int):
    """High bit of each byte set where that byte differs from `byte` (exact per byte)."""
    x = w ^ _splat(byte)
    return (((x & LOW7) + LOW7) | x) & HIGH


def _in_range(w, lo: int, hi: int):
    """High bit set where lo <= byte <= hi (ASCII bytes; lo, hi < 0x80)."""
    t = w & LOW7
    return ((t + _splat(0x80 - lo)) & ~(t + _splat(0x7F - hi)) & ~w) & HIGH


def _digits(w):
    return _in_range(w, 0x30, 0x39)


def _letters(w):
    return _in_range(w | _splat(0x20), 0x61, 0x7A)


def _spaces(w):
    return ~_not_equal(w, 0x20) & HIGH


def _token(w):
    """Bytes above space (and non-ASCII): a token's bytes. The regex's tokens are
    [^ \\t\\r\\n]+, which also take other control bytes: a run stopped early at one
    leaves the line to the rule, since no step after a token takes a control byte."""
    return _in_range(w, 0x21, 0x7F) | (w & HIGH)


def _upper(w):
    return _in_range(w, 0x41, 0x5A)


def _lower(w):
    return _in_range(w, 0x61, 0x7A)


TEMPLATE_CLASSES = {ord("d"): _digits, ord("U"): _upper, ord("l"): _lower}


def _word_bytes(w):  # [A-Za-z0-9_]
    return _letters(w) | _digits(w) | (~_not_equal(w, 0x5F) & HIGH)


_PACK = U64(0x0102040810204080)  # gathers the bytes' high bits into the top byte
_FIRST_CLEAR = np.array([next((i for i in range(8) if not bits >> i & 1), 8) for bits in range(256)], dtype=np.int64)


def _first_clear(m):
    """Index (0-8) of the first byte whose high bit is clear in `m`."""
    return _FIRST_CLEAR[(((m >> U64(7)) & ONES) * _PACK) >> U64(56)]


class _Cursor:
    """Cursors of the lines being read and whether each line still fits the program."""

    def __init__(self, words, limit: int, starts, ends):
        self.words = words  # 8-byte little-endian words at every byte offset
        self.limit = limit  # the last offset a word may be read at
        self.p = starts.copy()  # cursor per line
        self.end = ends  # the "\n" of each line
        self.ok = np.ones(starts.shape, dtype=bool)
        self.level_at = starts  # a program without a level step: an empty spelling (NONE)
        self.level_len = np.zeros_like(starts)

    def word(self, offset=0):
        return self.words[np.minimum(self.p + offset, self.limit)]

    def run(self, predicate, at_least: int) -> None:
        """Moves over a run of bytes in the class; fails lines whose run is too short or too long."""
        total = _first_clear(predicate(self.word()))
        open_ = np.flatnonzero(total == 8)  # lines whose run goes on past the first word
        for _ in range(MAX_RUN_WORDS - 1):
            if open_.size == 0:
                break
            step = _first_clear(predicate(self.words[np.minimum(self.p[open_] + total[open_], self.limit)]))
            total[open_] += step
            open_ = open_[step == 8]
        self.ok[open_] = False
        self.ok &= total >= at_least
        self.p += total

    def bytes_are(self, pattern: bytes, classes: dict | None = None) -> None:
        """The bytes at the cursor are `pattern`, where a byte that is a key of `classes`
        stands for any byte of that class."""
        classes = classes or {}
        for block in range(0, len(pattern), 8):
            part = pattern[block : block + 8]
            lit_mask = lit_value = 0
            wanted: dict = {}  # class test -> the high bits of the bytes it must pass
            for i, b in enumerate(part):
                if b in classes:
                    wanted[classes[b]] = wanted.get(classes[b], 0) | 0x80 << (8 * i)
                else:
                    lit_mask |= 0xFF << (8 * i)
                    lit_value |= b << (8 * i)
            w = self.word(block)
            good = (w & U64(lit_mask)) == U64(lit_value)
            for test, bits in wanted.items():
                good &= (test(w) & U64(bits)) == U64(bits)
            self.ok &= good
        self.ok &= self.p + len(pattern) <= self.end
        self.p += len(pattern)

    def level(self, shortest: int, longest: int, kind: str = "letters") -> None:
        w = self.word()
        length = _first_clear({"letters": _letters, "upper": _upper, "digits": _digits}[kind](w))
        self.ok &= (length >= shortest) & (length <= min(longest, 7))  # 8 or more: the per-line rule
        self.level_at, self.level_len = self.p.copy(), np.minimum(length, 8)
        self.p += length

    def next_byte_in(self, allowed: bytes, line_end: bool = True) -> None:
        """The byte at the cursor is one of `allowed` (or, with `line_end`, the line ends there)."""
        w = self.word()
        hit = np.zeros(w.shape, dtype=bool)
        for b in set(allowed) | ({0x0A} if line_end else set()):  # "\n": the line's end
            hit |= (_not_equal(w, b) & U64(0x80)) == 0
        self.ok &= hit & (self.p <= self.end if line_end else self.p < self.end)

    def word_ends(self) -> None:
        self.ok &= ((_word_bytes(self.word()) & U64(0x80)) == 0) & (self.p <= self.end)


def _run_step(cur: _Cursor, step: dict) -> None:
    (kind, arg), = step.items()
    if kind == "fixed":
        cur.bytes_are(arg.encode(), TEMPLATE_CLASSES)
    elif kind == "literal":
        cur.bytes_are(arg.encode())
    elif kind == "spaces":
        cur.run(_spaces, arg)
    elif kind == "digits":
        cur.run(_digits, arg)
    elif kind == "token":
        cur.run(_token, arg)
    elif kind in ("until", "until1"):  # [^SET\r\n]* (or +) then SET's first byte
        def other(w):
            m = _not_equal(w, 0x0D) & _not_equal(w, 0x0A)
            for b in arg.encode():
                m &= _not_equal(w, b)
            return m

        cur.run(other, 1 if kind == "until1" else 0)
        cur.bytes_are(arg[0].encode())
    elif kind == "oneof":
        cur.next_byte_in(arg.encode(), line_end=False)
        cur.p += 1
    elif kind == "level":
        cur.level(*arg)
    elif kind == "after":
        cur.next_byte_in(arg.encode())
    elif kind == "after_word_end":
        cur.word_ends()
    else:
        raise TypeError(f"unknown step {kind!r}")


STEP_KINDS = ("fixed", "literal", "oneof", "spaces", "digits", "token", "until", "until1", "level", "after",
              "after_word_end")


class FieldProgram:
    """A spec's vectorised path: counts the lines it is sure of, hands back the rest."""

    def __init__(self, alternatives: list[list[dict]], words: list[str] | None = None):
        self.alternatives = alternatives
        self.words = set(words) if words else None  # level spellings (exact case) the regex surely takes

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
        blank = (length == 0) | ((length == 1) & (head == 13))
        result.lines += k
        result.blank += int(np.count_nonzero(blank))
        todo = np.flatnonzero(~blank)
        words = np.ndarray(shape=(n - 7,), dtype="<u8", buffer=v, strides=(1,))
        sure, level_at, level_len = self._run(words, n - 8, starts[todo], ends[todo])
        keys = (words[level_at[sure]] & _MASKS[level_len[sure]]) | _LENGTH_TAGS[level_len[sure]]
        distinct, slot, counts = _distinct(keys)
        rejected = np.zeros(distinct.size, dtype=bool)
        for i, (key, n_key) in enumerate(zip(distinct.tolist(), counts.tolist())):
            spelling = key.to_bytes(8, "little")[: key >> 56]
            if self.words is not None and spelling.decode("ascii") not in self.words:
                rejected[i] = True  # the regex takes only its listed words: the rule decides
                continue
            name = dialect.level(spelling)
            result.counts[name] = result.counts.get(name, 0) + n_key
        unsure = todo[~sure]
        if rejected.any():
            unsure = np.sort(np.concatenate([unsure, todo[sure][rejected[slot]]]))
        ruled = _by_the_rule(v, starts[unsure], ends[unsure], dialect)
        ruled.lines = ruled.malformed = 0  # in `lines` already; malformed is derived below
        result.add(ruled)
        result.malformed = result.lines - result.blank - result.continuation - sum(result.counts.values())
        return result

    def _run(self, words, limit: int, starts, ends):
        """(sure, level_at, level_len) per line. Alternatives are tried in turn on the
        lines no earlier one fits: they must exclude each other (a byte where they
        differ), which `fits` lets the tests check."""
        sure = np.zeros(starts.shape, dtype=bool)
        level_at = np.zeros_like(starts)
        level_len = np.zeros_like(starts)
        left = np.arange(starts.size)
        for program in self.alternatives:
            cur = self._cursor(program, words, limit, starts[left], ends[left])
            hit = left[cur.ok]
            sure[hit] = True
            level_at[hit] = cur.level_at[cur.ok]
            level_len[hit] = cur.level_len[cur.ok]
            left = left[~cur.ok]
            if left.size == 0:
                break
        return sure, level_at, level_len

    @staticmethod
    def _cursor(program, words, limit: int, starts, ends) -> _Cursor:
        cur = _Cursor(words, limit, starts, ends)
        for step in program:
            _run_step(cur, step)
        return cur

    def fits(self, data: bytes):
        """Per alternative, which lines of `data` (all but the last GUARD bytes' lines) it fits."""
        v = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(v == 10)
        ends = newlines[: int(np.searchsorted(newlines, v.size - GUARD))]
        starts = np.concatenate([[0], ends[:-1] + 1]) if ends.size else ends
        words = np.ndarray(shape=(v.size - 7,), dtype="<u8", buffer=v, strides=(1,))
        return [self._cursor(program, words, v.size - 8, starts, ends).ok for program in self.alternatives]


def _distinct(keys):
    """(distinct keys, each key's slot in them, counts), without sorting when keys are few."""
    slots = ((keys * U64(0x9E3779B97F4A7C15)) >> U64(56)).astype(np.intp)  # 256 hash bins
    first = np.zeros(256, dtype=np.uint64)
    first[slots] = keys
    if np.array_equal(first[slots], keys):  # no two distinct keys share a bin
        counts = np.bincount(slots, minlength=256)
        used = np.flatnonzero(counts)
        where = np.zeros(256, dtype=np.intp)
        where[used] = np.arange(used.size)
        return first[used], where[slots], counts[used]
    distinct, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return distinct, inverse, counts


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
