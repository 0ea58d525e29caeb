"""One rank's loop: poll, dispatch, tick; the master's and the worker's duties.

Every rank runs this loop. The election state machine (election/) says who
the master is; the rank that is master carries the MasterDuty, every other
rank the WorkerDuty (backups are workers too: no rank sits idle). Leadership
can move: a rank that wins an election builds the master's state from its
replica, the newest checkpoint and what the workers resend; an old master that
learns of a newer term hands its state over and becomes a worker.

Nothing here waits without a deadline: messages are polled, and an empty
poll sleeps for at most a millisecond.
"""

from __future__ import annotations

import time
from collections import deque

from election.actions import BecomeLeader, NewLeader, Send, StepDown
from election.messages import ELECTION_MESSAGES, Coordinator, Probe

from .errors import AnalyserError, ExitCode
from .jobstate import JobState
from .master import MasterDuty
from .protocol import Ack, Assign, Bye, Heartbeat, Result, StateHandover, StateSync, Stop, WorkRequest
from .result import PartialResult
from .backoff import IdleBackoff
from .worker import WorkerDuty

_ELECTION_TAGS = set(ELECTION_MESSAGES)  # the election's own list of its messages
_BURST = 64  # messages handled per loop turn before ticking the clocks
STOP_GRACE = 6.0  # seconds the final master waits for every worker's Bye
# Feigned failures drop messages (a real pause only delays them), and a rank may
# feign again right after it recovers: with --chaos the master waits longer.
CHAOS_STOP_GRACE = 20.0
STOP_RESEND = 0.5  # seconds between Stop messages to workers that have not answered


