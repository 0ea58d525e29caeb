"""The fault-tolerant distributed analyser (the seed's Stage 2): the front end.

Rank 0 scans the input, plans the tasks and becomes the master; every other
rank is a worker. Exactly one result is printed, by the master.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback

from .cli import base_parser, warn
from .errors import AnalyserError, ExitCode, UsageError
from .faults import FaultInjector, parse_fault
from .inputs import find_log_files
from .master import Master
from .report import emit, result_document
from .scheduler import Timing
from .checkpoint import FILE_MODES, CheckpointStore, StaleEpoch, input_fingerprint
from .checkpointing import CheckpointPolicy, Checkpointer, FileTracker, restore
from .tasks import BATCH_BYTES, BATCH_FILES, CHUNK_BYTES, plan_tasks, task_sizes
from .worker import Worker

PROG = "distributed_log_analyser.py"
MASTER = 0


def build_parser():
    parser = base_parser(PROG, "Count log lines per level with a fault-tolerant master/worker job over MPI.")
    parser.add_argument("--worker-timeout", type=float, default=10.0, metavar="S",
                        help="declare a silent worker failed after S seconds (default 10)")
    parser.add_argument("--heartbeat-interval", type=float, default=0.5, metavar="S",
                        help="workers speak at least every S seconds (default 0.5)")
    parser.add_argument("--chunk-size", type=_size, default=CHUNK_BYTES, metavar="BYTES",
                        help="cut files larger than this into tasks of about this size (default 32M)")
    group = parser.add_argument_group("checkpoints")
    group.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR", help="where checkpoints live (default: checkpoints)")
    group.add_argument("--checkpoint-every", type=_positive_int, default=5, metavar="N", help="checkpoint after every N files processed (default 5)")
    group.add_argument("--checkpoint-interval", type=_positive_float, default=30.0, metavar="S", help="... and at least every S seconds (default 30)")
    group.add_argument("--keep-checkpoints", type=_positive_int, default=3, metavar="K", help="keep the newest K checkpoints (default 3)")
    group.add_argument("--checkpoint-files", choices=FILE_MODES, default="link",
                       help="keep processed files in the checkpoint store as hard links (default), copies, or not at all")
    group.add_argument("--no-checkpoint", action="store_true", help="write no checkpoints")
    group.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints and start afresh")
    parser.add_argument("--inject", action="append", default=[], type=parse_fault, metavar="FAULT",
                        help="kill:RANK@FRACTION, exit:RANK@FRACTION or hang:RANK@FRACTION:SECONDS (repeatable)")
    parser.add_argument("--task-delay", type=float, default=0.0, metavar="S",
                        help="workers wait S seconds per task, heartbeating (simulates slow workers for demos and tests)")
    parser.add_argument("--trace", action="store_true", help="print every message sent and received, time-stamped, on stderr")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise UsageError(f"must be positive: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"not a number: {text!r}") from None
    if not value > 0:
        raise UsageError(f"must be positive: {text!r}")
    return value


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B")
    try:
        value = int(float(text[:-1]) * units[text[-1]]) if text and text[-1] in units else int(text)
    except ValueError:
        raise UsageError(f"bad size {text!r}") from None
    if value <= 0:
        raise UsageError(f"size must be positive: {text!r}")
    return value


def main(argv) -> int:
    args = build_parser().parse_args(argv)
    try:
        timing = Timing(args.heartbeat_interval, args.worker_timeout)
    except ValueError as exc:
        raise UsageError(f"--heartbeat-interval/--worker-timeout: {exc}") from None
    from mpi4py import MPI  # here, so --help and usage errors need no MPI

    from .transport import MpiTransport, Tracer

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    say = (lambda text: None) if (args.quiet or args.json) else (lambda text: print(text, flush=True))
    transport = MpiTransport(comm, Tracer(rank, args.trace))
    injector = FaultInjector(args.inject, rank, say)
    if rank != MASTER:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master decides when the job stops
        comm.bcast(None, root=MASTER)  # wait for the master's verdict on the input
        return _as_worker(lambda: Worker(transport, MASTER, timing, injector, say, task_delay=args.task_delay).run())
    return _as_master(args, comm, transport, timing, injector, say)


def _as_master(args, comm, transport, timing, injector, say) -> int:
    start = time.perf_counter()
    try:
        files = find_log_files(args.paths, args.glob, args.recursive, warn=warn)
    except AnalyserError:
        comm.bcast("stop", root=MASTER)
        raise
    comm.bcast("go", root=MASTER)
    from .transport import fault_tolerance_enabled

    size = transport.size
    if size == 1:
        warn("only one rank: the master does all the work itself (run with mpirun -np N for workers)")
    elif not fault_tolerance_enabled():
        warn("fault tolerance (ULFM) is off: a crashed rank ends the whole job (use mpirun --with-ft ulfm)")
    plan, checkpointer, extra = _plan_and_resume(args, files, size, say)
    tasks, state = plan
    say(f"Starting distributed analysis on {size} rank(s)...")
    bar = _progress_bar(args, sum(t.size for t in tasks))
    master = Master(transport, tasks, timing, say, injector, bar, state=state, checkpointer=checkpointer)
    _on_signals(master)
    try:
        state = master.run()
    except StaleEpoch as exc:
        raise AnalyserError(f"a newer master exists ({exc}); this one stops") from None
    finally:
        if bar is not None:
            bar.close()
    sched = master.scheduler
    doc = result_document(state.total(), time.perf_counter() - start, program="distributed", ranks=size,
                          workers=size - 1, tasks=len(tasks), failed_workers=sorted(sched.failed_workers),
                          reassigned_tasks=sched.reassigned, master_rank=MASTER, epoch=master.epoch,
                          checkpoints_saved=checkpointer.written if checkpointer else 0, **extra)
    emit(doc, args.json, args.output, extra_lines=[
        f"Files processed: {doc['files']}",
        f"Failed workers: {len(sched.failed_workers)}" + (f" {sorted(sched.failed_workers)}" if sched.failed_workers else ""),
        f"Tasks: {len(tasks)} (reassigned: {sched.reassigned})",
        f"Checkpoints saved: {doc['checkpoints_saved']}",
    ])
    return int(ExitCode.OK)


def _plan_and_resume(args, files, size, say):
    """Tasks, the results already held by a checkpoint, and the checkpointer."""
    fingerprint = input_fingerprint(args.paths, args.glob, args.recursive)
    store = CheckpointStore(args.checkpoint_dir, args.keep_checkpoints, args.checkpoint_files, warn=warn)
    _check_checkpoint_dir(args)
    checkpoint = None
    if not (args.no_resume or args.no_checkpoint):
        if store.sequences():
            say("Loading checkpoint from previous run...")
        checkpoint = store.load_latest(fingerprint)
    if checkpoint is not None:
        sizes = checkpoint.doc["plan"]  # the same sizes give the same task ids
    else:
        chunk, batch = task_sizes(files, max(1, size - 1), args.chunk_size, BATCH_BYTES)
        sizes = {"chunk_bytes": chunk, "batch_bytes": batch, "batch_files": BATCH_FILES}
    tasks = plan_tasks(files, **sizes)
    extra = {}
    state = None
    if checkpoint is not None:
        restored = restore(checkpoint, files, tasks)
        state = restored.state
        say(f"Resuming from checkpoint: {restored.files} files already processed")
        for path in restored.changed:
            warn(f"{path} changed since the checkpoint: counted again")
        for path in restored.removed:
            warn(f"{path} is in the checkpoint but gone now: not counted")
        extra = {"resumed_from": checkpoint.folder, "restored_files": restored.files,
                 "restored_tasks": len(restored.state)}
    remaining = len(files) - extra.get("restored_files", 0)
    say(f"Found {len(files)} log file(s) to analyse ({remaining} remaining, {len(tasks)} task(s))")
    if args.no_checkpoint:
        return (tasks, state), None, extra
    meta = {"fingerprint": fingerprint, "plan": sizes}
    tracker = FileTracker(files, tasks, done=[t for t, _ in state.items()] if state else ())
    policy = CheckpointPolicy(args.checkpoint_every, args.checkpoint_interval)
    return (tasks, state), Checkpointer(store, policy, tracker, meta, time.monotonic()), extra


def _check_checkpoint_dir(args) -> None:
    """A checkpoint folder that cannot be used is an input error before any work."""
    if args.no_checkpoint:
        return
    path = args.checkpoint_dir
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise AnalyserError(f"cannot use checkpoint folder {path}: {exc.strerror or exc}", ExitCode.INPUT) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise AnalyserError(f"cannot write to checkpoint folder {path}", ExitCode.INPUT)


def _on_signals(master) -> None:
    """SIGINT and SIGTERM ask the master for a last checkpoint and a resumable stop."""
    def handler(signum, _frame):
        master.interrupted = signum

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _as_worker(run) -> int:
    """Runs a worker; a crash becomes a process failure the others survive."""
    # mpi4py finalises MPI at exit, which waits for every rank, and a non-zero
    # exit status makes mpirun end the whole job: a worker that fails must
    # instead vanish like a killed process, which ULFM lets the master handle.
    try:
        return run()
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
    print(f"{PROG}: worker crashed ({why}); ending this rank so the others carry on", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _progress_bar(args, total_bytes: int):
    if args.no_progress or args.quiet or args.json or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total_bytes, unit="B", unit_scale=True, desc="analysed", file=sys.stderr, leave=False)
