"""A rank's end of the simulated network: the whole-job simulation's stand-in for MPI.

The network itself (`SimNetwork`: ordered channels, deaths, failure notices)
is election/network.py, the one the election's own simulation runs on too.
`SimTransport` is one rank's view of it: a `Transport` (cluster/seams.py), as
MpiTransport is.
"""

from __future__ import annotations

from election.network import SimNetwork
from loganalyser.cluster.seams import Transport


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
        due = [rank for rank in self.network.due_notices(self.rank) if rank not in self._failed]
        self._failed.update(due)
        return due

    def known_failed(self) -> set[int]:
        return set(self._failed)

    def flush(self, timeout: float) -> None:
        pass  # nothing is outstanding: a send is in flight at once
