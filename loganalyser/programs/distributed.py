"""The fault-tolerant distributed analyser (the seed's Stage 2): the front end.

Rank 0 scans the input, plans the tasks and broadcasts the plan; it starts as
master, every other rank as a worker, and every rank can become master after
an election (node.py). Exactly one result is printed, by the final master.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback

from election.bully import BullyNode, ElectionTiming
from loganalyser.cluster.follow_duty import FollowSettings, analyse_followed
from loganalyser.cluster.master import MasterFactory, MasterSummary
from loganalyser.cluster.node import RankNode
from loganalyser.cluster.replication import ReplicaKeeper, ReplicationPlan
from loganalyser.cluster.shipping import MODES as SHIP_MODES
from loganalyser.cluster.shipping import Shipping
from loganalyser.cluster.watch import JobWatch
from loganalyser.monitor.board import StatusBoard
from loganalyser.monitor.terminal import TerminalView
from loganalyser.cluster.worker import WorkerDuty
from loganalyser.console import warn
from loganalyser.counting.reader import analyse_pieces
from loganalyser.errors import AnalyserError, ExitCode, carried
from loganalyser.faults.feigned import FeignedFailures
from loganalyser.faults.injected import FaultInjector, parse_fault
from loganalyser.persistence.policy import CONSISTENCY
from loganalyser.persistence.replicas import FolderScan, folder_for, newest_committed, quorum_size, replicated, scan_folder
from loganalyser.persistence.store import FILE_MODES, CheckpointStore
from loganalyser.work.inputs import find_log_files
from loganalyser.work.scanning import job_fingerprint, job_formats
from loganalyser.work.tasks import CHUNK_BYTES

from .cli import add_follow_options, base_parser, byte_size, non_negative_float, positive_float, positive_int
from .follow_job import FollowCheckpoints, follow_duties, follow_settings, plan_follow_job
from .jobsetup import FoundCheckpoints, JobCheckpoints, plan_job
from .leaving import leave_at_once
from .options import JobOptions, OutputOptions, WatchOptions, job_options
from .report import emit, ranks_by_host, result_document

PROG = "distributed_log_analyser.py"
MASTER = 0


def build_parser():
    parser = base_parser(PROG, "Count log lines per level with a fault-tolerant master/worker job over MPI.")
    parser.add_argument("--worker-timeout", type=positive_float, default=10.0, metavar="S",
                        help="declare a silent worker failed after S seconds (default 10)")
    parser.add_argument("--heartbeat-interval", type=positive_float, default=0.5, metavar="S",
                        help="workers speak at least every S seconds (default 0.5)")
    parser.add_argument("--chunk-size", type=byte_size, default=CHUNK_BYTES, metavar="BYTES",
                        help="cut files larger than this into tasks of about this size (default 32M)")
    group = parser.add_argument_group("checkpoints")
    group.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR",
                       help="where checkpoints live (default: checkpoints); {host} is replaced by each rank's host "
                            "name, and then each checkpoint is copied to other hosts (see --replicas)")
    group.add_argument("--checkpoint-every", type=positive_int, default=5, metavar="N", help="checkpoint after every N files processed (default 5)")
    group.add_argument("--checkpoint-interval", type=positive_float, default=30.0, metavar="S", help="... and at least every S seconds (default 30)")
    group.add_argument("--keep-checkpoints", type=positive_int, default=3, metavar="K", help="keep the newest K checkpoints (default 3)")
    group.add_argument("--checkpoint-files", choices=FILE_MODES, default="link",
                       help="keep processed files in the checkpoint store as hard links (default), copies, or not at all")
    group.add_argument("--consistency", choices=CONSISTENCY, default="eventual",
                       help="checkpoint counts: every accepted result (eventual, default) or only fully counted files (strong)")
    group.add_argument("--no-checkpoint", action="store_true", help="write no checkpoints")
    group.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints and start afresh")
    parser.add_argument("--backups", type=positive_int, default=1, metavar="K",
                        help="ranks that receive a copy of every accepted result (default 1)")
    parser.add_argument("--replicas", type=positive_int, metavar="Q",
                        help="with {host} in --checkpoint-dir: a checkpoint is committed once Q hosts hold it "
                             "(default: a majority of the master's copy and its K backups' copies)")
    parser.add_argument("--inject", action="append", default=[], type=parse_fault, metavar="FAULT",
                        help="kill:RANK@FRACTION, exit:RANK@FRACTION or hang:RANK@FRACTION:SECONDS (repeatable)")
    parser.add_argument("--chaos", type=int, metavar="SEED",
                        help="ranks feign failures at random, seeded (seed 001: every 0-10 s, for 1-4 s)")
    parser.add_argument("--task-delay", type=non_negative_float, default=0.0, metavar="S",
                        help="workers wait S seconds per task, heartbeating (simulates slow workers for demos and tests)")
    parser.add_argument("--ship", choices=SHIP_MODES, default="auto",
                        help="send a file's bytes from the master to a worker that cannot see it (auto, default), "
                             "to every worker (always), or fail naming the file and host (never)")
    parser.add_argument("--trace", action="store_true", help="print every message sent and received, time-stamped, on stderr")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    watch = parser.add_argument_group("watching the job")
    watch.add_argument("--events", metavar="FILE", help="append one JSON line per event to FILE (whichever rank is master)")
    watch.add_argument("--status", metavar="FILE", help="keep the live status document in FILE (always whole JSON)")
    watch.add_argument("--dashboard", metavar="[HOST:]PORT",
                       help="serve a live dashboard at http://HOST:PORT/ (default host 127.0.0.1)")
    watch.add_argument("--dashboard-linger", type=non_negative_float, default=2.0, metavar="S",
                       help="keep serving the dashboard S seconds after the result (default 2)")
    watch.add_argument("--dashboard-html", metavar="FILE", help="write the final dashboard as a static page to FILE")
    watch.add_argument("--tui", action="store_true", help="show the live status on this terminal instead of log lines")
    add_follow_options(parser)
    return parser


FINALIZE_GRACE = 3.0  # seconds MPI_Finalize may take before the rank exits without it
_LEAVE_AT_ONCE = threading.Event()  # set when this rank may skip MPI_Finalize (programs/leaving.py)
LEFT_WAIT = 1.0  # seconds the final master waits for every Left (ranks answer in milliseconds) before finalising


def main(argv) -> int:
    """Runs this rank's part of the job (the caller then calls finalize_mpi)."""
    args = build_parser().parse_args(argv)  # the one use of argparse's namespace
    options = job_options(args)
    follow = follow_settings(args, options)
    import mpi4py

    mpi4py.rc.finalize = False  # finalize_mpi does it, with a deadline
    return _main(options, follow)


