"""The bully election with epochs, as a pure state machine (no MPI, no clock, no I/O).

The shell feeds it what happened, with `now` from its clock: a message
(`step`), the passing of time (`tick`, at the latest by `next_deadline()`), a
ULFM failure notice (`peer_failed`), a feigned failure (`pause` / `recover`).
It carries out the actions returned, in order. Randomness (the probe
intervals) comes from the `rng` the caller passes in.

Invariants:
* priority is rank order, rank 0 first; once faults stop, the lowest live rank
  leads and every live rank follows it at the same epoch;
* `epoch` (the term this node leads or follows) and `seen` (the newest term
  heard of, `seen >= epoch`) never decrease;
* a node declares itself only at the smallest epoch above `seen` congruent to
  its rank modulo `size`: no two ranks ever lead the same epoch, and no rank
  leads one twice;
* a newer term is followed at once if its leader outranks this node; if this
  node outranks that leader, it takes the term's number and challenges it
  (bully rule), so it never settles under a lower-priority leader;
* every wait has a deadline (`_timer`): the next probe or its answer, the
  election, the wait for the winner's Coordinator, the leader's check for
  silent ranks;
* a paused node does nothing at all until `recover`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .actions import Action, BecomeLeader, NewLeader, Send, StepDown
from .messages import Coordinator, Election, Ok, Probe, ProbeOk


class Role(Enum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"  # sent Election to the higher ranks, waiting for an Ok
    AWAITING_COORDINATOR = "awaiting coordinator"  # a higher rank said Ok; waiting for the winner
    LEADER = "leader"
    PAUSED = "paused"  # feigning failure: deaf and mute until recover()


@dataclass(frozen=True)
class ElectionTiming:
    """How often followers probe the leader and how long each wait may last (seconds)."""

    probe_min: float = 0.5  # a follower probes its leader every uniform(probe_min, probe_max)
    probe_max: float = 3.0
    probe_timeout: float = 1.0  # no ProbeOk within this: the leader is dead
    election_timeout: float = 1.0  # no Ok within this: the candidate wins
    coordinator_timeout: float = 3.0  # after an Ok, no Coordinator within this: run again

    def __post_init__(self):
        if not 0 < self.probe_min <= self.probe_max:
            raise ValueError("need 0 < probe_min <= probe_max")
        if not self.probe_timeout > 0:
            raise ValueError("need probe_timeout > 0")
        if not 0 < self.election_timeout < self.coordinator_timeout:
            # The rank that said Ok runs its own election first: give it the time.
            raise ValueError("need 0 < election_timeout < coordinator_timeout")

    @property
    def silence_limit(self) -> float:
        """A live follower probes at least this often; a leader re-announces itself to ranks quieter than that."""
        return self.probe_max + self.probe_timeout


class BullyNode:
    """One rank's view of the election: who leads, at which epoch, and what to do next."""

    def __init__(self, rank: int, size: int, timing: ElectionTiming, rng, now: float):
        if not 0 <= rank < size:
            raise ValueError(f"rank {rank} outside 0..{size - 1}")
        self.rank = rank
        self.size = size
        self.timing = timing
        self.rng = rng  # only rng.uniform(a, b) is used
        self.epoch = 1  # the term this node leads or follows
        self.seen = 1  # the newest term heard of in any message
        self.leader: int | None = 0  # None while this node knows no live leader
        self.role = Role.LEADER if rank == 0 else Role.FOLLOWER
        self.failed: set[int] = set()  # ranks ULFM reported dead and silent since
        self._announced: tuple | None = (0, 1)  # the (leader, epoch) the shell last heard of
        self._probing = False  # a follower's Probe is out and unanswered
        self._heard: set[int] = set()  # a leader's: ranks heard from since its last check
        self._timer: float | None = None  # when tick() next has something to do
        if self.role is Role.LEADER:
            self._timer = now + timing.silence_limit
        else:
            self._schedule_probe(now)

    # ------------------------------------------------------------------ queries
    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def next_deadline(self) -> float | None:
        """The clock value at which `tick` next has work; None while paused."""
        return self._timer

    # ------------------------------------------------------------------ events
    def step(self, source: int, message, now: float) -> list[Action]:
        """Feeds one message from rank `source`; returns actions."""
        if not 0 <= source < self.size:
            raise ValueError(f"message from rank {source} outside 0..{self.size - 1}")
        if self.role is Role.PAUSED or source == self.rank:
            return []
        handler = self._handlers.get(type(message))
        if handler is None:
            raise TypeError(f"not an election message: {message!r}")
        self.failed.discard(source)  # it speaks, so it lives
        self._heard.add(source)
        self.seen = max(self.seen, message.epoch)
        return handler(self, source, message, now)

    def tick(self, now: float) -> list[Action]:
        """Acts on the deadline that has passed, if any: probe, give up waiting, re-announce."""
        if self._timer is None or now < self._timer:
            return []
        if self.role is Role.FOLLOWER:
            if self._probing:  # the leader did not answer in time: it is dead
                self.leader = None
                return self._become_candidate(now)
            return self._send_probe(now)
        if self.role is Role.CANDIDATE:  # no higher rank answered
            return self._become_leader(now)
        if self.role is Role.AWAITING_COORDINATOR:  # the rank that said Ok never won
            return self._become_candidate(now)
        return self._announce_to_silent(now)

    def peer_failed(self, rank: int, now: float) -> list[Action]:
        """ULFM reports `rank` dead: never wait for it again; if it led, elect at once."""
        if self.role is Role.PAUSED or rank == self.rank or not 0 <= rank < self.size:
            return []
        self.failed.add(rank)
        if rank == self.leader and not self.is_leader:
            self.leader = None
            if self.role is Role.FOLLOWER:
                return self._become_candidate(now)
        if self.role is Role.AWAITING_COORDINATOR and rank < self.rank:
            return self._become_candidate(now)  # it may be the rank that promised to win
        if self.role is Role.CANDIDATE and not self._higher_ranks():
            return self._become_leader(now)  # nobody above is left to answer: no need to wait out the timeout
        return []

    def learn_term(self, leader: int, epoch: int, now: float) -> list[Action]:
        """The shell heard of term `epoch` led by `leader` from a message of its own (the job's
        end, say): taken as a COORDINATOR would be, but not as a sign that `leader` lives."""
        if self.role is Role.PAUSED or not 0 <= leader < self.size:
            return []
        self.seen = max(self.seen, epoch)
        return self._learn(leader, epoch, now) if epoch > self.epoch else []

    def start_election(self, now: float) -> list[Action]:
        """Runs for leader now; nothing to do for a leader, a paused rank or a running election."""
        if self.role is not Role.FOLLOWER:
            return []
        return self._become_candidate(now)

    def pause(self) -> None:
        """Feigns failure: every input is ignored until `recover`. A paused leader leads no more.

        The shell lost every message meanwhile (its assignments too), so whoever
        it follows after recovering is announced again, even the same leader."""
        if self.is_leader:
            self.leader = None
        self._announced = None
        self.role = Role.PAUSED
        self._probing = False
        self._timer = None

    def recover(self, now: float) -> list[Action]:
        """Ends a feigned failure the bully way: by running an election."""
        if self.role is not Role.PAUSED:
            return []
        self.role = Role.FOLLOWER
        return self._become_candidate(now)

    # ---------------------------------------------------------------- handlers
    def _on_election(self, source: int, message: Election, now: float) -> list[Action]:
        if source < self.rank:
            return []  # elections only go up the priority order
        actions = [Send(source, Ok(self.epoch))]
        if self.is_leader:
            if message.epoch > self.epoch:  # a newer term is in use somewhere: claim one above it
                return actions + self._become_leader(now)
            return actions + [Send(source, Coordinator(self.epoch, self.rank))]
        if self.role is Role.FOLLOWER:
            actions += self._become_candidate(now)
        return actions

    def _on_ok(self, source: int, message: Ok, now: float) -> list[Action]:
        if self.role is Role.CANDIDATE and source < self.rank:
            self.role = Role.AWAITING_COORDINATOR
            self._timer = now + self.timing.coordinator_timeout
        return []

    def _on_coordinator(self, source: int, message: Coordinator, now: float) -> list[Action]:
        if message.epoch > self.epoch:
            return self._learn(message.leader, message.epoch, now)
        if message.epoch == self.epoch:
            if source == message.leader < self.rank:  # the leader of our term is alive and outranks us
                return self._follow(message.leader, message.epoch, now)
            return []
        return self._remind(source)

    def _on_probe(self, source: int, message: Probe, now: float) -> list[Action]:
        if self.leader is None or self.leader in self.failed:
            return []  # nothing useful to say: the prober times out and elects
        return [Send(source, ProbeOk(self.epoch, self.leader))]

    def _on_probe_ok(self, source: int, message: ProbeOk, now: float) -> list[Action]:
        if message.epoch > self.epoch:
            return self._learn(message.leader, message.epoch, now)
        if (self.role is Role.FOLLOWER and self._probing and source == self.leader
                and message.epoch == self.epoch and message.leader == self.leader):
            self._schedule_probe(now)
        return []

    _handlers = {Election: _on_election, Ok: _on_ok, Coordinator: _on_coordinator, Probe: _on_probe,
                 ProbeOk: _on_probe_ok}

    # ------------------------------------------------------------- transitions
    def _become_candidate(self, now: float) -> list[Action]:
        """Asks every higher rank not known dead; with none to ask, wins at once."""
        higher = self._higher_ranks()
        if not higher:
            return self._become_leader(now)
        self.role = Role.CANDIDATE
        self._probing = False
        self._timer = now + self.timing.election_timeout
        return [Send(r, Election(self.epoch)) for r in higher]

    def _become_leader(self, now: float) -> list[Action]:
        """Declares a fresh term of our own above every term seen, and tells everyone."""
        epoch = self._next_own_epoch()
        self.epoch = self.seen = epoch
        self.leader = self.rank
        self.role = Role.LEADER
        self._announced = (self.rank, epoch)
        self._probing = False
        self._heard = set()
        self._timer = now + self.timing.silence_limit
        return [BecomeLeader(epoch)] + [Send(r, Coordinator(epoch, self.rank)) for r in self._others()]

    def _follow(self, leader: int, epoch: int, now: float) -> list[Action]:
        """Follows `leader` at `epoch` (stepping down first if we led an older term)."""
        actions = [StepDown(leader, epoch)] if self.is_leader else []
        self.epoch = epoch
        self.leader = leader
        self.role = Role.FOLLOWER
        self._schedule_probe(now)
        if self._announced != (leader, epoch):
            self._announced = (leader, epoch)
            actions.append(NewLeader(leader, epoch))
        return actions

    def _learn(self, leader: int, epoch: int, now: float) -> list[Action]:
        """A newer term than ours: follow it if its leader outranks us, else challenge it."""
        if leader == self.rank or leader in self.failed:
            return []  # not a term anyone can follow; `seen` already holds its number
        if leader < self.rank:
            return self._follow(leader, epoch, now)
        if self.is_leader or not self._higher_ranks():
            return self._become_leader(now)  # keep leading, in a term above the usurper's
        return self._follow(leader, epoch, now) + self._become_candidate(now)

    def _remind(self, source: int) -> list[Action]:
        """Answers a message from an older term with the present one, if we know a live leader."""
        if self.leader is None or self.leader in self.failed:
            return []
        return [Send(source, Coordinator(self.epoch, self.leader))]

    # ----------------------------------------------------------------- helpers
    def _send_probe(self, now: float) -> list[Action]:
        self._probing = True
        self._timer = now + self.timing.probe_timeout
        return [Send(self.leader, Probe(self.epoch))]

    def _schedule_probe(self, now: float) -> None:
        self._probing = False
        self._timer = now + self.rng.uniform(self.timing.probe_min, self.timing.probe_max)

    def _announce_to_silent(self, now: float) -> list[Action]:
        """A leader reminds ranks it has not heard from lately: one may follow another leader."""
        silent = [r for r in self._others() if r not in self._heard]
        self._heard = set()
        self._timer = now + self.timing.silence_limit
        return [Send(r, Coordinator(self.epoch, self.rank)) for r in silent]

    def _next_own_epoch(self) -> int:
        base = max(self.seen, self.epoch) + 1
        return base + (self.rank - base) % self.size

    def _higher_ranks(self) -> list[int]:
        return [r for r in range(self.rank) if r not in self.failed]

    def _others(self) -> list[int]:
        return [r for r in range(self.size) if r != self.rank and r not in self.failed]
