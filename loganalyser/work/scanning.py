"""From the user's paths and format options to the files of a job, each with its format.

Shared by the three programs: the formats the job knows (built-ins plus
`--format-file`), the files found, and for each file the format it is counted
in, forced by `--format NAME` or detected from its first lines. Detection runs
once, where the job is planned, and the format then travels with the work;
small files read whole may be left to their reader, who applies the same rule
to the same bytes (assign_formats).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from loganalyser.counting.compressed import compression_of, reading
from loganalyser.counting.analysis.options import Analysis
from loganalyser.counting.formats import AUTO, FormatSet, SpecError
from loganalyser.counting.formats.detect import HEAD_BYTES, detect, file_head
from loganalyser.counting.reader import unfit_warning
from loganalyser.errors import InputError, UsageError

from .inputs import LogFile, find_log_files, input_fingerprint
from .streams import HEAD


@dataclass(frozen=True)
class InputOptions:
    """What the user chose to analyse and how (the programs build it from their arguments)."""

    paths: tuple[str, ...]  # files and folders, as given
    glob: str | None = None  # file names to take from folders (None: *.log and rotated names)
    recursive: bool = False  # scan folders recursively
    format: str = AUTO  # every file's format, or AUTO: detected per file
    format_files: tuple[str, ...] = ()  # JSON files of extra format specs
    raw_levels: bool = False  # report level spellings as written
    analysis: Analysis | None = None  # statistics and filters beyond level counts (None: none)


def job_formats(inputs: InputOptions) -> FormatSet:
    """The formats of this job; a bad format file or name is a usage error."""
    try:
        formats = FormatSet.standard(list(inputs.format_files), inputs.raw_levels, inputs.analysis)
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    if inputs.format != AUTO and inputs.format not in formats:
        raise UsageError(f"--format: unknown format {inputs.format!r} (known: {AUTO}, {', '.join(formats.names)})")
    return formats


def job_fingerprint(inputs: InputOptions, formats: FormatSet) -> str:
    """Names the job's input set and how it is counted: a checkpoint of another is never applied."""
    return input_fingerprint(list(inputs.paths), inputs.glob, inputs.recursive, f"{inputs.format}:{formats.digest()}")


def fingerprint_of(paths, glob: str | None = None, recursive: bool = False, fmt: str = AUTO,
                   format_files=(), raw_levels: bool = False, analysis=None) -> str:
    """The fingerprint a job with these options gives its checkpoints (for tools and tests)."""
    inputs = InputOptions(tuple(paths), glob, recursive, fmt, analysis=analysis)
    return job_fingerprint(inputs, FormatSet.standard(list(format_files), raw_levels, analysis))


def scan_inputs(inputs: InputOptions, formats: FormatSet, warn, read_later: int = 0) -> list[LogFile]:
    """The files to analyse, sorted by path, each with the format it is counted in (see assign_formats)."""
    files = find_log_files(list(inputs.paths), inputs.glob, inputs.recursive, warn=warn)
    return assign_formats(files, formats, inputs.format, warn, read_later)


def assign_formats(files: list[LogFile], formats: FormatSet, choice: str, warn=None,
                   read_later: int = 0) -> list[LogFile]:
    """Each file with its format: `choice`, or (auto) the one its first lines fit best.

    Plain files of at most `read_later` bytes keep AUTO: whoever reads them
    whole decides from the same head by the same rule (reader.analyse_pieces),
    which spares a folder of small files a second read and the planner the
    work: the answer cannot differ, detection is a pure function of the head.
    """
    if choice != AUTO:
        return [replace(f, format=choice) for f in files]
    out = []
    for f in files:
        if f.size <= read_later and not f.compression:
            out.append(replace(f, format=AUTO))
            continue
        name, fits = detect(read_head(f), formats)
        if not fits and warn:
            warn(unfit_warning(f.path))
        out.append(replace(f, format=name))
    return out


@dataclass(frozen=True)
class GrowingFile:
    """A followed file as read_head reads it: its first bytes, up to `size` (what was there)."""

    path: str
    size: int


def stream_head(path: str) -> bytes:
    """The first HEAD bytes of a followed file, which recognise a copy of it (b"" if unreadable)."""
    try:
        with open(path, "rb") as f:
            return f.read(HEAD)
    except OSError:
        return b""


def read_head(f: LogFile | GrowingFile) -> bytes:
    """The first bytes of a file as its lines read (decompressed), at most HEAD_BYTES."""
    suffix = compression_of(f.path)
    if suffix:
        with reading(f.path, suffix) as stream:
            return file_head(stream.read(HEAD_BYTES))
    try:
        with open(f.path, "rb") as stream:
            return file_head(stream.read(min(HEAD_BYTES, f.size)))
    except OSError as exc:
        raise InputError(f"cannot read {f.path}: {exc.strerror or exc}") from None
