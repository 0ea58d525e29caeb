"""Bad input gives one line on stderr and the documented exit code, never a traceback.

Both front ends run as the user runs them: the sequential one as a plain
process, the parallel one under a real `mpirun -np 2`.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess

import pytest

from loganalyser.errors import ExitCode

from .helpers import MPIRUN, PYTHON, json_of, program_env, run_program

BASE, PARALLEL = "base_log_analyser.py", "parallel_log_analyser.py"
PROGRAMS = [pytest.param((BASE, None), id="base"), pytest.param((PARALLEL, 2), id="parallel-np2")]
FIFO_TIMEOUT = 30  # a run that opened the FIFO would block until killed

INFO = b"[2026-01-01T00:00:00] [INFO] ok\n"


def one_error_line(proc, code: ExitCode, *mentions: str) -> str:
    """Asserts a failed run: `code`, nothing on stdout, one line on stderr naming `mentions`."""
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == code, f"exit {proc.returncode}, stderr:\n{proc.stderr}"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one line on stderr, got:\n{proc.stderr}"
    for text in mentions:
        assert text in lines[0]
    assert proc.stdout == ""
    return lines[0]


@pytest.fixture
def folders(tmp_path):
    """Input trees: empty/, nomatch/ (no *.log), tree/ (logs at two levels)."""
    (tmp_path / "empty").mkdir()
    nomatch = tmp_path / "nomatch"
    nomatch.mkdir()
    (nomatch / "notes.txt").write_bytes(INFO)
    (nomatch / "old.log.bak").write_bytes(INFO)  # rotated names are taken (app.log.1, app.log.2.gz), backups not
    (nomatch / "dir.log").mkdir()  # a folder whose name matches is not a file
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.log").write_bytes(INFO * 2)
    (tree / "b.txt").write_bytes(b"[t] [WARN] w\n" * 3)
    (tree / "sub" / "c.log").write_bytes(b"[t] [ERROR] e\n" * 5)
    (tree / "sub" / "d.txt").write_bytes(b"[t] [DEBUG] d\n" * 7)
    return tmp_path


@pytest.mark.parametrize("program", PROGRAMS)
def test_missing_path(program, tmp_path):
    missing = str(tmp_path / "no-such-folder")
    line = one_error_line(run_program(program[0], missing, np=program[1]), ExitCode.INPUT, missing)
    assert line.startswith(program[0])


@pytest.mark.parametrize("program", PROGRAMS)
def test_missing_path_among_good_ones(program, folders):
    missing = str(folders / "gone.log")
    one_error_line(run_program(program[0], folders / "tree", missing, np=program[1]), ExitCode.INPUT, missing)


@pytest.mark.parametrize("program", PROGRAMS)
def test_empty_folder(program, folders):
    empty = str(folders / "empty")
    one_error_line(run_program(program[0], empty, np=program[1]), ExitCode.INPUT, empty)


@pytest.mark.parametrize("program", PROGRAMS)
def test_folder_with_no_matching_files(program, folders):
    nomatch = str(folders / "nomatch")
    one_error_line(run_program(program[0], nomatch, np=program[1]), ExitCode.INPUT, nomatch, "*.log")


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("name, data", [("old.log.gz", b"\x1f\x8b"), ("old.log.2.gz", gzip.compress(INFO * 50)[:-9]),
                                        ("x.log.bz2", b"BZh9garbage"), ("x.log.xz", b"\xfd7zXZ\x00junk"),
                                        ("x.log.zst", b"(\xb5/\xfd junk")])
def test_damaged_compressed_file(program, tmp_path, name, data):
    """A truncated or damaged compressed log is an input error naming it, never a traceback."""
    (tmp_path / "good.log").write_bytes(INFO)
    (tmp_path / name).write_bytes(data)
    proc = run_program(program[0], tmp_path, "--no-checkpoint", np=program[1]) if program[0].startswith("distributed") \
        else run_program(program[0], tmp_path, np=program[1])
    one_error_line(proc, ExitCode.INPUT, name, "damaged or truncated")


BAD_OPTIONS = [
    pytest.param(["--bogus"], "--bogus", id="unknown-option"),
    pytest.param(["--glob"], "--glob", id="option-without-value"),
    pytest.param([], "PATH", id="no-path"),
]
@pytest.mark.parametrize("args, mention", BAD_OPTIONS)
@pytest.mark.parametrize("program", [
    pytest.param((BASE, None), id="base"),
    pytest.param((PARALLEL, 2), id="parallel-np2"),
])
def test_bad_option(program, folders, args, mention):
    paths = [] if mention == "PATH" else [str(folders / "tree")]
    proc = run_program(program[0], *paths, *args, np=program[1])
    one_error_line(proc, ExitCode.USAGE, mention)


@pytest.mark.parametrize("program", PROGRAMS)
def test_unwritable_output(program, folders):
    output = str(folders / "no-such-folder" / "result.json")
    proc = run_program(program[0], folders / "tree", "--json", "--output", output, np=program[1])
    one_error_line(proc, ExitCode.INPUT, output)


@pytest.mark.parametrize("program", PROGRAMS)
def test_fifo_is_skipped_with_a_warning(program, folders):
    tree = folders / "tree"
    fifo = tree / "pipe.log"
    os.mkfifo(fifo)
    proc = run_program(program[0], tree, "--json", np=program[1], timeout=FIFO_TIMEOUT)
    doc = json_of(proc)
    assert doc["files"] == 1 and doc["counts"] == {"INFO": 2}
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and str(fifo) in lines[0], proc.stderr
    # Named on its own, the FIFO leaves nothing to analyse: an input error, still without blocking.
    proc = run_program(program[0], fifo, np=program[1], timeout=FIFO_TIMEOUT)
    assert proc.returncode == ExitCode.INPUT and "Traceback" not in proc.stderr
    assert all(str(fifo) in line for line in proc.stderr.splitlines())


@pytest.mark.parametrize("program", PROGRAMS)
def test_output_file_holds_the_printed_json(program, folders, tmp_path):
    output = tmp_path / "result.json"
    proc = run_program(program[0], folders / "tree", "--json", "--output", output, np=program[1])
    doc = json_of(proc)
    assert output.read_text() == proc.stdout
    assert json.loads(output.read_text()) == doc
    assert doc["counts"] == {"INFO": 2} and doc["files"] == 1
    # Without --json the table is printed and the file still holds the document.
    output.unlink()
    proc = run_program(program[0], folders / "tree", "--output", output, np=program[1])
    assert proc.returncode == 0 and "ANALYSIS RESULTS" in proc.stdout
    assert json.loads(output.read_text())["counts"] == {"INFO": 2}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # no temporary left behind


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("options, counts", [
    ([], {"INFO": 2}),
    (["--glob", "*.txt"], {"WARN": 3}),
    (["--recursive"], {"INFO": 2, "ERROR": 5}),
    (["--recursive", "--glob", "*.txt"], {"WARN": 3, "DEBUG": 7}),
    (["--recursive", "--glob", "*"], {"INFO": 2, "WARN": 3, "ERROR": 5, "DEBUG": 7}),
], ids=["default", "glob", "recursive", "recursive-glob", "recursive-star"])
def test_glob_and_recursive(program, folders, options, counts):
    doc = json_of(run_program(program[0], folders / "tree", "--json", *options, np=program[1]))
    assert doc["counts"] == counts
    assert doc["files"] == len(counts) and doc["lines"] == sum(counts.values())


@pytest.mark.parametrize("module, where, rank", [("static_parallel", "analyse_pieces", 1),
                                                 ("static_parallel", "scan_inputs", 0),
                                                 ("distributed", "plan_job", 0)])
def test_a_bug_at_one_rank_is_reported_not_hung(folders, tmp_path, module, where, rank):
    """An unexpected error at one rank (the static partition's counting at rank 1, its scan at
    rank 0; the distributed job's planning at rank 0) reaches rank 0 through the gather or
    the broadcast: one "internal error" line and its exit code, instead of the other ranks
    waiting forever for it."""
    args = [str(folders / "tree"), "--json"] + (["--checkpoint-dir", str(tmp_path / "ck")] if module == "distributed" else [])
    planted = (
        "import sys; from mpi4py import MPI\n"
        f"from loganalyser.programs import {module} as program\n"
        "from loganalyser.programs.cli import leave, run\n"
        "def broken(*a, **k): raise ValueError('planted bug')\n"
        f"if MPI.COMM_WORLD.Get_rank() == {rank}: program.{where} = broken\n"
        f"code = run(program.PROG, program.main, {args!r})\n"
        "if hasattr(program, 'finalize_mpi'): program.finalize_mpi(code)\n"
        "leave(code)\n"
    )
    proc = subprocess.run([MPIRUN, "-np", "2", PYTHON, "-c", planted], capture_output=True, text=True,
                          timeout=120, env=program_env(), cwd=tmp_path)
    assert proc.returncode == ExitCode.INTERNAL, proc.stderr
    assert f"internal error: rank {rank}: ValueError: planted bug" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("program", PROGRAMS)
def test_lone_surrogates_in_json_lines_are_printed_escaped(program, tmp_path):
    """JSON may write a lone surrogate ("\\ud800"), which no UTF-8 output can hold: in a level,
    a message, a host or a component, the table, the JSON and the CSV files show its bytes' escapes."""
    (tmp_path / "a.log").write_bytes(b'{"level":"\\ud800","msg":"a"}\n'
                                     b'{"level":"info","msg":"\\ud800 x","host":"\\udcff","logger":"\\ud83d"}\n')
    for by in ("host", "component"):
        proc = run_program(program[0], tmp_path, "--top", "5", "--by", by, "--csv", tmp_path / f"csv-{by}", np=program[1])
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert "\\XED\\XA0\\X80: 1" in proc.stdout and "INFO: 1" in proc.stdout
        doc = json_of(run_program(program[0], tmp_path, "--top", "5", "--by", by, "--json", np=program[1]))
        assert doc["counts"] == {"INFO": 1, "\\XED\\XA0\\X80": 1}
        assert doc["top_templates"]["INFO"][0]["template"] == "\\xed\\xa<NUM>\\x<NUM> x"

