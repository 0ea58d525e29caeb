"""Field steps run by the compiled interpreter (native/steps.c) instead of numpy.

Each numpy step (field_steps.py) reads one field of every line at once, in a few
passes over arrays of the chunk's lines; the interpreter does a step's work for
every line in one pass, skips the lines an earlier step failed, and reads runs and
templates 16 bytes at a time. A program's steps become rows (BYTES, PEEK, RUN,
LEVEL: steps.c) over 256-byte tables of their byte classes, and each sequence of
steps the interpreter takes becomes one call. Its results are the numpy steps' for every
line they are sure of: the same cursor, key and `ended`, and the same caps on runs
(a run as long as the numpy words or bitmaps can read is not sure either). The
numpy steps remain the fallback (no compiler, LOGANALYSER_NATIVE=0), and the
tests compare both.
"""

from __future__ import annotations

import numpy as np

from loganalyser.counting.native import load

from .bitmaps import MAX_WINDOWS, stops_of
from .field_steps import (BITMAP_RUNS, LEVEL_CLASSES, MAX_RUN_WORDS, RUNS, SHORT_BOUND, TEMPLATE_CLASSES,
                          WORD_BYTES, compile_program as numpy_program, eight_byte_level)
from .swar import byte_table, class_table

_STEPS = load("steps")
BYTES, PEEK, RUN, LEVEL = range(4)  # steps.c's rows: [op, table, and five numbers]
MAX_BYTES = 128  # bytes a BYTES row takes at most
ALL_BYTES = set(range(256))


def compile_program(program: list[dict]) -> list:
    """The program's steps as functions of the cursor: the interpreter's where it was
    built (consecutive steps in one call), numpy's for the steps it does not take."""
    if _STEPS is None:
        return numpy_program(program)
    steps, rows, tables = [], [], _Tables()
    for step in program:
        own = _rows(step, tables)
        if own is None:
            if rows:
                steps.append(_Interpreted(rows, tables))
                rows, tables = [], _Tables()
            steps += numpy_program([step])
        else:
            rows += own
            _merge_bytes(rows)
    if rows:
        steps.append(_Interpreted(rows, tables))
    return steps


def _merge_bytes(rows: list[list[int]]) -> None:
    """Joins the last rows where both are BYTES over adjacent tables (a literal after an `until`'s stop)."""
    while (len(rows) > 1 and rows[-2][0] == rows[-1][0] == BYTES and rows[-2][1] + rows[-2][2] == rows[-1][1]
           and rows[-2][2] + rows[-1][2] <= MAX_BYTES):
        rows[-2][2] += rows.pop()[2]


def _then_bytes(rows: list[list[int]]) -> list[list[int]]:
    """A run and a BYTES row of one byte after it as one row (a token and its space: one pass less)."""
    joined: list[list[int]] = []
    for row in rows:
        if joined and row[0] == BYTES and row[2] == 1 and joined[-1][0] == RUN and joined[-1][6] < 0:
            joined[-1] = [*joined[-1][:6], row[1]]
        else:
            joined.append(row)
    return joined


class _Tables:
    """The byte tables of one call, by index: run and peek tables once each, a BYTES row's in a block."""

    def __init__(self):
        self.tables: list[bytes] = []

    def index(self, table) -> int:
        data = np.asarray(table, dtype=np.uint8).tobytes()
        if data not in self.tables:
            self.tables.append(data)
        return self.tables.index(data)

    def block(self, tables: list) -> int:
        self.tables += [np.asarray(table, dtype=np.uint8).tobytes() for table in tables]
        return len(self.tables) - len(tables)


class _Interpreted:
    """Consecutive steps run in one call of the interpreter."""

    def __init__(self, rows: list[list[int]], tables: _Tables):
        rows = [_with_ranges(row, tables) if row[0] == BYTES else row for row in _then_bytes(rows)]
        self.ops = np.array(rows, dtype=np.int64)
        self.tables = np.frombuffer(b"".join(tables.tables), dtype=np.uint8)
        self.run_steps = _STEPS.run_steps

    def __call__(self, cur) -> None:
        ended = () if cur.ended is None else (cur.ended,)
        self.run_steps(cur.v, self.ops, self.tables, cur.p, cur.ok, cur.key, *ended)


