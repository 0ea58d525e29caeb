"""Canonical level names: every format's spellings folded onto one scale.

The scale is TRACE < DEBUG < INFO < NOTICE < WARN < ERROR < FATAL. A spelling no
table knows is kept under its own upper-cased name (never dropped, never
malformed), and a record that carries no level at all counts under NONE.
"""

from __future__ import annotations

CANONICAL = ("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "FATAL")
NO_LEVEL = "NONE"  # a record whose format has no level on that line

# Spellings (upper-cased, padding stripped) -> canonical level.
SPELLINGS: dict[str, str] = {name: name for name in CANONICAL}
SPELLINGS.update({
    "WARNING": "WARN", "W": "WARN",
    "ERR": "ERROR", "E": "ERROR", "SEVERE": "ERROR", "FAILURE": "ERROR",
    "CRITICAL": "FATAL", "CRIT": "FATAL", "EMERG": "FATAL", "EMERGENCY": "FATAL",
    "ALERT": "FATAL", "PANIC": "FATAL", "F": "FATAL", "A": "FATAL",
    "V": "TRACE", "VERBOSE": "TRACE", "FINER": "TRACE", "FINEST": "TRACE",
    "D": "DEBUG", "FINE": "DEBUG", "CONFIG": "DEBUG",
    "I": "INFO", "INFORMATION": "INFO", "INFORMATIONAL": "INFO",
})
SPELLINGS.update({f"TRACE{k}": "TRACE" for k in range(1, 9)})  # Apache httpd 2.4's trace1..trace8

# RFC 5424, table 2: severity 0-7 (a syslog PRI is facility * 8 + severity).
SYSLOG_SEVERITY = ("FATAL", "FATAL", "FATAL", "ERROR", "WARN", "NOTICE", "INFO", "DEBUG")
SPELLINGS.update({str(code): level for code, level in enumerate(SYSLOG_SEVERITY)})

# pino and bunyan write numeric levels in steps of ten.
NUMERIC_STEPS = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL"}


def canonical(spelling: str, own: dict[str, str] | None = None) -> str:
    """The canonical level of a spelling; `own` is a format's map (upper-case keys)."""
    key = spelling.strip().upper()
    if not key:
        return NO_LEVEL
    if own and key in own:
        return own[key]
    return SPELLINGS.get(key, key)


def from_syslog_pri(text: str) -> str:
    """The severity of a syslog <PRI> value ("34" -> 34 % 8 = 2 -> FATAL)."""
    return SYSLOG_SEVERITY[int(text) % 8] if text.isdigit() else canonical(text)


def from_http_status(text: str) -> str:
    """An HTTP status as a level, as lnav reads access logs: 5xx ERROR, 4xx WARN, else INFO."""
    if not text.isdigit():
        return canonical(text)
    return "ERROR" if text.startswith("5") else "WARN" if text.startswith("4") else "INFO"


def from_number(value) -> str:
    """A numeric level of a JSON log: pino/bunyan steps, or a syslog severity."""
    try:
        number = int(value)
    except (ValueError, OverflowError):  # NaN, infinity
        return str(value).upper()
    if number != value:
        return str(value).upper()  # 30.5 is no step of the table
    if number in NUMERIC_STEPS:
        return NUMERIC_STEPS[number]
    if 0 <= number <= 7:
        return SYSLOG_SEVERITY[number]
    return str(value).upper()


LEVEL_RULES = {"syslog_pri": from_syslog_pri, "http_status": from_http_status}
