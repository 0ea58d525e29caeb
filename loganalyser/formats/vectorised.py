"""The vectorised path of a format: a short program of field steps run with numpy
over every line of a chunk at once, the spec's regex as its oracle.

A program is a list of steps, each moving a per-line cursor across one field
and narrowing the set of lines it is *sure* of:

    {"fixed": "dddddd dddddd"}   bytes at the cursor: 'd' a digit, 'U' an upper-case and 'l' a
                                  lower-case ASCII letter, anything else itself
    {"spaces": 1}                 a run of at least N spaces (0 allowed with 0)
    {"digits": 1}                 a run of at least N digits
    {"token": 1}                  a run of at least N bytes that are not space, tab, CR or LF
    {"until": "]"}                a run of bytes other than that byte, CR and LF, then that byte
    {"literal": " - "}            those bytes (at most 8)
    {"level": [1, 8]}             the level: a run of letters, of the given length bounds
    {"after": " \\t\\r\\n"}          the byte after the cursor is one of these (or the line ends)
    {"after_word_end": true}      the byte after the cursor is no letter, digit or "_"

A spec may give several programs (alternatives): a line is sure when exactly
one of them runs to the end. Fields are read as little-endian 64-bit words at
the cursors, tested a byte at a time with SWAR masks (no per-line Python).
Lines the program is not sure of (malformed, continuation, odd spacing, a
level longer than 8 letters) take the spec's per-line rule, so the counts are
the rule's exactly; the test suite checks that on random and mutated lines.
The steps must describe a line the regex matches, with the same level: only
built-in specs carry programs.
"""

from __future__ import annotations

import numpy as np

from ..result import PartialResult

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


def _token(w):  # not space, tab, CR or LF
    return _not_equal(w, 0x20) & _not_equal(w, 0x09) & _not_equal(w, 0x0D) & _not_equal(w, 0x0A)


def _upper(w):
    return _in_range(w, 0x41, 0x5A)


def _lower(w):
    return _in_range(w, 0x61, 0x7A)


TEMPLATE_CLASSES = {ord("d"): _digits, ord("U"): _upper, ord("l"): _lower}


def _word_bytes(w):  # [A-Za-z0-9_]
    return _letters(w) | _digits(w) | (~_not_equal(w, 0x5F) & HIGH)


def _first_clear(m):
    """Index (0-8) of the first byte whose high bit is clear in `m`."""
    clear = ~m & HIGH
    low = clear & (~clear + U64(1))
    index = (np.frexp(low.astype(np.float64))[1] - 1) // 8
    return np.where(clear == 0, 8, index)


class _Cursor:
    """Cursors of the lines being read and whether each line still fits the program."""

    def __init__(self, words, limit: int, starts, ends):
        self.words = words  # 8-byte little-endian words at every byte offset
        self.limit = limit  # the last offset a word may be read at
        self.p = starts.copy()  # cursor per line
        self.end = ends  # the "\n" of each line
        self.ok = np.ones(starts.shape, dtype=bool)
        self.level_at = None
        self.level_len = None

    def word(self, offset=0):
        return self.words[np.minimum(self.p + offset, self.limit)]

    def run(self, predicate, at_least: int) -> None:
        """Moves over a run of bytes in the class; fails lines whose run is too short or too long."""
        total = np.zeros_like(self.p)
        open_ = np.arange(self.p.size)  # lines whose run has not ended yet
        for _ in range(MAX_RUN_WORDS):
            w = self.words[np.minimum(self.p[open_] + total[open_], self.limit)]
            step = _first_clear(predicate(w))
            total[open_] += step
            open_ = open_[step == 8]
            if open_.size == 0:
                break
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

    def level(self, shortest: int, longest: int) -> None:
        w = self.word()
        length = _first_clear(_letters(w))
        self.ok &= (length >= shortest) & (length <= min(longest, 7))  # 8 or more: the per-line rule
        self.level_at, self.level_len = self.p.copy(), np.minimum(length, 8)
        self.p += length

    def next_byte_in(self, allowed: bytes) -> None:
        w = self.word()
        hit = np.zeros(w.shape, dtype=bool)
        for b in set(allowed) | {0x0A}:  # the line's end ("\n") always ends a field
            hit |= (_not_equal(w, b) & U64(0x80)) == 0
        self.ok &= hit & (self.p <= self.end)

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
    elif kind == "until":
        stop = ord(arg)
        cur.run(lambda w: _not_equal(w, stop) & _not_equal(w, 0x0D) & _not_equal(w, 0x0A), 0)
        cur.bytes_are(arg.encode())
    elif kind == "level":
        cur.level(*arg)
    elif kind == "after":
        cur.next_byte_in(arg.encode())
    elif kind == "after_word_end":
        cur.word_ends()
    else:
        raise TypeError(f"unknown step {kind!r}")


STEP_KINDS = ("fixed", "literal", "spaces", "digits", "token", "until", "level", "after", "after_word_end")


class FieldProgram:
    """A spec's vectorised path: counts the lines it is sure of, hands back the rest."""

    def __init__(self, alternatives: list[list[dict]], words: list[str] | None = None):
        self.alternatives = alternatives
        self.words = {w.upper() for w in words} if words else None  # the only level spellings the regex takes
        first = [alt[0] for alt in alternatives]
        # A line starting with a space or tab can be continuation only if no program can start there.
        self.never_indented = all(("fixed" in s and not s["fixed"][:1].isspace()) or "token" in s or "digits" in s
                                  or "level" in s for s in first)

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
        distinct, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        rejected = np.zeros(distinct.size, dtype=bool)
        for i, (key, n_key) in enumerate(zip(distinct.tolist(), counts.tolist())):
            size = key >> 56
            spelling = key.to_bytes(8, "little")[:size]
            if self.words is not None and spelling.decode("ascii").upper() not in self.words:
                rejected[i] = True  # the regex takes only its listed words: the rule decides
                continue
            name = dialect.level(spelling)
            result.counts[name] = result.counts.get(name, 0) + n_key
        unsure = todo[~sure]
        if rejected.any():
            unsure = np.concatenate([unsure, todo[sure][rejected[inverse]]])
        if self.never_indented:
            indented = (head[unsure] == 32) | (head[unsure] == 9)
            result.continuation += int(np.count_nonzero(indented))
            unsure = unsure[~indented]
        for i in unsure.tolist():  # few: malformed lines, continuations, odd spacing
            level = dialect.classify(v[starts[i] : ends[i]].tobytes())
            _add(result, level)
        result.malformed = result.lines - result.blank - result.continuation - sum(result.counts.values())
        return result

    def _run(self, words, limit: int, starts, ends):
        """(sure, level_at, level_len) per line: sure where exactly one alternative fits."""
        fits = np.zeros(starts.shape, dtype=np.int8)
        level_at = np.zeros_like(starts)
        level_len = np.zeros_like(starts)
        for program in self.alternatives:
            cur = _Cursor(words, limit, starts, ends)
            for step in program:
                _run_step(cur, step)
            fits += cur.ok
            level_at = np.where(cur.ok, cur.level_at, level_at)
            level_len = np.where(cur.ok, cur.level_len, level_len)
        return fits == 1, level_at, level_len


def _add(result: PartialResult, level) -> None:
    from .engine import BLANK, CONTINUATION

    if level is None:
        return  # malformed: derived at the end
    if level == BLANK:
        result.blank += 1
    elif level == CONTINUATION:
        result.continuation += 1
    else:
        result.counts[level] = result.counts.get(level, 0) + 1
