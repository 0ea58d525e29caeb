"""The user's choices as frozen values, built once from the parsed arguments.

The front ends parse the command line; everything below them takes these
dataclasses, never argparse's namespace, so the engine can be driven (and
tested) without a command line and a new option is one field in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from loganalyser.cluster.scheduler import Timing
from loganalyser.counting.analysis.options import AnalysisError, analysis_from
from loganalyser.errors import UsageError
from loganalyser.faults.injected import Fault
from loganalyser.monitor.dashboard import parse_address
from loganalyser.persistence.policy import CheckpointOptions, CheckpointPolicy
from loganalyser.work.scanning import InputOptions
from loganalyser.work.tasks import CHUNK_BYTES


@dataclass(frozen=True)
class OutputOptions:
    """How the result is shown."""

    json: bool = False  # one JSON document instead of the table
    output: str | None = None  # also write the JSON document to this file
    quiet: bool = False  # print only the result
    progress: bool = True  # a progress bar on a terminal
    csv: str | None = None  # --csv DIR: one CSV file per statistic
    html: str | None = None  # --html FILE: the result as a self-contained page

    @property
    def chatty(self) -> bool:
        """Log lines for the user (not with --quiet or --json)."""
        return not (self.quiet or self.json)


@dataclass(frozen=True)
class WatchOptions:
    """What watchers of a distributed job get (all off by default)."""

    events: str | None = None  # --events FILE: one JSON line per event
    status: str | None = None  # --status FILE: the live status document, rewritten atomically
    dashboard: tuple[str, int] | None = None  # --dashboard [HOST:]PORT
    dashboard_html: str | None = None  # --dashboard-html FILE: the final page, data inside
    tui: bool = False  # --tui: the live status on the terminal
    dashboard_linger: float = 2.0  # seconds the dashboard stays up after the result

    @property
    def any(self) -> bool:
        return bool(self.events or self.status or self.dashboard or self.dashboard_html or self.tui)


@dataclass(frozen=True)
class JobOptions:
    """Everything the distributed job takes from its command line."""

    inputs: InputOptions
    output: OutputOptions
    checkpoints: CheckpointOptions = CheckpointOptions()
    timing: Timing = Timing()  # heartbeats and the worker timeout
    chunk_size: int = CHUNK_BYTES  # files larger than this are cut into tasks of about this size
    backups: int = 1  # ranks that receive a copy of every accepted result (and, with {host} folders, of each checkpoint)
    replicas: int | None = None  # hosts that must hold a checkpoint to commit it (None: a majority of the copies)
    faults: tuple[Fault, ...] = ()  # --inject
    chaos_seed: int | None = None  # --chaos: ranks feign failures, seeded
    task_delay: float = 0.0  # extra seconds per task on the workers (demos, tests)
    trace: bool = False  # every message on stderr
    watch: WatchOptions = WatchOptions()
    ship: str = "auto"  # --ship: when workers get a file's bytes from the master (cluster/shipping.py)


def input_options(args) -> InputOptions:
    """The input part of any program's arguments (cli.base_parser); bad analysis options are usage errors."""
    try:
        analysis = analysis_from(args)
    except AnalysisError as exc:
        raise UsageError(str(exc)) from None
    return InputOptions(tuple(args.paths), args.glob, args.recursive, args.format, tuple(args.format_file),
                        args.raw_levels, analysis)


def output_options(args) -> OutputOptions:
    return OutputOptions(args.json, args.output, args.quiet, not getattr(args, "no_progress", False), args.csv, args.html)


def job_options(args) -> JobOptions:
    """The distributed program's arguments as options; an impossible timing is a usage error."""
    try:
        timing = Timing(args.heartbeat_interval, args.worker_timeout)
    except ValueError as exc:
        raise UsageError(f"--heartbeat-interval/--worker-timeout: {exc}") from None
    policy = CheckpointPolicy(args.checkpoint_every, args.checkpoint_interval, args.consistency)
    checkpoints = CheckpointOptions(args.checkpoint_dir, not args.no_checkpoint, not args.no_resume,
                                    args.keep_checkpoints, args.checkpoint_files, policy)
    watch = WatchOptions(args.events, args.status, parse_address(args.dashboard) if args.dashboard else None,
                         args.dashboard_html, args.tui, args.dashboard_linger)
    return JobOptions(input_options(args), output_options(args), checkpoints, timing, args.chunk_size, args.backups,
                      args.replicas, tuple(args.inject), args.chaos, args.task_delay, args.trace, watch, ship=args.ship)
