"""A vectorised program made from a user's regex, where the regex is simple enough.

A user's spec carries no hand-written field program (nothing could prove it),
but many user regexes are a plain sequence of fields: literals, one-byte
classes, greedy runs of a class, the level group as one run, and one-byte
lookaheads. Such a regex is compiled here into the steps of field_steps.py,
each one exactly its item:

* a run takes the *longest* run of its class (a SWAR test exact for every byte
  value), as the greedy regex tries first; since the regex returns its first
  path that matches, a line on which every step succeeds is a match of the
  regex with the same level;
* a line on which a step fails is only *unsure* (the regex might backtrack to a
  match): it takes the per-line rule, as in every field program.

Anything else (alternation, lazy or bounded runs, flags, anchors, other
lookarounds, a class the SWAR tests cannot state exactly) gives no program:
the spec then keeps the whole-chunk regex path.
"""

from __future__ import annotations

try:  # Python 3.11+
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

import re
from functools import lru_cache

import numpy as np

from .swar import HIGH, digits, in_range, not_equal
from .field_steps import _byte_in_step, _bytes_step

C = sre_constants
MAX_UNROLL = 32  # a fixed repeat ({n}) is unrolled into n one-byte items up to this n
MAX_NOT_EQUAL = 6  # a class is tested as "none of these bytes" when it lacks at most this many
MAX_RANGES = 4  # ... or as "in one of these ASCII ranges"
_CATEGORIES = {  # bytes patterns: ASCII meanings
    "CATEGORY_DIGIT": set(range(0x30, 0x3A)),
    "CATEGORY_NOT_DIGIT": set(range(256)) - set(range(0x30, 0x3A)),
    "CATEGORY_SPACE": set(b" \t\n\r\x0b\x0c"),
    "CATEGORY_NOT_SPACE": set(range(256)) - set(b" \t\n\r\x0b\x0c"),
    "CATEGORY_WORD": set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"),
    "CATEGORY_NOT_WORD": set(range(256)) - set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"),
}
_DIGITS = frozenset(range(0x30, 0x3A))


class _NoProgram(Exception):
    """The regex has an item no step states exactly."""


def program_of(regex: str):
    """The compiled steps (field_steps.py's) that read exactly what `regex` reads, or None."""
    try:
        parsed = sre_parse.parse(regex.encode("utf-8"))
        level_group = re.compile(regex.encode("utf-8")).groupindex["level"]
        if parsed.state.flags & (re.IGNORECASE | re.LOCALE):
            return None
        items = list(parsed)
        if items and items[0][0] is C.AT and items[0][1] is C.AT_BEGINNING:
            items = items[1:]
        builder = _Builder(level_group)
        builder.sequence(items)
        return builder.finish()
    except (_NoProgram, re.error, UnicodeEncodeError, KeyError, RecursionError):
        return None


class _Builder:
    """Turns a flat sequence of regex items into steps; one-byte items gather into fixed fields."""

    def __init__(self, level_group: int):
        self.level_group = level_group
        self.steps: list = []
        self.fixed: list = []  # pending one-byte items: the set of bytes each takes
        self.has_level = False

    def sequence(self, items) -> None:
        for op, arg in items:
            self.item(op, arg)

    def item(self, op, arg) -> None:
        if op in (C.LITERAL, C.IN, C.NOT_LITERAL):
            self.fixed.append(_byte_set(op, arg))
        elif op is C.SUBPATTERN:
            group, add_flags, del_flags, sub = arg
            if add_flags or del_flags:
                raise _NoProgram
            if group == self.level_group:
                self.level(list(sub))
            else:
                self.sequence(sub)
        elif op is C.MAX_REPEAT:
            low, high, sub = arg
            sub = list(sub)
            if low == high and low <= MAX_UNROLL:
                for _ in range(low):
                    self.sequence(sub)
            elif high is C.MAXREPEAT and len(sub) == 1 and sub[0][0] in (C.LITERAL, C.IN, C.NOT_LITERAL):
                predicate = _predicate(_byte_set(*sub[0]))
                self.flush()
                self.steps.append(lambda cur, p=predicate, n=low: cur.run(p, n))
            else:
                raise _NoProgram
        elif op in (C.ASSERT, C.ASSERT_NOT):
            direction, sub = arg
            sub = list(sub)
            if direction != 1 or len(sub) != 1 or sub[0][0] not in (C.LITERAL, C.IN, C.NOT_LITERAL):
                raise _NoProgram
            taken = _byte_set(*sub[0])
            self.flush()  # the byte at the cursor is (not) one the class takes; "\n": the content's end
            self.steps.append(_byte_in_step(taken if op is C.ASSERT else set(range(256)) - taken, advance=False))
        else:
            raise _NoProgram

    def level(self, sub) -> None:
        if self.has_level or len(sub) != 1:
            raise _NoProgram
        op, arg = sub[0]
        if op in (C.LITERAL, C.IN, C.NOT_LITERAL):
            low, high, taken = 1, 1, _byte_set(op, arg)
        elif op is C.MAX_REPEAT and len(arg[2]) == 1 and arg[2][0][0] in (C.LITERAL, C.IN, C.NOT_LITERAL) and arg[0] >= 1:
            low, high, taken = arg[0], arg[1], _byte_set(*arg[2][0])
        else:
            raise _NoProgram
        predicate = _predicate(taken)
        self.flush()
        self.has_level = True
        self.steps.append(lambda cur: cur.level(low, high, predicate))

    def flush(self) -> None:
        """The pending one-byte items as fixed steps: literals and digits by masked compares,
        other classes by SWAR tests, or a table lookup where no SWAR test states the class."""
        literals = {next(iter(s)) for s in self.fixed if len(s) == 1}
        placeholders = iter(b for b in range(255, -1, -1) if b not in literals)
        pattern, classes = bytearray(), {}
        for taken in self.fixed:
            if len(taken) == 1:
                pattern.append(next(iter(taken)))
                continue
            try:
                test = digits if taken == _DIGITS else _predicate(taken)
            except _NoProgram:
                if pattern:
                    self.steps.append(_bytes_step(bytes(pattern), classes))
                pattern, classes = bytearray(), {}
                self.steps.append(_byte_in_step(taken, advance=True))
                continue
            mark = next(placeholders)
            classes[mark] = test
            pattern.append(mark)
        if pattern:
            self.steps.append(_bytes_step(bytes(pattern), classes))
        self.fixed = []

    def finish(self):
        self.flush()
        if not self.has_level or not self.steps:
            raise _NoProgram
        return self.steps


