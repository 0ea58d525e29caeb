"""The steps of a field program (vectorised.py): each moves a per-line cursor across
one field, read with numpy over every line of a chunk at once, and narrows the set of
lines the program is sure of:

    {"fixed": "dddddd dddddd"}   bytes at the cursor: 'd' a digit, 'U' an upper-case and 'l' a
                                  lower-case ASCII letter, anything else itself
    {"spaces": 1}                 a run of at least N spaces (0 allowed with 0); every run step
                                  also takes [N, M]: N to M bytes
    {"blanks": 1}                 a run of at least N spaces or tabs
    {"digits": 1}                 a run of at least N digits
    {"token": 1}                  a run of at least N bytes that are not space, tab, CR or LF
    {"tokens": 3}                 N times a token and one space (steps token and literal " ")
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
    {"noneof": ":"}               the byte at the cursor is none of these (a line's end is none)
    {"after_word_end": true}      the byte after the cursor is no letter, digit or "_"

Fields are read as little-endian 64-bit words at the cursors, tested a byte at
a time with SWAR masks (swar.py), or from a chunk's stop bitmaps (bitmaps.py).
"""

from __future__ import annotations

import numpy as np

from .bitmaps import MAX_WINDOWS, Bitmaps, run_lengths, stops_of, trailing_zeros, window
from .swar import (HIGH, LOW7, U64, blanks, byte_table, class_table, digits, first_clear, letters, lower, not_equal,
                   spaces, token, upper)

# A level of k bytes read as a word: its bytes (LEVEL_MASKS[k]), tagged with k in the top byte
# (LENGTH_TAGS[k]; 8 bytes carry none), so that "WARN" and "WARN\0" are different keys.
LEVEL_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
LENGTH_TAGS = np.array([k << 56 for k in range(8)] + [0], dtype=np.uint64)
MAX_RUN_WORDS = 12  # runs (tokens, digits, spaces) longer than 96 bytes: not sure


TEMPLATE_CLASSES = {ord("d"): digits, ord("U"): upper, ord("l"): lower}
_RANGES = {digits: (0x30, 0x39), upper: (0x41, 0x5A), lower: (0x61, 0x7A)}  # the classes' bytes (swar.py)
LEVEL_CLASSES = {"letters": letters, "upper": upper, "digits": digits, "token": token}