def finalize_mpi(exit_code: int) -> None:
    """MPI_Finalize, but never a hang: once a peer has died it can block for good,
    so after FINALIZE_GRACE seconds the rank exits without it (allowed by the
    launch defaults, utils/mpi_defaults.sh)."""
    from mpi4py import MPI

    if not MPI.Is_initialized() or MPI.Is_finalized():
        return
    sys.stdout.flush()
    sys.stderr.flush()

    def give_up():
        time.sleep(FINALIZE_GRACE)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)

    if _LEAVE_AT_ONCE.is_set():
        os._exit(exit_code)
    threading.Thread(target=give_up, daemon=True).start()
    native = _native_finalize()
    if native is not None:
        native()  # through ctypes, which lets go of the GIL: the watchdog above can run
    else:
        MPI.Finalize()  # holds the GIL: the watchdog cannot help, but there is no other way here


def _native_finalize():
    """MPI_Finalize of the loaded MPI library, called without the GIL, or None."""
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            path = next((line.split()[-1] for line in maps if "libmpi.so" in line), None)
        return ctypes.CDLL(path).MPI_Finalize if path else None
    except (OSError, AttributeError):
        return None


def _main(options: JobOptions, follow: FollowSettings | None = None) -> int:
    from mpi4py import MPI  # here, so --help and usage errors need no MPI

    from loganalyser.cluster.transport import MpiTransport, Tracer, fault_tolerance_enabled

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    chatty = options.output.chatty and not options.watch.tui  # the terminal view replaces the log lines
    say = (lambda text: print(text, flush=True)) if chatty else (lambda text: None)
    start = time.perf_counter()
    hosts = tuple(comm.allgather(socket.gethostname()))
    template = options.checkpoints.folder
    options = dataclasses.replace(options, checkpoints=dataclasses.replace(
        options.checkpoints, folder=folder_for(template, hosts[rank])))  # this host's folder
    replication = None
    if replicated(template) and options.checkpoints.enabled:
        replication = replication_plan(hosts, options, rank)
    job = _agree_on_job(comm, options, say, replication, follow)  # every rank holds the plan: any may become master
    if isinstance(job, AnalyserError):
        return 0
    if rank == 0:
        if size == 1:
            warn("only one rank: the master does all the work itself (run with mpirun -np N for workers)")
        elif not fault_tolerance_enabled():
            warn("fault tolerance (ULFM) is off: a crashed rank ends the whole job (use mpirun --with-ft ulfm)")
        say(f"Starting distributed analysis on {size} rank(s)...")
    plan, resumed_state, extra, first = job
    extra = dict(extra, hosts=ranks_by_host(hosts))  # any rank may report
    transport = MpiTransport(comm, Tracer(rank, options.trace))
    # A followed file is read where it is, found by its identity (follow_duty.py): never shipped.
    shipping = Shipping(options.ship, hosts[rank], transport.send) if first is None else None
    injector = FaultInjector(options.faults, rank, say)
    bar = _progress_bar(options.output, plan.total_bytes) if rank == 0 and first is None else None  # a follow job has no end
    counter = analyse_pieces if first is None else analyse_followed  # followed files: found by identity
    analyse = functools.partial(counter, formats=plan.formats)  # counts tasks in the plan's formats
    watch = job_watch(options.watch, rank, size) if options.watch.any else None
    keeper = None
    if replication is not None:
        keeper = ReplicaKeeper(CheckpointStore(options.checkpoints.folder, options.checkpoints.keep, warn=warn),
                               transport.send, say)
    checkpoints = FollowCheckpoints(options.checkpoints, plan, first) if first is not None else \
        JobCheckpoints(options.checkpoints, plan, floor=lambda: max(keeper.highest if keeper else 0, plan.base_sequence))
    masters = MasterFactory(rank, plan.tasks, options.timing, transport, say, backups=options.backups,
                            resumed=resumed_state, checkpoints=checkpoints, progress=bar, injector=injector,
                            analyse=analyse, watch=watch, replication=replication,
                            follow=follow_duties(first, plan.formats, say) if first is not None else None)
    worker = WorkerDuty(rank, options.timing, transport.send, say, injector, options.task_delay, analyse=analyse,
                        shipping=shipping)
    election = None
    if size > 1:
        election = BullyNode(rank, size, ElectionTiming(), random.Random(rank * 7919 + os.getpid()), time.monotonic())
    chaos = FeignedFailures(options.chaos_seed, rank, time.monotonic()) if options.chaos_seed is not None else None

    def report(summary):
        if bar is not None:
            bar.close()
        shipped = shipping.shipped_bytes if shipping is not None else 0
        _report(summary, node, options.output, plan, dict(extra, shipped_bytes=shipped), size, time.perf_counter() - start)

    node = RankNode(transport, election, worker, masters, say, chaos, report, keeper=keeper)
    _on_signals(node, rank)
    try:
        code = _run_rank(node)
    finally:
        if watch is not None:
            watch.stop_serving()
    if code == 0 and leave_at_once(node, transport, LEFT_WAIT):
        _LEAVE_AT_ONCE.set()
    if bar is not None:
        bar.close()
    return code


