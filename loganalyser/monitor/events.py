"""`--events FILE`: one JSON object per line for every event that matters.

Each line is written with one `write` on a file opened for appending, so the
lines of a master and of the master after it (a failover) land whole and in
order in the same file. Every event has `time` (ISO, milliseconds, UTC),
`event`, `rank` and `epoch`; the rest depends on the event.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

# The event names, as the timeline and the tests read them.
JOB_START, ASSIGN, RESULT, HEARTBEAT_GAP, FAILURE, REQUEUE, SPLIT = (
    "job_start", "assign", "result", "heartbeat_gap", "failure", "requeue", "split")
ELECTION_START, ELECTION_RESULT, HANDOVER, CHECKPOINT, RESUME, STOP, RELEASE = (
    "election_start", "election_result", "handover", "checkpoint", "resume", "stop", "release")


def now_iso(clock=time.time) -> str:
    moment = datetime.fromtimestamp(clock(), tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventLog:
    """Appends events to a file (or nowhere, when `path` is None)."""

    def __init__(self, path: str | None, clock=time.time):
        self.path = path
        self.clock = clock
        self.written = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if path else None

    def emit(self, event: str, rank: int, epoch: int, **fields) -> None:
        if self._fd is None:
            return
        record = {"time": now_iso(self.clock), "event": event, "rank": rank, "epoch": epoch, **fields}
        os.write(self._fd, (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode())
        self.written += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_events(path: str) -> list[dict]:
    """The events of a file, in order; a torn last line (a writer killed mid-write) is left out."""
    events = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "event" in record:
                events.append(record)
    return events
