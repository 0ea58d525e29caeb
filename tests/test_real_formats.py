"""Real log formats end to end: hand-written fixtures and generated corpora of
every built-in format, alone and mixed in one folder with CRLF, no final
newline and compressed rotated files, counted exactly by all three programs
(cut into many tasks), and after a resume from SIGINT.

The oracles never use the analyser's parsers: tests/fixtures/formats/expected.json
was worked out by hand, and utils/format_logs.py counts what it writes.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import re
import shutil
import signal
from pathlib import Path

import pytest
import zstandard

from loganalyser.counting.formats import FormatSet
from loganalyser.counting.formats.detect import detect
from loganalyser.counting.reader import analyse_pieces
from loganalyser.work.inputs import find_log_files
from loganalyser.work.scanning import assign_formats
from loganalyser.work.tasks import plan_tasks
from utils import format_logs
from utils.jobcontrol import assert_no_processes, rank_pid, signal_pid, wait_for

from .helpers import REPO, json_of, program_cmd, program_env, run_program

FIXTURES = REPO / "tests" / "fixtures" / "formats"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
FORMATS = FormatSet.standard()
TOTAL_KEYS = ("lines", "blank", "continuation", "malformed")
COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
               ".zst": lambda data: zstandard.ZstdCompressor().compress(data)}


def totals_of(result) -> dict:
    """The comparable part of a PartialResult or a JSON document."""
    get = (lambda k: result[k]) if isinstance(result, dict) else (lambda k: getattr(result, k))
    counts = {k: v for k, v in get("counts").items() if v}
    return {"counts": counts, **{k: get(k) for k in TOTAL_KEYS}}


def add(into: dict, part: dict) -> None:
    for level, n in part["counts"].items():
        into["counts"][level] = into["counts"].get(level, 0) + n
    for key in TOTAL_KEYS:
        into[key] += part[key]


# --- each format alone ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hand_written_fixture(name):
    want = EXPECTED[name]
    data = (FIXTURES / name).read_bytes()
    assert detect(data[:65536], FORMATS) == (want["format"], True)
    dialect = FORMATS.dialect(want["format"])
    got = dialect.count(data)
    assert got == dialect.count_reference(data)
    assert totals_of(got) == {k: want[k] for k in ("counts", *TOTAL_KEYS)}


def test_every_builtin_format_has_a_fixture_and_a_generator():
    fixtured = {spec["format"] for spec in EXPECTED.values()}
    assert fixtured == set(FORMATS.names)
    assert set(format_logs.FORMATS) | {"seed"} == set(FORMATS.names)


@pytest.mark.parametrize("fmt", sorted(format_logs.FORMATS))
def test_generated_corpus_cut_into_many_tasks(fmt, tmp_path):
    oracle = format_logs.generate(fmt, str(tmp_path), files=2, lines=1500, seed=11, noise=0.1, malformed=0.05,
                                  blank=0.05, traces=0.1, crlf=len(fmt) % 2 == 0, no_final_newline=True)
    files = assign_formats(find_log_files([str(tmp_path)]), FORMATS, "auto")
    assert {f.format for f in files} == {fmt}
    tasks = plan_tasks(files, chunk_bytes=7000, batch_bytes=7000)
    assert len(tasks) > 4
    got = analyse_pieces([piece for task in tasks for piece in task.pieces], formats=FORMATS)
    assert totals_of(got) == totals_of(oracle) and got.bytes == oracle["bytes"]
    assert got.formats == {fmt: 2}


# --- every format in one folder -------------------------------------------------------


class Mixed:
    """A folder of every format (fixtures, generated files, compressed copies) and its oracle."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.expected = {"counts": {}, **{k: 0 for k in TOTAL_KEYS}}
        self.formats: dict[str, int] = {}
        self.bytes = 0

    def add(self, name: str, data: bytes, fmt: str, totals: dict, compress: str | None = None) -> None:
        (self.folder / name).write_bytes(COMPRESSORS[compress](data) if compress else data)
        add(self.expected, totals)
        self.formats[fmt] = self.formats.get(fmt, 0) + 1
        self.bytes += len(data)

    def check(self, doc: dict) -> None:
        assert totals_of(doc) == self.expected
        assert doc["formats"] == dict(sorted(self.formats.items()))
        assert doc["bytes"] == self.bytes and doc["files"] == sum(self.formats.values())
        assert doc["records"] == doc["lines"] - doc["blank"] - doc["continuation"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Mixed:
    folder = tmp_path_factory.mktemp("mixed") / "logs"
    folder.mkdir()
    corpus = Mixed(folder)
    for name, want in sorted(EXPECTED.items()):
        corpus.add(name, (FIXTURES / name).read_bytes(), want["format"], want)
    staging = tmp_path_factory.mktemp("staging")
    rotated = [".gz", ".bz2", ".xz", ".zst"]
    for k, fmt in enumerate(sorted(format_logs.FORMATS)):
        totals = format_logs.generate(fmt, str(staging), files=1, lines=600 + 97 * k, seed=100 + k, noise=0.05,
                                      malformed=0.03, blank=0.03, traces=0.08, crlf=k % 3 == 0,
                                      no_final_newline=k % 4 == 0, prefix=fmt)
        data = (staging / f"{fmt}1.log").read_bytes()
        compress = rotated[k % 4] if k % 5 == 0 else None  # a few rotated, compressed files
        name = f"{fmt}.log.{k}{compress}" if compress else f"{fmt}-gen.log"
        corpus.add(name, data, fmt, totals, compress)
    (folder / "notes.txt").write_bytes(b"[t] [INFO] not a log name: never counted\n")
    return corpus


def test_sequential_counts_the_mixed_folder_exactly(mixed):
    mixed.check(json_of(run_program("base_log_analyser.py", mixed.folder, "--json")))


def test_without_the_compiled_scanners_the_counts_are_the_same(mixed):
    """The numpy path alone (as where no C compiler is) counts every format exactly too."""
    mixed.check(json_of(run_program("base_log_analyser.py", mixed.folder, "--json", env={"LOGANALYSER_NATIVE": "0"})))


def test_parallel_counts_the_mixed_folder_exactly(mixed):
    mixed.check(json_of(run_program("parallel_log_analyser.py", mixed.folder, "--json", np=3)))


@pytest.mark.parametrize("np", [2, 4])
def test_distributed_counts_the_mixed_folder_exactly(mixed, tmp_path, np):
    doc = json_of(run_program("distributed_log_analyser.py", mixed.folder, "--json", "--chunk-size", "8K",
                              "--checkpoint-dir", tmp_path / "ck", np=np, cwd=tmp_path))
    mixed.check(doc)
    assert doc["tasks"] > 40  # files were cut into many tasks


def test_resume_after_sigint_in_the_middle_of_the_mixed_folder(mixed, tmp_path, jobs):
    ck = tmp_path / "ck"
    cmd = program_cmd("distributed_log_analyser.py", mixed.folder, "--json", "--chunk-size", "8K", "--checkpoint-dir",
                      ck, "--checkpoint-every", 2, "--checkpoint-interval", 0.25, "--task-delay", 0.05,
                      "--no-progress", np=3)
    job = jobs.start(cmd, str(ck), env=program_env(), cwd=tmp_path)
    wait_for(lambda: len([n for n in _listdir(ck) if n.isdigit()]) >= 2 or not job.running(), 60, "two checkpoints")
    assert job.running(), job.stderr
    master = wait_for(lambda: rank_pid(0, str(ck)), 30, "the master's pid")
    assert signal_pid(master, signal.SIGINT)
    assert job.wait(60) == 4, job.stderr
    assert_no_processes(str(ck))
    again = jobs.start(cmd, str(ck), env=program_env(), cwd=tmp_path)
    assert again.wait(120) == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["restored_tasks"] > 0 and doc["restored_tasks"] < doc["tasks"]
    mixed.check(doc)


def _listdir(path: Path) -> list[str]:
    try:
        return [p.name for p in path.iterdir()]
    except FileNotFoundError:
        return []


# --- options ---------------------------------------------------------------------------


def test_forced_format_and_raw_levels(tmp_path):
    shutil.copy(FIXTURES / "zookeeper.log", tmp_path / "a.log")
    forced = json_of(run_program("base_log_analyser.py", tmp_path, "--json", "--format", "zookeeper"))
    assert forced["formats"] == {"zookeeper": 1} and totals_of(forced)["counts"] == EXPECTED["zookeeper.log"]["counts"]
    raw = json_of(run_program("base_log_analyser.py", tmp_path, "--json", "--raw-levels"))
    assert sum(raw["counts"].values()) == sum(forced["counts"].values())
    assert all(re.fullmatch(r"[A-Z]+", level) for level in raw["counts"])  # zookeeper writes upper case
    shutil.copy(FIXTURES / "logcat_threadtime.log", tmp_path / "b.log")
    raw = json_of(run_program("base_log_analyser.py", tmp_path / "b.log", "--json", "--raw-levels"))
    assert set(raw["counts"]) <= set("VDIWEFA")  # logcat's letters, as written


def test_unknown_format_and_bad_format_file_are_usage_errors(tmp_path):
    (tmp_path / "a.log").write_bytes(b"[t] [INFO] x\n")
    proc = run_program("base_log_analyser.py", tmp_path, "--format", "nope")
    assert proc.returncode == 2 and "unknown format 'nope'" in proc.stderr and len(proc.stderr.splitlines()) == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "regex": "(?P<level>"}')
    proc = run_program("base_log_analyser.py", tmp_path, "--format-file", bad)
    assert proc.returncode == 2 and "bad regex" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_a_users_format_file_in_every_program(tmp_path):
    """The README's worked example, end to end."""
    spec = tmp_path / "myapp.json"
    spec.write_text(json.dumps({
        "name": "myapp", "regex": r"(?P<timestamp>[0-9-]{10} [0-9:]{8}) \| (?P<host>[^ |\r\n]+) \| (?P<level>[A-Za-z]+) \|",
        "levels": {"OOPS": "ERROR"}, "priority": 50,
        "samples": [{"line": "2024-03-01 12:00:00 | web1 | oops | disk full", "level": "ERROR"}]}))
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_bytes(b"2024-03-01 12:00:00 | web1 | oops | x\r\n2024-03-01 12:00:01 | web2 | Info | y\r\n"
                                   b"  continued\r\n" * 200)
    want = {"ERROR": 200, "INFO": 200}
    for program, np in [("base_log_analyser.py", None), ("parallel_log_analyser.py", 2),
                        ("distributed_log_analyser.py", 3)]:
        extra = ["--chunk-size", "1K", "--no-checkpoint"] if program.startswith("distributed") else []
        doc = json_of(run_program(program, logs, "--json", "--format-file", spec, *extra, np=np, cwd=tmp_path))
        assert doc["counts"] == want and doc["continuation"] == 200 and doc["formats"] == {"myapp": 1}, program


def test_small_files_detected_by_their_reader_as_by_the_planner(mixed):
    """Small files keep AUTO and are detected as they are read: the same answer, one read less."""
    from loganalyser.work.tasks import whole_piece

    files = find_log_files([str(mixed.folder)])
    eager = assign_formats(files, FORMATS, "auto")
    lazy = assign_formats(files, FORMATS, "auto", read_later=1 << 20)
    assert any(f.format == "auto" for f in lazy) and not any(f.format == "auto" for f in eager)
    warnings: list[str] = []
    by_reader = analyse_pieces([whole_piece(f) for f in lazy], warn=warnings.append, formats=FORMATS)
    by_planner = analyse_pieces([whole_piece(f) for f in eager], formats=FORMATS)
    assert by_reader == by_planner and warnings == []
    assert by_reader.formats == dict(sorted(mixed.formats.items()))