class Cursor:
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
            rest = Cursor(self.v, self.words, self.p[longer], self.end[longer], maps=self.maps)
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

    def run_bounded(self, table, at_least: int, at_most: int) -> None:
        """`run` for a run of at most a few bytes (jul's 1-2 digit day and hour): a byte
        gather per byte it may take and one more, no words."""
        last = self.v.size - 1
        first = self.v[np.minimum(self.p, last)]
        if at_least:
            self._needs_a_byte(first)
        going = table[first]  # the run goes on at this byte
        total = going.astype(np.int64)
        for k in range(1, at_most + 1):
            going &= table[self.v[np.minimum(self.p + k, last)]]
            if k < at_most:
                total += going
        self.ok &= ~going  # a byte more than at_most
        if at_least:
            self.ok &= total >= at_least
        self.p += total

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

    def tokens(self, count: int) -> None:
        """`count` tokens each followed by one space, as steps token and literal " " in turn:
        all their stops read from one 64-bit window of the token bitmap, where they fit in it
        (the rest of the lines by those steps)."""
        if self.ended is not None:  # exact programs mark the lines that meet their end: the steps do
            self.tokens_by_steps(count)
            return
        last = self.v.size - 1
        p = np.minimum(self.p, last)
        x = window(self.maps.get(*_TOKEN_STOPS), p)
        total = np.zeros(p.size, dtype=np.int64)  # bytes taken, up to the stop now read
        good = np.ones(p.size, dtype=bool)
        for _ in range(count):
            run = trailing_zeros(x >> total.view(np.uint64))  # 64: no stop left in the window
            good &= run != 0
            total += run
            good &= self.v[np.minimum(p + total, last)] == 32
            total += 1
        beyond = np.flatnonzero(total > 64)  # a stop past the window's last bit
        if beyond.size:
            rest = Cursor(self.v, self.words, self.p[beyond], self.end[beyond], maps=self.maps)
            rest.tokens_by_steps(count)
            good[beyond] = rest.ok
            total[beyond] = rest.p - self.p[beyond]
        self.ok &= good
        self.p += total

    def tokens_by_steps(self, count: int) -> None:
        for _ in range(count):
            _TOKEN(self)
            _SPACE(self)

    def level(self, shortest: int, longest: int, kind="letters", suffix: str = "", then: bytes = b"") -> None:
        """The level: the longest run of its class, then one byte of `suffix` if there is
        one (Apache's trace1-8); its key is one word (masked, tagged with its length below 8).
        An 8-byte level's key is the whole word: its top byte is no length tag, since the
        class takes no byte 0-7 (nor 0xFF: vectorised.NO_KEY stays free). `then`: a literal that
        follows (a "literal" step fused in), read from the same word where it fits there."""
        test = LEVEL_CLASSES[kind] if isinstance(kind, str) else kind  # a name, or a class test
        if shortest == longest == 1:
            self._one_byte_level(class_table(test))
            return
        w = self.word()
        length = first_clear(test(w))
        if shortest > 0:
            self._needs_a_byte(w)
            self.ok &= length >= shortest
        if eight_byte_level(test, longest):
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
        self.key = (w & LEVEL_MASKS[length]) | LENGTH_TAGS[length]
        self.p += length
        if then:
            self._literal_after(w, length, then)

    def _literal_after(self, w, length, then: bytes) -> None:
        """The bytes `then` at the cursor, `length` bytes into the word `w` read before."""
        size = len(then)
        mask, value = U64((1 << 8 * size) - 1), U64(int.from_bytes(then, "little"))
        good = ((w >> (length.astype(np.uint64) << U64(3))) & mask) == value
        past = np.flatnonzero(length > 8 - size)  # the literal goes on past the word
        if past.size:
            good[past] = (self.words[np.minimum(self.p[past], self.limit)] & mask) == value
        self.ok &= good
        self.p += size


    def _one_byte_level(self, table) -> None:
        """A one-byte level (logcat's V/D/I/W/E): two byte gathers, no word."""
        first = self.byte()
        if self.ended is not None:
            self.ended |= self.ok & ((first == 10) | (first == 13))
        self.ok &= table[first]
        self.ok &= ~table[self.v[np.minimum(self.p + 1, self.v.size - 1)]]
        self.key = first.astype(np.uint64) | LENGTH_TAGS[1]
        self.p += 1


_LOW_AND_FF = np.array([0x0706050403020100, (1 << 64) - 1], dtype=np.uint64)  # bytes 0-7 and 0xFF


def eight_byte_level(test, longest: int) -> bool:
    """Whether a level of class `test` may have 8 bytes: where `longest` allows it and the class
    takes no byte 0-7 (a length tag) nor 0xFF (vectorised.NO_KEY), so the whole word is its key."""
    return longest >= 8 and not (test(_LOW_AND_FF) & HIGH).any()