class RankNode:
    """Runs one rank until the job ends; returns the exit code and, on the final master, the result."""

    def __init__(self, transport, election, worker: WorkerDuty, make_master, say, chaos=None):
        self.transport = transport
        self.rank = transport.rank
        self.election = election  # BullyNode, or None with a single rank
        self.worker = worker
        self.make_master = make_master  # make_master(epoch, state) -> MasterDuty
        self.say = say
        self.master: MasterDuty | None = None
        self.replica = JobState()  # results the master replicated to us
        self.exit_code: int | None = None  # set when the job ends for this rank
        self.interrupted: int | None = None  # a signal asked us to stop (set by a handler)
        self.elections = 0  # terms started while this rank ran
        self.chaos = chaos  # FeignedFailures, or None
        self.final_master = False  # True on the one rank that ends the job and reports
        self.gone: set[int] = set()  # ranks that said Bye (to us, or to a master we took over from)
        self._deferred: deque = deque()  # messages received while only probes could be answered
        self._in_service = False

    # -------------------------------------------------------------------- loop
    def run(self) -> int:
        """Runs until the job ends; flushes outgoing messages however it ends."""
        try:
            return self._loop()
        except AnalyserError:
            if self.master is not None and self.master.leaving:
                self._linger()  # the workers were told to stop: see them go
            raise
        finally:
            self.transport.flush(timeout=1.0)

    def _loop(self) -> int:
        idle = IdleBackoff()
        if self.election is None or self.election.is_leader:
            self._become_master(self.election.epoch if self.election else 1)
        else:
            self.worker.follow(self.election.leader, self.election.epoch)
        while self.exit_code is None:
            if self.chaos is not None and self.election is not None:
                length = self.chaos.due(time.monotonic())
                if length is not None:
                    self._feign_failure(length)
            busy = self._service()
            if self.exit_code is not None:
                break
            if self.interrupted is not None:
                if self.master is None:  # a worker told to stop ends like a failed process
                    raise SystemExit(1)
                self.master.interrupt(self.interrupted)
            if self.master is not None:
                if self.master.finished:
                    self.master.final_checkpoint()
                    self.master.stop_workers(int(ExitCode.OK))
                    if self._linger():  # every live rank follows us: we are the final master
                        self.final_master = True
                        self.exit_code = int(ExitCode.OK)
                        break
                    continue  # a newer master exists: we handed over and work for it
                if self.master.needs_local_work():
                    self.master.run_one_locally()
                    continue
            elif self.worker.has_work:
                self._deliver(*self.worker.run_next(self._service))
                idle.reset()
                continue
            else:
                self.worker.heartbeat_if_due()
            if busy:
                idle.reset()
            else:
                idle.sleep()
        return self.exit_code

    def _service(self) -> bool:
        """Handles failure notices, waiting messages and clock ticks; True if anything came."""
        if self._in_service:  # called again from inside a task's chunk callback
            return False
        self._in_service = True
        try:
            now = time.monotonic()
            busy = False
            for rank in self.transport.take_failures():
                busy = True
                self._on_failure(rank, now)
            for _ in range(_BURST):
                got = self._next_message()
                if got is None:
                    break
                busy = True
                self._dispatch(got[0], got[1], now)
                if self.exit_code is not None:
                    return True
            if self.election is not None:
                self._apply(self.election.tick(now), now)
            if self.master is not None:
                self.master.tick(now)
            return busy
        finally:
            self._in_service = False

    # ---------------------------------------------------------------- dispatch
    def _dispatch(self, source: int, message, now: float) -> None:
        tag = message.TAG
        if tag in _ELECTION_TAGS:
            if self.election is not None:
                self._apply(self.election.step(source, message, now), now)
        elif isinstance(message, (WorkRequest, Result, Heartbeat)):
            if self.master is not None:
                self.master.on_message(source, message, now)
        elif isinstance(message, (Assign, Ack)):
            self.worker.on_message(source, message)
        elif isinstance(message, Stop):
            self._on_stop(source, message)
        elif isinstance(message, StateSync):
            if message.epoch >= self._epoch():
                for task_id, result in message.results:
                    self.replica.accept(task_id, result)
        elif isinstance(message, StateHandover):
            self.gone.update(message.gone)
            if self.master is not None:
                self.say(f"[Rank {self.rank}] Took over {len(message.results)} result(s) from rank {source}")
                self.master.merge(message.results)
                self.master.forget(self.gone)

    def _next_message(self):
        """A deferred message first, else a waiting one, else None."""
        return self._deferred.popleft() if self._deferred else self.transport.poll()

    def _answer_probes(self) -> None:
        """During long master work (storing thousands of files): answer PROBEs so the
        followers do not think us dead; every other message waits its turn."""
        if self.election is None:
            return
        while (got := self.transport.poll()) is not None:
            if isinstance(got[1], Probe):
                for action in self.election.step(got[0], got[1], time.monotonic()):
                    if isinstance(action, Send):
                        self.transport.send(action.dest, action.message)
            else:
                self._deferred.append(got)

    def _feign_failure(self, length: float) -> None:
        """Plays dead for `length` seconds (deaf and mute), then recovers with an election."""
        self.say(f"[Rank {self.rank}] Feigning failure for {length:.1f}s")
        if self.master is not None:  # a silent master is no master: keep its results, drop the role
            for task_id, result in self.master.scheduler.state.items():
                self.replica.accept(task_id, result)
            self.master = None
        self.election.pause()
        deaths = []
        end = time.monotonic() + length
        while time.monotonic() < end:
            deaths += self.transport.take_failures()
            while self.transport.poll() is not None:
                pass  # ignored, as a dead rank would
            time.sleep(0.01)
        now = time.monotonic()
        self.say(f"[Rank {self.rank}] Recovered from feigned failure; starting an election")
        self._apply(self.election.recover(now), now)
        for rank in deaths:
            self._on_failure(rank, now)

    def _on_stop(self, source: int, message: Stop) -> None:
        """The job's end, if said by the newest master we know; else tell a stale master the present."""
        if message.epoch >= self._epoch():
            self.transport.send(source, Bye(message.epoch))
            self.exit_code = 0  # the final master reports; every other rank just ends
        elif self.election is not None and self.election.leader is not None:
            self.transport.send(source, Coordinator(self.election.epoch, self.election.leader))

    def _linger(self) -> bool:
        """Resends Stop until every worker said Bye or died (or STOP_GRACE passed).

        Returns False if a newer term showed up meanwhile: then this rank has
        stepped down (its state handed over) and must not report.
        """
        master = self.master
        deadline = time.monotonic() + (CHAOS_STOP_GRACE if self.chaos is not None else STOP_GRACE)
        next_resend = time.monotonic() + STOP_RESEND
        idle = IdleBackoff()
        while master.leaving and time.monotonic() < deadline:
            now = time.monotonic()
            for rank in self.transport.take_failures():
                master.leaving.discard(rank)
                if self.election is not None:
                    self._apply(self.election.peer_failed(rank, now), now)
            got = self._next_message()
            if got is None:
                idle.sleep()
            elif isinstance(got[1], Bye):
                master.leaving.discard(got[0])
                self.gone.add(got[0])
            elif isinstance(got[1], Stop):  # a newer master ended the job while we were away
                self._on_stop(got[0], got[1])
            elif got[1].TAG in _ELECTION_TAGS and self.election is not None:
                self._apply(self.election.step(got[0], got[1], now), now)
            if self.master is not master or self.exit_code is not None:
                return False
            if now >= next_resend:
                master.resend_stop()
                next_resend = now + STOP_RESEND
        return True

    def _on_failure(self, rank: int, now: float) -> None:
        if self.master is not None:
            self.master.on_failure(rank, now)
        if self.election is not None:
            self._apply(self.election.peer_failed(rank, now), now)

    def _apply(self, actions, now: float) -> None:
        """Carries out the election's decisions."""
        for action in actions:
            if isinstance(action, Send):
                self.transport.send(action.dest, action.message)
            elif isinstance(action, BecomeLeader):
                self.elections += 1
                self._become_master(action.epoch)
            elif isinstance(action, StepDown):
                self._step_down(action.new_leader, action.epoch)
            elif isinstance(action, NewLeader):
                self.elections += 1
                if action.leader != self.rank:
                    self.say(f"[Rank {self.rank}] New master: rank {action.leader} (epoch {action.epoch})")
                    self.worker.follow(action.leader, action.epoch)

    # -------------------------------------------------------------- transitions
    def _become_master(self, epoch: int) -> None:
        state = JobState()
        if self.master is not None:  # re-elected (bully rule): keep what we hold
            state.merge(self.master.scheduler.state)
        state.merge(self.replica)
        for task_id, result in self.worker.results.items():
            state.accept(task_id, PartialResult.from_dict(result))
        self.master = self.make_master(epoch, state)
        self.master.forget(self.gone)
        if self.master.checkpointer is not None:
            self.master.checkpointer.store.keepalive = self._answer_probes
        self.worker.queue.clear()  # our own assignments came from the old master
        if epoch > 1:
            self.say(f"[Rank {self.rank}] Became master (epoch {epoch}) with {len(state)} result(s) in hand")

    def _step_down(self, new_leader: int, epoch: int) -> None:
        if self.master is None:
            return
        results = tuple(self.master.scheduler.state.items())
        self.say(f"[Rank {self.rank}] Stepping down for rank {new_leader} (epoch {epoch}); handing over {len(results)} result(s)")
        self.transport.send(new_leader, StateHandover(epoch, results, tuple(self.gone)))
        for task_id, result in results:
            self.replica.accept(task_id, result)
        self.master = None
        self.worker.follow(new_leader, epoch)

    def _deliver(self, task_id: str, result, error) -> None:
        """A task this rank counted: to the master, or straight in if we are it now."""
        if self.master is not None and result is not None:
            self.master.merge([(task_id, result)])
        else:
            self.worker.deliver(task_id, result, error)

    def _epoch(self) -> int:
        return self.election.epoch if self.election is not None else 1
