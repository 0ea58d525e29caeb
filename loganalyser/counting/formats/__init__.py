"""Log formats as data: the built-in specs, a user's own, and the set a job uses.

`FormatSet` is what travels with a job: the specs by name (built-ins plus any
`--format-file`), whether levels are reported raw, and a `Dialect` per format
that counts buffers. A task's pieces name their format, so every rank and
every resume counts a file the same way.
"""

from __future__ import annotations

import hashlib
import json
import os

from ..analysis.options import Analysis
from .engine import BLANK, CONTINUATION, Dialect
from .spec import FormatSpec, SpecError, spec_from_dict

SPEC_FOLDER = os.path.join(os.path.dirname(__file__), "specs")
DEFAULT_FORMAT = "seed"  # what a file no spec fits is counted as
AUTO = "auto"  # a small file's format, decided by whoever reads it (the same pure rule as the planner's)

__all__ = ["AUTO", "BLANK", "CONTINUATION", "DEFAULT_FORMAT", "Dialect", "FormatSet", "FormatSpec", "SpecError",
           "builtin_specs", "load_format_file"]


def builtin_specs() -> list[FormatSpec]:
    """The specs shipped in specs/*.json, sorted by name."""
    specs = []
    for name in sorted(os.listdir(SPEC_FOLDER)):
        if name.endswith(".json"):
            path = os.path.join(SPEC_FOLDER, name)
            with open(path, encoding="utf-8") as f:
                specs.append(spec_from_dict(json.load(f), origin=path, builtin=True))
    return specs


def load_format_file(path: str) -> list[FormatSpec]:
    """A user's specs: one JSON object, or a list of them; raises SpecError."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise SpecError(f"cannot read format file {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"format file {path} is not valid JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    return [spec_from_dict(item, origin=path) for item in items]


class FormatSet:
    """The formats a job knows, each ready to count."""

    def __init__(self, specs: list[FormatSpec], raw_levels: bool = False, analysis: Analysis | None = None):
        self.raw_levels = raw_levels
        self.analysis = analysis or Analysis()  # statistics and filters beyond level counts
        self.specs: dict[str, FormatSpec] = {}
        for spec in specs:  # a user's spec of a built-in's name replaces it
            self.specs[spec.name] = spec
        self._dialects: dict[str, Dialect] = {}
        self._by_priority: list[str] | None = None

    @classmethod
    def standard(cls, format_files=(), raw_levels: bool = False, analysis: Analysis | None = None) -> "FormatSet":
        """The built-ins plus the specs of `format_files`; a user's specs are checked on their
        samples (the built-ins' samples are checked by the test suite, not at every start-up)."""
        users = [spec for path in format_files for spec in load_format_file(path)]
        formats = cls(builtin_specs() + users, raw_levels, analysis)
        formats.check_samples(only=[spec.name for spec in users])
        return formats

    def __contains__(self, name: str) -> bool:
        return name in self.specs

    @property
    def names(self) -> list[str]:
        return sorted(self.specs)

    def by_priority(self) -> list[str]:
        """Format names, the most specific first (priority, then name): detection's order."""
        if self._by_priority is None:
            self._by_priority = sorted(self.specs, key=lambda name: (-self.specs[name].priority, name))
        return self._by_priority

    def dialect(self, name: str) -> Dialect:
        """The counting dialect of format `name` (made once, then reused)."""
        if name not in self._dialects:
            if name not in self.specs:
                raise SpecError(f"unknown format {name!r} (known: {', '.join(self.names)})")
            self._dialects[name] = Dialect(self.specs[name], self.raw_levels)
        return self._dialects[name]

    def check_samples(self, only=None) -> None:
        """Every spec's sample lines give their expected level; raises SpecError."""
        for name in only if only is not None else self.names:
            dialect = Dialect(self.specs[name], raw_levels=False)
            for line, expected in self.specs[name].samples:
                got = dialect.classify(line)
                shown = "continuation" if got == CONTINUATION else "blank" if got == BLANK else got
                if shown != expected:
                    text = line[:60].decode("utf-8", "replace")
                    raise SpecError(f"format {name}: sample {text!r} gives {shown!r}, expected {expected!r}")

    def digest(self) -> str:
        """Names what counting means in this set (specs, level mode, analysis), for checkpoints."""
        h = hashlib.blake2b(digest_size=8)
        h.update(b"raw" if self.raw_levels else b"canonical")
        h.update(self.analysis.digest_text().encode())
        for name in self.names:
            h.update(self.specs[name].source.encode())
        return h.hexdigest()

    def __getstate__(self):  # dialects are caches: rebuilt where the set is unpickled
        return {"raw_levels": self.raw_levels, "specs": self.specs, "analysis": self.analysis}

    def __setstate__(self, state):
        self.raw_levels = state["raw_levels"]
        self.analysis = state["analysis"]
        self.specs = state["specs"]
        self._dialects = {}
        self._by_priority = None
