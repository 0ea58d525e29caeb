"""The live status document, as the master last published it.

`publish(doc)` keeps the newest document for the dashboard and, with
`--status FILE`, writes it atomically (write, fsync, rename), at most a few
times a second, so a reader always finds a whole JSON document.

Keys other tools rely on: `epoch`, `master_rank`, `ranks` (one object per
rank with `rank`, `role`, `state`), `counts` (so far) and `done` (true once
the result is out).
"""

from __future__ import annotations

import json
import threading
import time

from loganalyser.persistence.atomic import write_atomic

WRITE_INTERVAL = 0.25  # seconds between two writes of the status file


class StatusBoard:
    def __init__(self, path: str | None = None, clock=time.monotonic, interval: float = WRITE_INTERVAL):
        self.path = path
        self.clock = clock
        self.interval = interval
        self._lock = threading.Lock()  # the dashboard's thread reads what the loop publishes
        self._latest = b"{}"
        self._doc: dict = {}
        self._written_at = float("-inf")
        self.writes = 0

    def publish(self, doc: dict, force: bool = False) -> None:
        data = json.dumps(doc, separators=(",", ":"), default=str).encode()
        with self._lock:
            self._latest, self._doc = data, doc
        if self.path and (force or self.clock() - self._written_at >= self.interval):
            write_atomic(self.path, data + b"\n", durable=False)  # whole by rename; a status needs no fsync
            self._written_at = self.clock()
            self.writes += 1

    def latest(self) -> bytes:
        with self._lock:
            return self._latest

    def document(self) -> dict:
        with self._lock:
            return self._doc
