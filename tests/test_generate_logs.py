"""Tests for utils/generate_logs.py: its --json totals must be an exact oracle.

The generator counts lines as it chooses them; here an independent, deliberately
simple per-line parser re-reads the written files and must agree exactly.
"""
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "utils" / "generate_logs.py"
SAMPLE = ROOT / "sample_logs"

from utils import generate_logs as gl

TRAPS = dict(noise=0.2, malformed=0.2, blank=0.1, crlf=True, no_final_newline=True)
TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}")


def level_of(line: bytes):
    """The analyser's rule for one non-blank line: its level, or None if malformed."""
    if not line.startswith(b"["):
        return None
    close = line.find(b"]")
    if close < 0 or line[close + 1:close + 3] != b" [":
        return None
    end = line.find(b"]", close + 3)
    if end < 0:
        return None
    name = line[close + 3:end]
    if 1 <= len(name) <= 16 and all(65 <= c <= 90 or 97 <= c <= 122 for c in name):
        return name.decode("ascii").upper()
    return None


def reference_parse(paths):
    """Totals as the analyser defines them, one line at a time, in plain Python."""
    counts, total = Counter(), dict(lines=0, malformed=0, blank=0, bytes=0)
    for path in paths:
        data = Path(path).read_bytes()
        total["bytes"] += len(data)
        lines = data.split(b"\n")
        if lines[-1] == b"":  # text after the last '\n' is a line only if non-empty
            lines.pop()
        for line in lines:
            total["lines"] += 1
            if line in (b"", b"\r"):
                total["blank"] += 1
            elif (level := level_of(line)) is None:
                total["malformed"] += 1
            else:
                counts[level] += 1
    return counts, total


def assert_oracle(result, out_dir, files):
    paths = [out_dir / f"node{k}.log" for k in range(1, files + 1)]
    assert sorted(p.name for p in out_dir.glob("*.log")) == sorted(p.name for p in paths)
    counts, total = reference_parse(paths)
    assert {k: v for k, v in result["counts"].items() if v} == dict(counts)
    for key in ("lines", "malformed", "blank", "bytes"):
        assert result[key] == total[key], key
    assert result["files"] == files
    assert sum(result["counts"].values()) + result["malformed"] + result["blank"] \
        == result["lines"]


def test_reference_parser_follows_the_rule():
    assert level_of(b"[t] [info] x") == "INFO"
    assert level_of(b"[t] [ABCDEFGHIJKLMNOP] x") == "ABCDEFGHIJKLMNOP"
    for bad in (b"x [INFO]", b"[t][INFO] x", b"[t] [] x", b"[t] [user 42] x",
                b"[t] [ABCDEFGHIJKLMNOPQ] x", b"[t] [INFO x", b"[t] INFO", b"[t"):
        assert level_of(bad) is None, bad


def test_defaults_small(tmp_path):
    result = gl.generate(tmp_path, files=3, lines=2000, seed=1)
    assert_oracle(result, tmp_path, 3)
    assert result["lines"] == 6000 and result["malformed"] == result["blank"] == 0
    assert set(result["counts"]) == {"DEBUG", "ERROR", "INFO", "WARN"}
    for k in (1, 2, 3):
        data = (tmp_path / f"node{k}.log").read_bytes()
        assert data.endswith(b"\n") and b"\r" not in data
        stamps = [line[1:24] for line in data.splitlines()]
        assert all(TIMESTAMP.fullmatch(s) for s in stamps)
        assert all(a < b for a, b in zip(stamps, stamps[1:]))  # strictly increasing


def test_all_traps_together(tmp_path):
    # 30000 lines per file spans several blocks, so block boundaries are covered.
    result = gl.generate(tmp_path, files=2, lines=30000, seed=3, **TRAPS)
    assert_oracle(result, tmp_path, 2)
    assert result["malformed"] > 0 and result["blank"] > 0
    for k in (1, 2):
        data = (tmp_path / f"node{k}.log").read_bytes()
        assert not data.endswith((b"\n", b"\r"))
        assert data.count(b"\n") == data.count(b"\r\n") == 29999
        assert b"[ERROR] upstream" in data and b"\n\r\n" in data
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")


@pytest.mark.parametrize("seed", [0, 7, 2025, 123456789])
def test_oracle_for_several_seeds(tmp_path, seed):
    extra = dict(noise=0.05 * (seed % 3), malformed=0.1, blank=0.03,
                 crlf=bool(seed % 2), no_final_newline=seed % 2 == 0)
    result = gl.generate(tmp_path, files=3, lines=1500, seed=seed, **extra)
    assert_oracle(result, tmp_path, 3)


def test_last_line_never_vanishes(tmp_path):
    # Mostly blank lines: an unterminated last line must still be a real line.
    result = gl.generate(tmp_path, files=20, lines=3, seed=5, blank=0.9,
                         no_final_newline=True)
    assert_oracle(result, tmp_path, 20)
    assert result["lines"] == 60