def _rows(step: dict, tables: _Tables) -> list[list[int]] | None:
    """The rows of one step, or None for a step the interpreter does not take (a "\\n" in its bytes)."""
    (kind, arg), = step.items()
    if kind in ("fixed", "literal"):
        pattern = arg.encode()
        classes = TEMPLATE_CLASSES if kind == "fixed" else {}
        if 10 in pattern or len(pattern) > MAX_BYTES:
            return None
        return [_bytes([class_table(classes[b]) if b in classes else byte_table([b]) for b in pattern], tables)]
    if kind in RUNS:
        at_least, at_most = arg if isinstance(arg, list) else (arg, None)
        return [_run(~class_table(RUNS[kind]), at_least, at_most, _cap(kind, at_most), tables)]
    if kind in ("until", "until1"):
        stops = arg.encode()
        _, mask = stops_of("until", stops)
        return [_run(mask(np.arange(256, dtype=np.uint8)), 1 if kind == "until1" else 0, None, 64 * MAX_WINDOWS, tables),
                _bytes([byte_table(stops[:1])], tables)]
    if kind == "oneof":
        return None if 10 in arg.encode() else [_bytes([byte_table(arg.encode())], tables)]
    if kind == "noneof":
        return [_peek(ALL_BYTES - set(arg.encode()), tables)]
    if kind == "after":
        return [_peek(set(arg.encode()) | {10}, tables)]
    if kind == "after_word_end":
        return [_peek(ALL_BYTES - set(WORD_BYTES), tables)]
    if kind == "level":
        return [_level(*arg, tables=tables)]
    if kind == "tokens":
        token = _run(~class_table(RUNS["token"]), 1, None, _cap("token", None), tables)
        return [row for _ in range(arg) for row in (list(token), _bytes([byte_table(b" ")], tables))]
    return None


def _cap(kind: str, at_most: int | None) -> int:
    """The run length from which numpy's run step is not sure: its bitmaps' or its words' reach."""
    if at_most is not None and at_most <= SHORT_BOUND:
        return 8 * MAX_RUN_WORDS  # read byte by byte up to at_most: any cap above it
    return 64 * MAX_WINDOWS if kind in BITMAP_RUNS else 8 * MAX_RUN_WORDS


def _run(stops, at_least: int, at_most: int | None, cap: int, tables: _Tables) -> list[int]:
    return [RUN, tables.index(stops), at_least, -1 if at_most is None else at_most, cap, range_form(stops), -1]


def range_form(stops) -> int:
    """A stop table as steps.c's range form: the bytes out of [lo, hi] and up to three in it
    (a token's, digits', spaces' and most `until`s' stops), or 0 where it is not one."""
    going = np.flatnonzero(~np.asarray(stops, dtype=bool))
    if going.size == 0:
        return 0
    lo, hi = int(going[0]), int(going[-1])
    listed = [b for b in range(lo, hi + 1) if stops[b]]
    count = len(listed)
    if count > 3:
        return 0
    listed += [int(np.flatnonzero(stops)[0])] * (3 - count)  # any stop fills the rest
    return lo | hi << 8 | listed[0] << 16 | listed[1] << 24 | listed[2] << 32 | 1 << 40 | count << 44


def _bytes(classes: list, tables: _Tables) -> list[int]:
    return [BYTES, tables.block(classes), len(classes), -1, 0, 0, -1]


def _with_ranges(row: list[int], tables: _Tables) -> list[int]:
    """A BYTES row with its tables as byte ranges where each is one (steps.c's bytes_in)."""
    lows, highs = np.zeros(MAX_BYTES, dtype=np.uint8), np.full(MAX_BYTES, 255, dtype=np.uint8)
    for i in range(row[2]):
        members = np.flatnonzero(np.frombuffer(tables.tables[row[1] + i], dtype=np.uint8))
        if members.size == 0 or members[-1] - members[0] + 1 != members.size:
            return row
        lows[i], highs[i] = members[0], members[-1]
    return [*row[:3], tables.index(np.concatenate([lows, highs])), *row[4:]]


def _peek(members, tables: _Tables) -> list[int]:
    return [PEEK, tables.index(byte_table(members)), 0, 0, 0, 0, -1]


def _level(shortest: int, longest: int, kind="letters", suffix: str = "", *, tables: _Tables) -> list[int]:
    """As Cursor.level: eight bytes are a level only where the class takes no byte 0-7 nor 0xFF;
    a one-byte level takes no suffix."""
    test = LEVEL_CLASSES[kind]
    eight = eight_byte_level(test, longest)
    after = tables.index(byte_table(suffix.encode())) if suffix and (shortest, longest) != (1, 1) else -1
    return [LEVEL, tables.index(class_table(test)), shortest, longest, int(eight), after, -1]
