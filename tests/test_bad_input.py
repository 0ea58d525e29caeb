"""Hostile input: garbage bytes, huge lines, link loops, 100,000 files, files that change under the job,
invalid option values and a full disk.

Every case checks the documented exit code, that whatever goes wrong is said in one line on stderr
naming what and where, that no traceback is printed, and, for the distributed program (always under a
real `mpirun -np 3`, with its checkpoints in the test's own folder), that the newest checkpoint on disk
still loads. Expected counts come from the kernel's per-line reference
(`tests.helpers.seed_reference`) applied file by file. (tests/test_cli_bad_input.py covers
missing paths, empty folders, unknown options, an unwritable --output and FIFOs.)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from loganalyser.counting.result import PartialResult
from loganalyser.errors import ExitCode
from loganalyser.persistence.store import CheckpointStore, stored_name
from loganalyser.work.scanning import fingerprint_of
from utils.jobcontrol import Jobs, wait_for

from .helpers import PYTHON, json_of, program_cmd, program_env, run_program, seed_reference

BASE, DIST = "base_log_analyser.py", "distributed_log_analyser.py"
NP = 3
PROGRAMS = [pytest.param(BASE, id="base"), pytest.param(DIST, id="distributed-np3")]
RUN_TIMEOUT = 60  # seconds: every run here takes a few seconds at most
MiB = 1 << 20


# --- helpers ------------------------------------------------------------------------------------------

def run(program: str, tmp_path: Path, *args, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    """Runs `program` on `args` in tmp_path; the distributed one under mpirun -np 3 with tmp_path/checkpoints."""
    if program == DIST:
        return run_program(DIST, *args, "--checkpoint-dir", tmp_path / "checkpoints", "--no-progress",
                           np=NP, timeout=timeout, cwd=tmp_path)
    return run_program(BASE, *args, timeout=timeout, cwd=tmp_path)


def reference(*paths) -> PartialResult:
    """The totals of whole files by the kernel's per-line reference (files and bytes included)."""
    total = PartialResult()
    for path in paths:
        part = seed_reference(Path(path).read_bytes())
        part.files = 1
        total.add(part)
    return total


def assert_totals(doc: dict, expected: PartialResult) -> None:
    """The JSON document holds exactly `expected`."""
    assert {k: v for k, v in doc["counts"].items() if v} == expected.counts
    for key in ("lines", "malformed", "blank", "bytes", "files"):
        assert doc[key] == getattr(expected, key), f"{key}: got {doc[key]}, expected {getattr(expected, key)}"


def no_traceback(proc) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def clean_success(proc, unfit=()) -> dict:
    """A run that succeeded with nothing to say on stderr but that the files named in
    `unfit` fit no known format; its JSON document."""
    no_traceback(proc)
    doc = json_of(proc)
    said = sorted(stderr_lines(proc.stderr))
    assert len(said) == len(unfit), proc.stderr
    for line, name in zip(said, sorted(unfit)):
        assert line.startswith("warning: no known format fits") and name in line, proc.stderr
    return doc


def newest_checkpoint(folder: Path, paths, glob: str | None = None, recursive: bool = False, required: bool = True):
    """The newest checkpoint in `folder`, asserting it loads (checksum, job file) and nothing is half-written.

    Returns None when there is none and none is `required`.
    """
    problems: list[str] = []
    store = CheckpointStore(str(folder), warn=problems.append)
    sequences = store.sequences()
    assert sequences or not required, f"no checkpoint in {folder}"
    if not sequences:
        return None
    checkpoint = store.load_latest(fingerprint_of([str(p) for p in paths], glob, recursive))
    assert checkpoint is not None, f"the newest checkpoint in {folder} does not load: {problems}"
    assert checkpoint.sequence == sequences[-1] and not problems, problems  # the newest, not an older fallback
    assert not [n for n in os.listdir(folder) if n.startswith(".tmp-")], os.listdir(folder)
    return checkpoint


def log_lines(rnd: random.Random, n: int) -> bytes:
    """`n` well-formed lines with a few traps (planted levels, odd case)."""
    levels = [b"INFO", b"WARN", b"ERROR", b"DEBUG", b"warn", b"Critical"]
    return b"".join(b"[2026-01-01T00:00:%02d] [%s] message %d [ERROR] planted\n" % (i % 60, rnd.choice(levels), i)
                    for i in range(n))


