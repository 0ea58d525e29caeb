"""The MPI analyser under real mpirun agrees with the sequential one and with the definition."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from loganalyser.counting.result import PartialResult

from .helpers import json_of, run_program, seed_reference

FIELDS = ("counts", "lines", "records", "continuation", "malformed", "blank", "bytes", "files", "formats")
LEVELS = ["INFO", "WARN", "ERROR", "DEBUG", "warn", "Critical", "ABCDEFGHIJKLMNOP"]
MESSAGES = ["Request processed", "retry after [ERROR] upstream", "[WARN] planted at the start",
            "] [INFO] fake field", "caf\u00e9", "x" * 300]
MALFORMED = ["no brackets here", "[user 42] said hi", "[] []", "[t] [ABCDEFGHIJKLMNOPQ] 17 letters",
             "[t][INFO] no space", "[t] [IN FO] split level", " [t] [INFO] leading space"]


def log_text(rng: random.Random, n_lines: int) -> bytes:
    """`n_lines` lines: mostly well-formed, with CRLF endings, planted words, malformed and blank lines."""
    out = []
    for i in range(n_lines):
        roll = rng.random()
        if roll < 0.08:
            line = rng.choice(MALFORMED)
        elif roll < 0.11:
            line = rng.choice(["", "\r"])
        else:
            line = f"[2026-01-01T00:00:{i % 60:02d}.{i % 1000:03d}] [{rng.choice(LEVELS)}] {rng.choice(MESSAGES)}"
        out.append(line + ("\r\n" if rng.random() < 0.2 else "\n"))
    return "".join(out).encode()


def write_corpus(folder: Path, seed: int = 7) -> list[bytes]:
    """A few logs of very different sizes (one ~2 MB, one empty, one without a final newline)."""
    rng = random.Random(seed)
    contents = {
        "big.log": log_text(rng, 40_000),
        "medium.log": log_text(rng, 3_000),
        "small.log": log_text(rng, 50),
        "tiny.log": b"[t] [INFO] one line\n",
        "empty.log": b"",
        "unterminated.log": log_text(rng, 20) + b"[t] [ERROR] last line, no newline",
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    (folder / "ignored.txt").write_bytes(b"[t] [INFO] not a log\n")
    return list(contents.values())


def expected_document(contents: list[bytes]) -> dict:
    """The definition, per file: concatenating would join an unterminated last line to the next file."""
    total = PartialResult.total(seed_reference(data) for data in contents)
    total.files = len(contents)
    total.formats = {"seed": len(contents)}
    return total.to_dict()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    contents = write_corpus(folder)
    return folder, expected_document(contents)


@pytest.fixture(scope="module")
def sequential(corpus):
    folder, _ = corpus
    return json_of(run_program("base_log_analyser.py", folder, "--json"))


def pick(doc: dict) -> dict:
    return {field: doc[field] for field in FIELDS}


def test_corpus_has_the_traps(corpus):
    _, expected = corpus
    assert expected["malformed"] > 0 and expected["blank"] > 0 and expected["files"] == 6
    assert {"INFO", "WARN", "ERROR", "DEBUG", "FATAL", "ABCDEFGHIJKLMNOP"}  # CRITICAL is FATAL <= set(expected["counts"])


def test_sequential_equals_definition(corpus, sequential):
    _, expected = corpus
    assert pick(sequential) == expected


@pytest.mark.parametrize("np", [1, 2, 3])
def test_parallel_equals_sequential_and_definition(corpus, sequential, np):
    folder, expected = corpus
    doc = json_of(run_program("parallel_log_analyser.py", folder, "--json", np=np))
    assert pick(doc) == pick(sequential) == expected
    assert doc["ranks"] == np and len(doc["bytes_per_rank"]) == np
    assert sum(doc["bytes_per_rank"]) == expected["bytes"] and min(doc["bytes_per_rank"]) > 0


@pytest.mark.parametrize("np", [3])
def test_parallel_on_fewer_bytes_than_ranks(tmp_path, np):
    (tmp_path / "a.log").write_bytes(b"\n")
    (tmp_path / "b.log").write_bytes(b"")
    doc = json_of(run_program("parallel_log_analyser.py", tmp_path, "--json", np=np))
    assert pick(doc) == {"counts": {}, "lines": 1, "records": 0, "continuation": 0, "malformed": 0, "blank": 1,
                         "bytes": 1, "files": 2, "formats": {"seed": 2}}
