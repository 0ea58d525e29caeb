"""An in-memory network of BullyNodes for seeded random schedules (no MPI, no clock).

One generator, passed in by the caller (`random.Random(seed)`), decides
everything: which in-flight message is delivered next, when the fake clock
moves, which rank crashes, pauses or recovers, which message is dropped or
delayed. The same seed therefore replays the same schedule, and `log` (a
callable taking one line) receives a transcript of it.

    sim = random_schedule(random.Random(seed))   # faults, then 30 quiet seconds
    assert not sim.problems, sim.problems

What the network does: it is the one the whole job's simulation runs on
(network.py): one ordered channel per pair of ranks, messages delayed,
dropped, or lost to a crashed rank, a cut link or a split network (random
sides, at random times, for random lengths, then healed); a paused rank
receives and ignores. A crash may come with ULFM notices to the others (`peer_failed`), and
a leader may crash in the middle of announcing its victory. How often each
fault strikes comes from the one table both simulations share
(network.FAULT_RATES). `problems` collects every
broken property: two leaders for one epoch, two leaders holding a majority's
lease at the same instant (the two reporting masters of a split network), an
epoch going back, and, after `settle`, anything but one live leader, the
lowest live rank, followed by every live rank at its epoch, and holding the
lease if the live ranks are a majority of those not known dead.
"""

from __future__ import annotations

from collections import Counter

from .actions import BecomeLeader, LostQuorum, NewLeader, Send, StepDown
from .bully import BullyNode, ElectionTiming, Role
from .network import SimNetwork, pick_fault

ELECTING = (Role.CANDIDATE, Role.AWAITING_COORDINATOR)
MAX_SETTLE_EVENTS = 100_000  # deliveries and ticks per settle: more means the protocol never quiets
FAULTS = ("crash", "feign", "isolate", "partition")  # what this simulation injects (a feigned failure is BullyNode.pause)
STEP_SCALE = 10.0  # one step here (a delivery or a clock move for every rank) is about ten of the job's events


