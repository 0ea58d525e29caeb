"""Tests for utils/format_logs.py and the --format hook of utils/generate_logs.py.

The generator is an oracle for the format parsers, so nothing here uses them:
the totals must add up, the line count must be the file's, blank lines must be
exactly the empty ones, the bytes must be a function of the seed, and CRLF and
no-final-newline must do what they say.  The hand-written fixtures of
tests/fixtures/formats/ are checked for the same internal consistency.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils import format_logs as fl
from utils import generate_logs as gl

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "utils" / "generate_logs.py"
FIXTURES = ROOT / "tests" / "fixtures" / "formats"
CONTRACT_FORMATS = [  # docs/formats-contract.md, in its order
    "seed", "apache_error", "nginx_error", "log4j", "logback", "hdfs", "spark", "zookeeper",
    "openstack", "python", "python_asctime", "jul", "logcat_threadtime", "logcat_brief",
    "logcat_time", "windows_cbs", "bgl", "syslog_rfc5424", "syslog_rfc3164", "jsonl", "logfmt",
    "access"]
CANONICAL = {"TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "FATAL", "NONE"}
TRAPS = dict(noise=0.1, malformed=0.05, blank=0.05, traces=0.05)
KINDS = ("blank", "continuation", "malformed")


def split_lines(data: bytes):
    """The contract's lines: split on \\n; a last line without \\n is a line."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def assert_consistent(result, paths, crlf, final_newline):
    """What can be checked without parsing a level: sums, lines, blanks, endings, bytes."""
    assert result["lines"] == sum(result["counts"].values()) + sum(result[k] for k in KINDS)
    total_lines = blanks = size = 0
    for path in paths:
        data = Path(path).read_bytes()
        size += len(data)
        lines = split_lines(data)
        total_lines += len(lines)
        assert data.count(b"\n") == len(lines) - (0 if final_newline or not data else 1)
        blanks += sum(line in (b"", b"\r") for line in lines)
        if crlf:
            assert data.count(b"\n") == data.count(b"\r\n")
        else:
            assert b"\r" not in data
        if data:
            assert data.endswith(b"\r\n" if crlf else b"\n") == final_newline
    assert total_lines == result["lines"]
    assert blanks == result["blank"]
    assert size == result["bytes"]


def test_every_contract_format_has_a_generator():
    assert ["seed", *fl.FORMATS] == CONTRACT_FORMATS


@pytest.mark.parametrize("fmt", list(fl.FORMATS))
def test_totals_add_up_and_lines_are_the_files(tmp_path, fmt):
    crlf = fmt in ("windows_cbs", "jsonl", "spark", "log4j")  # CRLF for some, LF for the rest
    final_newline = len(fmt) % 2 == 0                       # and no final newline for some
    result = fl.generate(fmt, tmp_path, files=2, lines=3000, seed=5, crlf=crlf,
                         no_final_newline=not final_newline, **TRAPS)
    assert_consistent(result, [tmp_path / "node1.log", tmp_path / "node2.log"], crlf, final_newline)
    assert result["format"] == fmt and result["files"] == 2 and result["lines"] == 6000
    assert set(result["counts"]) <= CANONICAL | {"DEFAULT"}  # jsonl: GCP's unmapped DEFAULT
    assert result["malformed"] > 0 and result["blank"] > 0 and sum(result["counts"].values()) > 0
    if fmt in ("log4j", "logback", "hdfs", "spark", "zookeeper", "jul", "python", "logcat_brief"):
        assert result["continuation"] > 0


@pytest.mark.parametrize("fmt", ["log4j", "jul", "logfmt"])
def test_many_blocks(tmp_path, monkeypatch, fmt):
    # About 100 entries per block: multi-line entries straddle block and file ends.
    monkeypatch.setattr(fl, "BLOCK", 97)
    result = fl.generate(fmt, tmp_path, files=3, lines=2501, seed=8, crlf=True,
                         no_final_newline=True, noise=0.2, malformed=0.1, blank=0.1, traces=0.3)
    assert_consistent(result, [tmp_path / f"node{k}.log" for k in (1, 2, 3)], True, False)


