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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loganalyser.counting.kernel import tally
from loganalyser.counting.result import PartialResult

from .bitmaps import _window_run
from .swar import HIGH, U64, digits, first_clear, letters, not_equal
from .vectorised import _LENGTH_TAGS, _MASKS, FieldProgram, _distinct  # level keys as vectorised.py's

_ONE, _63 = U64(1), U64(63)
_ALL = U64((1 << 64) - 1)
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
CARRY_WORDS = 3  # key runs longer than this many words: the line is not sure


def _word_bytes(w):
    """High bit of each byte in [A-Za-z0-9_] (the regex's level word)."""
    return letters(w) | digits(w) | (~not_equal(w, 0x5F) & HIGH)


def _pack(mask: np.ndarray, size: int) -> np.ndarray:
    """A bool array as bits, 64 to a little-endian word, zero-padded to `size` words."""
    packed = np.packbits(mask, bitorder="little")
    out = np.zeros(size, dtype="<u8")
    out.view(np.uint8)[: packed.size] = packed
    return out


def _shift_up(x: np.ndarray, first: int = 0) -> np.ndarray:
    """Bit p moves to p + 1 (across words); bit 0 becomes `first`."""
    y = x << _ONE
    y[1:] |= x[:-1] >> _63
    y[0] |= U64(first)
    return y


def _shift_down(x: np.ndarray) -> np.ndarray:
    """Bit p + 1 moves to p."""
    y = x >> _ONE
    y[:-1] |= x[1:] << _63
    return y


def _prefix_xor(x: np.ndarray) -> np.ndarray:
    """Bit p becomes the XOR of bits 0..p (inside quotes: an opening quote and what follows it)."""
    x = x.copy()
    for s in (1, 2, 4, 8, 16, 32):
        x ^= x << U64(s)
    odd = np.bitwise_xor.accumulate(x >> _63)  # the parity up to each word's end
    x[1:] ^= odd[:-1] * _ALL
    return x


