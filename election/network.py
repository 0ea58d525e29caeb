"""One in-memory network for every simulation here: the election's and the whole job's.

It lives in election/ because the election stands alone (it imports nothing of
loganalyser/), while the job's simulation may import the election: so both
simulations can share it. `SimNetwork` holds one FIFO channel per (source,
destination) pair, as MPI keeps the order of two ranks' messages, and one
inbox per rank for what has arrived. The simulation decides when the head of
a channel arrives; a message travels pickled, so no object is ever shared
between two ranks. A dead rank sends and receives nothing more, and the
others may hear of its death through failure notices, as ULFM's errors tell
the MPI transport. Beyond what MPI does on one machine, a message can be
dropped (`drop_rate`), a rank's links cut for a while (`isolate`), and the
network split into sides that cannot reach each other until it heals
(`split`, `heal`: a host's network cut, or a switch lost). A failure notice
reaches every rank, whatever the cuts: ULFM without its heartbeat detector
reports only deaths, and every rank on either side learns of them alike.

`FAULT_RATES` is the one table of how often each fault strikes, by the focus
of a schedule; `pick_fault` draws from it. Each simulation injects the faults
it models and lets the others pass.
"""

from __future__ import annotations

import pickle
from collections import deque


class SimNetwork:
    """Channels, inboxes and deaths of ranks 0..size-1; `now` is set by the simulation."""

    def __init__(self, size: int, rng):
        self.size = size
        self.rng = rng
        self.now = 0.0
        self.max_delay = 0.0  # a message cannot arrive before a delay drawn up to this
        self.drop_rate = 0.0  # chance that a message sent is lost
        self.channels: dict[tuple[int, int], deque] = {}  # (source, dest) -> (ready_at, bytes), oldest first
        self.inbox: list[deque] = [deque() for _ in range(size)]  # arrived: (source, message)
        self.dead: set[int] = set()
        self.cut_until: dict[int, float] = {}  # rank -> when its links come back (it keeps running)
        self.sides: dict[int, int] = {}  # rank -> its side while the network is split
        self.split_until = -1.0  # when the split heals
        self.hold_across_split = False  # True: what crosses the split waits for the heal (TCP retransmits), not lost
        self.notices: list[list[tuple[float, int]]] = [[] for _ in range(size)]  # (when, dead rank) per rank
        self.sent = 0  # messages put in flight, for the transcript's statistics

    def send(self, source: int, dest: int, message) -> bool:
        """Puts a message in flight; False if it is lost (a dead end, a cut link, a drop)."""
        if (source in self.dead or dest in self.dead or self.is_cut(source) or self.is_cut(dest)
                or (self.severed(source, dest) and not self.hold_across_split)):
            return False
        if self.drop_rate and self.rng.random() < self.drop_rate:
            return False
        delay = self.rng.uniform(0.0, self.max_delay) if self.max_delay else 0.0
        self.channels.setdefault((source, dest), deque()).append((self.now + delay, pickle.dumps(message)))
        self.sent += 1
        return True

    def ready(self) -> list[tuple[int, int]]:
        """Channels whose oldest message may arrive now."""
        return [key for key, queue in self.channels.items()
                if queue and queue[0][0] <= self.now and not (self.hold_across_split and self.severed(*key))]

    def arrive(self, key: tuple[int, int]) -> tuple[int, int, object] | None:
        """The oldest message of channel `key` reaches its destination's inbox (None: its
        destination's links are cut, and the message is lost)."""
        source, dest = key
        _, payload = self.channels[key].popleft()
        if self.is_cut(dest) or self.severed(source, dest):
            return None
        message = pickle.loads(payload)
        self.inbox[dest].append((source, message))
        return source, dest, message

    def next_arrival(self) -> float | None:
        """When the next message in flight may arrive, or None if none is in flight."""
        times = [max(queue[0][0], self.split_until if self.hold_across_split and self.severed(*key) else -1.0)
                 for key, queue in self.channels.items() if queue]
        return min(times) if times else None

    def end_delays(self) -> None:
        """Every message in flight may arrive now (the faults stopped)."""
        for key, queue in self.channels.items():
            self.channels[key] = deque((min(ready_at, self.now), payload) for ready_at, payload in queue)

    def isolate(self, rank: int, seconds: float) -> None:
        """Cuts every link of `rank` for `seconds`: what it sends and what reaches it is lost."""
        self.cut_until[rank] = self.now + seconds

    def is_cut(self, rank: int) -> bool:
        return self.cut_until.get(rank, -1.0) > self.now

    def split(self, sides: list[set[int]], seconds: float) -> None:
        """Splits the network for `seconds`: no message crosses from one side to another.
        A rank on no side is alone on its own."""
        self.sides = {rank: i for i, side in enumerate(sides) for rank in side}
        self.split_until = self.now + seconds

    def heal(self) -> None:
        """Ends a split and every cut link now."""
        self.split_until = -1.0
        self.cut_until.clear()

    def severed(self, a: int, b: int) -> bool:
        """The split keeps `a` and `b` apart now."""
        return self.split_until > self.now and self.sides.get(a, -1 - a) != self.sides.get(b, -1 - b)

    def kill(self, rank: int, notify: bool, notice_delay: float, keep_sent) -> None:
        """`rank` dies: what it had not sent yet is lost (`keep_sent(n)` says how many of a
        channel's n messages in flight got out first); with `notify`, every live rank
        learns of it within `notice_delay` seconds."""
        self.dead.add(rank)
        self.inbox[rank].clear()
        self.cut_until.pop(rank, None)
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

    def due_notices(self, rank: int) -> list[int]:
        """The deaths `rank` learns of now (each once)."""
        notices = self.notices[rank]
        self.notices[rank] = [(when, dead) for when, dead in notices if when > self.now]
        return [dead for when, dead in notices if when <= self.now]

    def in_flight_from(self, rank: int) -> int:
        return sum(len(queue) for (source, _), queue in self.channels.items() if source == rank)


FAULT_RATES = {  # focus -> chance per event of each fault (an event: a turn, an arrival, a clock move)
    "mixed": {"crash": 0.002, "stop": 0.002, "feign": 0.002, "isolate": 0.001, "partition": 0.001},
    "leader": {"crash": 0.004, "stop": 0.001, "feign": 0.001, "isolate": 0.0005},  # the leader (master) crashes
    "candidate": {"crash": 0.004, "stop": 0.001, "feign": 0.001, "isolate": 0.0005},  # ranks crash mid-election
    "stop": {"crash": 0.001, "stop": 0.004, "feign": 0.001, "isolate": 0.0005},  # SIGSTOP pauses: messages wait
    "feign": {"crash": 0.001, "stop": 0.001, "feign": 0.005, "isolate": 0.0005},  # feigned failures: messages lost
    "isolate": {"crash": 0.0005, "stop": 0.0005, "feign": 0.0005, "isolate": 0.003},  # a rank's links are cut
    "partition": {"crash": 0.0005, "stop": 0.0005, "feign": 0.0005, "partition": 0.003},  # the network splits
    "ending": {"crash": 0.002, "stop": 0.001, "feign": 0.001},  # faults during the job's end
}


def pick_fault(rng, focus: str, faults, scale: float = 1.0) -> str | None:
    """The fault that strikes at this event, among those a simulation models, or None.

    `scale` fits the rates to how much happens in one of the simulation's events."""
    x = rng.random()
    for fault, rate in FAULT_RATES[focus].items():
        if fault not in faults:
            continue
        if x < rate * scale:
            return fault
        x -= rate * scale
    return None