class Simulation:
    """Ranks 0..size-1 on a fake network with a fake clock; faults on demand."""

    def __init__(self, size: int, rng, timing: ElectionTiming = ElectionTiming(), log=None,
                 notify_failures: bool = True):
        self.size = size
        self.rng = rng
        self.timing = timing
        self.log = log  # callable(str) for the transcript, or None
        self.notify_failures = notify_failures  # crashes come with ULFM notices
        self.net = SimNetwork(size, rng)  # its clock is the simulation's
        self.nodes = [BullyNode(r, size, timing, rng, 0.0) for r in range(size)]
        self.paused: dict[int, float] = {}  # rank -> when it recovers
        self.paused_since: dict[int, float] = {}  # rank -> when its latest pause began
        self.crash_on_declare = 0.0  # chance that a new leader dies while announcing itself
        self.leaders_by_epoch: dict[int, set[int]] = {1: {0}}
        self.problems: list[str] = []
        self.seen_events: Counter = Counter()  # what this schedule covered, for the tests' coverage checks
        self._leader_crash_epoch: int | None = None  # epoch of the last leader crashed
        self._epochs: dict[int, int] = {}  # rank -> its epoch after its last actions

    # ------------------------------------------------------- the network's state
    @property
    def now(self) -> float:
        return self.net.now

    @now.setter
    def now(self, value: float) -> None:
        self.net.now = value

    @property
    def crashed(self) -> set[int]:
        """Ranks dead for good."""
        return self.net.dead

    # ----------------------------------------------------------------- queries
    def live(self) -> list[int]:
        return [r for r in range(self.size) if r not in self.crashed]

    def leaders(self) -> list[int]:
        return [r for r in self.live() if self.nodes[r].is_leader]

    def leased(self) -> list[int]:
        """Live leaders holding a majority's lease now: the ranks that may act as master."""
        return [r for r in self.leaders() if self.nodes[r].has_lease(self.now)]

    def agreement_problems(self) -> list[str]:
        """What is wrong with the present state, read as a settled one."""
        live = self.live()
        if not live:
            return ["no live rank"]
        want = min(live)
        leaders = self.leaders()
        if leaders != [want]:
            return [f"leaders {leaders}, expected [{want}] (live {live})"]
        known_dead = self.nodes[want].dead
        majority = len(live) > (self.size - len(known_dead)) // 2
        if self.leased() != ([want] if majority else []):
            return [f"leased leaders {self.leased()} with live {live} of {self.size}, known dead {sorted(known_dead)}"]
        epoch = self.nodes[want].epoch
        return [f"rank {r} follows {self.nodes[r].leader} at epoch {self.nodes[r].epoch}, "
                f"expected {want} at {epoch}" for r in live
                if (self.nodes[r].leader, self.nodes[r].epoch) != (want, epoch)]

    # ----------------------------------------------------------------- network
    def feed(self, rank: int, actions: list) -> None:
        """Carries out `rank`'s actions (the shell's job) and checks the safety properties."""
        node = self.nodes[rank]
        stop_at = None  # index of the action before which a declaring leader dies
        declaring = node.is_leader and node.epoch > self._epochs.get(rank, 0)
        if declaring:
            self._record_leader(rank, node.epoch)  # a claim: no two ranks may claim one epoch
        if declaring and len(actions) > 1 and self.crash_on_declare and self.rng.random() < self.crash_on_declare and len(self.live()) > 1:
            stop_at = self.rng.randint(1, len(actions) - 1)  # its claim is sent in part
        for i, action in enumerate(actions):
            if i == stop_at:
                self.seen_events["leader crashed while announcing"] += 1
                self.crash(rank)
            if rank in self.crashed:
                return
            if isinstance(action, Send):
                self.send(rank, action.dest, action.message)
            elif isinstance(action, BecomeLeader):
                self._say(f"{rank}: {action}")
            elif isinstance(action, (NewLeader, StepDown, LostQuorum)):
                self._say(f"{rank}: {action}")
                if isinstance(action, LostQuorum):
                    self.seen_events["leader lost its majority"] += 1
            else:
                raise TypeError(f"no handler for {type(action).__name__}")
        if node.epoch < self._epochs.get(rank, 0) or node.seen < node.epoch:
            self.problems.append(f"rank {rank}: epoch {node.epoch} (seen {node.seen}) went back")
        self._epochs[rank] = node.epoch
        self._check_leases()

    def _check_leases(self) -> None:
        """Never two leaders with a majority's lease at once: a split network's two sides cannot both report."""
        leased = self.leased()
        if len(leased) > 1:
            self.problems.append(f"t={self.now:.3f}: leaders {leased} both hold a majority's lease")
        if leased and self.net.split_until > self.now:
            self.seen_events["a leased leader while split"] += 1
    def send(self, source: int, dest: int, message) -> None:
        """Puts a message in flight, unless the destination is dead, a link is cut, or it is dropped."""
        if not self.net.send(source, dest, message):
            self._say(f"{source}->{dest} {message} lost (dead, cut or dropped)")

    def deliver_random(self) -> bool:
        """Delivers the oldest message of a channel chosen at random; False if none may arrive."""
        ready = self.net.ready()
        if not ready:
            return False
        source, dest = ready[self.rng.randrange(len(ready))]
        got = self.net.arrive((source, dest))
        if got is None:
            self._say(f"{source}->{dest} lost (isolated)")
            return True
        message = self.net.inbox[dest].pop()[1]  # straight to the node: it has no loop of its own
        self._say(f"{source}->{dest} {message}")
        self.feed(dest, self.nodes[dest].step(source, message, self.now))
        return True

    def advance(self, dt: float) -> None:
        """Moves the clock, ends pauses that are due, and ticks every live rank."""
        self.now += dt
        for rank, until in sorted(self.paused.items()):
            if until <= self.now:
                self.recover(rank)
        for rank in self.live():
            self.feed(rank, self.nodes[rank].tick(self.now))
        self._check_leases()

    # ------------------------------------------------------------------ faults
    def crash(self, rank: int) -> None:
        """Kills `rank` for good: it never acts again, messages to it are lost."""
        if rank in self.crashed:
            return
        node = self.nodes[rank]
        if node.is_leader:
            self.seen_events["leader crashed"] += 1
            if self._leader_crash_epoch is not None and node.epoch > self._leader_crash_epoch:
                self.seen_events["second leader crashed"] += 1
            self._leader_crash_epoch = node.epoch
        elif node.role in ELECTING:
            self.seen_events["candidate crashed mid-election"] += 1
        self._say(f"crash {rank} ({node.role.value})")
        self.net.kill(rank, notify=False, notice_delay=0.0, keep_sent=lambda n: n)  # its notices come below, at once
        self.paused.pop(rank, None)
        if self.notify_failures:
            for other in self.live():
                self.feed(other, self.nodes[other].peer_failed(rank, self.now))

    def pause(self, rank: int, duration: float) -> None:
        """Feigned failure: `rank` ignores everything for `duration` seconds, then recovers."""
        if rank in self.crashed or rank in self.paused:
            return
        self._say(f"pause {rank} ({self.nodes[rank].role.value}) for {duration:.3f}s")
        self.nodes[rank].pause()
        self.paused[rank] = self.now + duration
        self.paused_since[rank] = self.now

    def isolate(self, rank: int, duration: float) -> None:
        """Cuts every link of `rank` for `duration` seconds; unlike a pause, it keeps running."""
        if rank in self.crashed:
            return
        if self.nodes[rank].is_leader:
            self.seen_events["leader isolated"] += 1
        self._say(f"isolate {rank} ({self.nodes[rank].role.value}) for {duration:.3f}s")
        self.net.isolate(rank, duration)

    def split(self, sides: list[set[int]], duration: float) -> None:
        """Splits the network into `sides` for `duration` seconds (every rank keeps running)."""
        leaders = self.leased()
        if leaders and any(leaders[0] in side and len(side) <= self.size // 2 for side in sides):
            self.seen_events["leased leader cut off in a minority"] += 1
        if all(len(side) <= self.size // 2 for side in sides):
            self.seen_events["split with no majority side"] += 1
        self._say(f"split {[sorted(side) for side in sides]} for {duration:.3f}s")
        self.net.split(sides, duration)

    def recover(self, rank: int) -> None:
        """Ends `rank`'s pause now (the node runs an election)."""
        if rank not in self.paused:
            return
        del self.paused[rank]
        if rank == 0 and self.now - self.paused_since[rank] > self.timing.probe_timeout:
            self.seen_events["rank 0 paused past the probe timeout, recovered"] += 1
        self._say(f"recover {rank}")
        self.feed(rank, self.nodes[rank].recover(self.now))

    # ------------------------------------------------------------------ quiet
    def settle(self, quiet: float = 30.0) -> None:
        """Faults stop: paused ranks recover, delays end, and `quiet` seconds pass with
        every message delivered before the clock moves. Then checks agreement."""
        self.net.drop_rate = self.net.max_delay = self.crash_on_declare = 0.0
        self.net.heal()
        for rank in sorted(self.paused):
            self.recover(rank)
        self.net.end_delays()
        self._say("-- faults stop --")
        end = self.now + quiet
        events = 0
        while events < MAX_SETTLE_EVENTS:
            events += 1
            if self.deliver_random():
                continue
            deadlines = [d for r in self.live() if (d := self.nodes[r].next_deadline()) is not None]
            if not deadlines or min(deadlines) > end:
                break
            self.advance(max(0.0, min(deadlines) - self.now))
        else:
            self.problems.append(f"still busy after {MAX_SETTLE_EVENTS} events in {quiet}s of quiet")
            return
        self.now = end
        self.problems += self.agreement_problems()

    # ----------------------------------------------------------------- helpers
    def _record_leader(self, rank: int, epoch: int) -> None:
        self._say(f"{rank}: claims epoch {epoch}")
        holders = self.leaders_by_epoch.setdefault(epoch, set())
        holders.add(rank)
        if len(holders) > 1:
            self.problems.append(f"epoch {epoch} has leaders {sorted(holders)}")

    def _say(self, line: str) -> None:
        if self.log is not None:
            self.log(f"t={self.now:8.3f}  {line}")


def random_schedule(rng, log=None, focus: str = "mixed", steps: int | None = None) -> Simulation:
    """Builds a cluster of 2..6 ranks, runs random faults on it, then `settle`s it.

    `focus` (a row of network.FAULT_RATES) steers the faults: "leader" (crash
    successive leaders), "candidate" (crash ranks mid-election), "feign" (feign
    failures, of rank 0 above all, often past the probe timeout; crashes spare
    it), "isolate" (cut a leader's links for a while, so that a second leader
    rises beside it), "partition" (split the network into 2 or 3 random sides
    for a while, often leaving the leader in a minority), or "mixed" (a little
    of everything).
    """
    size = rng.randint(2, 6)
    sim = Simulation(size, rng, log=log, notify_failures=rng.random() < 0.5)
    sim.net.drop_rate = rng.choice((0.0, 0.02, 0.1))
    sim.net.max_delay = rng.choice((0.0, 0.2, 1.5))
    sim.crash_on_declare = rng.choice((0.0, 0.2))
    sim._say(f"size {size}, ULFM notices {sim.notify_failures}, drop {sim.net.drop_rate}, "
             f"delay up to {sim.net.max_delay}s, crash while declaring {sim.crash_on_declare}")
    for _ in range(steps if steps is not None else rng.randint(150, 400)):
        fault = pick_fault(rng, focus, FAULTS, STEP_SCALE)
        if fault is not None:
            _inject(sim, rng, fault, focus)
        elif rng.random() > 0.4 or not sim.deliver_random():
            sim.advance(rng.uniform(0.01, 0.4))
    sim.settle()
    return sim


def _inject(sim: Simulation, rng, fault: str, focus: str) -> None:
    live = [r for r in sim.live() if r not in sim.paused]
    leaders = [r for r in live if sim.nodes[r].is_leader]
    electing = [r for r in live if sim.nodes[r].role in ELECTING]
    if focus == "mixed":
        focus = rng.choice(("leader", "candidate", "feign", "isolate", "partition", "any"))
    if fault == "crash":
        if len(sim.live()) < 2:
            return
        targets = {"leader": leaders, "candidate": electing or leaders, "isolate": leaders,
                   "feign": [r for r in live if r != 0]}.get(focus)
        if targets or live:
            sim.crash(rng.choice(targets or live))
    elif fault == "feign":
        if focus == "feign" and 0 in live and rng.random() < 0.7:
            sim.pause(0, rng.uniform(0.5, 8.0))
        elif live:
            sim.pause(rng.choice(leaders if focus == "leader" and leaders else live), rng.uniform(0.2, 6.0))
    elif fault == "partition":
        sim.split(random_sides(rng, sim.size), rng.uniform(1.0, 15.0))
    elif live:
        sim.isolate(rng.choice(leaders if focus != "any" and leaders else live), rng.uniform(1.0, 10.0))


def random_sides(rng, size: int) -> list[set[int]]:
    """Ranks 0..size-1 dealt at random to 2 or 3 sides, none empty."""
    count = rng.choice((2, 2, 3)) if size > 2 else 2
    ranks = list(range(size))
    rng.shuffle(ranks)
    sides = [{r} for r in ranks[:count]]
    for r in ranks[count:]:
        sides[rng.randrange(count)].add(r)
    return sides
