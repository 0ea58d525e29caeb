"""An in-memory stand-in for MPI, for the whole-job simulation (no MPI, no clock).

`SimNetwork` holds one FIFO channel per (source, destination) pair, as MPI
keeps the order of two ranks' messages, and one inbox per rank for what has
arrived. The simulation decides when the head of a channel arrives; a message
travels pickled, so no object is ever shared between two ranks. A dead rank
sends and receives nothing more, and the others hear of its death through
failure notices, as ULFM's errors tell the MPI transport.

`SimTransport` is one rank's view: a `Transport` (cluster/seams.py), as MpiTransport is.
"""

from __future__ import annotations

import pickle
from collections import deque

from loganalyser.cluster.seams import Transport


class SimNetwork:
    """Channels, inboxes and deaths of ranks 0..size-1; `now` is set by the simulation."""

    def __init__(self, size: int, rng):
        self.size = size
        self.rng = rng
        self.now = 0.0
        self.max_delay = 0.0  # a message cannot arrive before a delay drawn up to this
        self.channels: dict[tuple[int, int], deque] = {}  # (source, dest) -> (ready_at, bytes), oldest first
        self.inbox: list[deque] = [deque() for _ in range(size)]  # arrived: (source, message)
        self.dead: set[int] = set()
        self.notices: list[list[tuple[float, int]]] = [[] for _ in range(size)]  # (when, dead rank) per rank
        self.sent = 0  # messages put in flight, for the transcript's statistics

    def send(self, source: int, dest: int, message) -> None:
        if source in self.dead or dest in self.dead:
            return
        delay = self.rng.uniform(0.0, self.max_delay) if self.max_delay else 0.0
        self.channels.setdefault((source, dest), deque()).append((self.now + delay, pickle.dumps(message)))
        self.sent += 1

    def ready(self) -> list[tuple[int, int]]:
        """Channels whose oldest message may arrive now."""
        return [key for key, queue in self.channels.items() if queue and queue[0][0] <= self.now]

    def arrive(self, key: tuple[int, int]) -> tuple[int, int, object]:
        """The oldest message of channel `key` reaches its destination's inbox."""
        source, dest = key
        _, payload = self.channels[key].popleft()
        message = pickle.loads(payload)
        self.inbox[dest].append((source, message))
        return source, dest, message

    def next_arrival(self) -> float | None:
        """When the next message in flight may arrive, or None if none is in flight."""
        times = [queue[0][0] for queue in self.channels.values() if queue]
        return min(times) if times else None

    def kill(self, rank: int, notify: bool, notice_delay: float, keep_sent) -> None:
        """`rank` dies: what it had not sent yet is lost (`keep_sent(n)` says how many of a
        channel's n messages in flight got out first); with `notify`, every live rank
        learns of it within `notice_delay` seconds."""
        self.dead.add(rank)
        self.inbox[rank].clear()
        for (source, dest), queue in self.channels.items():
            if dest == rank:
                queue.clear()
            elif source == rank:
                kept = keep_sent(len(queue))
                while len(queue) > kept:
                    queue.pop()
        if notify:
            for other in range(self.size):
                if other not in self.dead:
                    self.notices[other].append((self.now + self.rng.uniform(0.0, notice_delay), rank))

    def in_flight_from(self, rank: int) -> int:
        return sum(len(queue) for (source, _), queue in self.channels.items() if source == rank)


class SimTransport(Transport):
    """One rank's end of the SimNetwork: the Transport the MPI one is."""

    def __init__(self, network: SimNetwork, rank: int):
        self.network = network
        self.rank = rank
        self.size = network.size
        self._failed: set[int] = set()

    def send(self, dest: int, message) -> None:
        if dest not in self._failed:
            self.network.send(self.rank, dest, message)

    def poll(self):
        inbox = self.network.inbox[self.rank]
        return inbox.popleft() if inbox else None

    def take_failures(self) -> list[int]:
        notices = self.network.notices[self.rank]
        due = [rank for when, rank in notices if when <= self.network.now and rank not in self._failed]
        self.network.notices[self.rank] = [(when, rank) for when, rank in notices if when > self.network.now]
        self._failed.update(due)
        return due

    def known_failed(self) -> set[int]:
        return set(self._failed)

    def flush(self, timeout: float) -> None:
        pass  # nothing is outstanding: a send is in flight at once
