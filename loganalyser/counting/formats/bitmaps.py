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
    total = _window_run(bits, p)
    open_ = np.flatnonzero(total == _64)
    for _ in range(MAX_WINDOWS - 1):
        if open_.size == 0:
            break
        step = _window_run(bits, p[open_] + total[open_])
        total[open_] += step
        open_ = open_[step == _64]
    return total


def _window_run(bits: np.ndarray, p: np.ndarray) -> np.ndarray:
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
