"""One rank's loop: poll, dispatch, tick; the master's and the worker's duties.

Every rank runs this loop. The election state machine (election/) says who
the master is; the rank that is master carries the MasterDuty, every other
rank the WorkerDuty (backups are workers too: no rank sits idle). Leadership
can move: a rank that wins an election builds the master's state from its
replica, the newest checkpoint and what the workers resend; an old master that
learns of a newer term hands its state over and becomes a worker. A rank is
master only while a majority of the ranks backs it (the election's lease):
one whose lease runs out, cut off in a minority, stops being master at once,
and a rank that knows of no backed master for `MINORITY_WAIT` leaves.

The loop is a sequence of turns (`turn`), and a turn never waits: the MPI
program runs turns back to back with a short sleep after an idle one; the
whole-job simulation (loganalyser/simulation/job.py) runs the turns of many nodes
in a seeded order on a fake clock. The loop is the only driver: long work
(counting a task, storing processed files, cleaning the checkpoint store)
proceeds a step per turn, and nothing below calls back into the loop, so
messages (the election's probes above all) are heard between any two steps.

The job ends in two phases, so that it survives its master dying at the very
end. The finished master sends Stop; a worker answers Bye and stops working,
but stays (still in the election) until Release. The master waits for every
Bye (or death, or STOP_GRACE), reports the result, then sends Release to every
rank not known dead. Release means "the result is out": any rank that gets it
ends, whatever its role or term, so no second master reports. If the master
dies before Release, the waiting ranks elect a new one, which holds the whole
state (replica, resent results, checkpoint) and ends the job itself.

The rank is always in one `Mode`, and each mode has its own turn and its own
routing table (message type -> handler), as etcd's raft swaps `step` when a
node changes role: a mode never asks what another mode would do. Every way
the job ends (finished, input error, interrupted) passes through STOPPING, if
this rank is master, and lands in ENDED with an `Ending` that carries the exit
code; `run` turns the Ending into what the program says and returns.
"""

from __future__ import annotations

import time

from election.actions import BecomeLeader, LostQuorum, NewLeader, Send, StepDown
from election.bully import BullyNode, Role
from election.messages import ELECTION_MESSAGES, Coordinator
from loganalyser.errors import AnalyserError, ExitCode
from loganalyser.work.jobstate import JobState

from .backoff import IdleBackoff
from .master import MasterDuty, MasterFactory
from .modes import (
    CHAOS_STOP_GRACE,
    FINISHED,
    FOLLOW_IDLE_CEILING,
    INTERRUPT_WAIT,
    MINORITY_WAIT,
    PAUSE_GAP,
    STOP_GRACE,
    STOP_RESEND,
    Ending,
    FailureSchedule,
    Feigning,
    Mode,
    Report,
    Stopping,
)
from .protocol import (
    JOB_MESSAGES,
    Ack,
    Assign,
    Bye,
    Heartbeat,
    Interrupt,
    Release,
    ReplicaCommit,
    ReplicaWrite,
    ReplicaWriteAck,
    Result,
    Split,
    SplitReply,
    StateHandover,
    StateSync,
    Stop,
    WorkRequest,
)
from .replication import ReplicaKeeper
from .seams import Clock, Say, Transport
from .shipping import SHIP_MESSAGES, ShipChunk, ShipRequest
from .worker import WorkerDuty

_BURST = 64  # messages handled per turn before ticking the clocks
_ALL_MESSAGES = JOB_MESSAGES + tuple(ELECTION_MESSAGES.values()) + SHIP_MESSAGES


