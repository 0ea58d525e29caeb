"""The job's state: a grow-only map task id -> result. Pure.

Invariant: totals are derived from the map, and a task id enters it at most
once. Whatever runs twice (a re-queued task, a late result from a worker
thought dead, a result resent to a new master) is counted once. Merging two
copies (master and backup, master and checkpoint) is a union.
Sub-ranges of a split task (subranges.py) are ids too: one that overlaps an
accepted part of the same planned task is refused like a known id.
"""

from __future__ import annotations

from loganalyser.counting.result import PartialResult

from .subranges import RangeIndex


class JobState:
    """Accepted task results; `total` is always their sum."""

    def __init__(self, results: dict[str, PartialResult] | None = None):
        self._results: dict[str, PartialResult] = {}
        self._total = PartialResult()  # running sum of _results, kept in step
        self._ranges = RangeIndex()  # which part of each planned task the accepted ids cover
        for task_id, result in (results or {}).items():
            self.accept(task_id, result)

    def accept(self, task_id: str, result: PartialResult) -> bool:
        """Records a task's result; False (and no change) if it was known or overlaps an accepted part."""
        if task_id in self._results or not self._ranges.claim(task_id):
            return False
        self._results[task_id] = result
        self._total.add(result)
        return True

    def merge(self, other: "JobState") -> int:
        """Union with another copy; returns how many results were new."""
        return sum(self.accept(task_id, result) for task_id, result in other.items())

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._results

    def __len__(self) -> int:
        return len(self._results)

    def items(self):
        return self._results.items()

    def items_of(self, task_ids) -> list:
        """(task id, result) pairs for the given ids that are known."""
        return [(t, self._results[t]) for t in task_ids if t in self._results]

    def covers(self, task) -> bool:
        """The accepted ids cover all of planned `task` (itself, or sub-ranges tiling it)."""
        return self._ranges.covered(task)

    def total(self) -> PartialResult:
        """The sum of all accepted results (a copy)."""
        return PartialResult() + self._total
