"""Exit codes and the one error type that becomes a one-line message.

Every program of the project exits with one of these codes; the README lists
them. Anything the user can cause (a bad path, a bad option) raises
`AnalyserError` with a message that names what and where; the front end prints
it as one line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import traceback
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # a bug: an unexpected exception
    USAGE = 2  # bad command line (argparse uses 2 as well)
    INPUT = 3  # missing, unreadable or empty input
    INTERRUPTED = 4  # stopped by a signal; a rerun resumes from the checkpoint
    TOO_FEW_RANKS = 5  # every worker was lost and the master cannot go on


class AnalyserError(Exception):
    """An error the user can fix; carries its exit code."""

    exit_code = ExitCode.INTERNAL

    def __init__(self, message: str, exit_code: ExitCode | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(AnalyserError):
    exit_code = ExitCode.USAGE


class InputError(AnalyserError):
    exit_code = ExitCode.INPUT


class RankFailure(AnalyserError):
    """A bug (an unexpected exception) at one rank, carried through a collective to the rank
    that reports it, so that no rank is left waiting there for the one that failed."""

    exit_code = ExitCode.INTERNAL


def carried(rank: int, exc: Exception) -> AnalyserError:
    """What a collective carries for an exception met at `rank`: the error itself, or a
    RankFailure naming a bug (its traceback shown with LOGANALYSER_DEBUG=1)."""
    if isinstance(exc, AnalyserError):
        return exc
    if os.environ.get("LOGANALYSER_DEBUG"):
        traceback.print_exc()
    return RankFailure(f"rank {rank}: {type(exc).__name__}: {exc}")
