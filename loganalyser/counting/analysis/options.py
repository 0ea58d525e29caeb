"""What a job computes besides level counts, fixed once from the command line."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from .timestamps import RFC3339, epoch_ms

BY_CHOICES = ("file", "host", "component")
DEFAULT_MAX_TEMPLATES = 20_000  # distinct templates one task keeps: about 20 MB of text at most
DEFAULT_MAX_GROUPS = 10_000
_BUCKET = re.compile(r"([1-9][0-9]*)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DATE_ONLY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


class AnalysisError(ValueError):
    """A bad analysis option; its text names the option and fits one line."""


@dataclass(frozen=True)
class Analysis:
    """Statistics and filters of a job. Every rank builds the same one from the same options."""

    bucket_s: int | None = None  # --bucket: timeline bucket width in seconds
    top: int = 0  # --top: templates reported per level
    max_templates: int = DEFAULT_MAX_TEMPLATES  # distinct templates kept per level before counts become bounds
    masks: tuple[str, ...] = ()  # --mask: extra regexes whose matches are masked in templates
    by: str | None = None  # --by: file, host or component
    host_from_path: str | None = None  # --host-from-path: regex on the path (first group, else the match)
    max_groups: int = DEFAULT_MAX_GROUPS
    levels: tuple[str, ...] | None = None  # --level: only these canonical levels pass
    grep: str | None = None  # --grep: regex searched in the message
    since_ms: int | None = None  # --since: epoch ms, inclusive
    until_ms: int | None = None  # --until: epoch ms, exclusive
    year: int | None = None  # --year: the year of year-less timestamps (default: the file's mtime year)
    since_text: str | None = None  # --since and --until as the user wrote them (for the report)
    until_text: str | None = None

    @property
    def per_line(self) -> bool:
        """True when lines must be looked at one by one (a level filter alone keeps the kernel's path)."""
        return bool(self.bucket_s or self.top or self.by or self.grep or self.since_ms is not None
                    or self.until_ms is not None)

    @property
    def active(self) -> bool:
        return self.per_line or self.levels is not None

    def passes_level(self, level: str) -> bool:
        return self.levels is None or level in self.levels

    def digest_text(self) -> str:
        """What these options mean for counting, for the checkpoint fingerprint."""
        return json.dumps(asdict(self), sort_keys=True) if self.active else ""

    def filters_document(self) -> dict:
        return {"level": list(self.levels) if self.levels is not None else None, "grep": self.grep,
                "since": self.since_text, "until": self.until_text}


def analysis_from(options) -> Analysis:
    """The analysis of a parsed command line (attributes bucket, top, ..., year); raises AnalysisError."""
    levels = None
    if options.level:
        levels = tuple(sorted({part.strip().upper() for part in options.level.split(",") if part.strip()}))
        if not levels:
            raise AnalysisError(f"--level: no level named in {options.level!r}")
    since = parse_instant("--since", options.since) if options.since else None
    until = parse_instant("--until", options.until) if options.until else None
    if since is not None and until is not None and until <= since:
        raise AnalysisError("--until must be later than --since")
    return Analysis(
        bucket_s=parse_bucket(options.bucket) if options.bucket else None,
        top=options.top,
        max_templates=options.max_templates or DEFAULT_MAX_TEMPLATES,
        masks=tuple(parse_regex("--mask", m) for m in options.mask),
        by=options.by,
        host_from_path=parse_regex("--host-from-path", options.host_from_path) if options.host_from_path else None,
        levels=levels,
        grep=parse_regex("--grep", options.grep) if options.grep else None,
        since_ms=since, until_ms=until, year=options.year, since_text=options.since, until_text=options.until)


def parse_bucket(text: str) -> int:
    """`5m` -> 300 (s, m, h, d, w)."""
    m = _BUCKET.fullmatch(text.strip().lower())
    if not m:
        raise AnalysisError(f"--bucket: not a duration: {text!r} (e.g. 30s, 1m, 5m, 1h, 1d)")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def parse_instant(option: str, text: str) -> int:
    """`2026-01-01`, `2026-01-01T10:00:00[.123][Z|+02:00]` -> epoch ms (no zone: as the logs read)."""
    text = text.strip()
    m = re.fullmatch(RFC3339, text)
    if m:
        value = epoch_ms(m, None)
    else:
        d = _DATE_ONLY.fullmatch(text)
        value = epoch_ms(re.match(RFC3339, f"{d.group(0)}T00:00:00"), None) if d else None
    if value is None:
        raise AnalysisError(f"{option}: not a time: {text!r} (e.g. 2026-01-01 or 2026-01-01T10:00:00)")
    return value


def parse_regex(option: str, text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise AnalysisError(f"{option}: bad regular expression {text!r}: {exc}") from None
    return text