def test_no_traps_means_records_only(tmp_path):
    result = fl.generate("spark", tmp_path, files=1, lines=2000, seed=2)
    assert result["lines"] == sum(result["counts"].values()) == 2000
    assert result["blank"] == result["malformed"] == result["continuation"] == 0


def test_jul_records_come_with_their_header_line(tmp_path):
    # Without traps every record is two lines: the header (a continuation) and LEVEL: msg.
    result = fl.generate("jul", tmp_path, files=1, lines=1000, seed=3)
    assert result["continuation"] == sum(result["counts"].values()) == 500


def test_last_line_never_vanishes(tmp_path):
    # Mostly blank lines: an unterminated last line must still be a real line.
    result = fl.generate("logcat_brief", tmp_path, files=20, lines=3, seed=5, blank=0.9,
                         no_final_newline=True)
    assert_consistent(result, [tmp_path / f"node{k}.log" for k in range(1, 21)], False, False)
    assert result["lines"] == 60


def test_zero_lines(tmp_path):
    result = fl.generate("access", tmp_path, files=2, lines=0, seed=1)
    assert result["lines"] == result["bytes"] == 0
    assert (tmp_path / "node1.log").read_bytes() == b""


def test_deterministic_by_seed(tmp_path):
    def files(seed, name, n_files=2):
        fl.generate("openstack", tmp_path / name, files=n_files, lines=4000, seed=seed, crlf=True,
                    no_final_newline=True, **TRAPS)
        return [(tmp_path / name / f"node{k}.log").read_bytes() for k in (1, 2)]
    first = files(11, "a")
    assert first == files(11, "b")
    assert first != files(12, "c")
    assert first == files(11, "d", n_files=3)  # nodeK.log does not depend on --files


def test_crlf_and_final_newline_do_what_they_say(tmp_path):
    out = {}
    for crlf in (False, True):
        for final in (False, True):
            name = f"{crlf}-{final}"
            out[name] = fl.generate("bgl", tmp_path / name, files=1, lines=500, seed=4,
                                    crlf=crlf, no_final_newline=not final, **TRAPS)
            assert_consistent(out[name], [tmp_path / name / "node1.log"], crlf, final)
    # Same seed: the same lines whatever the endings, so the same counts.
    assert len({json.dumps({k: v for k, v in r.items() if k != "bytes"}) for r in out.values()}) == 1
    lf = (tmp_path / "False-True" / "node1.log").read_bytes()
    assert (tmp_path / "True-True" / "node1.log").read_bytes() == lf.replace(b"\n", b"\r\n")
    assert (tmp_path / "False-False" / "node1.log").read_bytes() == lf[:-1]
    assert (tmp_path / "True-False" / "node1.log").read_bytes() == lf.replace(b"\n", b"\r\n")[:-2]


@pytest.mark.parametrize("fmt", ["log4j", "jsonl", "python"])
def test_total_bytes_close_to_target(tmp_path, fmt):
    result = fl.generate(fmt, tmp_path, files=3, seed=6, total_bytes=600_000, **TRAPS)
    assert abs(result["bytes"] - 600_000) <= 0.05 * 600_000
    assert result["bytes"] == sum(p.stat().st_size for p in tmp_path.glob("*.log"))