def _bytes_step(pattern: bytes, classes: dict):
    """A step taking `pattern` at the cursor, where a byte that is a key of `classes`
    stands for any byte of that class. Digits are tested with two masked compares
    per word: the high nibble is 3, and adding 6 leaves it 3. A word with letters
    ('U', 'l') tests all its class bytes at once, each against its own range."""
    if len(pattern) == 1 and pattern[0] not in classes:
        byte = pattern[0]

        def one(cur: Cursor) -> None:
            cur.ok &= cur.byte() == byte
            cur.p += 1
        return one
    blocks = []
    for block in range(0, len(pattern), 8):
        mask = value = high = nibble = carry = 0
        tests: dict = {}  # class test -> the high bits of the bytes it must pass
        ranged = {b for b in pattern[block : block + 8] if b in classes and classes[b] in _RANGES}
        by_range = any(classes[b] is not digits for b in ranged)
        low = top = bits = 0  # per byte: 0x80 - its range's first byte, 0x7F - its last, 0x80
        for i, b in enumerate(pattern[block : block + 8]):
            at = 8 * i
            if by_range and b in ranged:
                first, last = _RANGES[classes[b]]
                low, top, bits = low | (0x80 - first) << at, top | (0x7F - last) << at, bits | 0x80 << at
            elif classes.get(b) is digits:
                mask, value, high = mask | 0xF0 << at, value | 0x30 << at, high | 0xF0 << at
                nibble, carry = nibble | 0x30 << at, carry | 0x06 << at
            elif b in classes:
                tests[classes[b]] = tests.get(classes[b], 0) | 0x80 << at
            else:
                mask, value = mask | 0xFF << at, value | b << at
        blocks.append((block, U64(mask), U64(value), U64(high), U64(nibble), U64(carry),
                       [(test, U64(bits)) for test, bits in tests.items()], (U64(low), U64(top), U64(bits))))
    size, crosses = len(pattern), 10 in pattern

    def bytes_are(cur: Cursor) -> None:
        for block, mask, value, high, nibble, carry, tests, (low, top, bits) in blocks:
            w = cur.word(block)
            good = (w & mask) == value
            if high:  # the high nibbles are 3 (above): no digit byte carries into the next
                good &= ((w + carry) & high) == nibble
            if bits:  # as swar.in_range, with a range per byte: an ASCII byte plus 0x80 carries into no other
                t = w & LOW7
                good &= ((t + low) & ~(t + top) & ~w & bits) == bits
            for test, test_bits in tests:
                good &= (test(w) & test_bits) == test_bits
            cur.ok &= good
        if crosses:
            cur.ok &= cur.p + size <= cur.end
        cur.p += size
    return bytes_are


def _byte_in_step(allowed, advance: bool):
    """The byte at the cursor is one of `allowed` (a table lookup); `advance` moves past it."""
    table = byte_table(allowed)

    def byte_in(cur: Cursor) -> None:
        cur.ok &= table[cur.byte()]
        if advance:
            cur.p += 1
    return byte_in


def _run_step(kind: str, bounds):
    """A run of at least `bounds` bytes of the class, or [at least, at most]."""
    at_least, at_most = bounds if isinstance(bounds, list) else (bounds, None)
    if at_most is not None and at_most <= SHORT_BOUND:
        table = class_table(RUNS[kind])
        return lambda cur: cur.run_bounded(table, at_least, at_most)
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

    def __call__(self, cur: Cursor) -> None:
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

    def until(cur: Cursor) -> None:
        cur.run_map(bitmap, other, at_least)
        first(cur)
    return until


RUNS = {"spaces": spaces, "blanks": blanks, "digits": digits, "token": token}
SHORT_BOUND = 2  # runs of at most this many bytes are read by byte gathers (Cursor.run_bounded)
BITMAP_RUNS = {"token", "blanks"}  # runs read from bitmaps: long ones, or classes most steps use
FEW_LINES = 512  # fewer lines than a chunk's bytes / this: a bitmap costs more than it saves
WORD_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"


_TOKEN_STOPS = stops_of("token")
_TOKEN = _run_step("token", 1)
_SPACE = _bytes_step(b" ", {})


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
    if kind == "tokens":
        return lambda cur: cur.tokens(arg)
    if kind == "noneof":  # a line's end is none of them
        return _byte_in_step(set(range(256)) - set(arg.encode()), advance=False)
    if kind == "after":  # "\n": the line ends there
        return _byte_in_step(set(arg.encode()) | {10}, advance=False)
    if kind == "after_word_end":
        return _byte_in_step(set(range(256)) - set(WORD_BYTES), advance=False)
    raise TypeError(f"unknown step {kind!r}")


def compile_program(program: list[dict]) -> list:
    """A program's steps as functions of the cursor; a level followed by a short literal
    of 2-7 bytes is one step (the literal is mostly in the word the level was read from)."""
    steps, i = [], 0
    while i < len(program):
        (kind, arg), = program[i].items()
        then = program[i + 1].get("literal", "").encode() if i + 1 < len(program) else b""
        if kind == "level" and 1 < len(then) < 8 and 10 not in then and arg[:2] != [1, 1]:  # 1 byte: a byte gather
            steps.append(lambda cur, arg=arg, then=then: cur.level(*arg, then=then))
            i += 2
            continue
        steps.append(compile_step(program[i]))
        i += 1
    return steps


STEP_KINDS = ("fixed", "literal", "oneof", *RUNS, "tokens", "until", "until1", "level", "after", "after_word_end",
              "noneof")