def job_watch(options: WatchOptions, rank: int, size: int) -> JobWatch:
    """What this rank shows watchers whenever it is master."""
    board = StatusBoard(options.status) if (options.status or options.dashboard or options.dashboard_html) else None
    views = [TerminalView(sys.stdout)] if options.tui else []
    return JobWatch(rank, size, options.events, board, views, serve=options.dashboard, final_page=options.dashboard_html,
                    linger=options.dashboard_linger)


def _report(summary: MasterSummary, node: RankNode, output: OutputOptions, plan, extra: dict, size: int,
            seconds: float) -> None:
    """The final master's one result: printed, and written with --output."""
    failed = sorted(summary.failed_workers)
    doc = result_document(summary.total, seconds, analysis=plan.formats.analysis, program="distributed", ranks=size,
                          workers=size - 1, tasks=len(plan.tasks), failed_workers=failed,
                          reassigned_tasks=summary.reassigned, master_rank=node.rank, epoch=summary.epoch,
                          elections=node.elections, checkpoints_saved=summary.checkpoints_saved, **extra)
    emit(doc, output.json, output.output, csv_dir=output.csv, html=output.html, extra_lines=[
        f"Files processed: {doc['files']}",
        f"Failed workers: {len(failed)}" + (f" {failed}" if failed else ""),
        f"Tasks: {len(plan.tasks)} (reassigned: {summary.reassigned})",
        f"Checkpoints saved: {doc['checkpoints_saved']}",
        f"Master: rank {node.rank} (epoch {summary.epoch})",
        "Hosts: " + ", ".join(f"{host} {ranks}" for host, ranks in doc["hosts"].items()),
    ])


def replication_plan(hosts: tuple[str, ...], options: JobOptions, rank: int) -> ReplicationPlan:
    """Copies on as many other hosts as --backups asks and the job has; a majority of the copies commits."""
    count = min(options.backups, len(set(hosts)) - 1)
    quorum = quorum_size(1 + count, options.replicas)
    if quorum > 1 + count and rank == 0:
        warn(f"--replicas {quorum} but only {1 + count} host(s) get a copy (--backups {options.backups}, "
             f"{len(set(hosts))} host(s)): no checkpoint will be committed, and a resume finds none")
    return ReplicationPlan(hosts, count, quorum)


