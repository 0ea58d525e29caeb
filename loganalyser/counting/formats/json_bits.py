"""JSON lines counted from bitmaps of the whole chunk, json.loads (the rule) the oracle.

As logfmt_bits.py: one `packbits` per byte class, strings found by the prefix
XOR of the quotes, and each line's structure read by operations on the words.
The compiled twin (native/json.c, `scan_lines`) parses each line by JSON's
grammar instead, and so settles these lines and more (escapes, nesting,
floats, literals, whitespace), each as the rule would; this reader is the
fallback where it was not built.

A line is *valid* when it is a flat object written compactly, `{}` or
`{"key":VALUE,...}`: ASCII only, no control byte, no backslash (so strings are
plain), nothing outside strings but `{`, `}`, `:`, `,` and integers
(`-?(0|[1-9][0-9]*)`), each in its place: `{` only first and `}` only last,
a key's string after `{` or `,` and before `:`, a value (a string or an
integer) after `:` and before `,` or `}`, and under 4000 bytes (json.loads
refuses integers of over 4300 digits). json.loads reads such a line to a dict
of strings and ints, and the rule's level (tests/test_json_bits.py checks each
line against it):

* no key ends in "l" or "y" (so none is `level`, `severity`, `lvl` or
  `log.level`, and no "log" key holds an object): NONE;
* the first key is one of those four and is the only key ending in "l" or
  "y" (no second level key, no duplicate): that key's value, read by
  json.loads from its bytes (at most 16).

Lines whose first byte after up to 7 spaces or tabs is neither `{` nor
whitespace are surely no records (the rule wants `{` after the whitespace):
a continuation or malformed by the shared rule. The rest take sure_lines.py's
pattern, which hands what it cannot vouch for to the per-line rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loganalyser.counting.native import load
from loganalyser.counting.result import PartialResult

from .bitmaps import add_long, count_in, pack, shift_down, shift_up, window_run
from .settled_lines import Settled, SettledLines, add_count, line_bounds, line_starts, quote_state
from .sure_lines import json_token_value
from .swar import U64, blanks, first_clear, word_view
from .field_steps import LENGTH_TAGS, LEVEL_MASKS
from .vectorised import distinct_keys

_FIRST_KEYS = [(b'{"level":', 9), (b'{"lvl":', 7), (b'{"severity":', 12), (b'{"log.level":', 13)]  # -> the value's offset
LONGEST_LINE = 4000
LONGEST_VALUE = 16  # bytes of a level value read (two words)
GUARD = 32  # lines ending this close to the buffer's end go to the sure pattern (no word read past it)
_NOT_RECORD = np.ones(256, dtype=bool)  # first bytes after the blanks of lines that surely are no JSON record
_NOT_RECORD[list(b"{ \t\r\n\x0b\x0c")] = False  # (bytes.lstrip takes these too)
_SCANNER = load("json")  # the compiled twin of read_lines, or None
UNSURE, BLANK, PLAIN, NO_RECORD, LEVELED = range(5)  # a line's kind from the scanner (LEVELED + its value's index)


@dataclass
class Lines(Settled):
    value_at: np.ndarray  # where a leveled line's value starts
    value_size: np.ndarray  # ... and its bytes


def _words_at(words: np.ndarray, p: np.ndarray) -> np.ndarray:
    return words[np.minimum(p, words.size - 1)]


def read_lines(v: np.ndarray) -> Lines:
    """The lines of `v` (its last byte a newline) and what its bitmaps settle of them."""
    n = v.size
    size = n // 64 + 2
    newline = pack(v == 10, size)
    starts, ends, head, blank = line_bounds(v, newline)
    quote, inside, odd = quote_state(v, size, ends)  # no string leaks to the next line
    outside = ~inside & ~quote
    opening, closing = quote & inside, quote & ~inside
    open_brace = pack(v == 0x7B, size) & outside
    close_brace = pack(v == 0x7D, size) & outside
    colon = pack(v == 0x3A, size) & outside
    comma = pack(v == 0x2C, size) & outside
    digit = pack((v - np.uint8(0x30)) < 10, size) & outside
    minus = pack(v == 0x2D, size) & outside
    number = digit | minus
    key_open = opening & shift_up(open_brace | comma)
    total, cut = add_long(inside, key_open)  # the carry runs through the string to its closing quote
    key_close = total & closing
    value_close = closing & ~key_close
    number_end = number & ~shift_down(number)
    number_start = number & ~shift_up(number)
    zero = pack(v == 0x30, size) & outside
    # control bytes and non-ASCII (below 0x20 the subtraction wraps to 0xE0 and up), backslashes
    broken = pack(((v - np.uint8(0x20)) >= 0x60) | (v == 0x5C), size) & ~newline
    broken |= cut | (outside & ~(open_brace | close_brace | colon | comma | number | newline))
    broken |= (open_brace & ~shift_down(quote | close_brace)) | (comma & ~shift_down(quote))
    broken |= opening & ~shift_up(open_brace | comma | colon)
    broken |= (key_close & ~shift_down(colon)) | (value_close & ~shift_down(comma | close_brace))
    broken |= (colon & ~shift_up(key_close)) | (colon & ~shift_down(quote | number))
    broken |= (number_start & ~shift_up(colon)) | (number_end & ~shift_down(comma | close_brace))
    broken |= (minus & ~number_start) | (minus & ~shift_down(digit))
    broken |= zero & (number_start | shift_up(minus)) & shift_down(digit)  # no leading zero
    broken |= (close_brace & ~shift_up(value_close | number_end | open_brace)) | (comma & ~shift_up(value_close | number_end))
    broken |= (open_brace & ~shift_up(newline, first=1)) | (close_brace & ~shift_down(newline))  # first and last only
    valid = ((count_in(broken, starts, ends + 1) == 0) & ~odd & (head == 0x7B) & (ends - starts < LONGEST_LINE)
             & (v[np.maximum(ends - 1, 0)] == 0x7D) & (ends + GUARD <= n))

    words = word_view(v) if n >= 8 else np.zeros(1, "<u8")
    ell_or_y = pack((v == 0x6C) | (v == 0x79), size)
    levelish = count_in(key_close & shift_up(ell_or_y), starts, ends)  # keys ending in "l" or "y"
    plain = valid & (levelish == 0)
    first, second = _words_at(words, starts), _words_at(words, starts + 8)
    value_at = np.zeros_like(starts)
    for text, offset in _FIRST_KEYS:
        low, high = text[:8].ljust(8, b"\0"), text[8:].ljust(8, b"\0")
        hit = (first & LEVEL_MASKS[min(len(text), 8)]) == U64(int.from_bytes(low, "little"))
        if len(text) > 8:
            hit &= (second & LEVEL_MASKS[len(text) - 8]) == U64(int.from_bytes(high, "little"))
        value_at[hit] = starts[hit] + offset
    value_size = window_run(comma | close_brace, value_at)
    leveled = valid & (levelish == 1) & (value_at > 0) & (value_size <= LONGEST_VALUE)

    no_record = ~blank & ~valid & (starts + GUARD <= n)
    some = np.flatnonzero(no_record)  # the lines to look at: a few
    after = first_clear(blanks(words[starts[some]]))  # leading spaces and tabs (8: more, not sure)
    no_record[some] = (after < 8) & _NOT_RECORD[v[starts[some] + np.minimum(after, 7)]]
    return Lines(starts, ends, head, blank, leveled, plain, no_record, value_at, value_size)


@dataclass
class ScannedLines(Settled):
    kinds: np.ndarray  # each line's kind (LEVELED + t: its level is values[t])
    values: list  # (a level's JSON value, how many lines have it)


def scan_lines(v: np.ndarray, scanner) -> ScannedLines:
    """What the compiled `scanner` (_json) settles of the lines of `v` (its last byte a newline); it finds their ends too."""
    found_ends, found_kinds, values = scanner.read_lines(v, GUARD)
    ends = np.frombuffer(found_ends, dtype=np.int64)
    kinds = np.frombuffer(found_kinds, dtype=np.uint8)
    starts = line_starts(ends)
    return ScannedLines(starts, ends, v[starts], kinds == BLANK, kinds >= LEVELED, kinds == PLAIN, kinds == NO_RECORD,
                        kinds, values)


class JsonBits(SettledLines):
    """Counts JSON-lines buffers, read by the compiled scanner or else the bitmaps; `sure`
    (sure_lines.SureLines) counts the lines they cannot settle."""

    reads_cr = False  # both readers take a CR as any byte

    def __init__(self, sure):
        super().__init__(sure)
        self._levels: dict = {}  # value bytes -> reported level (a cache)

    def read(self, v: np.ndarray, has_cr: bool | None) -> Lines | ScannedLines:
        return read_lines(v) if _SCANNER is None else scan_lines(v, _SCANNER)

    def add_levels(self, result: PartialResult, v: np.ndarray, lines: Lines | ScannedLines, dialect) -> None:
        """Adds the leveled lines, by the bytes of their values (counted by the scanner, or one or two
        masked words each)."""
        if isinstance(lines, ScannedLines):  # the scanner counted them by value
            for value, n_value in lines.values:
                add_count(result, self._level(value, dialect), n_value)
            return
        at, size = lines.value_at[lines.leveled], lines.value_size[lines.leveled]
        words = word_view(v)
        short = size <= 8
        keys = (words[at[short]] & LEVEL_MASKS[size[short]]) | LENGTH_TAGS[size[short]]
        distinct, counts = distinct_keys(keys)
        for k, n_key in zip(distinct.tolist(), counts.tolist()):
            add_count(result, self._level(k.to_bytes(8, "little")[: k >> 56 or 8], dialect), n_key)
        long_at, long_size = at[~short], size[~short]
        if long_at.size:
            rows = np.stack([words[long_at], words[long_at + 8] & LEVEL_MASKS[long_size - 8], long_size.astype(np.uint64)], axis=1)
            distinct_rows, counts = np.unique(rows, axis=0, return_counts=True)
            for (low, high, length), n_key in zip(distinct_rows.tolist(), counts.tolist()):
                text = (low.to_bytes(8, "little") + high.to_bytes(8, "little"))[:length]
                add_count(result, self._level(text, dialect), n_key)

    def _level(self, value: bytes, dialect) -> str:
        level = self._levels.get(value)
        if level is None:
            level = self._levels[value] = dialect._json_value_level(json_token_value(value))
        return level

