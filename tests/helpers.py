"""Shared test helpers: running the programs (plain or under mpirun) and log data.

    run_program("base_log_analyser.py", folder, "--json")             # one process
    run_program("parallel_log_analyser.py", folder, "--json", np=2)   # real mpirun
    json_of(proc)                                                      # parsed stdout

Everything uses the project's virtual environment (.venv/bin/python and
.venv/bin/mpirun); Open MPI refuses to start as root unless told it is fine,
so `program_env()` says so. `log_lines()` is a hypothesis strategy for log
lines full of the format's traps, shared by the kernel and reader tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import strategies as st

from utils.jobcontrol import clear_stale_sessions

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
MPIRUN = str(VENV_BIN / "mpirun")
TIMEOUT = 120  # seconds; a run that takes longer is hung (e.g. blocked on a FIFO)


def program_env(**extra: str) -> dict:
    """The environment for a program run: ours, plus Open MPI's root permission."""
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.pop("LOGANALYSER_DEBUG", None)  # a traceback would break the one-line checks
    env.update(extra)
    return env


def program_cmd(program: str, *args, np: int | None = None) -> list[str]:
    """The command line of a top-level program; under `mpirun -np NP` if np is given."""
    cmd = [PYTHON, str(REPO / program), *map(str, args)]
    if np is not None:
        cmd = [MPIRUN, "-np", str(np), *cmd]
    return cmd


def run_program(program: str, *args, np: int | None = None, timeout: float = TIMEOUT, cwd=None,
                env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs a program to completion and returns its CompletedProcess (text output).

    Raises subprocess.TimeoutExpired (failing the test) if it runs past `timeout`. An mpirun
    that could not even start (Open MPI's PMIx listener, an intermittent fault of the launcher
    that happens before any of our code runs) is started once more. `env`: variables to add.
    """
    for _ in range(2):
        clear_stale_sessions()
        proc = subprocess.run(program_cmd(program, *args, np=np), capture_output=True, text=True,
                              timeout=timeout, env=program_env(**(env or {})), cwd=cwd or REPO)
        if LAUNCH_FAILURE not in proc.stderr:
            break
    return proc


LAUNCH_FAILURE = "The PMIx server's listener thread failed to start"  # see clear_stale_sessions


def json_of(proc: subprocess.CompletedProcess) -> dict:
    """The JSON document a successful `--json` run printed (asserts it succeeded)."""
    assert proc.returncode == 0, f"exit {proc.returncode}; stderr:\n{proc.stderr}"
    return json.loads(proc.stdout)


# --- log data -----------------------------------------------------------------

_TIMESTAMPS = st.sampled_from([b"2026-01-01T00:00:00", b"2026-12-31T23:59:59.999", b"t", b"", b"x y", b"[nested"])
_LEVEL_WORDS = st.sampled_from([b"INFO", b"WARN", b"ERROR", b"DEBUG", b"warn", b"Info", b"TRACE", b"CRITICAL", b"NOTICEXY"])
_RANDOM_LEVELS = st.binary(min_size=1, max_size=20).map(
    lambda b: bytes(65 + (c % 26) + (32 if c & 0x80 else 0) for c in b))  # 1..20 letters, mixed case
_MESSAGES = st.sampled_from([
    b"", b"ok", b"retry after [ERROR] upstream", b"[WARN] planted", b"] [INFO] again", b"user [user 42]",
    b"caf\xc3\xa9 \xff\xfe not utf-8", b"nul\x00byte", b"tab\there", b"ends with cr\r",
])


@st.composite
def _well_formed(draw) -> bytes:
    level = draw(st.one_of(_LEVEL_WORDS, _RANDOM_LEVELS))
    return b"[" + draw(_TIMESTAMPS) + b"] [" + level + b"] " + draw(_MESSAGES)


_ODD_LINES = st.sampled_from([
    b"", b"\r", b"\r\r", b" ", b"no brackets at all", b"[]", b"[] []", b"[user 42]", b"[t] []", b"[t] [INFO",
    b"[t][INFO] no space", b"[t]  [INFO] two spaces", b" [t] [INFO] leading space", b"[t] [IN FO] x",
    b"[t] [INFO1] digit", b"[t] [ABCDEFG\x03] ctrl", b"[t] [ABCDEFG\x00] nul", b"[t] [ABCDEFGH] eight",
    b"[t] [ABCDEFGHI] nine", b"[t] [ABCDEFGHIJKLMNOP] sixteen", b"[t] [ABCDEFGHIJKLMNOPQ] seventeen",
    b"[t] [\xc3\xa9] latin", b"[t] [INFO]", b"[t] [INFO]]", b"[t] [[INFO]]", b"\x00[t] [INFO]", b"[\xff] [WARN] x",
    b"[t] [INFO\r", b"[t] [", b"[t] ", b"[t]", b"[",
    b"\tat com.example.Main.run(Main.java:12)", b"Caused by: java.io.IOException: reset", b"\t... 12 more",
    b"... 3 more", b"...3 more", b"at ", b"at", b"attic", b"Caused", b"C", b".", b"\t", b"  indented",
])
_LONG_LINES = st.builds(
    lambda pad, where, line: line[:where] + pad + line[where:],
    st.integers(200, 3000).map(lambda n: b"x" * n),
    st.sampled_from([1, 2, 4, 40]),  # inside the timestamp, just after "] [", inside the level, in the message
    st.sampled_from([b"[2026-01-01T00:00:00] [WARN] long message", b"[t] [INFO] long", b"no bracket long"]),
)


def log_lines(max_lines: int = 60):
    """Lists of log lines (without endings) full of the format's traps."""
    line = st.one_of(_well_formed(), _ODD_LINES, _LONG_LINES, st.binary(max_size=30))
    return st.lists(line, max_size=max_lines)


@st.composite
def log_buffers(draw, max_lines: int = 60) -> bytes:
    """Whole log buffers: lines with "\\n" or "\\r\\n" endings, the last maybe unterminated."""
    lines = draw(log_lines(max_lines))
    endings = draw(st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines)))
    data = b"".join(line + end for line, end in zip(lines, endings))
    if data and draw(st.booleans()):
        data = data[:-1]  # no final newline (or a final lone "\r")
    return data


RESULT_FIELDS = ("lines", "malformed", "blank", "bytes", "files")


def assert_exact(doc: dict, expected: dict) -> None:
    """The analyser's document holds exactly the generator's totals, to the line (zero level counts aside)."""
    got = {level: n for level, n in doc["counts"].items() if n}
    want = {level: n for level, n in expected["counts"].items() if n}
    assert got == want
    for key in RESULT_FIELDS:
        assert doc[key] == expected[key], f"{key}: got {doc[key]}, expected {expected[key]}"


def seed_reference(data: bytes):
    """The seed format's per-line rule, canonical levels: what the programs must report for a file
    holding `data` (a UTF-8 byte-order mark at its start is no part of its first line)."""
    from loganalyser.counting.reader import BOM, standard_formats

    result = standard_formats().dialect("seed").count_reference(data.removeprefix(BOM))
    result.bytes = len(data)
    return result
