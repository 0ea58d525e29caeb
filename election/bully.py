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
  election, the wait for the winner's Coordinator, the leader's next renewal
  or the end of its lease;
* a paused node does nothing at all until `recover`.

The majority rule (against partitions: bully alone lets a cut-off minority
elect its own leader). A leader acts as one (`BecomeLeader`) only while it
holds a lease from a majority of the ranks not known dead, itself included.
Every `renew` seconds it sends a stamped Coordinator to every rank; a follower
answers Accept and promises to back no other leader for `lease` seconds from
when the Coordinator reached it. The leader counts each Accept until its stamp
+ `lease` (its own clock), so two leaders can never hold a lease at the same
instant: their majorities would share a rank that promised both at once. A
lease that runs out ends the leadership (`LostQuorum`) and the rank claims a
fresh term, waiting for a majority. Deaths reported by ULFM are certain (a
cut link is never reported without ULFM's heartbeat detector), so a dead rank
leaves the count: a job whose ranks die one host after another goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from .actions import Action, BecomeLeader, LostQuorum, NewLeader, Send, StepDown
from .messages import Accept, Coordinator, Election, Ok, Probe, ProbeOk


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
    renew: float = 0.5  # a leader sends stamped Coordinators this often
    lease: float = 4.0  # an Accept backs its leader, and no other, for this long

    def __post_init__(self):
        if not 0 < self.probe_min <= self.probe_max:
            raise ValueError("need 0 < probe_min <= probe_max")
        if not self.probe_timeout > 0:
            raise ValueError("need probe_timeout > 0")
        if not 0 < self.election_timeout < self.coordinator_timeout:
            # The rank that said Ok runs its own election first: give it the time.
            raise ValueError("need 0 < election_timeout < coordinator_timeout")
        if not 0 < self.renew < self.lease:
            raise ValueError("need 0 < renew < lease")  # else every lease lapses between two renewals


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
        self.dead: set[int] = set()  # ranks ULFM reported dead, even if a message they sent arrives later
        self.quorum_heard = now  # when this rank last knew of a leader holding a lease (itself included)
        self._announced: tuple | None = (0, 1)  # the (leader, epoch) the shell last heard of
        self._probing = False  # a follower's Probe is out and unanswered
        self._timer: float | None = None  # when tick() next has something to do
        self._support: dict[int, float] = {}  # a leader's: rank -> stamp of its latest Accept
        self._led: int | None = None  # the epoch the shell was told to lead (BecomeLeader) and still leads
        self._renew_at = now  # a leader's next round of stamped Coordinators
        self._promise: tuple[int, float] | None = None  # (leader, until): this rank backs no other before `until`
        # The job starts as if every rank had just accepted rank 0 at epoch 1.
        if self.role is Role.LEADER:
            self._support = dict.fromkeys(self._others(), now)
            self._led = 1
            self._renew_at = self._timer = now + timing.renew
        else:
            self._promise = (0, now + timing.lease)
            self._schedule_probe(now)

    # ------------------------------------------------------------------ queries
    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def has_lease(self, now: float) -> bool:
        """This rank leads, backed by a majority of the ranks not known dead (itself included) at `now`."""
        return self.role is Role.LEADER and self._lease_end(now) > now

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
        return self._leader_tick(now)

    def peer_failed(self, rank: int, now: float) -> list[Action]:
        """ULFM reports `rank` dead: never wait for it again; if it led, elect at once."""
        if self.role is Role.PAUSED or rank == self.rank or not 0 <= rank < self.size:
            return []
        self.failed.add(rank)
        self.dead.add(rank)
        if rank == self.leader and not self.is_leader:
            self.leader = None
            if self.role is Role.FOLLOWER:
                return self._become_candidate(now)
        if self.role is Role.AWAITING_COORDINATOR and rank < self.rank:
            return self._become_candidate(now)  # it may be the rank that promised to win
        if self.role is Role.CANDIDATE and not self._higher_ranks():
            return self._become_leader(now)  # nobody above is left to answer: no need to wait out the timeout
        if self.is_leader:  # one rank fewer to count: a claim may now hold a majority
            actions = self._check_lease(now)
            self._set_leader_timer(now)
            return actions
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
        self._support.clear()
        self._led = None
        self._announced = None
        self.role = Role.PAUSED
        self._probing = False
        self._timer = None

    def recover(self, now: float) -> list[Action]:
        """Ends a feigned failure the bully way: by running an election."""
        if self.role is not Role.PAUSED:
            return []
        self.role = Role.FOLLOWER
        self.quorum_heard = now  # the pause was its own doing, not a sign of a minority
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
            actions = self._learn(message.leader, message.epoch, now)
        elif message.epoch == self.epoch:
            actions = []
            if source == message.leader < self.rank:  # the leader of our term is alive and outranks us
                actions = self._follow(message.leader, message.epoch, now)
        else:
            return self._remind(source)
        if message.stamp is None or source != message.leader:
            return actions  # a reminder: nothing to accept
        if message.confirmed:
            self.quorum_heard = now  # a leased leader reaches us: we are on the majority's side
            actions += self._announce(source, message.epoch)
        return actions + self._accept(source, message, now)

    def _on_accept(self, source: int, message: Accept, now: float) -> list[Action]:
        if not self.is_leader:
            return []  # too late: the lease it offers is of no use to a follower
        self._support[source] = max(message.stamp, self._support.get(source, -math.inf))
        actions = self._check_lease(now)
        self._set_leader_timer(now)
        return actions

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
                 ProbeOk: _on_probe_ok, Accept: _on_accept}

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
        """Declares a fresh term of our own above every term seen, and asks everyone to accept it;
        the shell hears of it (BecomeLeader) once a majority backs it, at once if it still does."""
        lost = []
        if self._led is not None and not self.has_lease(now):  # a lease that ran out unnoticed
            lost, self._led = [LostQuorum(self._led)], None
        epoch = self._next_own_epoch()
        self.epoch = self.seen = epoch
        self.leader = self.rank
        self.role = Role.LEADER
        self._announced = (self.rank, epoch)
        self._probing = False
        actions = lost + self._check_lease(now)
        if not any(isinstance(action, BecomeLeader) for action in actions):
            actions += self._renew(now)  # a claim (a new lease sent its confirmed round already)
        self._set_leader_timer(now)
        return actions

    def _follow(self, leader: int, epoch: int, now: float) -> list[Action]:
        """Follows `leader` at `epoch` (stepping down first if we led an older term)."""
        actions = [StepDown(leader, epoch)] if self.is_leader else []
        self._support.clear()
        self._led = None
        self.epoch = epoch
        self.leader = leader
        self.role = Role.FOLLOWER
        self._schedule_probe(now)
        return actions

    def _announce(self, leader: int, epoch: int) -> list[Action]:
        """Tells the shell whom to work for, once that leader holds a lease (its confirmed Coordinator):
        a claimant that no majority backs yet is no master to talk to."""
        if self.is_leader or (self.leader, self.epoch) != (leader, epoch) or self._announced == (leader, epoch):
            return []
        self._announced = (leader, epoch)
        return [NewLeader(leader, epoch)]

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

    # ------------------------------------------------------------ the majority rule
    def _leader_tick(self, now: float) -> list[Action]:
        """Renews the lease; if it ran out, stops leading and claims a fresh term."""
        actions = self._check_lease(now)
        if now >= self._renew_at:
            actions += self._renew(now)
        self._set_leader_timer(now)
        return actions

    def _renew(self, now: float) -> list[Action]:
        """A stamped Coordinator to every rank not known dead: each Accept backs us until stamp + lease."""
        self._renew_at = now + self.timing.renew
        confirmed = self._led == self.epoch
        return [Send(r, Coordinator(self.epoch, self.rank, now, confirmed)) for r in self._others()]

    def _check_lease(self, now: float) -> list[Action]:
        """Tells the shell when this leader gains a majority's lease for its term (and its followers,
        by a confirmed round at once), or loses it: then it claims a fresh term, so that no master
        ever leads one term twice."""
        if self.has_lease(now):
            self.quorum_heard = now
            if self._led != self.epoch:
                self._led = self.epoch
                return [BecomeLeader(self.epoch)] + self._renew(now)
            return []
        if self._led is not None:
            lost, self._led = self._led, None
            return [LostQuorum(lost)] + self._become_leader(now)
        return []

    def _set_leader_timer(self, now: float) -> None:
        self._timer = self._renew_at if self._led is None else min(self._renew_at, self._lease_end(now))

    def _lease_end(self, now: float) -> float:
        """Until when a majority of the ranks not known dead backs this rank, as of `now`."""
        needed = (self.size - len(self.dead)) // 2 + 1
        if self._free_to_back(self.rank, now):
            needed -= 1  # our own vote
        if needed <= 0:
            return math.inf
        ends = sorted((stamp + self.timing.lease for rank, stamp in self._support.items()
                       if rank not in self.dead), reverse=True)
        return ends[needed - 1] if len(ends) >= needed else -math.inf

    def _accept(self, leader: int, message: Coordinator, now: float) -> list[Action]:
        """Backs `leader` (our leader, in our term) unless we promised another that is not known dead."""
        if (self.role is not Role.FOLLOWER or self.leader != leader or self.epoch != message.epoch
                or not self._free_to_back(leader, now)):
            return []
        self._promise = (leader, now + self.timing.lease)
        return [Send(leader, Accept(message.epoch, message.stamp))]

    def _free_to_back(self, leader: int, now: float) -> bool:
        if self._promise is None:
            return True
        promised, until = self._promise
        return promised == leader or promised in self.dead or now >= until

    def _next_own_epoch(self) -> int:
        base = max(self.seen, self.epoch) + 1
        return base + (self.rank - base) % self.size

    def _higher_ranks(self) -> list[int]:
        return [r for r in range(self.rank) if r not in self.failed]

    def _others(self) -> list[int]:
        return [r for r in range(self.size) if r != self.rank and r not in self.failed]
