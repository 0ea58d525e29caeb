"""logfmt counted from bitmaps of the whole chunk, the spec's regex (via sure_lines.py) the oracle.

Each byte class the grammar needs (newline, quote, space, "=", key bytes, key
starts, bytes no sure line holds) is one `packbits` of a numpy compare, 64
bytes to a word; the structure of every line is then read with a few dozen
operations on those words (no per-line Python):

* inside quotes: the prefix XOR of the quotes (a line with an odd number of
  quotes gets one more at its end, so that no quote state leaks to the next);
* separators: spaces outside quotes, and newlines; a token starts after one;
* a key ends where the run of key bytes from a token start ends, found by
  adding the token starts to the key-byte bitmap (the carry runs to the end).

A line is *valid* when no byte breaks this: every token is `KEY=VALUE`, KEY
`[A-Za-z][A-Za-z0-9_.:/-]*` (the regex's, but for a first "_" and "@": such
lines are left), VALUE a quoted `"..."` (opened right after the
key's "=", closed just before a separator) or bare without quotes, and the
line holds no control byte but its newline and a CR before it (the rule strips
that one), and no backslash.
A valid line is a sequence of the spec's pairs, so the regex matches it; which
level it reports (tests/test_logfmt_bits.py checks each line against it):

* the first token is `level=WORD` or `lvl=WORD` (WORD: 1-8 bytes of
  [A-Za-z0-9_], then a space or the line's end): WORD. The lazy prefix of pairs
  is empty at its first try, and the rest are pairs;
* the first token is no level token and the second is one: WORD. With no
  prefix pair the regex needs `level=`/`lvl=` at the line's start; with one,
  its first try reads the first token whole (a key ends at its first "=",
  the quoted alternative comes first and ends at the closing quote, a bare
  value at the next space), which puts the level token at the second;
* no `level=`/`lvl=` follows a space (read as " l???l=" and " l?l="), and
  the first token is no level token: NONE. The regex's level token starts
  at the line's start or after a space, so only its all-pairs alternative
  can match;
* any other valid line (a level token later, or after a quoted value whose
  spaces give the regex other ways to split it) is left to the sure pattern.

Lines whose first byte starts no key, or whose first run of key bytes is not
followed by "=", are surely no records (both alternatives start with `KEY=`
there): continuations or malformed by the shared rule (vectorised.py). The
rest take sure_lines.py's pattern, which hands what it cannot vouch for to
the per-line rule.

Where it is built, a compiled twin (native/logfmt.c, `read_lines_compiled`)
reads each line's bytes once instead; it settles every line these bitmaps
settle, alike, and more (escapes in quoted values, lines at the buffer's
end: it reads no byte past the buffer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loganalyser.counting.native import load
from loganalyser.counting.result import PartialResult

from .bitmaps import add_long, count_in, pack, shift_down, shift_up, shift_up_by, window_run
from .settled_lines import Settled, SettledLines, add_count, line_bounds, line_starts, quote_state
from .swar import HIGH, U64, digits, first_clear, letters, newline_offsets, not_equal, word_view
from .field_steps import LENGTH_TAGS, LEVEL_MASKS  # level keys as the field programs make them
from .vectorised import sure_key_counts

_LEVEL, _LVL = (U64(int.from_bytes(text, "little")) for text in (b"level=", b"lvl="))
_SIX, _FOUR = U64((1 << 48) - 1), U64((1 << 32) - 1)
_KEY_START = np.zeros(256, dtype=bool)
_KEY_START[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")] = True
_NO_KEY_BYTE = np.ones(256, dtype=bool)  # bytes that end the regex's KEY and are no "=" (the bitmap's key stops at "@" too)
_NO_KEY_BYTE[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/@-=")] = False
_NO_KEY_START = ~_KEY_START  # ... and no blank either: the line is no record
_NO_KEY_START[[32, 9]] = False
_NO_BLANK_KEY = _NO_KEY_START.copy()  # after one blank: no key, no further blank
_ENDS_LEVEL = np.zeros(256, dtype=bool)
_ENDS_LEVEL[[32, 10, 13]] = True  # a level word ends at a space or the line's end (a CR there: no other in valid lines)
GUARD = 16  # lines ending this close to the buffer's end go to the sure pattern (no word read past it)
COMPILED = load("logfmt")  # native/logfmt.c: read_lines in one pass over the bytes (None: not built, or turned off)
_UNSETTLED, _BLANK, _LEVELED, _PLAIN, _NO_RECORD = range(5)  # its kinds of lines


def _word_bytes(w):
    """High bit of each byte in [A-Za-z0-9_] (the regex's level word)."""
    return letters(w) | digits(w) | (~not_equal(w, 0x5F) & HIGH)


@dataclass
class Lines(Settled):
    keys: np.ndarray  # the level of each leveled line (vectorised.py's masked-word keys)


def read_lines(v: np.ndarray, has_cr: bool | None = None) -> Lines:
    """The lines of `v` (its last byte a newline) and what its bitmaps settle of them;
    `has_cr`: whether `v` holds a CR (None: look)."""
    n = v.size
    size = n // 64 + 2
    newline = pack(v == 10, size)
    line_end = newline  # a newline, or the CR before one (the rule strips it)
    if has_cr or (has_cr is None and bool((v == 13).any())):
        line_end = newline | (pack(v == 13, size) & shift_down(newline))
    starts, ends, head, blank = line_bounds(v, newline)
    words = word_view(v) if n >= 8 else np.zeros(1, "<u8")
    limit = words.size - 1
    first = words[np.minimum(starts, limit)]

    quote, inside, odd = quote_state(v, size, ends)
    space = pack(v == 32, size)
    separator = (space & ~inside) | line_end
    token = shift_up(separator, first=1) & ~separator
    letter = v | np.uint8(0x20)
    np.subtract(letter, np.uint8(0x61), out=letter)
    key_start = pack(letter < 26, size)  # a key starting with "_" is left to the sure pattern
    key = key_start | pack(((v - np.uint8(0x2D)) < 14) | (v == 0x5F), size)  # -./0-9: and _ (not @: left too)
    total, left = add_long(key, token)
    key_end = total & ~key
    equals = pack(v == 0x3D, size)
    broken = (token & ~key_start) | (key_end & ~equals) | left
    broken |= quote & inside & ~shift_up(key_end)  # an opening quote right after a key's "="
    broken |= quote & ~inside & ~shift_down(separator)  # a closing quote just before a separator
    broken |= pack((v < 0x20) | (v == 0x5C), size) & ~line_end  # control bytes, backslashes
    valid = (count_in(broken, starts, ends + 1) == 0) & ~odd & _KEY_START[head] & (ends + GUARD <= n)

    level6 = (first & _SIX) == _LEVEL
    level_first = level6 | ((first & _FOUR) == _LVL)
    second = starts + 1 + window_run(token, starts + 1)  # the next token's start (65 on: none within 64)
    word_second = words[np.minimum(second, limit)]
    level6_second = (word_second & _SIX) == _LEVEL
    level_second = (~level_first & (second < ends) & (second - starts <= 64)
                    & (level6_second | ((word_second & _FOUR) == _LVL)))
    at = np.where(level_first, starts + np.where(level6, 6, 4), second + np.where(level6_second, 6, 4))
    w = words[np.minimum(at, limit)]
    length = first_clear(_word_bytes(w))
    leveled = valid & (level_first | level_second) & (length > 0) & _ENDS_LEVEL[v[np.minimum(at + length, n - 1)]]
    keys = (w & LEVEL_MASKS[length]) | LENGTH_TAGS[length]

    plain = valid & ~level_first & ~leveled
    if plain.any():
        plain[plain] = count_in(_level_keys(v, size, space, equals), starts[plain], ends[plain]) == 0

    no_record = ~blank & ~valid & (starts + GUARD <= n)
    some = np.flatnonzero(no_record)  # the lines to look at: a few
    s, h = starts[some], head[some]
    second_byte = v[s + 1]
    key_end_at = s + window_run(key_end, s)
    no_record[some] = ((((h == 32) | (h == 9)) & _NO_BLANK_KEY[second_byte]) | _NO_KEY_START[h]
                    | (_KEY_START[h] & (key_end_at - s < 64) & _NO_KEY_BYTE[v[np.minimum(key_end_at, n - 1)]]))
    return Lines(starts, ends, head, blank, leveled, plain, no_record, keys)


def read_lines_compiled(v: np.ndarray) -> Lines:
    """read_lines by the compiled scanner (native/logfmt.c), which reads each line once."""
    ends = newline_offsets(v)
    starts = line_starts(ends)
    kinds = np.empty(ends.size, dtype=np.uint8)
    keys = np.empty(ends.size, dtype=np.uint64)
    COMPILED.read_lines(v, ends, kinds, keys)
    return Lines(starts, ends, v[starts], kinds == _BLANK, kinds == _LEVELED, kinds == _PLAIN, kinds == _NO_RECORD, keys)


class LogfmtBits(SettledLines):
    """Counts logfmt buffers; `sure` (sure_lines.SureLines) counts the lines the bitmaps cannot settle."""

    reads_cr = COMPILED is None  # the compiled reader looks at the CR before each newline itself

    def read(self, v: np.ndarray, has_cr: bool | None) -> Lines:
        return read_lines(v, has_cr) if COMPILED is None else read_lines_compiled(v)

    def add_levels(self, result: PartialResult, v: np.ndarray, lines: Lines, dialect) -> None:
        distinct, counts = sure_key_counts(lines.keys, lines.leveled)  # a level is word bytes: never NO_KEY
        for k, n_key in zip(distinct.tolist(), counts.tolist()):
            add_count(result, dialect.level(k.to_bytes(8, "little")[: k >> 56 or 8]), n_key)


def _level_keys(v, size: int, space, equals) -> np.ndarray:
    """Bits at each "=" that may end a `level=` or `lvl=` starting after a space (read as
    " l???l=" and " l?l="): where the regex's level token could be, but at a line's start."""
    ell = pack(v == 0x6C, size)
    first = shift_up(space) & ell  # an "l" after a space
    return equals & shift_up(ell) & (shift_up_by(first, 5) | shift_up_by(first, 3))

