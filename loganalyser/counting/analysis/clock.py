"""Timestamps of many records at once, as LinePass reads each (for chunks.py)."""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import compress

from ..formats.spec import chunk_safe
from .lines import LinePass
from .timestamps import RFC3339, compile_layout

_NOT_STRIPPED = rb"(?![ \t\r\x0b\x0c\x1c-\x1f])"  # what str.strip removes from ASCII text, but "\n"
_ISO_HEAD = RFC3339[:RFC3339.index("(?:[.,]")]  # RFC 3339 up to its seconds
_FRACTION = re.compile(r"(.*?)(\[)?([.,])S+(\])?")  # a layout that ends with its fraction of a second


class Clock:
    """LinePass._time of many timestamp texts, parsing each distinct second once.

    A layout that ends with its fraction (`...ss[.SSS]`, `...ss,SSS`) compiles
    to a head regex P followed by the fraction. For a text that is a head, the
    fraction's separator and 1 to 9 digits, with P's first match (the one
    `match` takes: P is atomic in the check) ending right before the fraction,
    `match` reads the head alike in every text of that head; so the text's
    time is its head's (that of any text of the head, less that text's
    fraction) plus its own fraction's milliseconds. The same holds of a text
    the layout does not match at all that is an RFC 3339 head and a fraction
    (_time's fallback). One findall tells such texts from the others, which
    are read whole, once per distinct text. A key is (head, RFC 3339 head, whole text)."""

    def __init__(self, lines: LinePass, layout: str | None):
        self.lines = lines
        # (head, RFC 3339 head, whole) of each "\n"-led text; None: every text is read whole
        self.pattern = _pattern(layout, lines.stamp.pattern) if layout and lines.stamp is not None else None

    def read(self, texts, year) -> tuple[list, dict]:
        """Each text's key, and each key's time in ms (None: untimed); see each_ms for a text's."""
        if self.pattern is None:
            return list(texts), {text: self.lines._time(text.decode("utf-8", "replace"), year) for text in set(texts)}
        keys = self.pattern.findall(b"\n" + b"\n".join(texts) + b"\n")
        keys.pop()  # the match after the last text's "\n"
        base = {}
        for key, text in dict(zip(keys, texts)).items():
            if key[0] or key[1]:
                ms = self.lines._time(text.decode("ascii"), year)
                base[key] = None if ms is None else ms - self._fraction_ms(text, key)
            else:
                base[key] = self.lines._time(text.decode("utf-8", "replace"), year)
        return keys, base

    def each_ms(self, texts, keys, base) -> list:
        """The time of each text (keys and base from `read`)."""
        return [None if base[k] is None else base[k] + self._fraction_ms(t, k) for t, k in zip(texts, keys)]

    def extreme(self, choose, timed: set, base: dict, texts, keys) -> int:
        """min or max of the times of the texts whose keys are in `timed`: a time
        lies between its key's base and, for a head, 999 ms more."""
        span = {k: 999 if self.pattern is not None and (k[0] or k[1]) else 0 for k in timed}
        if choose is min:
            edge = min(base[k] + span[k] for k in timed)  # the earliest time is no later
            near = {k for k in timed if base[k] <= edge}
        else:
            edge = max(base[k] for k in timed)  # the latest is no earlier
            near = {k for k in timed if base[k] + span[k] >= edge}
        picked = compress(zip(texts, keys), map(near.__contains__, keys))
        return choose(base[k] + self._fraction_ms(t, k) for t, k in picked)

    def _fraction_ms(self, text: bytes, key) -> int:
        """The milliseconds of a text's fraction: none when its key is the whole text."""
        if self.pattern is None or not (key[0] or key[1]):
            return 0
        at = len(key[0] or key[1]) + 1
        return int((text[at:at + 3] + b"000")[:3])


@lru_cache(maxsize=64)
def _pattern(layout: str, stamp: str) -> re.Pattern | None:
    """The findall pattern of Clock for a layout and its regex `stamp`; None if the layout does not
    end with its fraction (after the regex of the layout without it)."""
    split = _FRACTION.fullmatch(layout)
    if split is None or bool(split.group(2)) != bool(split.group(4)):
        return None
    head = compile_layout(split.group(1))
    sep = re.escape(split.group(3))
    fraction = f"{sep}(?P<f>[0-9]{{1,9}})"
    if split.group(2):
        fraction = f"(?:{fraction})?"
    if head is None or stamp != head.pattern + fraction or not head.pattern.isascii() \
            or not chunk_safe(head.pattern) or any(x in head.pattern for x in ("(?=", "(?!", "\\b")):
        return None
    digits = sep.encode() + rb"[0-9]{1,9}(?=\n)"
    iso_digits = rb"[.,][0-9]+(?=\n)"  # where the layout does not match, _time reads RFC 3339
    return re.compile(
        rb"\n(?:" + _NOT_STRIPPED + rb"(?!" + digits + rb")(?P<head>(?>" + _unnamed(head.pattern) + rb"))" + digits
        + rb"|" + _NOT_STRIPPED + rb"(?!" + _unnamed(stamp) + rb")(?!" + iso_digits + rb")(?P<iso>(?>"
        + _unnamed(_ISO_HEAD) + rb"))" + iso_digits + rb"|(?P<whole>[^\n]*))")


def _unnamed(pattern: str) -> bytes:
    """A timestamp pattern with its named groups unnamed (they hold no references), as bytes."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern).encode()
