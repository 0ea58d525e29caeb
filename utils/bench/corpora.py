"""The benchmark's corpora: generated once with utils/generate_logs.py, reused while they match.

Corpus A is 8 files of different sizes (one much larger), corpus B many small
files, corpus C one big file. Each folder's expected.json records the
parameters and the generator's exact totals; a later run with the same
parameters (and the same generator, by digest) reuses the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from .common import MB, REPO, BenchError, log

A_SHARES = (40, 15, 12, 10, 8, 6, 5, 4)  # percent of corpus A per file: one much larger
TRAPS = {"noise": 0.05, "malformed": 0.01, "blank": 0.01}  # level words in messages, bad and empty lines
SMALL_FILE_LINES = 100
SEED = 2026


def prepare_corpora(data_dir: Path, size_bytes: int, small_files: int, big_bytes: int) -> dict:
    """Corpora A and B, and C unless `big_bytes` is 0, each in its folder under `data_dir`."""
    common = {"generator": generator_digest(), "seed": SEED, "traps": TRAPS}
    corpora = {
        "A": prepare_corpus(data_dir / "A", {**common, "kind": "A", "bytes": size_bytes, "shares": list(A_SHARES)},
                            build_corpus_a(size_bytes)),
        "B": prepare_corpus(data_dir / "B", {**common, "kind": "B", "files": small_files,
                                             "lines": SMALL_FILE_LINES}, build_corpus_b(small_files)),
    }
    if big_bytes:
        corpora["C"] = prepare_corpus(data_dir / "C", {**common, "kind": "C", "bytes": big_bytes},
                                      build_corpus_c(big_bytes))
    return corpora


def list_file_sizes(corpora: dict) -> None:
    """Adds each generated corpus's file sizes in name order; over 20 files, only their number is kept."""
    for name in ("A", "B", "C"):
        if name in corpora:
            corpora[name]["file_bytes"] = [corpora[name]["files"][n] for n in sorted(corpora[name]["files"], key=natural_key)]
            if len(corpora[name]["files"]) > 20:
                corpora[name]["files"] = len(corpora[name]["files"])  # keep the JSON small
                corpora[name]["file_bytes"] = None


def generator_digest() -> str:
    """Changes when the generator does, so a stale corpus is not reused."""
    return hashlib.sha256((REPO / "utils" / "generate_logs.py").read_bytes()).hexdigest()[:16]


def add_totals(total: dict | None, part: dict) -> dict:
    """`part` (a generator result) added into `total`; a copy of `part` when `total` is None."""
    if total is None:
        return json.loads(json.dumps(part))
    for level, n in part["counts"].items():
        total["counts"][level] = total["counts"].get(level, 0) + n
    for key in ("lines", "malformed", "blank", "files", "bytes"):
        total[key] += part[key]
    return total


def prepare_corpus(folder: Path, params: dict, build) -> dict:
    """The corpus in `folder`: reused if its expected.json records `params`, else built.

    `build(folder)` writes the files and returns the exact expected totals.
    Returns {"path", "expected", "files": {name: bytes}, "reused", "generate_s"}.
    """
    meta_path = folder / "expected.json"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("params") == params and all(
                (folder / name).is_file() and (folder / name).stat().st_size == size
                for name, size in meta["files"].items()):
            log(f"reusing corpus {folder} ({meta['expected']['bytes'] / MB:.1f} MB)")
            return {"path": str(folder), "expected": meta["expected"], "files": meta["files"],
                    "reused": True, "generate_s": meta.get("generate_s")}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    log(f"generating corpus {folder} ...")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    expected = build(folder)
    seconds = time.perf_counter() - start
    files = {p.name: p.stat().st_size for p in sorted(folder.glob("*.log"))}
    if sum(files.values()) != expected["bytes"] or len(files) != expected["files"]:
        raise BenchError(f"corpus {folder}: files on disk do not match the generator's totals")
    meta = {"params": params, "expected": expected, "files": files, "generate_s": round(seconds, 3)}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")  # last: a half-built corpus is never reused
    log(f"generated {folder}: {len(files)} files, {expected['bytes'] / MB:.1f} MB in {seconds:.1f} s")
    return {"path": str(folder), "expected": expected, "files": files, "reused": False,
            "generate_s": round(seconds, 3)}


def build_corpus_a(total_bytes: int):
    """8 files of different sizes (A_SHARES percent each), traps included."""
    from utils.generate_logs import generate

    def build(folder: Path) -> dict:
        staging = folder / ".staging"
        total = None
        for k, share in enumerate(A_SHARES, start=1):
            part = generate(str(staging), 1, seed=SEED + k, total_bytes=str(max(1, total_bytes * share // 100)), **TRAPS)
            os.replace(staging / "node1.log", folder / f"node{k}.log")
            total = add_totals(total, part)
        staging.rmdir()
        return total

    return build


def build_corpus_b(files: int):
    """`files` files of SMALL_FILE_LINES lines each, traps included."""
    from utils.generate_logs import generate

    return lambda folder: generate(str(folder), files, SMALL_FILE_LINES, seed=SEED + 100, **TRAPS)


def build_corpus_c(total_bytes: int):
    """One file of `total_bytes`, traps included."""
    from utils.generate_logs import generate

    return lambda folder: generate(str(folder), 1, seed=SEED + 200, total_bytes=str(total_bytes), **TRAPS)


def log_files(corpus: dict) -> list[str]:
    """The paths of the corpus's files, node2.log before node10.log."""
    return [str(Path(corpus["path"]) / name) for name in sorted(corpus["files"], key=natural_key)]


def natural_key(name: str):
    """Sort key that orders the numbers inside a name by value."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def warm_cache(paths) -> None:
    """Reads the files once, so every timed run starts from the same warm page cache."""
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(16 << 20):
                pass


def make_slice(corpus: dict, folder: Path, fraction: int) -> tuple[list[str], int]:
    """The first 1/fraction of each file of `corpus`, cut after a whole line, in `folder`."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    out, total = [], 0
    for path in log_files(corpus):
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            data = f.read(max(1, size // fraction))
            data += f.readline()  # finish the line the cut fell in
        target = folder / Path(path).name
        target.write_bytes(data)
        out.append(str(target))
        total += len(data)
    return out, total