def test_custom_levels_and_zero_weights(tmp_path):
    result = gl.generate(tmp_path, files=2, lines=3000, seed=9, levels="info=3,Fatal=1,DEBUG=0")
    assert_oracle(result, tmp_path, 2)
    assert result["counts"]["DEBUG"] == result["counts"]["WARN"] == 0
    assert result["counts"]["FATAL"] > 0 and result["counts"]["INFO"] > 0


def test_deterministic(tmp_path):
    def files(seed, name):
        gl.generate(tmp_path / name, files=2, lines=800, seed=seed, **TRAPS)
        return [(tmp_path / name / f"node{k}.log").read_bytes() for k in (1, 2)]
    assert files(11, "a") == files(11, "b")
    assert files(12, "c") != files(11, "a")


def test_bytes_do_not_depend_on_block_size(tmp_path, monkeypatch):
    gl.generate(tmp_path / "a", files=1, lines=5000, seed=4, **TRAPS)
    monkeypatch.setattr(gl, "BLOCK_BYTES", 1000)  # about 11 lines per block
    gl.generate(tmp_path / "b", files=1, lines=5000, seed=4, **TRAPS)
    assert (tmp_path / "a/node1.log").read_bytes() == (tmp_path / "b/node1.log").read_bytes()


@pytest.mark.parametrize("size, files", [("256KB", 4), ("1MiB", 3), ("300000", 1)])
def test_total_bytes_close_to_target(tmp_path, size, files):
    result = gl.generate(tmp_path, files=files, seed=6, total_bytes=size, noise=0.1)
    target = gl.parse_size(size)
    assert abs(result["bytes"] - target) <= 0.05 * target
    assert result["bytes"] == sum(p.stat().st_size for p in tmp_path.glob("*.log"))


def test_parse_size():
    assert gl.parse_size("500MB") == 500 * 10**6
    assert gl.parse_size("2GB") == 2 * 10**9
    assert gl.parse_size("64KB") == 64000
    assert gl.parse_size("64KiB") == gl.parse_size("64k") == 65536
    assert gl.parse_size("1234") == 1234
    for bad in ("", "MB", "-5MB", "5XB", "0"):
        with pytest.raises(ValueError):
            gl.parse_size(bad)


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_cli_prints_one_json_document(tmp_path):
    args = ["--out", "logs", "--files", "2", "--lines", "700", "--seed", "8", "--noise", "0.1",
            "--malformed", "0.1", "--blank", "0.1", "--crlf", "--no-final-newline"]
    proc = run_cli(*args, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and proc.stdout.endswith("}\n")
    result = json.loads(proc.stdout)
    assert list(result) == ["counts", "lines", "malformed", "blank", "files", "bytes"]
    assert list(result["counts"]) == ["DEBUG", "ERROR", "INFO", "WARN"]
    assert_oracle(result, tmp_path / "logs", 2)
    quiet = run_cli(*args, cwd=tmp_path)  # without --json: nothing on stdout
    assert quiet.returncode == 0 and quiet.stdout == "" and len(quiet.stderr.splitlines()) == 1


@pytest.mark.parametrize("args", [
    ["--files", "0"], ["--lines", "-1"], ["--lines", "ten"], ["--seed", "-3"],
    ["--noise", "1.5"], ["--malformed", "0.7", "--blank", "0.7"], ["--levels", "INFO"],
    ["--levels", "INFO=-1"], ["--levels", "IN FO=1"], ["--levels", "INFO=0,WARN=0"],
    ["--total-bytes", "12XB"], ["--total-bytes", "1MB", "--lines", "5"],
    ["--prefix", "a/b"], ["--blank", "1", "--no-final-newline"], ["--bogus"],
])
def test_cli_bad_arguments(tmp_path, args):
    proc = run_cli("--out", "logs", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "error" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("logs/*.log"))


@pytest.mark.skipif(not (SAMPLE / "expected.json").exists(), reason="no committed sample")
def test_committed_sample_matches_its_oracle(tmp_path):
    expected = json.loads((SAMPLE / "expected.json").read_text())
    assert_oracle(expected, SAMPLE, 10)
    assert gl.generate(tmp_path, files=10, lines=5000, seed=2025) == expected
    for k in range(1, 11):  # the sample is reproducible from its command line
        name = f"node{k}.log"
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes()


def test_throughput(tmp_path, capsys):
    started = time.perf_counter()
    result = gl.generate(tmp_path, files=2, seed=1, total_bytes="64MB", **TRAPS)
    seconds = time.perf_counter() - started
    with capsys.disabled():  # report only: machine speed is not a test failure
        print(f"\ngenerate_logs throughput: {result['bytes'] / 1e6 / seconds:.0f} MB/s "
              f"({result['bytes'] / 1e6:.0f} MB in {seconds:.2f} s)")
