"""A message's template: the message with its variable parts masked.

The masks are applied in this order, each to what the previous left:

1. the user's `--mask` regexes -> `<*>`
2. quoted strings ("..." or '...') -> `<STR>`
3. UUIDs -> `<UUID>`
4. IPv4 addresses, with an optional port -> `<IP>`
5. paths with two or more parts (`/var/log/x`, `C:\\x\\y`) -> `<PATH>`
6. hex numbers (`0x1f`) and hex ids of 8 or more hex digits with a digit -> `<HEX>`
7. the value of `key=value` (up to a space, `,` or `;`) -> `key=<VAL>`
8. every other run of digits (with its decimal parts: `3.5`, `1.2.3`) -> `<NUM>`

The result is a pure function of the message, so template counts merge by
addition however the lines were split between tasks (clustering that learns
templates from the order lines arrive in, as Drain does, would not).
"""

from __future__ import annotations

import re

from ..formats.spec import chunk_safe

BUILTIN_MASKS = (
    (re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\''), "<STR>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<UUID>"),
    (re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"), "<IP>"),
    (re.compile(r"(?<![\w./\\])(?:(?:/[\w.@%+~-]+){2,}/?|[A-Za-z]:\\[\w.\\ -]*[\w.])"), "<PATH>"),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<HEX>"),
    (re.compile(r"\b([A-Za-z_][\w.-]*)=(?!<[A-Z]+>)[^\s,;]+"), r"\1=<VAL>"),
    (re.compile(r"\d+(?:\.\d+)*"), "<NUM>"),
)
MAX_TEMPLATE = 400  # characters: a template is a key in a table, not a copy of the line


class Masker:
    """Turns messages into templates with the built-in masks and the user's own."""

    def __init__(self, user_masks=()):
        self.masks = tuple((re.compile(m), "<*>") for m in user_masks) + BUILTIN_MASKS
        # Whether masking "\n"-joined messages at once masks each alone (see mask_all).
        self.joinable = all(_joinable(m) for m in user_masks)
        # Whether the masks treat the digits 1-9 alike (see keys); the built-ins do.
        self.digit_blind = all(digit_blind(m) for m in user_masks)
        self._cache: dict[str, str] = {}

    def template(self, message: str) -> str:
        cached = self._cache.get(message)
        if cached is not None:
            return cached
        text = finish(self.mask(message))
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[message] = text
        return text

    def mask(self, text: str) -> str:
        """The message with every mask applied, before `finish`."""
        for pattern, replacement in self.masks:
            text = pattern.sub(replacement, text)
        return text

    def mask_all(self, messages: list[str]) -> list[str]:
        """`[self.mask(m) for m in messages]`, with each mask run once over them all.

        Messages hold no "\n", and the masks cannot tell a "\n" from the end
        of a message: the built-ins consume none but the quoted strings' (a
        match that spans two messages would remove one), their lookarounds and
        `\b` only test for characters a "\n" is not, and a user's mask must be
        `_joinable`. So unless a "\n" went missing, the joined result, split,
        is the messages masked one by one."""
        if not self.joinable or not messages:
            return [self.mask(m) for m in messages]
        masked = self.mask("\n".join(messages)).split("\n")
        return masked if len(masked) == len(messages) else [self.mask(m) for m in messages]

    def keys(self, joined: bytes) -> bytes:
        """"\\n"-joined messages (bytes) -> the key of each, "\\n"-joined: it decides its template.

        Every built-in mask, and a user's that names no digit, treats the
        digits 1-9 alike (a class holds all of them or none; only `0x` names
        one, and 0 stays 0), and no digit outlives the last mask, which masks
        every run of them: so a message with each of 2-9 written as 1 has the
        same template, and messages that differ only in their numbers share a key."""
        return joined.translate(_ONES) if self.digit_blind else joined

    def templates(self, messages: list[str]) -> list[str]:
        """The template of each message (as `template` gives it)."""
        return [finish(m) for m in self.mask_all(messages)]


_ONES = bytes.maketrans(b"23456789", b"11111111")


def digit_blind(pattern: str) -> bool:
    """Whether a regex surely treats the digits 1-9 alike: it names no digit (no class,
    range, escape or numbered reference can then hold some of them but not all), no
    `\\N{...}` and no named reference `(?P=name)` (text matched again must be the same digits)."""
    return not re.search(r"[0-9]|\\N|\(\?P=", pattern)


def finish(masked: str) -> str:
    """A masked message as a template key: stripped and cut."""
    return masked.strip()[:MAX_TEMPLATE]


def _joinable(mask: str) -> bool:
    """A user's mask that never touches or looks at a "\n" and has no anchors
    (the "x" makes even a leading `^` count as one)."""
    return chunk_safe("x" + mask, line_ends=(10,))
