"""Sub-ranges of planned tasks (work stealing): their ids, and which parts of a task are done. Pure.

A busy worker's task may be cut where its counting stands (cluster/stealing.py):
[start, end) becomes [start, cut) and [cut, end). Every sub-range is named after
the planned task it comes from, its root, and its absolute byte bounds:
`<root id>@<start>-<end>`. The name alone says what it covers, so a new master, a
checkpoint or a resume that only knows the plan can tell which parts of a planned
task are done, and the rest becomes new ranges with the same names everywhere.
A range owns the lines that start in it (reader.py), so disjoint ranges that
tile a task count each of its lines once. Two results that overlap must never
both be accepted: `RangeIndex` refuses the second.
"""

from __future__ import annotations

from dataclasses import replace

from loganalyser.counting.reader import SMALL_FILE

from .tasks import Task

SEP = "@"  # planned ids are hex digests (or a test's names): never contain it


def sub_id(root: str, start: int, end: int) -> str:
    return f"{root}{SEP}{start}-{end}"


def root_of(task_id: str) -> str:
    """The planned task a (sub-)task id comes from."""
    return task_id.split(SEP, 1)[0]


def bounds_of(task_id: str) -> tuple[int, int] | None:
    """[start, end) of a sub-range id; None for a planned task's own id (all of it)."""
    if SEP not in task_id:
        return None
    start, end = task_id.split(SEP, 1)[1].split("-")
    return int(start), int(end)


def splittable(task: Task) -> bool:
    """One plain byte range: not a batch, not a compressed file (read from its start only),
    not a small whole file (read in one go, its format maybe decided on reading)."""
    if len(task.pieces) != 1:
        return False
    piece = task.pieces[0]
    return not piece.compressed and not (piece.whole and piece.length <= SMALL_FILE)


def span(task: Task) -> tuple[int, int]:
    """[start, end) of a one-piece task."""
    piece = task.pieces[0]
    return piece.offset, piece.offset + piece.length


def sub_task(task: Task, start: int, end: int) -> Task:
    """The part [start, end) of a splittable (sub-)task, named after its root."""
    piece = task.pieces[0]
    if start == piece.offset and end == piece.offset + piece.length:
        return task
    return Task(sub_id(root_of(task.task_id), start, end), (replace(piece, offset=start, length=end - start, whole=False),))


def overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def minus(outer: tuple[int, int], cut: tuple[int, int]) -> list[tuple[int, int]]:
    """What is left of `outer` without `cut` (zero, one or two ranges)."""
    left = [(outer[0], min(outer[1], cut[0])), (max(outer[0], cut[1]), outer[1])]
    return [r for r in left if r[0] < r[1]]


class RangeIndex:
    """The parts of each root that accepted ids cover; refuses an id that overlaps one.

    A planned id covers all of its root; a sub-range id its bounds."""

    def __init__(self):
        self._taken: dict[str, list[tuple[int, int] | None]] = {}  # root -> accepted bounds (None: all of it)

    def claim(self, task_id: str) -> bool:
        """Records `task_id` unless it overlaps an accepted part of its root (then False)."""
        taken = self._taken.setdefault(root_of(task_id), [])
        mine = bounds_of(task_id)
        for other in taken:
            if mine is None or other is None or overlap(mine, other):
                return False
        taken.append(mine)
        return True

    def covered(self, task: Task) -> bool:
        """The accepted parts of planned `task` tile it (or its own id was accepted)."""
        taken = self._taken.get(task.task_id, [])
        if None in taken:
            return True
        if not taken or len(task.pieces) != 1:
            return False
        start, end = span(task)
        return sum(b - a for a, b in taken) == end - start  # disjoint parts within the task

    def parts(self, root: str) -> list[tuple[int, int] | None]:
        return list(self._taken.get(root, ()))


def uncovered(tasks, task_ids) -> list[Task]:
    """The planned `tasks` that `task_ids` (planned ids and sub-ranges) do not tile exactly
    once; every task if an id overlaps another or belongs to no planned task."""
    index = RangeIndex()
    planned = {task.task_id for task in tasks}
    if not all(index.claim(t) and root_of(t) in planned for t in task_ids):
        return list(tasks)
    return [task for task in tasks if not index.covered(task)]
