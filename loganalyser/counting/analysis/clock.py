"""Timestamps of many records at once, as LinePass reads each (for chunks.py)."""

from __future__ import annotations

import re
from itertools import compress

from ..formats.spec import chunk_safe
from .lines import LinePass
from .timestamps import compile_layout

_NOT_STRIPPED = rb"(?![ \t\r\x0b\x0c\x1c-\x1f])"  # what str.strip removes from ASCII text, but "\n"
_FRACTION = re.compile(r"(.*?)(\[)?([.,])S+(\])?")  # a layout that ends with its fraction of a second


class Clock:
    """LinePass._time of many timestamp texts, parsing each distinct second once.

    A layout that ends with its fraction (`...ss[.SSS]`, `...ss,SSS`) compiles
    to a head regex P followed by the fraction. When every text of a chunk is
    a head, the fraction's separator and 1 to 9 digits (checked by one regex
    over them all, P atomic: its first match, the one `match` takes, must end
    right before the fraction), P's match is the same for every text of one
    head, so a text's time is its head's time (that of any text of the head,
    less that text's fraction) plus its own fraction's milliseconds.
    Otherwise each distinct text is read whole."""

    def __init__(self, lines: LinePass, layout: str | None):
        self.lines = lines
        self.check = self.head = None
        split = _FRACTION.fullmatch(layout or "")
        if split is None or lines.stamp is None or bool(split.group(2)) != bool(split.group(4)):
            return
        head = compile_layout(split.group(1))
        sep = re.escape(split.group(3))
        fraction = f"{sep}(?P<f>[0-9]{{1,9}})"
        if split.group(2):
            fraction = f"(?:{fraction})?"
        if head is None or lines.stamp.pattern != head.pattern + fraction or not chunk_safe(head.pattern) \
                or "(?=" in head.pattern or "(?!" in head.pattern or "\\b" in head.pattern:
            return
        sep_b, head_b = sep.encode(), head.pattern.encode()
        digits = sep_b + rb"[0-9]{1,9}(?=\n)"
        self.check = re.compile(rb"\n(?:" + _NOT_STRIPPED + rb"(?!" + digits + rb")(?>" + head_b + rb")" + digits
                                + rb"|(?=\n))")
        self.head = re.compile(rb"\n([^\n]*?)(?:" + digits + rb")?(?=\n)")

    def read(self, texts, year) -> tuple[list, dict]:
        """Each text's key, and each key's time in ms (None: untimed); see each_ms for a text's."""
        if self.check is not None:
            joined = b"\n" + b"\n".join(texts) + b"\n"
            if joined.isascii() and self.check.subn(b"", joined)[1] == len(texts):
                keys = self.head.findall(joined)
                base = {}
                for key, text in dict(zip(keys, texts)).items():
                    ms = self.lines._time(text.decode("ascii"), year) if key else None
                    base[key] = None if ms is None else ms - _fraction_ms(text, key)
                return keys, base
        return list(texts), {text: self.lines._time(text.decode("utf-8", "replace"), year) for text in set(texts)}

    def each_ms(self, texts, keys, base) -> list:
        """The time of each text (keys and base from `read`)."""
        return [None if base[k] is None else base[k] + _fraction_ms(t, k) for t, k in zip(texts, keys)]

    def extreme(self, choose, timed: set, base: dict, texts, keys) -> int:
        """min or max of the times of the texts whose keys are in `timed`."""
        edge = choose(base[k] for k in timed)
        at_edge = {k for k in timed if base[k] == edge}
        picked = compress(zip(texts, keys), map(at_edge.__contains__, keys))
        return choose(edge + _fraction_ms(t, k) for t, k in picked)


def _fraction_ms(text: bytes, key: bytes) -> int:
    """The milliseconds of a text's fraction: none when its key is the whole text."""
    return int((text[len(key) + 1:len(key) + 4] + b"000")[:3]) if len(text) > len(key) else 0