class RankNode:
    """Runs one rank until the job ends; the final master reports through `report`."""

    def __init__(self, transport: Transport, election: BullyNode | None, worker: WorkerDuty, masters: MasterFactory,
                 say: Say, chaos: FailureSchedule | None = None, report: Report | None = None,
                 clock: Clock = time.monotonic, keeper: ReplicaKeeper | None = None,
                 minority_wait: float = MINORITY_WAIT):
        self.transport = transport
        self.rank = transport.rank
        self.election = election  # BullyNode, or None with a single rank
        self.worker = worker
        self.masters = masters  # builds this rank's master when it wins an election
        self.say = say
        self.chaos = chaos  # FeignedFailures, or None
        self.report = report
        self.clock = clock
        self.keeper = keeper  # stores checkpoints a master replicates to this host, or None
        self.minority_wait = minority_wait  # seconds without a majority's master before this rank leaves
        self.mode = Mode.WORKING
        self.master: MasterDuty | None = None  # set in MASTER and STOPPING
        self.replica = JobState()  # results the master replicated to us
        self.ending: Ending | None = None  # set when the mode becomes ENDED
        self.interrupted: int | None = None  # a signal asked us to stop (set by a handler)
        # (seconds waited, last turn) of an interrupted worker's wait for a master to tell
        self._interrupt_wait: tuple[float, float] | None = None
        self.elections = 0  # terms started while this rank ran
        self.final_master = False  # True on the one rank that ends the job and reports
        self.end_announced = False  # answered a final Stop: feigns no more (a recovery would elect again)
        self.released_by: tuple[int, Release] | None = None  # who sent the Release that ended this rank, and it
        self._stopping: Stopping | None = None  # in STOPPING
        self._feigning: Feigning | None = None  # in FEIGNING
        self._turns = {Mode.WORKING: self._working_turn, Mode.AWAITING_RELEASE: self._working_turn,
                       Mode.MASTER: self._master_turn, Mode.STOPPING: self._stopping_turn,
                       Mode.FEIGNING: self._feigning_turn, Mode.ENDED: self._ended_turn}
        self._routes = self._routing_tables()

    def _routing_tables(self) -> dict:
        """Per mode: message type -> handler(source, message, now). Every message kind is named in each."""
        ignored = dict.fromkeys(_ALL_MESSAGES, self._ignore)
        election = dict.fromkeys(ELECTION_MESSAGES.values(), self._to_election)
        # A handover may reach a leader before a majority backs it: kept with the replica until then.
        working = {**ignored, **election, Assign: self._to_worker, Ack: self._to_worker, Stop: self._on_stop,
                   Release: self._on_release, StateSync: self._on_state_sync, StateHandover: self._on_state_sync,
                   Split: self._to_worker, Interrupt: self._on_interrupt,
                   ShipChunk: self._on_ship_chunk}
        if self.keeper is not None:
            working.update({ReplicaWrite: self._on_replica_write, ReplicaCommit: self._on_replica_commit})
        master = {**working, WorkRequest: self._to_master, Result: self._to_master, Heartbeat: self._to_master,
                  StateHandover: self._on_handover, SplitReply: self._to_master,
                  ShipRequest: self._on_ship_request, ReplicaWriteAck: self._on_replica_ack}
        stopping = {**ignored, **election, Bye: self._on_bye, Stop: self._on_stop, Release: self._on_release,
                    ReplicaWriteAck: self._on_replica_ack}
        # The job's end is kept while feigning: Release (leave, do not restart it) and Interrupt (stop it).
        feigning = {**dict.fromkeys(_ALL_MESSAGES, self._unheard), Release: self._unheard_release,
                    Interrupt: self._unheard_interrupt}
        awaiting = {**working, Interrupt: self._on_interrupt_after_bye}
        return {Mode.WORKING: working, Mode.AWAITING_RELEASE: awaiting, Mode.MASTER: master, Mode.STOPPING: stopping,
                Mode.FEIGNING: feigning, Mode.ENDED: ignored}

    # ----------------------------------------------------------------- queries
    @property
    def exit_code(self) -> int | None:
        """This rank's exit code once it ended, else None."""
        return self.ending.exit_code if self.ending is not None else None

    @property
    def stop_error(self) -> int | None:
        """While STOPPING on an error (input error, interrupt): the exit code it will end with."""
        if self.mode is not Mode.STOPPING or self._stopping.ending.error is None:
            return None
        return self._stopping.ending.exit_code

    @property
    def master_epoch(self) -> int | None:
        """The term this rank is master of, or None."""
        return self.master.epoch if self.master is not None else None

    @property
    def electing(self) -> bool:
        """An election runs here: a candidate, or waiting for the winner's word."""
        return self.election is not None and self.election.role in (Role.CANDIDATE, Role.AWAITING_COORDINATOR)

    # -------------------------------------------------------------------- loop
    def run(self) -> int:
        """Runs turns until the job ends; flushes outgoing messages however it ends."""
        # A follow job waits for its inputs most of the time: idle turns back off further there.
        idle = IdleBackoff(ceiling=FOLLOW_IDLE_CEILING) if self.masters.follow is not None else IdleBackoff()
        try:
            self.start()
            while self.mode is not Mode.ENDED:
                if self.turn():
                    idle.reset()
                else:
                    idle.sleep()
        finally:
            self.transport.flush(timeout=1.0)
        return self.ending.outcome()

    def start(self) -> None:
        if self.election is None or self.election.is_leader:
            self._become_master(self.election.epoch if self.election else 1)
        else:
            self.worker.follow(self.election.leader, self.election.epoch)

    def turn(self) -> bool:
        """One pass of the loop, as the mode says; True if it did anything (else the caller may sleep a little)."""
        return self._turns[self.mode](self.clock())

    # ------------------------------------------------------------------- turns
    def _working_turn(self, now: float) -> bool:
        if self._feign_if_due(now):
            return True
        busy = self._service()
        if self.mode not in (Mode.WORKING, Mode.AWAITING_RELEASE):
            return True
        if self.election is not None and now - self.election.quorum_heard > self.minority_wait:
            self._leave_minority()
            return True
        if self.interrupted is not None and self._pass_interrupt_on(now):
            return True
        if self.worker.has_work:  # a step of the task: the next turn hears what came meanwhile
            counted, finished = self.worker.work()
            if finished is not None:
                self.worker.deliver(finished)
            return counted or busy
        self.worker.heartbeat_if_due()
        return busy

    def _pass_interrupt_on(self, now: float) -> bool:
        """A signal at a rank that is no master: pass it on, then end like a failed process.

        With no master to tell (an election is on) it waits up to INTERRUPT_WAIT for one, or to
        lead itself: had it vanished at once, the stop would be left to nobody. With still none,
        it tells every rank, each of which then acts as if the signal had reached it."""
        master = self._master_to_tell()
        if master is not None:
            self.transport.send(master, Interrupt(self.worker.epoch, self.interrupted))
        else:
            waited, last_turn = self._interrupt_wait or (0.0, now)
            if now - last_turn <= PAUSE_GAP:  # time a stopped process spent is no time it could hear in
                waited += now - last_turn
            self._interrupt_wait = (waited, now)
            if waited < INTERRUPT_WAIT:
                return False
            for rank in range(self.transport.size):
                if rank != self.transport.rank:
                    self.transport.send(rank, Interrupt(self.worker.epoch, self.interrupted))
        self._end(Ending(1, vanish=True))
        return True

    def _master_to_tell(self) -> int | None:
        """The master this rank works for, unless it is known dead or the election no longer names it."""
        master = self.worker.master
        if master is None or master in self.transport.known_failed():
            return None
        if self.election is not None and self.election.leader != master:
            return None
        return master

    def _master_turn(self, now: float) -> bool:
        if self._feign_if_due(now):
            return True
        busy = self._service()
        if self.mode is not Mode.MASTER:
            return True
        if self.worker.shipping is not None:
            busy = self.worker.shipping.serve_some() or busy
        master = self.master
        if self.interrupted is not None and master.stop_following():
            self.interrupted = None  # a follow job asked to stop ends as finished: last checkpoint, totals, exit 0
        if master.finished:  # the last checkpoint (a step per turn), then Stop
            if master.wind_down(collect=True):
                master.stop_workers(int(ExitCode.OK))
                self._stop(FINISHED)
            return True
        if self.interrupted is not None:
            if master.wind_down(collect=False):
                error = master.interrupt(self.interrupted)
                self._stop(Ending(int(error.exit_code), error))
            return True
        if master.needs_local_work():
            busy = master.run_one_locally()
            self._stop_if_failed()
        return busy or self.mode is not Mode.MASTER

    def _stopping_turn(self, now: float) -> bool:
        """The master waits for its workers' Bye (resending Stop); then it ends the job: if
        it finished and this rank is still master, it reports and releases everyone."""
        stopping = self._stopping
        master = stopping.master
        busy = False
        for rank in self.transport.take_failures():
            busy = True
            master.said_bye(rank)
            self._on_failure(rank, now)
        busy = self._handle_messages(now) or busy
        if self.mode is Mode.STOPPING and self.election is not None:  # keep the lease: no report without it
            self._apply(self.election.tick(now), now)
        if self.mode is not Mode.STOPPING:  # stepped down, lost the majority, or the job ended elsewhere
            self._stopping = None
            if stopping.ending.error is not None:
                self._end(stopping.ending)
            return True
        if master.all_said_bye or now >= stopping.deadline:
            self._stopping = None
            if stopping.ending.error is None:
                self._end_job(master)
            else:
                self._end(stopping.ending)
            return True
        if now >= stopping.next_resend:
            master.resend_stop()
            stopping.next_resend = now + STOP_RESEND
        return busy

    def _feigning_turn(self, now: float) -> bool:
        feigning = self._feigning
        feigning.deaths += self.transport.take_failures()
        while (got := self.transport.poll()) is not None:
            self._dispatch(got[0], got[1], now)
        if now < feigning.until:
            return False
        self._feigning = None
        if feigning.released:
            self._end(FINISHED)
            return True
        self.say(f"[Rank {self.rank}] Recovered from feigned failure; starting an election")
        self.mode = Mode.WORKING
        self._apply(self.election.recover(now), now)
        for rank in feigning.deaths:
            self._on_failure(rank, now)
        return True

    def _ended_turn(self, now: float) -> bool:
        return False

    def _service(self) -> bool:
        """Handles failure notices, waiting messages and clock ticks; True if anything came."""
        now = self.clock()
        busy = False
        for rank in self.transport.take_failures():
            busy = True
            self._on_failure(rank, now)
        busy = self._handle_messages(now) or busy
        if self.mode in (Mode.STOPPING, Mode.ENDED):
            return True
        if self.election is not None:
            self._apply(self.election.tick(now), now)
        if self.mode is Mode.MASTER:
            self.master.tick(now)
        return busy

    def _handle_messages(self, now: float) -> bool:
        """Routes up to _BURST waiting messages; stops early when the job ends or stops here."""
        mode = self.mode
        for count in range(_BURST):
            got = self.transport.poll()
            if got is None:
                return count > 0
            self._dispatch(got[0], got[1], now)
            if self.mode is not mode and self.mode in (Mode.STOPPING, Mode.ENDED):
                return True
        return True

    # ---------------------------------------------------------------- routing
    def _dispatch(self, source: int, message, now: float) -> None:
        handler = self._routes[self.mode].get(type(message))
        if handler is None:
            raise TypeError(f"no route for {type(message).__name__} in mode {self.mode.value}")
        handler(source, message, now)

    def _ignore(self, source: int, message, now: float) -> None:
        pass  # not for this mode: e.g. a worker's Result at a rank that is not master

    def _to_election(self, source: int, message, now: float) -> None:
        if self.election is not None:
            self._apply(self.election.step(source, message, now), now)

    def _to_worker(self, source: int, message: Assign | Ack | Split, now: float) -> None:
        self.worker.on_message(source, message)

    def _to_master(self, source: int, message: WorkRequest | Result | Heartbeat | SplitReply, now: float) -> None:
        self.master.on_message(source, message, now)
        self._stop_if_failed()

    def _on_state_sync(self, source: int, message: StateSync | StateHandover, now: float) -> None:
        if message.epoch >= self._epoch():
            for task_id, result in message.results:
                self.replica.accept(task_id, result)

    def _on_ship_chunk(self, source: int, message: ShipChunk, now: float) -> None:
        if self.worker.shipping is not None:
            self.worker.shipping.on_chunk(source, message)

    def _on_ship_request(self, source: int, message: ShipRequest, now: float) -> None:
        if self.worker.shipping is not None:  # the worker's shipping object also answers as master (shipping.py)
            self.worker.shipping.take_request(source, message, self.master.epoch)

    def _on_replica_write(self, source: int, message: ReplicaWrite, now: float) -> None:
        if message.epoch >= self._epoch():
            self.keeper.on_write(source, message)

    def _on_replica_commit(self, source: int, message: ReplicaCommit, now: float) -> None:
        if message.epoch >= self._epoch():
            self.keeper.on_commit(source, message)

    def _on_replica_ack(self, source: int, message: ReplicaWriteAck, now: float) -> None:
        master = self.master if self._stopping is None else self._stopping.master
        if master is not None and master.replication is not None and message.epoch == master.epoch:
            master.replication.on_ack(source, message)

    def _on_handover(self, source: int, message: StateHandover, now: float) -> None:
        self.say(f"[Rank {self.rank}] Took over {len(message.results)} result(s) from rank {source}")
        self.master.merge(message.results)

    def _on_interrupt(self, source: int, message: Interrupt, now: float) -> None:
        if self.interrupted is None:
            self.interrupted = message.signum  # as if the signal had reached us
        self._sender_ended(source, now)

    def _on_interrupt_after_bye(self, source: int, message: Interrupt, now: float) -> None:
        """A worker that said Bye has left the job's work: another rank's Interrupt changes nothing
        (acting on it would end this rank, and the stopping master's majority with it); but one
        from the master it said Bye to means that master will send no Release."""
        if source == self.worker.master:
            self._on_interrupt(source, message, now)
        else:
            self._sender_ended(source, now)

    def _sender_ended(self, source: int, now: float) -> None:
        """A rank sends Interrupt only as it ends (it passes the signal on, then exits): counted as
        failed at once, so that no majority waits for it (its failure notice may never come)."""
        if source != self.rank:
            self._on_failure(source, now)

    def _on_bye(self, source: int, message: Bye, now: float) -> None:
        self._stopping.master.said_bye(source)

    def _unheard(self, source: int, message, now: float) -> None:
        pass  # ignored, as a dead rank would

    def _unheard_release(self, source: int, message: Release, now: float) -> None:
        self._feigning.released = True  # a rank that comes back after the result is out must leave

    def _unheard_interrupt(self, source: int, message: Interrupt, now: float) -> None:
        if self.interrupted is None:
            self.interrupted = message.signum  # acted on when this rank comes back

    def _on_stop(self, source: int, message: Stop, now: float) -> None:
        """The job's end, if said by the newest master we know; else tell a stale master the present."""
        if message.epoch < self._epoch():
            if self.election is not None and self.election.leader is not None:
                self.transport.send(source, Coordinator(self.election.epoch, self.election.leader))
            return
        if self.election is not None and message.epoch > self.election.epoch:
            # A newer term: the election follows it (and our own term, if any, steps down) ...
            self._apply(self.election.learn_term(source, message.epoch, now), now)
        if self.master is not None:
            return  # ... unless we lead above it (its master is known dead, or we outrank it): our term ends the job
        self.transport.send(source, Bye(message.epoch))
        if message.exit_code != ExitCode.OK:
            self._end(FINISHED)  # an aborted job reports no result: nothing to wait for
        else:
            self.end_announced = True
            self.mode = Mode.AWAITING_RELEASE  # wait for Release, or elect a master that ends the job

    def _on_release(self, source: int, message: Release, now: float) -> None:
        """The result is out (whoever reported it): this rank's part is over, in any role."""
        self.released_by = (source, message)
        if self.master is not None:
            self.say(f"[Rank {self.rank}] Rank {source} reported the result: leaving without reporting")
            self.master = None
        self._end(FINISHED)

    # ------------------------------------------------------------ job's end
    def _stop_if_failed(self) -> None:
        """An input error ends the job: the master has told the workers; see them go."""
        if self.mode is Mode.MASTER and self.master.failure is not None:
            error = self.master.failure
            self._stop(Ending(int(error.exit_code), error))

    def _stop(self, ending: Ending) -> None:
        """Into STOPPING: the master told its workers to stop and waits for their Bye."""
        now = self.clock()
        grace = CHAOS_STOP_GRACE if self.chaos is not None else STOP_GRACE
        self._stopping = Stopping(self.master, ending, now + grace, now + STOP_RESEND)
        self.mode = Mode.STOPPING

    def _end(self, ending: Ending) -> None:
        self.ending = ending
        self.mode = Mode.ENDED

    def _end_job(self, master: MasterDuty) -> None:
        """We are the final master: the result first, then Release (a master that
        dies in between leaves the job to a successor, which reports again)."""
        self.final_master = True
        try:
            if self.report is not None:
                self.report(master.summary())
        finally:
            master.release()
            if master.watch is not None:
                master.watch.job_ended(master)
            self._end(FINISHED)

    # ---------------------------------------------------------- feigned failure
    def _feign_if_due(self, now: float) -> bool:
        """Starts feigning if --chaos says so now (never once the job's end was announced)."""
        if self.chaos is None or self.election is None or self.end_announced:
            return False
        length = self.chaos.due(now)
        if length is None:
            return False
        self._start_feigning(length, now)
        return True

    def _start_feigning(self, length: float, now: float) -> None:
        """Plays dead for `length` seconds (deaf and mute), then recovers with an election."""
        self.say(f"[Rank {self.rank}] Feigning failure for {length:.1f}s")
        if self.master is not None:  # a silent master is no master: keep its results, drop the role
            self.replica.merge(self.master.state)
            self.master = None
        self.election.pause()
        self._feigning = Feigning(now + length)
        self.mode = Mode.FEIGNING

    # -------------------------------------------------------------- transitions
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
                self._watch_elections()
                self._become_master(action.epoch)
            elif isinstance(action, StepDown):
                self._step_down(action.new_leader, action.epoch)
            elif isinstance(action, LostQuorum):
                self._lose_majority(action.epoch)
            elif isinstance(action, NewLeader):
                self.elections += 1
                self._watch_elections()
                if action.leader != self.rank:
                    self.say(f"[Rank {self.rank}] New master: rank {action.leader} (epoch {action.epoch})")
                    self.worker.follow(action.leader, action.epoch)
            else:
                raise TypeError(f"no handler for {type(action).__name__}")

    def _watch_elections(self) -> None:
        if self.masters.watch is not None:
            self.masters.watch.elections = self.elections

    def _become_master(self, epoch: int) -> None:
        held = [self.replica, JobState(self.worker.results)]
        if self.master is not None:  # re-elected (bully rule): keep what we hold
            held.append(self.master.state)
        self.master = self.masters.build(epoch, held)
        self.worker.drop_assignments()  # our own assignments came from the old master: it re-plans them
        self.mode = Mode.MASTER
        if epoch > 1:
            self.say(f"[Rank {self.rank}] Became master (epoch {epoch}) with {len(self.master.state)} result(s) in hand")
        if self.master.watch is not None:
            self.master.watch.became_master(self.master)

    def _step_down(self, new_leader: int, epoch: int) -> None:
        if self.master is None:
            return
        results = tuple(self.master.state.items())
        self.say(f"[Rank {self.rank}] Stepping down for rank {new_leader} (epoch {epoch}); handing over {len(results)} result(s)")
        self.transport.send(new_leader, StateHandover(epoch, results))
        if self.master.watch is not None:
            self.master.watch.handed_over(self.master, new_leader, epoch, len(results))
        self.replica.merge(self.master.state)
        self.master = None
        self.mode = Mode.WORKING
        self.worker.follow(new_leader, epoch)

    def _lose_majority(self, epoch: int) -> None:
        """The lease ran out: no master acts without a majority (no result, no checkpoint). Its
        results wait in the replica for whoever leads next, this rank again or another."""
        if self.master is None:
            return
        self.say(f"[Rank {self.rank}] Lost the majority (epoch {epoch}): no longer master; waiting for a majority")
        self.replica.merge(self.master.state)
        self.master = None
        self.mode = Mode.WORKING

    def _leave_minority(self) -> None:
        error = AnalyserError(f"rank {self.rank}: no majority of the job's ranks reachable for {self.minority_wait:g} s; "
                              "left without a result", ExitCode.TOO_FEW_RANKS)
        self._end(Ending(int(error.exit_code), error))  # the program prints it

    def _epoch(self) -> int:
        return self.election.epoch if self.election is not None else 1