@pytest.mark.parametrize("kwargs", [
    dict(fmt="nope"), dict(files=0), dict(lines=-1), dict(seed=-1), dict(prefix="a/b"),
    dict(noise=1.5), dict(malformed=0.6, traces=0.6), dict(blank=1.0, no_final_newline=True),
])
def test_bad_arguments_raise_before_writing(tmp_path, kwargs):
    args = dict(fmt="hdfs", out_dir=tmp_path / "logs", files=1, lines=10, seed=1) | kwargs
    with pytest.raises(ValueError):
        fl.generate(**args)
    assert not (tmp_path / "logs").exists()


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_cli_format_prints_one_json_document(tmp_path):
    args = ["--out", "logs", "--format", "logcat_threadtime", "--files", "2", "--lines", "900",
            "--seed", "8", "--noise", "0.1", "--malformed", "0.1", "--blank", "0.1", "--traces", "0.1",
            "--crlf", "--no-final-newline", "--json"]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    result = json.loads(proc.stdout)
    assert list(result) == ["format", "counts", "lines", "blank", "continuation", "malformed",
                            "files", "bytes"]
    assert_consistent(result, [tmp_path / "logs/node1.log", tmp_path / "logs/node2.log"], True, False)
    assert result == fl.generate("logcat_threadtime", tmp_path / "again", files=2, lines=900, seed=8,
                                 noise=0.1, malformed=0.1, blank=0.1, traces=0.1, crlf=True,
                                 no_final_newline=True)


def test_cli_format_seed_is_the_seed_generator(tmp_path):
    args = ["--files", "2", "--lines", "700", "--seed", "8", "--noise", "0.1", "--malformed", "0.1",
            "--blank", "0.1", "--crlf", "--no-final-newline", "--json"]
    plain = run_cli("--out", "a", *args, cwd=tmp_path)
    seed = run_cli("--out", "b", "--format", "seed", *args, cwd=tmp_path)
    assert plain.returncode == seed.returncode == 0
    assert plain.stdout == seed.stdout
    assert json.loads(plain.stdout) == gl.generate(tmp_path / "c", files=2, lines=700, seed=8, noise=0.1,
                                                   malformed=0.1, blank=0.1, crlf=True, no_final_newline=True)
    for k in (1, 2):
        assert (tmp_path / f"a/node{k}.log").read_bytes() == (tmp_path / f"b/node{k}.log").read_bytes()


@pytest.mark.parametrize("args", [
    ["--format", "nope"], ["--format", "jul", "--levels", "INFO=1"], ["--traces", "0.1"],
    ["--format", "seed", "--traces", "0.1"], ["--format", "bgl", "--traces", "1.5"],
    ["--format", "bgl", "--noise", "0.5", "--traces", "0.6"], ["--format", "bgl", "--total-bytes", "1XB"],
])
def test_cli_bad_arguments(tmp_path, args):
    proc = run_cli("--out", "logs", *args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "error" in proc.stderr
    assert not list(tmp_path.glob("logs/*.log"))


def test_fixtures_are_consistent():
    expected = json.loads((FIXTURES / "expected.json").read_text())
    assert sorted(expected) == sorted(p.name for p in FIXTURES.glob("*.log"))
    assert {e["format"] for e in expected.values()} == set(CONTRACT_FORMATS)
    for name, e in expected.items():
        data = (FIXTURES / name).read_bytes()
        crlf = name.endswith("_crlf.log")
        lines = split_lines(data)
        assert 15 <= e["lines"] <= 40 and len(lines) == e["lines"], name
        assert e["lines"] == sum(e["counts"].values()) + sum(e[k] for k in KINDS), name
        assert sum(line in (b"", b"\r") for line in lines) == e["blank"], name
        assert data.count(b"\n") == (data.count(b"\r\n") if crlf else len(lines) - (0 if data.endswith(b"\n") else 1))
        if crlf:  # the CRLF twin holds the same lines as the plain file, so the same counts
            twin = name.replace("_crlf.log", ".log")
            assert [ln.rstrip(b"\r") for ln in lines] == split_lines((FIXTURES / twin).read_bytes())
            assert e == expected[twin]
        else:
            assert b"\r" not in data


def test_throughput(tmp_path, capsys):
    rates = []
    for fmt in ("log4j", "jsonl", "logcat_threadtime"):
        started = time.perf_counter()
        result = fl.generate(fmt, tmp_path / fmt, files=2, seed=1, total_bytes=32_000_000, **TRAPS)
        rates.append(f"{fmt} {result['bytes'] / 1e6 / (time.perf_counter() - started):.0f}")
    with capsys.disabled():  # report only: machine speed is not a test failure
        print(f"\nformat_logs throughput (MB/s): {', '.join(rates)}")
