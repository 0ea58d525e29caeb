"""A logfmt record's fields for the statistics: its timestamp, message, host and component.

The level comes from the spec's regex, like any format's; these fields come
from the record's key=value pairs, the first pair of each key in line order
(a pure function of the line, as the statistics need). Quoted values lose
their quotes and backslash escapes.
"""

from __future__ import annotations

import re

# A pair as logfmt writes it: a key, '=', then a quoted value (backslash escapes) or a bare one.
_PAIR = re.compile(rb'(?:^|(?<=[ \t]))([A-Za-z_][A-Za-z0-9_.:/@-]*)=("(?:[^"\\]|\\.)*"|[^ \t"]*)')
_ESCAPE = re.compile(rb"\\(.)")
KEYS = {  # field -> the keys that give it, the first present winning
    "timestamp": (b"time", b"ts", b"t", b"timestamp", b"datetime"),
    "message": (b"msg", b"message", b"event"),
    "host": (b"host", b"hostname"),
    "component": (b"logger", b"component", b"module", b"caller"),
}
_FIELD_OF = {key: name for name, keys in KEYS.items() for key in keys}


def logfmt_fields(content: bytes) -> dict[str, str]:
    """The fields a line's pairs give (without its newline and CR)."""
    found: dict[str, tuple[int, bytes]] = {}  # field -> (rank of its key, value)
    for m in _PAIR.finditer(content):
        name = _FIELD_OF.get(m.group(1))
        if name is None:
            continue
        rank = KEYS[name].index(m.group(1))
        if name not in found or rank < found[name][0]:
            found[name] = (rank, m.group(2))
    return {name: _text(value) for name, (_, value) in found.items()}


def _text(value: bytes) -> str:
    if value.startswith(b'"') and value.endswith(b'"') and len(value) >= 2:
        value = _ESCAPE.sub(rb"\1", value[1:-1])
    return value.decode("utf-8", "replace")
