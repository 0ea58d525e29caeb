"""Runs of a byte class read from a bitmap of the whole chunk.

A run step of a field program (field_steps.py) reads 8 bytes per gather, and a
long field (a request line, a host name, a logcat tag) takes several gathers
and a Python loop over the lines still in the run. Here the bytes that end a
run of the class (its *stops*, "\\n" always among them) are marked once per
chunk, packed 64 to a word (`np.packbits`, a quarter of a millisecond for 4 MiB),
and a run's length is the number of trailing zeros of the 64 bits that start at
the cursor: one pass over the lines for any run shorter than 64 bytes. The
bitmap of a class is made once per chunk and shared by every step that uses it.
"""

from __future__ import annotations

import numpy as np

MAX_WINDOWS = 2  # a run of 64 * MAX_WINDOWS bytes or more: not sure (the per-line rule)
_ONE, _SIX, _63, _64 = np.uint64(1), np.uint64(6), np.uint64(63), np.int64(64)
ALL_STOPS = np.uint64((1 << 64) - 1)


def stops_of(kind: str, stops: bytes = b""):
    """The cache key and the mask function of the bytes that end a run of `kind`:
    field_steps.py's classes, exactly their complement, but for `until`, which also
    stops at the control bytes below CR (below space, if space is a stop). A run stopped
    there early is followed by a step that needs a stop byte, so the line is only left
    to the rule."""
    if kind == "token":  # bytes above space and non-ASCII
        return kind, lambda v: v <= 0x20
    if kind == "spaces":
        return kind, lambda v: v != 0x20
    if kind == "blanks":
        return kind, lambda v: (v != 0x20) & (v != 0x09)
    if kind == "digits":
        return kind, lambda v: (v - np.uint8(0x30)) > 9  # uint8 wraps: below "0" is large
    if kind == "until":  # [^STOPS\r\n], stopped also at the control bytes below CR (one compare for all),
        low = 0x20 if 0x20 in stops else 0x0D  # or below space when a space is a stop (python's ": \t")

        def until(v):
            mask = v <= low
            for b in stops:
                if b > low:  # a tab is one already
                    mask |= v == b
            return mask
        return (kind, stops), until
    raise TypeError(f"no bitmap for runs of {kind!r}")


class Bitmaps:
    """The stop bitmaps of one chunk, made on first use."""

    def __init__(self, v: np.ndarray):
        self.v = v
        self._made: dict = {}  # key -> packed bits, padded with stops

    def has(self, key) -> bool:
        return key in self._made

    def get(self, key, stop_mask) -> np.ndarray:
        bits = self._made.get(key)
        if bits is None:
            packed = np.packbits(stop_mask(self.v), bitorder="little")
            bits = np.full(packed.size // 8 + 3, ALL_STOPS, dtype="<u8")
            bits.view(np.uint8)[: packed.size] = packed
            if packed.size:  # the bits past the last byte are stops too
                bits.view(np.uint8)[packed.size - 1] |= np.uint8(0xFF << (self.v.size % 8 or 8) & 0xFF)
            self._made[key] = bits
        return bits


def run_lengths(bits: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The length of the run of non-stop bytes at each offset `p` (at most 64 * MAX_WINDOWS)."""
    total = window_run(bits, p)
    open_ = np.flatnonzero(total == _64)
    for _ in range(MAX_WINDOWS - 1):
        if open_.size == 0:
            break
        step = window_run(bits, p[open_] + total[open_])
        total[open_] += step
        open_ = open_[step == _64]
    return total


def window_run(bits: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Trailing zeros (0-64) of the 64 bits at bit offsets `p`."""
    return trailing_zeros(window(bits, p))


def window(bits: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The 64 bits at bit offsets `p` (bit k: whether byte p + k is a stop)."""
    i = p >> 6
    shift = (p & 63).view(np.uint64)  # p >= 0: the same bits
    return (bits[i] >> shift) | ((bits[i + 1] << _ONE) << (_63 - shift))  # no shift by 64


# trailing_zeros(x): the zeros below the lowest set bit of each u64, 64 for 0.
if hasattr(np, "bitwise_count"):  # numpy 2
    def trailing_zeros(x):
        return np.bitwise_count(~x & (x - _ONE))  # u8: the zeros below the lowest one
else:  # pragma: no cover - numpy 1: the exponent of the lowest set bit, read as a float
    def trailing_zeros(x):
        low = (x & (~x + _ONE)).astype(np.float64)
        out = (low.view(np.int64) >> 52) - 1023
        out[x == 0] = 64
        return out


# -- bitmaps of byte classes read as long numbers (logfmt_bits.py, json_bits.py) ------------

_ALL = np.uint64((1 << 64) - 1)
CARRY_WORDS = 3  # a carry that runs on past this many words is cut: its place is marked


def pack(mask: np.ndarray, size: int) -> np.ndarray:
    """A bool array as bits, 64 to a little-endian word, zero-padded to `size` words."""
    packed = np.packbits(mask, bitorder="little")
    out = np.zeros(size, dtype="<u8")
    out.view(np.uint8)[: packed.size] = packed
    return out


def shift_up(x: np.ndarray, first: int = 0) -> np.ndarray:
    """Bit p moves to p + 1 (across words); bit 0 becomes `first`."""
    y = x << _ONE
    y[1:] |= x[:-1] >> _63
    y[0] |= np.uint64(first)
    return y


def shift_up_by(x: np.ndarray, k: int) -> np.ndarray:
    """Bit p moves to p + k (k < 64)."""
    y = x << np.uint64(k)
    y[1:] |= x[:-1] >> np.uint64(64 - k)
    return y


def shift_down(x: np.ndarray) -> np.ndarray:
    """Bit p + 1 moves to p."""
    y = x >> _ONE
    y[:-1] |= x[1:] << _63
    return y


def prefix_xor(x: np.ndarray) -> np.ndarray:
    """Bit p becomes the XOR of bits 0..p (inside quotes: an opening quote and what follows it)."""
    x = x.copy()
    for s in (1, 2, 4, 8, 16, 32):
        x ^= x << np.uint64(s)
    odd = np.bitwise_xor.accumulate(x >> _63)  # the parity up to each word's end
    x[1:] ^= odd[:-1] * _ALL
    return x


def add_long(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def count_in(bits: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Set bits in [a, b) per pair of positions."""
    before = np.zeros(bits.size + 1, dtype=np.int64)
    np.cumsum(np.bitwise_count(bits), out=before[1:])
    return _rank(bits, before, b) - _rank(bits, before, a)


def bit_at(bits: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Whether bit p is set, per position."""
    return ((bits[p >> 6] >> (p & 63).astype(np.uint64)) & _ONE).astype(bool)




def positions(bits: np.ndarray) -> np.ndarray:
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



def joined(v, starts, ends) -> bytes:
    """The lines v[starts[i]:ends[i]], each with its newline, in one buffer."""
    sizes = ends - starts + 1
    offsets = np.cumsum(sizes) - sizes
    return v[np.repeat(starts - offsets, sizes) + np.arange(int(sizes.sum()))].tobytes()


