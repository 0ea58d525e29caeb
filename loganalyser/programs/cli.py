"""Command-line plumbing shared by the three programs.

Each program is a function `main(argv) -> exit code`; `run` calls it and turns
an `AnalyserError` into one line on stderr and its exit code, and any other
exception into one "internal error" line (set LOGANALYSER_DEBUG=1 for the
traceback). Nothing the user types produces a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from typing import NoReturn

from loganalyser.errors import AnalyserError, ExitCode, RankFailure, UsageError


def secondary_rank() -> bool:
    """True in MPI ranks other than 0: they stay quiet about usage, rank 0 speaks."""
    for name in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"):
        if name in os.environ:
            return os.environ[name] != "0"
    return False


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, said once per job."""

    def error(self, message):  # noqa: D401 - argparse's name
        raise UsageError(f"{message} (see --help)")

    def _print_message(self, message, file=None):
        if not secondary_rank():
            super()._print_message(message, file)


def base_parser(prog: str, description: str) -> OneLineParser:
    """Options every program takes: inputs and how to report."""
    parser = OneLineParser(prog=prog, description=description)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="log files or folders to analyse")
    parser.add_argument("--glob", default=None, metavar="PATTERN",
                        help="file names to take from folders (default: *.log and rotated names: *.log.1, *.log.2.gz, ...)")
    parser.add_argument("--recursive", action="store_true", help="scan folders recursively")
    formats = parser.add_argument_group("formats")
    formats.add_argument("--format", default="auto", metavar="NAME",
                         help="the log format of every file (default: auto, detected per file from its first lines)")
    formats.add_argument("--format-file", action="append", default=[], metavar="FILE",
                         help="add the format specs of a JSON file (repeatable; see README)")
    formats.add_argument("--raw-levels", action="store_true",
                         help="report level spellings as written instead of canonical levels")
    stats = parser.add_argument_group("statistics and filters (see README: Beyond counts)")
    stats.add_argument("--bucket", metavar="WIDTH", help="lines per level per time bucket: 30s, 1m, 5m, 1h, 1d, ...")
    stats.add_argument("--top", type=positive_int, default=0, metavar="N",
                       help="the N most frequent message templates per level, with exact counts")
    stats.add_argument("--max-templates", type=positive_int, default=None, metavar="N",
                       help="distinct templates kept per level and task before counts become bounds (default 20000)")
    stats.add_argument("--mask", action="append", default=[], metavar="REGEX",
                       help="also mask what REGEX matches in templates (repeatable)")
    stats.add_argument("--by", choices=("file", "host", "component"), help="counts per level per group")
    stats.add_argument("--host-from-path", metavar="REGEX",
                       help="--by host: the host from the file's path where the format names none")
    stats.add_argument("--level", metavar="LEVELS", help="only lines of these levels, e.g. ERROR,FATAL")
    stats.add_argument("--grep", metavar="REGEX", help="only records whose message matches REGEX")
    stats.add_argument("--since", metavar="TIME", help="only records at or after TIME (2026-01-01[T10:00:00])")
    stats.add_argument("--until", metavar="TIME", help="only records before TIME")
    stats.add_argument("--year", type=positive_int, metavar="YYYY",
                       help="the year of timestamps that have none (default: the file's modification year)")
    stats.add_argument("--csv", metavar="DIR", help="also write one CSV file per statistic into DIR")
    stats.add_argument("--html", metavar="FILE", help="also write the result as a self-contained HTML page")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--output", metavar="FILE", help="also write the JSON document to FILE (atomically)")
    parser.add_argument("--quiet", action="store_true", help="print only the result")
    return parser


def positive_int(text: str) -> int:
    """An option value: a whole number above 0 (argparse names the option in the error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def positive_float(text: str) -> float:
    """An option value: a finite number above 0."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """An option value: a finite number, 0 or more."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def byte_size(text: str) -> int:
    """An option value: a positive size in bytes, with an optional K, M or G (powers of 1024)."""
    spec = text.strip().upper().removesuffix("B")
    try:
        value = int(float(spec[:-1]) * _UNITS[spec[-1]]) if spec and spec[-1] in _UNITS else int(spec)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 32M, 512K, 1G)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def add_follow_options(parser):
    """--follow and its settings, as the sequential and the distributed programs share them;
    returns the option group, for a program's own additions."""
    group = parser.add_argument_group("following growing files (like tail -F)")
    group.add_argument("--follow", action="store_true",
                       help="after the first pass keep counting what is appended and new files, until SIGINT/SIGTERM")
    group.add_argument("--follow-for", type=positive_float, metavar="S", help="with --follow: stop after S seconds")
    group.add_argument("--partial-after", type=positive_float, default=2.0, metavar="S",
                       help="with --follow: count a last line without newline after S seconds of silence (default 2)")
    return group


def leave(code: int) -> NoReturn:
    """Ends the process now, its output flushed, without the interpreter's teardown: freeing
    every module and numpy's state cost about 60 ms of a distributed run's wall time, and
    nothing is left to do by then (files are written whole and closed before this)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


def run(prog: str, main, argv=None) -> int:
    """Calls `main(argv)` and maps every failure to a message and an exit code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return int(main(argv) or 0)
    except AnalyserError as exc:
        kind = "internal error" if isinstance(exc, RankFailure) else "error"
        if not (isinstance(exc, UsageError) and secondary_rank()):
            print(f"{prog}: {kind}: {exc}", file=sys.stderr, flush=True)
        return int(exc.exit_code)
    except BrokenPipeError:  # e.g. piped into `head`: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for debugging
        if os.environ.get("LOGANALYSER_DEBUG"):
            traceback.print_exc()
        print(f"{prog}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return int(ExitCode.INTERNAL)
