"""Timestamps as the specs write them (`yyyy-MM-dd HH:mm:ss,SSS`, ...) -> epoch milliseconds.

A layout is compiled once into a regex with one group per field. A timestamp
with a zone (`Z`, `+02:00`) is converted to UTC; one without is taken as it
reads (its own local time, treated as UTC for arithmetic), so buckets align to
the epoch in the log's own zone. A layout without a year (`MMM dd`,
`MM-dd`) takes the year it is given (`--year`, else the file's mtime year); a
layout without a date (`HH:mm:ss.SSS`) gives no timestamp at all.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

MONTHS = {name: i + 1 for i, name in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}

# layout token -> (regex, group name); longest tokens first
_TOKENS = [
    ("yyyy", r"(?P<Y>[0-9]{4})"), ("yy", r"(?P<y>[0-9]{2})"),
    ("MMM", r"(?P<b>[A-Za-z]{3})"), ("MM", r"(?P<m>[0-9]{1,2})"),
    ("dd", r"(?P<d>[ 0-9]?[0-9])"), ("HH", r"(?P<H> ?[0-9]{1,2})"), ("mm", r"(?P<M>[0-9]{2})"),
    ("ss", r"(?P<S>[0-9]{2})"), ("EEE", r"[A-Za-z]{3}"),
    ("Z", r"(?P<z>Z|[+-][0-9]{2}:?[0-9]{2})"),
]
RFC3339 = (r"(?P<Y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})[T ](?P<H>[0-9]{2}):(?P<M>[0-9]{2}):(?P<S>[0-9]{2})"
           r"(?:[.,](?P<f>[0-9]+))?(?P<z>Z|z|[+-][0-9]{2}:?[0-9]{2})?")


def compile_layout(layout: str) -> re.Pattern | None:
    """The regex of a layout; None for a layout that names no date (nothing to place in time)."""
    if layout.strip().upper() in ("RFC 3339", "RFC3339", "ISO 8601", "ISO8601"):
        return re.compile(RFC3339)
    out, i = [], 0
    while i < len(layout):
        if layout[i] == "[":  # an optional section, e.g. [.SSS]
            end = layout.index("]", i)
            out.append(f"(?:{_fields(layout[i + 1:end])})?")
            i = end + 1
            continue
        j = layout.find("[", i)
        j = len(layout) if j < 0 else j
        out.append(_fields(layout[i:j]))
        i = j
    pattern = "".join(out)
    if "(?P<d>" not in pattern:
        return None
    return re.compile(pattern)


def _fields(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "S":  # fraction of a second, any number of S
            j = i
            while j < len(text) and text[j] == "S":
                j += 1
            out.append(r"(?P<f>[0-9]{1,9})")
            i = j
            continue
        for token, regex in _TOKENS:
            if text.startswith(token, i):
                out.append(regex)
                i += len(token)
                break
        else:
            out.append(re.escape(text[i]))
            i += 1
    return "".join(out)


def epoch_ms(m: re.Match, year: int | None) -> int | None:
    """Epoch milliseconds of a matched timestamp; None when it names no valid time."""
    g = m.groupdict()
    try:
        if g.get("Y"):
            y = int(g["Y"])
        elif g.get("y"):
            y = 2000 + int(g["y"])
        elif year is not None:
            y = year
        else:
            return None
        month = MONTHS.get(g["b"].lower()) if g.get("b") else int(g["m"])
        if month is None:
            return None
        day = int(g["d"])
        hour, minute, second = int(g.get("H") or 0), int(g.get("M") or 0), int(g.get("S") or 0)
        frac = g.get("f") or ""
        ms = int((frac + "000")[:3])
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
            return None
        days = _days_from_civil(y, month, day)
        if day > _month_days(y, month):
            return None
        total = ((days * 24 + hour) * 60 + minute) * 60 + min(second, 59)
        zone = g.get("z")
        if zone and zone not in ("Z", "z"):
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            total -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        return total * 1000 + ms
    except (TypeError, ValueError, KeyError):
        return None


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (no datetime objects per line)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _month_days(y: int, m: int) -> int:
    if m == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    return 30 if m in (4, 6, 9, 11) else 31


def iso(ms: int, with_ms: bool = True) -> str:
    """`2026-01-01T00:00:00.000` (or without the milliseconds) of epoch milliseconds."""
    moment = datetime.fromtimestamp(ms // 1000, tz=timezone.utc).replace(tzinfo=None)
    text = moment.isoformat(timespec="seconds")
    return f"{text}.{ms % 1000:03d}" if with_ms else text
