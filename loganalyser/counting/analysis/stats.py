"""The statistics of some lines beyond their counts, and how two of them add up.

Everything here merges by addition (counts) or by min/max (time ranges, the
first example of a template), so any cut of the input gives the same totals.
Only the caps break that, and never silently: a template table that outgrows
its cap keeps its largest entries and a bound, Space-Saving style. Each kept
count is then an upper bound with a known error (the true count lies in
[count - error, count]), and a template not kept occurred at most `bound`
times. Without a cap hit, every error and bound is 0 and the counts are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# one template's entry: [count, error, example path, example offset, example text]
COUNT, ERROR, PATH, OFFSET, TEXT = range(5)


@dataclass
class LineStats:
    """Time range, timeline, templates and groups of some lines (those that pass the filters)."""

    first_ms: int | None = None  # the earliest timestamp of a passing record
    last_ms: int | None = None
    untimed: int = 0  # passing records whose timestamp is missing or unreadable
    file_ranges: dict[str, list[int]] = field(default_factory=dict)  # path -> [first ms, last ms]
    timeline: dict[int, dict[str, int]] = field(default_factory=dict)  # bucket start (epoch s) -> level -> records
    templates: dict[str, dict[str, list]] = field(default_factory=dict)  # level -> template -> entry
    bounds: dict[str, int] = field(default_factory=dict)  # level -> most times a template not kept occurred
    groups: dict[str, dict[str, int]] = field(default_factory=dict)  # group -> level -> records
    groups_capped: bool = False  # some groups were folded into OTHER_GROUP
    max_templates: int = 0  # per level; 0: no template table
    max_groups: int = 0

    def add(self, other: "LineStats") -> "LineStats":
        """Adds `other` into these statistics in place and returns self."""
        self.first_ms = _pick(min, self.first_ms, other.first_ms)
        self.last_ms = _pick(max, self.last_ms, other.last_ms)
        self.untimed += other.untimed
        for path, (first, last) in other.file_ranges.items():
            mine = self.file_ranges.get(path)
            self.file_ranges[path] = [first, last] if mine is None else [min(mine[0], first), max(mine[1], last)]
        for start, counts in other.timeline.items():
            _add_counts(self.timeline.setdefault(start, {}), counts)
        for level, table in other.templates.items():
            self._merge_templates(level, table, other.bounds.get(level, 0))
        for group, counts in other.groups.items():
            _add_counts(self.groups.setdefault(group, {}), counts)
        self.groups_capped |= other.groups_capped
        self.max_templates = max(self.max_templates, other.max_templates)
        self.max_groups = max(self.max_groups, other.max_groups)
        self.cap()
        return self

    def _merge_templates(self, level: str, theirs: dict[str, list], their_bound: int) -> None:
        mine = self.templates.setdefault(level, {})
        my_bound = self.bounds.get(level, 0)
        for template, entry in theirs.items():
            kept = mine.get(template)
            if kept is None:  # absent here: it may have occurred up to my bound times
                mine[template] = [entry[COUNT] + my_bound, entry[ERROR] + my_bound, *entry[PATH:]]
            else:
                kept[COUNT] += entry[COUNT]
                kept[ERROR] += entry[ERROR]
                if (entry[PATH], entry[OFFSET]) < (kept[PATH], kept[OFFSET]):
                    kept[PATH:] = entry[PATH:]
        if their_bound:
            for template, kept in mine.items():
                if template not in theirs:
                    kept[COUNT] += their_bound
                    kept[ERROR] += their_bound
        if my_bound or their_bound:
            self.bounds[level] = my_bound + their_bound

    def count_template(self, level: str, template: str, path: str, offset: int, text: str, n: int = 1) -> None:
        """`n` occurrences of `template`, the first at (path, offset) (call `cap()` once after a batch)."""
        table = self.templates.setdefault(level, {})
        entry = table.get(template)
        if entry is None:
            bound = self.bounds.get(level, 0)
            table[template] = [n + bound, bound, path, offset, text]
        else:
            entry[COUNT] += n
            if (path, offset) < (entry[PATH], entry[OFFSET]):
                entry[PATH:] = [path, offset, text]

    def cap(self) -> None:
        """Keeps at most `max_templates` templates per level and `max_groups` groups."""
        for level, table in self.templates.items():
            if self.max_templates and len(table) > self.max_templates:
                ranked = sorted(table.items(), key=lambda item: (-item[1][COUNT], item[0]))
                dropped = ranked[self.max_templates:]
                self.templates[level] = dict(ranked[: self.max_templates])
                self.bounds[level] = max(self.bounds.get(level, 0), dropped[0][1][COUNT])
        if self.max_groups and len(self.groups) > self.max_groups:
            ranked = sorted(self.groups.items(), key=lambda item: (-sum(item[1].values()), item[0]))
            other = self.groups.pop(OTHER_GROUP, {})
            ranked = [item for item in ranked if item[0] != OTHER_GROUP]
            self.groups = dict(ranked[: self.max_groups - 1])
            for _, counts in ranked[self.max_groups - 1:]:
                _add_counts(other, counts)
            self.groups[OTHER_GROUP] = other
            self.groups_capped = True

    @property
    def capped(self) -> bool:
        return any(self.bounds.values())

    def to_dict(self) -> dict:
        """A JSON-ready form (messages and checkpoints)."""
        return {"first_ms": self.first_ms, "last_ms": self.last_ms, "untimed": self.untimed,
                "file_ranges": self.file_ranges, "timeline": {str(k): v for k, v in self.timeline.items()},
                "templates": self.templates, "bounds": self.bounds, "groups": self.groups,
                "groups_capped": self.groups_capped, "max_templates": self.max_templates,
                "max_groups": self.max_groups}

    @classmethod
    def from_dict(cls, data: dict) -> "LineStats":
        return cls(first_ms=data["first_ms"], last_ms=data["last_ms"], untimed=int(data["untimed"]),
                   file_ranges={k: list(v) for k, v in data["file_ranges"].items()},
                   timeline={int(k): dict(v) for k, v in data["timeline"].items()},
                   templates={level: {t: list(e) for t, e in table.items()}
                              for level, table in data["templates"].items()},
                   bounds=dict(data["bounds"]), groups={k: dict(v) for k, v in data["groups"].items()},
                   groups_capped=bool(data["groups_capped"]), max_templates=int(data["max_templates"]),
                   max_groups=int(data["max_groups"]))


OTHER_GROUP = "(other)"  # where groups beyond the cap are counted together


def _pick(choose, a, b):
    return b if a is None else a if b is None else choose(a, b)


def _add_counts(into: dict[str, int], counts: dict[str, int]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n