def _byte_set(op, arg, lenient: bool = False) -> frozenset:
    """The bytes a one-byte item takes; none of them may be CR or LF (a field never holds
    one) unless `lenient`."""
    if op is C.LITERAL:
        taken = {arg}
    elif op is C.NOT_LITERAL:
        taken = set(range(256)) - {arg}
    else:
        taken, negate = set(), False
        for kind, value in arg:
            if kind is C.NEGATE:
                negate = True
            elif kind is C.LITERAL:
                taken.add(value)
            elif kind is C.RANGE:
                taken.update(range(value[0], value[1] + 1))
            elif kind is C.CATEGORY and str(value) in _CATEGORIES:
                taken |= _CATEGORIES[str(value)]
            else:
                raise _NoProgram
        if negate:
            taken = set(range(256)) - taken
    if not lenient and (10 in taken or 13 in taken or not taken):
        raise _NoProgram
    return frozenset(taken)


@lru_cache(maxsize=None)
def _predicate(taken: frozenset):
    """A SWAR test, exact for every byte value: the high bit of each byte in `taken`."""
    missing = sorted(set(range(256)) - taken)
    if len(missing) <= MAX_NOT_EQUAL:
        def none_of(w):
            m = HIGH
            for b in missing:
                m = m & not_equal(w, b)
            return m
        return none_of
    if max(taken) >= 0x80:
        raise _NoProgram
    ranges = _ranges(sorted(taken))
    if len(ranges) > MAX_RANGES:
        raise _NoProgram

    def in_ranges(w):
        m = in_range(w, *ranges[0])
        for lo, hi in ranges[1:]:
            m = m | in_range(w, lo, hi)
        return m
    return in_ranges


def _ranges(values: list) -> list:
    out: list = []
    for b in values:
        if out and out[-1][1] == b - 1:
            out[-1] = (out[-1][0], b)
        else:
            out.append((b, b))
    return out



def first_bytes(regex: str):
    """The bytes a match of `regex` can start with (a 256-entry table), or None if it
    could be any byte or the regex can match nothing. A line whose first byte is not
    in the table is surely no record."""
    try:
        parsed = sre_parse.parse(regex.encode("utf-8"))
        if parsed.state.flags & (re.IGNORECASE | re.LOCALE):
            return None
        taken, empty = _first(list(parsed))
    except (_NoProgram, re.error, UnicodeEncodeError, RecursionError):
        return None
    if empty:
        return None
    table = np.zeros(256, dtype=bool)
    table[sorted(taken)] = True
    return table


def _first(items) -> tuple:
    """(bytes the sequence can start with, whether it can match the empty string)."""
    out: set = set()
    for op, arg in items:
        if op in (C.LITERAL, C.IN, C.NOT_LITERAL):
            taken, empty = _byte_set(op, arg, lenient=True), False
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            taken, empty = _first(list(arg[2]))
            empty = empty or arg[0] == 0
        elif op is C.SUBPATTERN:
            if arg[1] or arg[2]:
                raise _NoProgram
            taken, empty = _first(list(arg[3]))
        elif op is C.BRANCH:
            taken, empty = set(), False
            for branch in arg[1]:
                t, e = _first(list(branch))
                taken |= t
                empty = empty or e
        elif op in (C.ASSERT, C.ASSERT_NOT, C.AT):
            taken, empty = set(), True  # consumes nothing (a superset is safe)
        else:
            raise _NoProgram
        out |= taken
        if not empty:
            return out, False
    return out, True
