"""Adding a chunk's records to the statistics many at once, as LinePass.line adds one
(chunks.py's regex path and seed_chunks.py's numpy path alike)."""

from __future__ import annotations

from .lines import EXAMPLE_CHARS
from .stats import LineStats


def add_counts(counts: dict, items) -> None:
    for level, n in items:
        counts[level] = counts.get(level, 0) + n


def add_range(stats: LineStats, path: str, first: int, last: int) -> None:
    if stats.first_ms is None or first < stats.first_ms:
        stats.first_ms = first
    if stats.last_ms is None or last > stats.last_ms:
        stats.last_ms = last
    span = stats.file_ranges.get(path)
    stats.file_ranges[path] = [first, last] if span is None else [min(span[0], first), max(span[1], last)]


def add_timeline(stats: LineStats, bucket_s: int, items) -> None:
    """(level, a time in ms, records) for records of that level in that time's second."""
    for level, ms, n in items:
        bucket = stats.timeline.setdefault(ms // 1000 // bucket_s * bucket_s, {})
        bucket[level] = bucket.get(level, 0) + n


def add_templates(stats: LineStats, path: str, items) -> None:
    """(level, template, records, file offset of the first, its content)."""
    for level, template, n, offset, content in items:
        stats.count_template(level, template, path, offset, content[:EXAMPLE_CHARS].decode("utf-8", "replace"), n)


def add_groups(stats: LineStats, items) -> None:
    for (group, level), n in items:
        counter = stats.groups.setdefault(group, {})
        counter[level] = counter.get(level, 0) + n


def time_window(analysis) -> tuple:
    return (analysis.since_ms if analysis.since_ms is not None else -float("inf"),
            analysis.until_ms if analysis.until_ms is not None else float("inf"))


def remembered(memo: dict, keys, work_out) -> dict:
    """memo[key] for each of `keys`, working out at once those not known yet."""
    new = [key for key in keys if key not in memo]
    if new:
        if len(memo) + len(new) > 100_000:
            memo.clear()
            new = list(keys)
        memo.update(zip(new, work_out(new)))
    return memo