def _agree_on_job(comm, options: JobOptions, say, replication: ReplicationPlan | None, follow: FollowSettings | None):
    """Rank 0 scans and plans; every rank gets the plan (and a follow job's first
    observation), or the error that ends the job."""
    job = formats = None
    if comm.Get_rank() == 0:
        try:
            formats = job_formats(options.inputs)
        except Exception as exc:  # an error, or a bug: either way the other ranks must not wait for the plan
            job = carried(0, exc)
    found = _found_checkpoints(comm, options, replication, formats) if replication is not None else None
    if comm.Get_rank() == 0 and job is None:
        try:
            inputs = options.inputs
            if follow is not None:
                job = plan_follow_job(options, follow, formats, say)
            else:
                files = find_log_files(list(inputs.paths), inputs.glob, inputs.recursive, warn=warn)
                job = plan_job(options, files, formats, comm.Get_size() - 1, say, found=found) + (None,)
        except Exception as exc:  # an error, or a bug: either way the other ranks must not wait for the plan
            job = carried(0, exc)
    job = comm.bcast(job, root=0)
    if isinstance(job, AnalyserError) and comm.Get_rank() == 0:
        raise job
    return job  # the other ranks see the error and end quietly: rank 0 reports it


def _found_checkpoints(comm, options: JobOptions, replication: ReplicationPlan, formats):
    """Every rank looks into its own host's folder; rank 0 gets the newest committed checkpoint of
    the job's input set among them (read by the rank that holds it) as a FoundCheckpoints.
    `formats`: rank 0's FormatSet (None elsewhere, or when it could not be made)."""
    rank = comm.Get_rank()
    store = CheckpointStore(options.checkpoints.folder, options.checkpoints.keep, warn=warn)
    first_on_host = replication.hosts.index(replication.hosts[rank]) == rank  # one scan per folder
    scans = comm.gather(scan_folder(store, rank) if first_on_host else FolderScan((), (), 0), root=0)
    choice = problem = None
    if rank == 0:
        problem = next((f"{scan.error} (host {replication.hosts[r]})" for r, scan in enumerate(scans) if scan.error), None)
        if options.checkpoints.resume and problem is None:
            try:
                fingerprint = job_fingerprint(options.inputs, formats) if formats is not None else None
            except AnalyserError:
                fingerprint = None  # planning meets the error again and reports it
            choice = newest_committed(scans, fingerprint, replication.quorum) if fingerprint else None
    choice = comm.bcast(choice, root=0)
    mine = None
    if choice is not None and choice.holder == rank:
        mine = next((c for c in store.valid_checkpoints() if c.sequence == choice.sequence), None)
    held = comm.gather(mine, root=0)
    if rank != 0:
        return None
    return FoundCheckpoints(held[choice.holder] if choice is not None else None,
                            max((scan.highest for scan in scans), default=0), problem)


def _run_rank(node) -> int:
    """Runs the rank; a crashed worker becomes a process failure the others survive."""
    # mpi4py finalises MPI at exit, which waits for every rank, and a non-zero
    # exit status makes mpirun end the whole job: a worker that fails must
    # instead vanish like a killed process, which ULFM lets the master handle.
    try:
        return node.run()
    except AnalyserError:
        raise
    except SystemExit as exc:
        if exc.code in (None, 0):
            raise
        _die(f"exit({exc.code})")
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except BaseException as exc:  # noqa: BLE001 - any crash must end as a process failure
        if os.environ.get("LOGANALYSER_DEBUG"):
            traceback.print_exc()
        _die(f"{type(exc).__name__}: {exc}")
    return int(ExitCode.INTERNAL)


def _die(why: str) -> None:
    print(f"{PROG}: rank crashed ({why}); ending this rank so the others carry on", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _on_signals(node, rank: int) -> None:
    """SIGINT and SIGTERM ask the master for a last checkpoint and a resumable stop."""
    if rank != 0:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master decides when the job stops

    def handler(signum, _frame):
        node.interrupted = signum

    signal.signal(signal.SIGTERM, handler)
    if rank == 0:
        signal.signal(signal.SIGINT, handler)


def _progress_bar(output: OutputOptions, total_bytes: int):
    if not (output.progress and output.chatty) or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total_bytes, unit="B", unit_scale=True, desc="analysed", file=sys.stderr, leave=False)