def _add(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a + b as one long number (carries cross words); and the bits where a carry was left
    after CARRY_WORDS words (marks of lines that are not sure)."""
    total = a + b
    carry = (total < a).astype(np.uint64)
    for _ in range(CARRY_WORDS):
        if not carry.any():
            break
        incoming = np.zeros_like(carry)
        incoming[1:] = carry[:-1]
        more = total + incoming
        carry = (more < total).astype(np.uint64)
        total = more
    left = np.zeros_like(carry)
    left[1:] = carry[:-1]  # bit 0 of the word the run goes on into
    return total, left


def _rank(bits: np.ndarray, before: np.ndarray, p: np.ndarray) -> np.ndarray:
    """How many bits are set below position p (`before`: set bits before each word)."""
    i = p >> 6
    below = (_ONE << (p & 63).astype(np.uint64)) - _ONE
    return before[i] + np.bitwise_count(bits[i] & below)


def _count_in(bits: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Set bits in [a, b) per pair of positions."""
    before = np.zeros(bits.size + 1, dtype=np.int64)
    np.cumsum(np.bitwise_count(bits), out=before[1:])
    return _rank(bits, before, b) - _rank(bits, before, a)


@dataclass
class Lines:
    """What the bitmaps settle about each line of a buffer that ends with a newline."""

    starts: np.ndarray  # each line's first byte
    ends: np.ndarray  # its newline
    head: np.ndarray  # its first byte (the newline for an empty line)
    blank: np.ndarray  # empty, or a lone CR
    leveled: np.ndarray  # a record whose level is `keys` (vectorised.py's masked-word keys)
    keys: np.ndarray
    plain: np.ndarray  # a record without a level (NONE)
    no_key: np.ndarray  # surely no record: a continuation or malformed, by the shared rule


def read_lines(v: np.ndarray, has_cr: bool | None = None) -> Lines:
    """The lines of `v` (its last byte a newline) and what its bitmaps settle of them;
    `has_cr`: whether `v` holds a CR (None: look)."""
    n = v.size
    size = n // 64 + 2
    newline = _pack(v == 10, size)
    line_end = newline  # a newline, or the CR before one (the rule strips it)
    if has_cr or (has_cr is None and bool((v == 13).any())):
        line_end = newline | (_pack(v == 13, size) & _shift_down(newline))
    ends = _positions(newline)
    starts = np.empty_like(ends)
    starts[0] = 0
    np.add(ends[:-1], 1, out=starts[1:])
    words = np.ndarray(shape=(n - 7,), dtype="<u8", buffer=v, strides=(1,)) if n >= 8 else np.zeros(1, "<u8")
    limit = words.size - 1
    first = words[np.minimum(starts, limit)]
    head = v[starts]
    blank = (ends == starts) | ((ends == starts + 1) & (head == 13))

    quote = _pack(v == 34, size)
    inside = _prefix_xor(quote)
    parity = _bit(inside, ends)  # of the quotes up to each line's end
    odd = parity.copy()
    odd[1:] ^= parity[:-1]
    if odd.any():  # one more quote at such a line's newline: no quote state leaks to the next line
        at = ends[odd]
        np.bitwise_or.at(quote, at >> 6, _ONE << (at & 63).astype(np.uint64))
        inside = _prefix_xor(quote)
    space = _pack(v == 32, size)
    separator = (space & ~inside) | line_end
    token = _shift_up(separator, first=1) & ~separator
    letter = v | np.uint8(0x20)
    np.subtract(letter, np.uint8(0x61), out=letter)
    key_start = _pack(letter < 26, size)  # a key starting with "_" is left to the sure pattern
    key = key_start | _pack(((v - np.uint8(0x2D)) < 14) | (v == 0x5F), size)  # -./0-9: and _ (not @: left too)
    total, left = _add(key, token)
    key_end = total & ~key
    equals = _pack(v == 0x3D, size)
    broken = (token & ~key_start) | (key_end & ~equals) | left
    broken |= quote & inside & ~_shift_up(key_end)  # an opening quote right after a key's "="
    broken |= quote & ~inside & ~_shift_down(separator)  # a closing quote just before a separator
    broken |= _pack((v < 0x20) | (v == 0x5C), size) & ~line_end  # control bytes, backslashes
    valid = (_count_in(broken, starts, ends + 1) == 0) & ~odd & _KEY_START[head] & (ends + GUARD <= n)

    level6 = (first & _SIX) == _LEVEL
    level_first = level6 | ((first & _FOUR) == _LVL)
    second = starts + 1 + _window_run(token, starts + 1)  # the next token's start (65 on: none within 64)
    word_second = words[np.minimum(second, limit)]
    level6_second = (word_second & _SIX) == _LEVEL
    level_second = (~level_first & (second < ends) & (second - starts <= 64)
                    & (level6_second | ((word_second & _FOUR) == _LVL)))
    at = np.where(level_first, starts + np.where(level6, 6, 4), second + np.where(level6_second, 6, 4))
    w = words[np.minimum(at, limit)]
    length = first_clear(_word_bytes(w))
    leveled = valid & (level_first | level_second) & (length > 0) & _ENDS_LEVEL[v[np.minimum(at + length, n - 1)]]
    keys = (w & _MASKS[length]) | _LENGTH_TAGS[length]

    plain = valid & ~level_first & ~leveled
    if plain.any():
        plain[plain] = _count_in(_level_keys(v, size, space, equals), starts[plain], ends[plain]) == 0

    no_key = ~blank & ~valid & (starts + GUARD <= n)
    some = np.flatnonzero(no_key)  # the lines to look at: a few
    s, h = starts[some], head[some]
    second_byte = v[s + 1]
    key_end_at = s + _window_run(key_end, s)
    no_key[some] = ((((h == 32) | (h == 9)) & _NO_BLANK_KEY[second_byte]) | _NO_KEY_START[h]
                    | (_KEY_START[h] & (key_end_at - s < 64) & _NO_KEY_BYTE[v[np.minimum(key_end_at, n - 1)]]))
    return Lines(starts, ends, head, blank, leveled, keys, plain, no_key)


class LogfmtBits:
    """Counts logfmt buffers; `sure` (sure_lines.SureLines) counts the lines the bitmaps cannot settle."""

    def __init__(self, sure):
        self._sure = sure
        self._no_records = FieldProgram([])  # the shared continuation rule of lines that are no records

    def count(self, data, start: int, end: int, dialect) -> PartialResult:
        v = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
        result = PartialResult(bytes=v.size)
        found = data.rfind(b"\n", start, end)
        last = found - start if found >= 0 else -1  # the last newline, in v
        if last + 1 < v.size:  # a last line without its newline
            tally(result, dialect.classify(bytes(v[last + 1 :])))
        if last < 0:
            return result
        v = v[: last + 1]
        lines = read_lines(v, data.find(b"\r", start, end) >= 0)
        result.lines += lines.ends.size
        result.blank += int(np.count_nonzero(lines.blank))
        distinct, counts = _distinct(lines.keys[lines.leveled])
        for k, n_key in zip(distinct.tolist(), counts.tolist()):
            _add_count(result, dialect.level(k.to_bytes(8, "little")[: k >> 56 or 8]), n_key)
        _add_count(result, dialect.level(b""), int(np.count_nonzero(lines.plain)))
        settled = lines.blank | lines.leveled | lines.plain
        if lines.no_key.any():
            words = np.ndarray(shape=(v.size - 7,), dtype="<u8", buffer=v, strides=(1,))
            settled |= self._no_records._no_records(result, lines.no_key, lines.head, v, words, lines.starts,
                                                    lines.ends, None)
        left_over = np.flatnonzero(~settled)
        if left_over.size:
            joined = _joined(v, lines.starts[left_over], lines.ends[left_over])
            part = self._sure.count(joined, 0, len(joined), dialect.classify)
            for name, n_level in part.counts.items():
                _add_count(result, name, n_level)
            result.continuation += part.continuation
        result.malformed = result.lines - result.blank - result.continuation - sum(result.counts.values())
        return result


def _add_count(result: PartialResult, name: str, n: int) -> None:
    if n:
        result.counts[name] = result.counts.get(name, 0) + n


def _bit(bits: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Whether bit p is set, per position."""
    return ((bits[p >> 6] >> (p & 63).astype(np.uint64)) & _ONE).astype(bool)


def _shift_up_by(x: np.ndarray, k: int) -> np.ndarray:
    """Bit p moves to p + k (k < 64)."""
    y = x << U64(k)
    y[1:] |= x[:-1] >> U64(64 - k)
    return y


def _level_keys(v, size: int, space, equals) -> np.ndarray:
    """Bits at each "=" that may end a `level=` or `lvl=` starting after a space (read as
    " l???l=" and " l?l="): where the regex's level token could be, but at a line's start."""
    ell = _pack(v == 0x6C, size)
    first = _shift_up(space) & ell  # an "l" after a space
    return equals & _shift_up(ell) & (_shift_up_by(first, 5) | _shift_up_by(first, 3))


def _joined(v, starts, ends) -> bytes:
    """The lines v[starts[i]:ends[i]], each with its newline, in one buffer."""
    sizes = ends - starts + 1
    offsets = np.cumsum(sizes) - sizes
    return v[np.repeat(starts - offsets, sizes) + np.arange(int(sizes.sum()))].tobytes()


def _positions(bits: np.ndarray) -> np.ndarray:
    """Positions of the set bits, in order."""
    at = np.flatnonzero(bits)
    x = bits[at]
    per_word = np.bitwise_count(x).astype(np.int64)
    out = np.empty(int(per_word.sum()), dtype=np.int64)
    slot = np.cumsum(per_word) - per_word
    base = at * 64
    while at.size:
        low = x & (~x + _ONE)
        out[slot] = base + np.bitwise_count(low - _ONE)
        x ^= low
        more = x != 0
        x, slot, base, at = x[more], slot[more] + 1, base[more], at[more]
    return out
