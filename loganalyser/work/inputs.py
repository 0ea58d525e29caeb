"""Turns the user's paths into the list of log files to analyse.

A folder is scanned for names matching a glob (by default log names and their
rotations: `*.log`, `*.log.1`, `*.log.2.gz`, ...), at its top level or, with
`recursive`, below it (symbolic links to folders are not
followed, so a link loop cannot trap the scan). A file named on the command
line is always taken. Anything that is not a regular file (FIFO, device,
socket) is skipped with a warning: opening a FIFO would block the job.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import stat
from dataclasses import dataclass

from loganalyser.counting.compressed import compression_of
from loganalyser.errors import InputError

# Log names as logrotate leaves them: app.log, app.log.1, app.log.2.gz, app.log.gz ...
DEFAULT_PATTERNS = ("*.log", "*.log.[0-9]*", "*.log.gz", "*.log.bz2", "*.log.xz", "*.log.zst")
DEFAULT_GLOB_TEXT = "*.log and rotated names (*.log.1, *.log.2.gz, ...)"


@dataclass(frozen=True)
class LogFile:
    """One input file and the identity that tells if it changed."""

    path: str  # absolute and normalised: one spelling per file, the same on every rank and every run
    size: int  # bytes at scan time; later growth is not counted
    mtime_ns: int
    inode: int
    device: int
    format: str = "seed"  # the log format its lines are counted in (chosen once, at planning)

    @property
    def compression(self) -> str | None:
        """".gz", ".bz2", ".xz", ".zst", or None: a compressed file is read whole."""
        return compression_of(self.path)

    @property
    def identity(self) -> str:
        """Changes whenever the file is replaced or rewritten."""
        return f"{self.device}:{self.inode}:{self.size}:{self.mtime_ns}"


def find_log_files(paths, pattern: str | None = None, recursive: bool = False, warn=None) -> list[LogFile]:
    """The log files under `paths`, sorted by path; raises InputError if none.

    `pattern` None takes DEFAULT_PATTERNS."""
    if not paths:
        raise InputError("no input path given")
    found: dict[tuple[int, int], LogFile] = {}  # (device, inode) -> file: a file named twice counts once
    for path in paths:
        if not os.path.lexists(path):
            raise InputError(f"no such file or directory: {path}")
        if os.path.isdir(path):
            candidates = _scan_folder(path, pattern, recursive)
        else:
            candidates = [path]
            if not os.path.isfile(path):
                raise InputError(f"not a regular file: {path}")
        for candidate in candidates:
            log_file = _stat_file(candidate, warn)
            if log_file is not None:
                found.setdefault((log_file.device, log_file.inode), log_file)
    if not found:
        where = ", ".join(paths)
        raise InputError(f"no files matching {pattern or DEFAULT_GLOB_TEXT!r} in {where}")
    return sorted(found.values(), key=lambda f: f.path)


def _scan_folder(folder: str, pattern: str | None, recursive: bool) -> list[str]:
    patterns = DEFAULT_PATTERNS if pattern is None else (pattern,)

    def wanted(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    try:
        if not recursive:
            with os.scandir(folder) as entries:
                return [entry.path for entry in entries if wanted(entry.name)]
        matches = []
        for root, dirs, files in os.walk(folder, onerror=_raise):
            dirs.sort()
            matches.extend(os.path.join(root, name) for name in files if wanted(name))
        return matches
    except OSError as exc:
        raise InputError(f"cannot read folder {folder}: {exc.strerror or exc}") from None


def _raise(exc: OSError) -> None:
    raise exc


def _stat_file(path: str, warn) -> LogFile | None:
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):  # a dangling or looping link in a folder: nothing to read
            if warn:
                warn(f"skipping {path}: broken symbolic link ({exc.strerror})")
            return None
        if isinstance(exc, FileNotFoundError):
            raise InputError(f"no such file or directory: {path}") from None
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            return None  # a folder whose name matches the glob
        if warn:
            warn(f"skipping {path}: not a regular file")
        return None
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path}: permission denied")
    return LogFile(os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def input_fingerprint(paths, pattern: str | None, recursive: bool, counting: str = "") -> str:
    """Names the input set and how it is counted (`counting`: formats and level
    mode): a checkpoint of another set is never applied."""
    spec = {"paths": sorted(os.path.abspath(p) for p in paths), "glob": pattern, "recursive": recursive,
            "counting": counting}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