# --- 1. binary garbage among good files ---------------------------------------------------------------

def garbage(rnd: random.Random, size: int) -> bytes:
    """Random bytes with runs of NULs, stray newlines, CRs, and level-field look-alikes cut by garbage."""
    parts, length = [], 0
    traps = [b"\x00" * 64, b"\n", b"\r\n", b"\r", b"\n\n[\x00] [INFO] \x00\n", b"\n[t] [ERROR]\x00\n",
             b"\n[t] [WARN", b"\n[t] [\x00\x00\x00\x00]\n", b"\n[t] [INFO] ok\n", b"]]] [[[", b"\xff" * 40]
    while length < size:
        part = rnd.randbytes(rnd.randrange(1, 4000)) if rnd.random() < 0.6 else rnd.choice(traps)
        parts.append(part)
        length += len(part)
    return b"".join(parts)[:size]


@pytest.mark.parametrize("program", PROGRAMS)
def test_binary_garbage_among_good_files(program, tmp_path):
    rnd = random.Random(7)
    folder = tmp_path / "in"
    folder.mkdir()
    files = {
        "good1.log": log_lines(rnd, 3000),
        "garbage-big.log": garbage(rnd, 700_000),  # several pieces at 64K: cut inside garbage
        "garbage-small.log": garbage(rnd, 3000) + b"\x00\x00\xff",  # no final newline
        "nuls.log": b"\x00" * 5000,  # one malformed line of NULs
        "good2.log": log_lines(rnd, 500),
        "crlf-garbage.log": b"\r\n".join(rnd.randbytes(50) for _ in range(200)),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    expected = reference(*(folder / name for name in files))
    assert expected.malformed > 200 and expected.blank > 0 and expected.counts["INFO"] > 0
    doc = clean_success(run(program, tmp_path, folder, "--json", "--chunk-size", "64K")
                        if program == DIST else run(program, tmp_path, folder, "--json"),
                        unfit=[name for name in files if "good" not in name])
    assert_totals(doc, expected)
    if program == DIST:
        assert doc["tasks"] > len(files)  # the big garbage file was cut into pieces
        newest_checkpoint(tmp_path / "checkpoints", [folder])


# --- 2. non-UTF-8 bytes in messages and in the level field ---------------------------------------------

def non_utf8_lines() -> bytes:
    """Lines with bytes that are not UTF-8 at every position of level fields of 1 to 18 bytes, and around them."""
    odd = [b"\x80", b"\xff", b"\xc3\xa9", b"\xe9", b"\xfe\xff", b"\xc0", b"\xed\xa0\x80"]
    word = b"INFORMATIONALXYZQR"
    lines = []
    for n in range(1, 19):
        lines.append(b"[t] [" + word[:n] + b"] caf\xe9 \xff\xfe in the message")  # counted when n <= 16
        for pos in range(n):
            for o in odd:
                lines.append(b"[2026-01-01T00:00:00] [" + word[:pos] + o + word[pos + 1 : n] + b"] msg \xff")
    for o in odd:
        lines += [b"[" + o + b"] [ERROR] bad timestamp", b"[t" + o + b"] [DEBUG] " + o, o + b"[t] [INFO] lead",
                  b"[t]" + o + b" [INFO] x", b"[t] [INFO]" + o, b"[t] [INFO" + o + b"]", b"[t] " + o + b"[INFO] y",
                  b"[t] [info] \xc3\x28 " + o * 30, o, o + b"\r"]
    random.Random(3).shuffle(lines)
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("program", PROGRAMS)
def test_non_utf8_bytes_in_messages_and_level_field(program, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    data = non_utf8_lines()
    (folder / "latin1.log").write_bytes(data)
    (folder / "latin1-crlf.log").write_bytes(data.replace(b"\n", b"\r\n")[:-2])  # CRLF, no final newline
    big = folder / os.fsdecode(b"caf\xe9-\xff.log")  # a file name that is not UTF-8 either
    with open(big, "wb") as f:
        f.write(data * 40)  # ~1.3 MB: several pieces at 64K, cut at odd places
    expected = reference(folder / "latin1.log", folder / "latin1-crlf.log", big)
    assert expected.malformed > 500 and expected.counts["INFO"] >= 42 and expected.counts["INFORMATIONALXYZ"] == 42
    args = [folder, "--json"] + (["--chunk-size", "64K"] if program == DIST else [])
    # Most lines are malformed on purpose: no format fits, and the seed rules count them.
    doc = clean_success(run(program, tmp_path, *args), unfit=["caf", "latin1-crlf.log", "latin1.log"])
    assert_totals(doc, expected)
    if program == DIST:
        checkpoint = newest_checkpoint(tmp_path / "checkpoints", [folder])
        assert str(big) in checkpoint.doc["processed_files"]


# --- 3. a 1 GB line without a newline -------------------------------------------------------------------

PEAK_RSS_LIMIT = 300 * MiB
RSS_WRAPPER = """
import json, resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
json.dump({"code": proc.returncode, "stdout": proc.stdout.decode(errors="replace"),
           "stderr": proc.stderr.decode(errors="replace"), "peak": peak}, sys.stdout)
"""


def test_one_gigabyte_line_without_newline(tmp_path):
    huge = tmp_path / "huge.log"
    block = b"[t] [INFO] " + b"x" * (MiB - 11)  # every block starts like a line: only the first one is
    started = time.perf_counter()
    try:
        with open(huge, "wb") as f:
            for _ in range(1024):
                f.write(block)
        written = time.perf_counter() - started
        assert huge.stat().st_size == 1 << 30, written
        expected = PartialResult(counts={"INFO": 1}, lines=1, bytes=1 << 30, files=1)

        # The sequential program, its peak memory measured by a wrapper process.
        wrapped = subprocess.run([PYTHON, "-c", RSS_WRAPPER, *program_cmd(BASE, huge, "--json")], capture_output=True,
                                 text=True, timeout=120, env=program_env(), cwd=tmp_path)
        outcome = json.loads(wrapped.stdout)
        assert outcome["code"] == 0 and "Traceback" not in outcome["stderr"], outcome["stderr"]
        assert stderr_lines(outcome["stderr"]) == []
        assert_totals(json.loads(outcome["stdout"]), expected)
        assert outcome["peak"] < PEAK_RSS_LIMIT, f"peak RSS {outcome['peak'] / MiB:.0f} MiB"

        # The distributed one cuts the line into 32 pieces: exactly one of them owns it.
        doc = clean_success(run(DIST, tmp_path, huge, "--json", timeout=120))
        assert_totals(doc, expected)
        assert doc["tasks"] >= 8
        newest_checkpoint(tmp_path / "checkpoints", [huge])
    finally:
        huge.unlink(missing_ok=True)
        shutil.rmtree(tmp_path / "checkpoints", ignore_errors=True)  # its store holds a hard link to the file


# --- 4. symbolic link loops under --recursive -------------------------------------------------------------

def linked_tree(root: Path) -> list[Path]:
    """Two real logs, a link to one of them, and links to folders that loop back; returns the real files."""
    (root / "sub" / "deeper").mkdir(parents=True)
    real = [root / "a.log", root / "sub" / "b.log"]
    real[0].write_bytes(b"[t] [INFO] a\n" * 3)
    real[1].write_bytes(b"[t] [WARN] b\n" * 5 + b"garbage\n\n")
    os.symlink("..", root / "sub" / "up")  # a link to its parent folder
    os.symlink(".", root / "sub" / "here.log")  # a link to its own folder, whose name matches the glob
    os.symlink("../..", root / "sub" / "deeper" / "top")
    os.symlink(root, root / "sub" / "deeper" / "absolute-root.log")
    os.symlink("a.log", root / "alias.log")  # the same file again: counted once
    return real


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("glob", ["*.log", "*"])
def test_symlink_loops_to_folders_are_not_followed(program, glob, tmp_path):
    root = tmp_path / "tree"
    real = linked_tree(root)
    doc = clean_success(run(program, tmp_path, root, "--recursive", "--glob", glob, "--json", timeout=30))
    assert_totals(doc, reference(*real))
    if program == DIST:
        newest_checkpoint(tmp_path / "checkpoints", [root], glob, True)


@pytest.mark.parametrize("program", PROGRAMS)
def test_symlink_to_itself_is_skipped_with_a_warning(program, tmp_path):
    root = tmp_path / "tree"
    real = linked_tree(root)
    os.symlink("self.log", root / "self.log")  # a link to itself
    os.symlink("cycle-b.log", root / "sub" / "cycle-a.log")  # two links pointing at each other
    os.symlink("cycle-a.log", root / "sub" / "cycle-b.log")
    proc = run(program, tmp_path, root, "--recursive", "--json", timeout=30)
    no_traceback(proc)
    assert_totals(json_of(proc), reference(*real))
    warnings = stderr_lines(proc.stderr)
    for name in ("self.log", "cycle-a.log", "cycle-b.log"):
        assert sum(name in line and "warning" in line for line in warnings) == 1, proc.stderr
    assert len(warnings) == 3, proc.stderr


# --- 5. 100,000 empty files ---------------------------------------------------------------------------------

MANY = 100_000


def _in_memory_tmp() -> Path | None:
    """/dev/shm if it is a writable tmpfs: 100,000 files are made there in half a second, not 2 to 20."""
    try:
        with open("/proc/mounts") as mounts:
            tmpfs = any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts)
    except OSError:
        return None
    return Path("/dev/shm") if tmpfs and os.access("/dev/shm", os.W_OK) else None


@pytest.fixture(scope="module")
def many_empty_files(tmp_path_factory):
    """A folder of 100,000 empty *.log files (and how long making them took)."""
    shm = _in_memory_tmp()
    parent = Path(tempfile.mkdtemp(prefix="bad-input-", dir=shm)) if shm else tmp_path_factory.mktemp("many")
    folder = parent / "empty"
    folder.mkdir()
    try:
        started = time.perf_counter()
        for i in range(MANY):
            os.close(os.open(os.path.join(folder, f"e{i:06d}.log"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        created = time.perf_counter() - started
        yield folder, created
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.parametrize("program", PROGRAMS)
def test_hundred_thousand_empty_files(program, many_empty_files, tmp_path, record_property):
    folder, created = many_empty_files
    record_property("create_s", round(created, 2))
    # The checkpoint store would hold 100,000 links, written by the master in one go at the end; that stalls
    # it long enough for an election (see test_master_busy_storing_many_files_is_not_voted_out): not here.
    store = ["--checkpoint-files", "none"] if program == DIST else []
    started = time.perf_counter()
    proc = run(program, tmp_path, folder, "--json", *store, timeout=90)
    record_property("run_s", round(time.perf_counter() - started, 2))
    doc = clean_success(proc)
    assert_totals(doc, PartialResult(files=MANY))
    if program == DIST:
        assert doc["tasks"] < MANY // 100  # batched, not one task (round trip) per file
        checkpoint = newest_checkpoint(tmp_path / "checkpoints", [folder])
        assert checkpoint.doc["complete"] and len(checkpoint.doc["processed_files"]) == MANY
        shutil.rmtree(tmp_path / "checkpoints", ignore_errors=True)


def test_master_busy_storing_many_files_is_not_voted_out(many_empty_files, jobs, tmp_path):
    folder, _ = many_empty_files
    output = tmp_path / "result.json"
    cmd = program_cmd(DIST, folder, "--output", output, "--checkpoint-dir", tmp_path / "checkpoints",
                      "--checkpoint-files", "copy", "--no-progress", np=NP)  # not --json: elections are told on stdout
    job = jobs.start(cmd, marker=str(output), env=program_env(), cwd=tmp_path)
    try:
        wait_for(lambda: "Became master" in job.stdout or not job.running(), 60, "an election or the job's end")
        assert "Became master" not in job.stdout, job.stdout[-1000:] + job.stderr[-1000:]
        assert job.wait(30) == 0 and stderr_lines(job.stderr) == [], job.stderr
        assert job.stdout.count("ANALYSIS RESULTS") == 1
        doc = json.loads(output.read_text())
        assert doc["elections"] == 0 and doc["files"] == MANY
    finally:
        job.kill()
        shutil.rmtree(tmp_path / "checkpoints", ignore_errors=True)


# --- 6 and 7. files deleted, truncated or grown while the distributed job reads them ---------------------

TASK_DELAY = "1.0"  # seconds each worker waits before counting a task: the window in which a file is changed
JOB_TIMEOUT = 60


class Live:
    """A background distributed job over tmp_path/in (one task per file), checkpointing after every file."""

    def __init__(self, jobs: Jobs, tmp_path: Path):
        self.folder = tmp_path / "in"
        self.output = tmp_path / "result.json"
        self.checkpoints = tmp_path / "checkpoints"
        cmd = program_cmd(DIST, self.folder, "--output", self.output, "--checkpoint-dir", self.checkpoints,
                          "--checkpoint-every", "1", "--task-delay", TASK_DELAY, "--no-progress", np=NP)
        self.job = jobs.start(cmd, marker=str(self.output), env=program_env(), cwd=tmp_path)

    def processing(self, name: str) -> bool:
        """True once a worker has announced it is counting `name` (it then waits TASK_DELAY before reading)."""
        return self.job.count(f"Processing in/{name}") > 0

    def when_processing(self, actions: dict) -> None:
        """Runs actions[name]() as soon as a worker starts on `name`; fails if the job ends before all ran."""
        pending = dict(actions)

        def step():
            for name in [n for n in pending if self.processing(n)]:
                pending.pop(name)()
            return not pending or not self.job.running()

        wait_for(step, 30, f"workers to start on {sorted(actions)}")
        assert not pending, f"the job ended before a worker started on {sorted(pending)}:\n{self.job.stdout[-2000:]}"

    def finish(self) -> tuple[int, str]:
        code = self.job.wait(JOB_TIMEOUT)
        no_traceback(self.job)
        return code, self.job.stderr


def _whole(data: bytes) -> PartialResult:
    """The reference totals of one whole file's content."""
    part = seed_reference(data)
    part.files = 1
    return part


def small_logs(folder: Path, names, lines: int = 2400) -> dict[str, bytes]:
    """One ~200 KB log per name: each below the job's batch size alone, two above it, so one task per file."""
    folder.mkdir()
    rnd = random.Random(11)
    contents = {name: log_lines(rnd, lines + 37 * i) for i, name in enumerate(names)}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return contents


def test_file_deleted_while_being_analysed(jobs, tmp_path):
    contents = small_logs(tmp_path / "in", ["a.log", "b.log", "victim.log", "z.log"])
    victim = tmp_path / "in" / "victim.log"
    live = Live(jobs, tmp_path)
    live.when_processing({"victim.log": victim.unlink})
    code, stderr = live.finish()
    lines = stderr_lines(stderr)
    assert code in (ExitCode.OK, ExitCode.INPUT), stderr
    if code == ExitCode.INPUT:  # the worker found it gone: the job cannot be exact and says which file
        assert len(lines) == 1 and "error" in lines[0] and "victim.log" in lines[0], stderr
        assert not live.output.exists()
    else:  # it was opened before the deletion: read whole, with a warning naming it
        assert len(lines) == 1 and "warning" in lines[0] and "victim.log" in lines[0], stderr
        assert_totals(json.loads(live.output.read_text()), PartialResult.total(_whole(d) for d in contents.values()))
    checkpoint = newest_checkpoint(live.checkpoints, [live.folder], required=False)
    if checkpoint is not None and code == ExitCode.INPUT:
        assert str(victim) not in checkpoint.doc["processed_files"]


def test_files_truncated_and_grown_while_being_analysed(jobs, tmp_path):
    contents = small_logs(tmp_path / "in", ["a.log", "grow.log", "shrink.log", "z.log"])
    grow, shrink = tmp_path / "in" / "grow.log", tmp_path / "in" / "shrink.log"
    cut = contents["shrink.log"].index(b"\n", len(contents["shrink.log"]) // 3) + 1  # keep a third, whole lines

    def append():
        with open(grow, "ab") as f:
            f.write(b"[t] [ERROR] appended after the scan\n" * 1000)

    def truncate():
        os.truncate(shrink, cut)

    live = Live(jobs, tmp_path)
    live.when_processing({"grow.log": append, "shrink.log": truncate})
    code, stderr = live.finish()
    assert code == ExitCode.OK, stderr
    lines = stderr_lines(stderr)
    assert len(lines) == 2, stderr
    assert sum("warning" in line and "grow.log" in line and "grew" in line for line in lines) == 1, stderr
    assert sum("warning" in line and "shrink.log" in line and "shrank" in line for line in lines) == 1, stderr
    # What existed at scan time for the grown file; what was left for the truncated one (cut before it was read).
    expected = PartialResult.total([_whole(contents["a.log"]), _whole(contents["z.log"]), _whole(contents["grow.log"]),
                                    _whole(contents["shrink.log"][:cut])])
    assert_totals(json.loads(live.output.read_text()), expected)
    newest_checkpoint(live.checkpoints, [live.folder])


# --- 8. invalid option values of the distributed program ---------------------------------------------------

BAD_VALUES = [
    pytest.param(["--worker-timeout", "-1"], "--worker-timeout", ExitCode.USAGE, id="negative-worker-timeout"),
    pytest.param(["--worker-timeout", "0"], "--worker-timeout", ExitCode.USAGE, id="zero-worker-timeout"),
    pytest.param(["--heartbeat-interval", "5", "--worker-timeout", "5"], "--heartbeat-interval", ExitCode.USAGE,
                 id="heartbeat-equals-timeout"),
    pytest.param(["--heartbeat-interval", "20"], "--heartbeat-interval", ExitCode.USAGE, id="heartbeat-above-timeout"),
    pytest.param(["--checkpoint-interval", "0"], "--checkpoint-interval", ExitCode.USAGE, id="zero-checkpoint-interval"),
    pytest.param(["--checkpoint-interval", "-5"], "--checkpoint-interval", ExitCode.USAGE,
                 id="negative-checkpoint-interval"),
    pytest.param(["--checkpoint-every", "0"], "--checkpoint-every", ExitCode.USAGE, id="zero-checkpoint-every"),
    pytest.param(["--chunk-size", "0"], "--chunk-size", ExitCode.USAGE, id="zero-chunk-size"),
    pytest.param(["--chunk-size", "garbage"], "--chunk-size", ExitCode.USAGE, id="garbage-chunk-size"),
    pytest.param(["--chunk-size", "1e400K"], "--chunk-size", ExitCode.USAGE, id="overflowing-chunk-size"),
    pytest.param(["--inject", "garbage"], "--inject", ExitCode.USAGE, id="garbage-inject"),
    pytest.param(["--inject", "kill:1@1.5"], "--inject", ExitCode.USAGE, id="inject-fraction-above-one"),
    pytest.param(["--checkpoint-files", "bogus"], "--checkpoint-files", ExitCode.USAGE, id="bogus-checkpoint-files"),
    pytest.param(["--checkpoint-dir", "{file}"], "{file}", ExitCode.INPUT, id="checkpoint-dir-is-a-file"),
]


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    """A small input and a checkpoint folder holding the checkpoints of a finished run over it."""
    root = tmp_path_factory.mktemp("options")
    folder = root / "in"
    folder.mkdir()
    (folder / "a.log").write_bytes(log_lines(random.Random(5), 300))
    (root / "not-a-folder").write_bytes(b"a regular file\n")
    clean_success(run(DIST, root, folder, "--json"))
    return root, folder, newest_checkpoint(root / "checkpoints", [folder])


@pytest.mark.parametrize("args, mention, code", BAD_VALUES)
def test_invalid_option_value(args, mention, code, checkpointed):
    root, folder, before = checkpointed
    file = root / "not-a-folder"
    args = [str(file) if a == "{file}" else a for a in args]
    mention = str(file) if mention == "{file}" else mention
    proc = run_program(DIST, folder, "--json", "--checkpoint-dir", root / "checkpoints", *args,
                       np=NP, timeout=RUN_TIMEOUT, cwd=root)
    no_traceback(proc)
    lines = stderr_lines(proc.stderr)
    assert len(lines) == 1, f"expected one line on stderr (said once, not once per rank):\n{proc.stderr}"
    assert proc.returncode == code, f"exit {proc.returncode}: {proc.stderr}"
    assert lines[0].startswith(f"{DIST}: error: ") and proc.stdout == ""
    assert mention in lines[0], lines[0]
    # Nothing was written, nothing was lost.
    after = newest_checkpoint(root / "checkpoints", [folder])
    assert (after.sequence, after.doc) == (before.sequence, before.doc)
    assert file.read_bytes() == b"a regular file\n"


def test_input_error_ends_the_distributed_job_as_fast_as_a_usage_error(checkpointed):
    root, folder, _ = checkpointed
    timings = {}
    for what, args, code in [("usage", ["--chunk-size", "0"], ExitCode.USAGE),
                             ("input", ["--checkpoint-dir", root / "not-a-folder"], ExitCode.INPUT)]:
        started = time.perf_counter()
        proc = run_program(DIST, folder, *args, np=NP, timeout=RUN_TIMEOUT, cwd=root)
        timings[what] = time.perf_counter() - started
        assert proc.returncode == code and len(stderr_lines(proc.stderr)) == 1, proc.stderr
    assert timings["input"] < timings["usage"] + 2.0, timings


# --- 9. a full disk while checkpointing ----------------------------------------------------------------------

def corpus_of(folder: Path, files: int, lines: int) -> PartialResult:
    folder.mkdir()
    rnd = random.Random(9)
    for i in range(files):
        (folder / f"node{i:02d}.log").write_bytes(log_lines(rnd, lines))
    return reference(*sorted(folder.iterdir()))


def assert_checkpoint_failures_only(stderr: str) -> int:
    """Every stderr line is a one-line 'checkpoint not written' warning; returns how many there are."""
    lines = stderr_lines(stderr)
    for line in lines:
        assert line.startswith("warning: checkpoint not written in "), stderr
    return len(lines)


def assert_stored_files_whole(checkpoint, folder: Path) -> None:
    """Each file the checkpoint says is processed is in its store, whole (not a torn copy)."""
    store = Path(checkpoint.folder) / "files"
    for path in checkpoint.doc["processed_files"]:
        identity = checkpoint.doc["identities"][path]
        assert (store / stored_name(path, identity)).read_bytes() == Path(path).read_bytes()


@pytest.fixture
def small_disk(tmp_path):
    """A 1.5 MiB tmpfs mounted in tmp_path (skips the test if mounting is not permitted)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_full_disk_while_checkpointing(small_disk, tmp_path):
    folder = tmp_path / "in"
    # ~3 MB in tasks of ~375 KB: the first checkpoints' copies (another file system: no hard links) fit, later ones not.
    expected = corpus_of(folder, files=40, lines=1000)
    checkpoints = small_disk / "checkpoints"
    proc = run_program(DIST, folder, "--json", "--checkpoint-dir", checkpoints, "--checkpoint-every", "1",
                       "--task-delay", "0.05", "--no-progress", np=NP, timeout=RUN_TIMEOUT, cwd=tmp_path)
    no_traceback(proc)
    doc = json_of(proc)
    assert_totals(doc, expected)
    failures = assert_checkpoint_failures_only(proc.stderr)
    assert failures >= 1 and "No space left on device" in proc.stderr, proc.stderr
    assert doc["checkpoints_saved"] >= 1
    checkpoint = newest_checkpoint(checkpoints, [folder])
    assert not checkpoint.doc["complete"]  # the last checkpoints were the ones that did not fit
    assert_stored_files_whole(checkpoint, folder)


def test_unwritable_checkpoint_store(tmp_path):
    """Without a small disk to fill: the store folder is a regular file, so every checkpoint write fails."""
    folder = tmp_path / "in"
    expected = corpus_of(folder, files=12, lines=500)
    checkpoints = tmp_path / "checkpoints"
    first = clean_success(run_program(DIST, folder, "--json", "--checkpoint-dir", checkpoints, "--checkpoint-files",
                                      "none", "--checkpoint-every", "1", np=NP, timeout=RUN_TIMEOUT, cwd=tmp_path))
    assert_totals(first, expected)
    before = newest_checkpoint(checkpoints, [folder])
    (checkpoints / "files").write_bytes(b"in the way\n")  # where the store folder would be made
    proc = run_program(DIST, folder, "--json", "--checkpoint-dir", checkpoints, "--checkpoint-every", "1",
                       np=NP, timeout=RUN_TIMEOUT, cwd=tmp_path)
    no_traceback(proc)
    doc = json_of(proc)
    assert_totals(doc, expected)
    assert assert_checkpoint_failures_only(proc.stderr) >= 1 and str(checkpoints) in proc.stderr
    assert doc["checkpoints_saved"] == 0
    after = newest_checkpoint(checkpoints, [folder])
    assert (after.sequence, after.doc) == (before.sequence, before.doc)
