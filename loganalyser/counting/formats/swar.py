"""Byte classes tested eight bytes at a time (SWAR) in 64-bit words, for the
field programs (field_steps.py) and the programs made from regexes (regex_program.py).

A class test takes an array of little-endian words and returns the high bit of
each byte that is in the class, exactly, for every byte value; `first_clear`
turns that into the length of the run at the start of each word.
"""

from __future__ import annotations

import numpy as np

from loganalyser.counting.native import load

U64 = np.uint64
HIGH = U64(0x8080808080808080)
LOW7 = U64(0x7F7F7F7F7F7F7F7F)


def word_view(v: np.ndarray) -> np.ndarray:
    """The little-endian 64-bit word at every byte offset of `v` (at least 8 bytes), without a copy."""
    return np.ndarray(shape=(v.size - 7,), dtype="<u8", buffer=v, strides=(1,))


def splat(byte: int) -> np.uint64:
    return U64(byte * 0x0101010101010101)


def not_equal(w, byte: int):
    """High bit of each byte set where that byte differs from `byte` (exact per byte)."""
    x = w ^ splat(byte)
    return (((x & LOW7) + LOW7) | x) & HIGH


def in_range(w, lo: int, hi: int):
    """High bit set where lo <= byte <= hi (ASCII bytes; lo, hi < 0x80)."""
    t = w & LOW7
    return ((t + splat(0x80 - lo)) & ~(t + splat(0x7F - hi)) & ~w) & HIGH


def digits(w):
    return in_range(w, 0x30, 0x39)


def letters(w):
    return in_range(w | splat(0x20), 0x61, 0x7A)


def spaces(w):
    return ~not_equal(w, 0x20) & HIGH


def blanks(w):
    return (~not_equal(w, 0x20) | ~not_equal(w, 0x09)) & HIGH


def token(w):
    """Bytes above space (and non-ASCII): a token's bytes. The regex's tokens are
    [^ \\t\\r\\n]+, which also take other control bytes: a run stopped early at one
    leaves the line to the rule, since no step after a token takes a control byte."""
    return in_range(w, 0x21, 0x7F) | (w & HIGH)


def upper(w):
    return in_range(w, 0x41, 0x5A)


def lower(w):
    return in_range(w, 0x61, 0x7A)


_PACK = U64(0x0102040810204080)  # gathers the bytes' high bits into the top byte
_FIRST_CLEAR = np.array([next((i for i in range(8) if not bits >> i & 1), 8) for bits in range(256)], dtype=np.int64)
SEVEN = U64(7)
TOP = U64(56)


def first_clear(m):
    """Index (0-8) of the first byte whose high bit is clear in `m` (a mask of high bits only)."""
    return _FIRST_CLEAR[((m >> SEVEN) * _PACK) >> TOP]


def byte_table(members) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[list(members)] = True
    return table


def class_table(test) -> np.ndarray:
    """The 256-entry table of a SWAR class test (cached per test)."""
    table = _TABLES.get(test)
    if table is None:
        bits = test(np.arange(256, dtype=np.uint8).view(np.uint64)) & HIGH
        table = _TABLES[test] = bits.view(np.uint8) != 0
    return table


_TABLES: dict = {}  # class test -> its table


_BYTE_INDEX = U64(sum(k << (56 - 8 * k) for k in range(8)))  # times 1 << 8k, its top byte is k


_LINES = load("lines")  # the compiled finder (SSE2 or memchr: 0.25-0.7 ms per 4 MiB, against 0.9-1.1 here)


def newline_offsets(v: np.ndarray) -> np.ndarray:
    """The offsets of the "\\n"s in `v` (u8, contiguous), ascending: `np.flatnonzero(v == 10)`."""
    if _LINES is not None:
        return np.frombuffer(_LINES.newline_offsets(v), dtype=np.int64)
    return newline_offsets_by_words(v)


def newline_offsets_by_words(v: np.ndarray) -> np.ndarray:
    """newline_offsets in numpy. flatnonzero scans the 0/1 bytes one at a time (1-2 ms per
    4 MiB); here the scan is of their 8-byte words (an eighth as many), and a word's one
    newline is placed by a multiply; the few words with several (short lines) are expanded apart."""
    n = v.size
    marks = np.empty((n + 7) // 8 * 8, dtype=np.uint8)
    np.equal(v, 10, out=marks[:n].view(bool))
    marks[n:] = 0
    w = marks.view("<u8")
    hit = np.flatnonzero(w != 0)
    x = w[hit]
    at = hit * 8 + ((x * _BYTE_INDEX) >> TOP).view(np.int64)  # right where x has one newline
    many = np.flatnonzero(x & (x - U64(1)))
    if many.size == 0:
        return at
    rows = marks.reshape(-1, 8)[hit[many]]
    per = rows.sum(axis=1, dtype=np.int64)  # newlines in each such word
    count = np.ones(hit.size, dtype=np.int64)
    count[many] = per
    slot = np.cumsum(count) - count  # the output slot of each word's first newline
    out = np.empty(int(slot[-1] + count[-1]), dtype=np.int64)
    out[slot] = at
    flat = np.flatnonzero(rows)  # row-major: each word's newlines in order
    row = flat >> 3
    rank = np.arange(flat.size) - np.repeat(np.cumsum(per) - per, per)
    out[slot[many][row] + rank] = hit[many][row] * 8 + (flat & 7)
    return out
