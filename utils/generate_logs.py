#!/usr/bin/env python3
"""Generate synthetic MPI node logs with exactly known per-level counts.

The distributed log analyser must report exact per-level line counts, so its
tests and benchmarks need inputs whose true counts are known without trusting
any parser.  This tool writes ``PREFIX1.log`` ... ``PREFIXN.log`` made of lines
``[2026-01-01T00:00:00.123] [LEVEL] message`` and, optionally, traps for a
sloppy parser: planted level words inside messages (``--noise``), malformed
lines (``--malformed``), blank lines (``--blank``), CRLF endings and a missing
final newline.  The totals printed by ``--json`` are counted while the lines are
chosen, never by re-reading the files, so they serve as an independent oracle.

The analyser's rule for one line (without its ``\\n``): empty or ``\\r`` is
blank; otherwise it counts under LEVEL.upper() when it starts with ``[``, the
first ``]`` is followed by `` [`` and the text up to the next ``]`` is 1..16
ASCII letters; anything else is malformed.

Lines are built in bounded blocks with numpy (no per-line Python code), so
multi-gigabyte files are written at hundreds of MB/s in constant memory.

    python utils/generate_logs.py --out sample_logs --files 10 --lines 5000
    python utils/generate_logs.py --total-bytes 2GB --noise 0.05 --json

``--format NAME`` writes one of the real formats of docs/formats-contract.md
instead (utils/format_logs.py); ``--format seed`` is the format above.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

import numpy as np

try:
    from utils import format_logs
except ImportError:  # run as a script (python utils/generate_logs.py): utils/ itself is on sys.path
    import format_logs

DEFAULT_LEVELS = "INFO=50,WARN=20,ERROR=10,DEBUG=20"
STANDARD_LEVELS = ("DEBUG", "ERROR", "INFO", "WARN")
MESSAGES = {
    "INFO": ["Connection established", "Request processed", "Database query executed",
             "Checkpoint written", "Rank joined communicator"],
    "DEBUG": ["Cache miss", "Cache hit", "Database query executed", "Buffer flushed"],
    "WARN": ["Network timeout", "Slow response from peer", "Retrying send", "Cache miss"],
    "ERROR": ["Authentication failed", "Disk read failed", "Memory allocation error",
              "Network timeout"],
}
# Level lines whose message also contains level words: only the level field counts.
NOISE = ["retry after [ERROR] upstream", "[WARN] disk usage above threshold",
         "ERROR count reset by operator", "forwarded line: [INFO] [DEBUG] heartbeat",
         "user searched for WARN] in logs", "status [ERROR->INFO] recovered"]
# (starts with a timestamp, text after it).  None of these has a valid level field.
MALFORMED = [
    (False, "Traceback (most recent call last):"),          # no brackets at all
    (False, "ERROR: out of memory on rank 3"),               # bare level, no brackets
    (True, " Connection reset by peer"),                    # [ts] message, no level
    (True, " [] empty level field"),                        # [ts] [] x
    (True, " [user 42] logged in"),                         # [ts] [user 42] x
    (True, " \xff\xfe corrupted \xc3\x28 record ERROR"),    # non-UTF-8, no level
    (True, "[ERROR] no space before level"),                # ']' not followed by ' ['
    (True, " [VERYLONGLEVELNAME] seventeen letters"),       # level longer than 16
    (True, " [ERROR unterminated level field"),             # no ']' after the '['
]
VARIANTS = 32          # id variants per (level, message): varies line length
HEAD = 24              # '[' + 'YYYY-MM-DDTHH:MM:SS.mmm'
EPOCH_MS = int(np.datetime64("2026-01-01T00:00:00", "ms").astype(np.int64))
MAX_STEP_MS = 20       # timestamps advance 1..20 ms per line
BLOCK_BYTES = 2 << 20  # padded bytes per block: bounds memory whatever the file size
SIZE_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KIB": 1 << 10, "KB": 10**3,
              "M": 1 << 20, "MIB": 1 << 20, "MB": 10**6, "G": 1 << 30,
              "GIB": 1 << 30, "GB": 10**9, "T": 1 << 40, "TIB": 1 << 40, "TB": 10**12}


def parse_size(text) -> int:
    """'500MB' -> 500000000; like GNU coreutils, KB=1000 and K=KiB=1024."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([A-Za-z]*)\s*", str(text))
    unit = m and m.group(2).upper()
    if not m or unit not in SIZE_UNITS:
        raise ValueError(f"invalid size {text!r} (use e.g. 64KB, 500MB, 2GB or bytes)")
    size = int(float(m.group(1)) * SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return size


def parse_levels(text) -> dict:
    """'INFO=50,WARN=20' -> {'INFO': 50.0, 'WARN': 20.0} (relative weights)."""
    if isinstance(text, dict):
        text = ",".join(f"{k}={v}" for k, v in text.items())
    levels = {}
    for item in str(text).split(","):
        name, sep, weight = item.strip().partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z]{1,16}", name):
            raise ValueError(f"bad level {item.strip()!r}: want NAME=WEIGHT, NAME 1-16 letters")
        try:
            value = float(weight)
        except ValueError:
            raise ValueError(f"bad weight in {item.strip()!r}") from None
        if not 0 <= value < float("inf"):
            raise ValueError(f"weight must be finite and >= 0: {item.strip()!r}")
        if name.upper() in {k.upper() for k in levels}:
            raise ValueError(f"level {name!r} given twice")
        levels[name] = value
    if sum(levels.values()) <= 0:
        raise ValueError("at least one level weight must be positive")
    return levels


def _rows(levels, noise, malformed, blank, rng):
    """Every distinct line shape as (has_timestamp, text after it, kind, probability)."""
    rows, total = [], sum(levels.values())
    plain = max(0.0, 1.0 - noise - malformed - blank)  # level lines without noise
    for name, weight in levels.items():
        msgs = MESSAGES.get(name.upper(), sorted({m for ms in MESSAGES.values() for m in ms}))
        # Ids of 1..7 digits, some absent: realistic spread of line lengths.
        ids = [f" id={rng.integers(10 ** (d - 1), 10 ** d)}" if d else ""
               for d in rng.integers(0, 8, VARIANTS)]
        for msg in msgs:
            p = plain * weight / total / (len(msgs) * VARIANTS)
            rows += [(True, f"] [{name}] {msg}{i}", name.upper(), p) for i in ids]
        for msg in NOISE:
            p = noise * weight / total / (len(NOISE) * 4)
            rows += [(True, f"] [{name}] {msg}{i}", name.upper(), p) for i in ids[:4]]
    rows += [(ts, "]" + text if ts else text, "malformed", malformed / len(MALFORMED))
             for ts, text in MALFORMED]
    return rows + [(False, "", "blank", blank)]


class Sampler:
    """Walker alias method: exact weighted row choice in O(1) numpy ops per line."""

    def __init__(self, p):
        live = np.flatnonzero(p > 0)  # rows of weight 0 can never be drawn
        q = p[live] * (len(live) / p[live].sum())
        prob, alias = np.ones(len(live)), np.arange(len(live))
        small = [i for i in range(len(q)) if q[i] < 1.0]
        large = [i for i in range(len(q)) if q[i] >= 1.0]
        while small and large:
            s, big = small.pop(), large.pop()
            prob[s], alias[s] = q[s], big
            q[big] -= 1.0 - q[s]
            (small if q[big] < 1.0 else large).append(big)
        self.prob, self.row, self.alias = prob, live, live[alias]

    def __call__(self, rng, n):
        u = rng.random(n) * len(self.row)
        i = u.astype(np.intp)
        return np.where(u - i < self.prob[i], self.row[i], self.alias[i])


class Table:
    """Padded byte matrix of every line shape plus the mask of its real bytes."""

    def __init__(self, rows, crlf):
        end = b"\r\n" if crlf else b"\n"
        bodies = [text.encode("latin-1") + end for _, text, _, _ in rows]
        width = -(-(HEAD + max(map(len, bodies))) // 8) * 8  # rows viewable as uint32
        self.bytes = np.zeros((len(rows), width), np.uint8)
        self.mask = np.zeros((len(rows), width), bool)
        for r, ((has_ts, _, _, _), body) in enumerate(zip(rows, bodies)):
            self.bytes[r, HEAD:HEAD + len(body)] = np.frombuffer(body, np.uint8)
            first = 0 if has_ts else HEAD  # headless lines skip the timestamp columns
            self.mask[r, first:HEAD + len(body)] = True
        self.kinds = [kind for _, _, kind, _ in rows]
        self.term = len(end)
        p = np.array([prob for _, _, _, prob in rows], float)
        p /= p.sum()
        self.mean_len = float(p @ self.mask.sum(axis=1))
        self.draw = Sampler(p)
        p[self.kinds.index("blank")] = 0.0  # a last line without '\n' must not be empty
        self.draw_nonblank = Sampler(p) if p.sum() > 0 else None


def _clock_words():
    """'HH:MM:SS' for every second of a day and '.mmm' for every ms, as uint32 words."""
    s, ms = np.arange(86_400), np.arange(1000)
    hms = np.tile(np.frombuffer(b"00:00:00", np.uint8), (86_400, 1))
    for col, digit in ((0, s // 36_000), (1, s // 3600 % 10), (3, s // 600 % 6),
                       (4, s // 60 % 10), (6, s % 60 // 10), (7, s % 10)):
        hms[:, col] += digit.astype(np.uint8)
    frac = np.tile(np.frombuffer(b".000", np.uint8), (1000, 1))
    for col, digit in ((1, ms // 100), (2, ms // 10 % 10), (3, ms % 10)):
        frac[:, col] += digit.astype(np.uint8)
    return hms.view(np.uint32), frac.view(np.uint32)[:, 0]


HMS_WORDS, MS_WORDS = _clock_words()


def _stamp(block, ms):
    """Write '[YYYY-MM-DDTHH:MM:SS.mmm' (epoch ms) into the first 24 bytes of each row."""
    days, rem = np.divmod(ms, 86_400_000)
    secs, frac = np.divmod(rem, 1000)
    first = days[0]  # ms is increasing, so a block spans few days: format each once
    dates = np.datetime_as_string(np.arange(first, days[-1] + 1).astype("datetime64[D]"))
    heads = np.char.add(np.char.add("[", dates), "T").astype("S12")
    words = block.view(np.uint32)  # 24 bytes = 6 words: 3 date, 2 time, 1 ms
    words[:, 0:3] = heads.view(np.uint32).reshape(-1, 3)[days - first]
    words[:, 3:5] = HMS_WORDS[secs]
    words[:, 5] = MS_WORDS[frac]


class StatsOracle:
    """What the analyser's statistics must say about the lines written, from the rows chosen
    (never from reading the files back): time range, timeline, templates, per-file counts.

    A level row's message is what follows "] [LEVEL] "; its template masks the one
    variable part the generator puts there, the " id=N" suffix (" id=<VAL>")."""

    def __init__(self, table, bucket_s):
        self.table = table
        self.bucket_s = bucket_s
        self.level_rows = np.array([kind not in ("malformed", "blank") for kind in table.kinds])
        self.first = self.last = None
        self.timeline = {}  # bucket start (s) -> level -> lines
        self.files = {}  # file name -> [first ms, last ms]

    def add(self, name, rows, ms):
        keep = self.level_rows[rows]
        rows, ms = rows[keep], ms[keep]
        if not len(rows):
            return
        first, last = int(ms.min()), int(ms.max())
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)
        span = self.files.setdefault(name, [first, last])
        span[0], span[1] = min(span[0], first), max(span[1], last)
        if self.bucket_s:
            starts = ms // 1000 // self.bucket_s * self.bucket_s
            keys, counts = np.unique(starts * len(self.table.kinds) + rows, return_counts=True)
            for key, n in zip(keys.tolist(), counts.tolist()):
                start, row = divmod(key, len(self.table.kinds))
                bucket = self.timeline.setdefault(start, {})
                kind = self.table.kinds[row]
                bucket[kind] = bucket.get(kind, 0) + n

    def document(self, counts_per_row, texts) -> dict:
        templates = {}
        for kind, text, n in zip(self.table.kinds, texts, counts_per_row):
            if kind in ("malformed", "blank") or not n:
                continue
            message = text.split("] ", 2)[2]  # text is "] [NAME] message"
            template = re.sub(r" id=[0-9]+$", " id=<VAL>", message)
            table = templates.setdefault(kind, {})
            table[template] = table.get(template, 0) + int(n)
        doc = {"time_range": {"first": _iso(self.first), "last": _iso(self.last),
                              "files": {k: {"first": _iso(a), "last": _iso(b)} for k, (a, b) in self.files.items()}},
               "templates": templates}
        if self.bucket_s:
            doc["timeline"] = {_iso(start * 1000)[:19]: dict(sorted(c.items()))
                               for start, c in sorted(self.timeline.items())}
        return doc


def _iso(ms):
    return None if ms is None else str(np.datetime64(int(ms), "ms"))


def _write_file(path, n_lines, table, seeds, final_newline, oracle=None):
    """Write one log file block by block; return (lines per table row, bytes)."""
    # Two streams of doubles only, so the bytes do not depend on the block size.
    rng, tick = (np.random.default_rng(s) for s in seeds.spawn(2))
    counts = np.zeros(len(table.kinds), np.int64)
    written, clock = 0, EPOCH_MS + int(tick.random() * 1000)
    per_block = max(1, BLOCK_BYTES // table.bytes.shape[1])
    # Reused buffers: memory stays at a few block sizes however large the file.
    block = np.empty((min(per_block, n_lines), table.bytes.shape[1]), np.uint8)
    mask = np.empty(block.shape, bool)
    with open(path, "wb") as f:
        for start in range(0, n_lines, per_block):
            n = min(per_block, n_lines - start)
            rows = table.draw(rng, n)
            last = start + n == n_lines
            if last and not final_newline and table.kinds[rows[-1]] == "blank":
                rows[-1] = table.draw_nonblank(rng, 1)[0]
            ms = clock + np.cumsum(1 + (tick.random(n) * MAX_STEP_MS).astype(np.int64))
            clock = int(ms[-1])
            np.take(table.bytes, rows, axis=0, out=block[:n])
            np.take(table.mask, rows, axis=0, out=mask[:n])
            _stamp(block[:n], ms)
            out = block[:n][mask[:n]]  # drop the padding: lines end to end
            if last and not final_newline:
                out = out[:-table.term]
            f.write(out)
            written += out.size
            counts += np.bincount(rows, minlength=len(counts))
            if oracle is not None:
                oracle.add(os.path.basename(path), rows, ms)
    return counts, written


def _check(files, lines, prefix, seed, noise, malformed, blank, no_final_newline):
    """Reject bad arguments with a ValueError whose message fits one line."""
    format_logs.check_arguments(files, lines, prefix, seed, {"noise": noise, "malformed": malformed, "blank": blank},
                                no_final_newline)


def generate(out_dir="sample_logs", files=10, lines=5000, seed=42, *, prefix="node",
             levels=DEFAULT_LEVELS, total_bytes=None, noise=0.0, malformed=0.0,
             blank=0.0, crlf=False, no_final_newline=False, stats=False, bucket_s=None) -> dict:
    """Write PREFIX1.log..PREFIXn.log into out_dir; return the exact totals (--json).

    levels is 'NAME=WEIGHT,...' or a dict; total_bytes (e.g. '500MB'), when given,
    replaces lines.  Bad arguments raise ValueError before anything is written.
    With `stats` the totals also hold the oracle of the analysis statistics
    ("stats": time range, templates per level, per-file counts, and with
    `bucket_s` the timeline).
    """
    _check(files, lines, prefix, seed, noise, malformed, blank, no_final_newline)
    levels = parse_levels(levels)
    # Independent stream per file: nodeK.log does not depend on --files.
    seeds = [np.random.SeedSequence(seed, spawn_key=(k,)) for k in range(files + 1)]
    rows = _rows(levels, noise, malformed, blank, np.random.default_rng(seeds[0]))
    table = Table(rows, crlf)
    oracle = StatsOracle(table, bucket_s) if stats else None
    per_file = {}
    if total_bytes is not None:
        lines = max(1, round(parse_size(total_bytes) / files / table.mean_len))
    os.makedirs(out_dir, exist_ok=True)
    counts = np.zeros(len(table.kinds), np.int64)
    written = 0
    for k in range(1, files + 1):
        path = os.path.join(out_dir, f"{prefix}{k}.log")
        c, b = _write_file(path, int(lines), table, seeds[k], not no_final_newline, oracle)
        counts, written = counts + c, written + b
        if stats:
            per_file[os.path.basename(path)] = _level_totals(table, c)
    totals = dict.fromkeys(sorted(set(STANDARD_LEVELS) | {n.upper() for n in levels}), 0)
    totals.update(malformed=0, blank=0)
    for kind, c in zip(table.kinds, counts.tolist()):
        totals[kind] += c
    malformed_n, blank_n = totals.pop("malformed"), totals.pop("blank")
    out = {"counts": totals, "lines": int(files * lines), "malformed": malformed_n,
           "blank": blank_n, "files": files, "bytes": written}
    if stats:
        out["stats"] = {**oracle.document(counts.tolist(), [text for _, text, _, _ in rows]), "by_file": per_file}
    return out


def statistics_mismatch(result: dict, oracle: dict) -> list[str]:
    """What an analyser's JSON result gets wrong in its statistics (--bucket, --top, --by file)
    against the oracle of `generate(..., stats=True)` (nothing: [])."""
    got = {
        "first": result["time_range"]["first"], "last": result["time_range"]["last"],
        "files": {os.path.basename(k): v for k, v in result["time_range"]["files"].items()},
        "timeline": {b["start"]: b["counts"] for b in result["timeline"]["buckets"]},
        "templates": {lv: {e["template"]: e["count"] for e in es} for lv, es in result["top_templates"].items()},
        "by_file": {os.path.basename(k): v for k, v in result["groups"]["counts"].items()},
    }
    want = {"first": oracle["time_range"]["first"], "last": oracle["time_range"]["last"],
            "files": oracle["time_range"]["files"], "timeline": oracle["timeline"], "templates": oracle["templates"],
            "by_file": oracle["by_file"]}
    return [f"statistics: {key}: got {got[key]!r:.200} want {want[key]!r:.200}" for key in want if got[key] != want[key]]


def _level_totals(table, counts_per_row) -> dict:
    out = {}
    for kind, n in zip(table.kinds, counts_per_row.tolist()):
        if kind not in ("malformed", "blank") and n:
            out[kind] = out.get(kind, 0) + n
    return dict(sorted(out.items()))


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, no usage dump: callers grep stderr and scripts read exit codes.
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser():
    p = _Parser(prog="generate_logs.py", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="sample_logs", help="output directory (created)")
    p.add_argument("--files", type=int, default=10, help="number of files (default 10)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--lines", type=int, default=None, help="lines per file (default 5000)")
    size.add_argument("--total-bytes", metavar="SIZE",
                      help="corpus size instead of --lines: 64KB, 500MB, 2GiB or bytes"
                           " (KB=1000, K=KiB=1024)")
    p.add_argument("--prefix", default="node", help="file name prefix (default node)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--format", default="seed", metavar="NAME", choices=["seed", *format_logs.FORMATS],
                   help="log format: seed (default) or a built-in format of docs/formats-contract.md")
    p.add_argument("--levels", default=None,
                   help=f"relative level weights, seed format only (default {DEFAULT_LEVELS})")
    p.add_argument("--noise", type=float, default=0.0,
                   help="fraction of lines with level words planted in the message")
    p.add_argument("--malformed", type=float, default=0.0, help="fraction of malformed lines")
    p.add_argument("--blank", type=float, default=0.0, help="fraction of empty lines")
    p.add_argument("--traces", type=float, default=None,
                   help="fraction of records followed by a stack trace or similar block"
                        " (not with --format seed)")
    p.add_argument("--crlf", action="store_true", help="end lines with \\r\\n")
    p.add_argument("--no-final-newline", action="store_true",
                   help="leave the last line of each file unterminated")
    p.add_argument("--json", action="store_true", help="print exact totals as JSON on stdout")
    p.add_argument("--stats", action="store_true",
                   help="with --json: also the oracle of the analysis statistics (seed format only)")
    p.add_argument("--bucket-seconds", type=int, default=None, metavar="S",
                   help="with --stats: the timeline oracle for buckets of S seconds")
    return p



def merge_totals(*totals: dict) -> dict:
    """The sum of several generate() results (zero level counts dropped): the oracle of a mixed corpus."""
    out = {"counts": {}, "lines": 0, "malformed": 0, "blank": 0, "continuation": 0, "files": 0, "bytes": 0}
    for t in totals:
        for level, n in t["counts"].items():
            out["counts"][level] = out["counts"].get(level, 0) + n
        for key in ("lines", "malformed", "blank", "continuation", "files", "bytes"):
            out[key] += t.get(key, 0)
    out["counts"] = {k: v for k, v in sorted(out["counts"].items()) if v}
    if totals and all("stats" in t for t in totals):
        out["stats"] = _merge_stats([t["stats"] for t in totals])
    return out


def _merge_stats(parts: list[dict]) -> dict:
    """The statistics oracle of several corpora in one folder (files of distinct names)."""
    firsts = [p["time_range"]["first"] for p in parts if p["time_range"]["first"]]
    lasts = [p["time_range"]["last"] for p in parts if p["time_range"]["last"]]
    out = {"time_range": {"first": min(firsts, default=None), "last": max(lasts, default=None), "files": {}},
           "templates": {}, "by_file": {}}
    for p in parts:
        out["time_range"]["files"].update(p["time_range"]["files"])
        out["by_file"].update(p["by_file"])
        for level, table in p["templates"].items():
            mine = out["templates"].setdefault(level, {})
            for template, n in table.items():
                mine[template] = mine.get(template, 0) + n
        if "timeline" in p:
            timeline = out.setdefault("timeline", {})
            for start, counts in p["timeline"].items():
                bucket = timeline.setdefault(start, {})
                for level, n in counts.items():
                    bucket[level] = bucket.get(level, 0) + n
    if "timeline" in out:
        out["timeline"] = {k: dict(sorted(v.items())) for k, v in sorted(out["timeline"].items())}
    return out


def _generate(args) -> dict:
    """The totals of the run args ask for: the seed generator or format_logs."""
    lines = 5000 if args.lines is None else args.lines
    if args.format == "seed":
        if args.traces is not None:
            raise ValueError("--traces needs --format NAME (not seed)")
        return generate(args.out, args.files, lines, args.seed, prefix=args.prefix,
                        levels=DEFAULT_LEVELS if args.levels is None else args.levels,
                        total_bytes=args.total_bytes, noise=args.noise,
                        malformed=args.malformed, blank=args.blank, crlf=args.crlf,
                        no_final_newline=args.no_final_newline, stats=args.stats, bucket_s=args.bucket_seconds)
    if args.levels is not None:
        raise ValueError("--levels is for --format seed; other formats have their own mix")
    return format_logs.generate(
        args.format, args.out, args.files, lines, args.seed, prefix=args.prefix,
        total_bytes=None if args.total_bytes is None else parse_size(args.total_bytes),
        noise=args.noise, malformed=args.malformed, blank=args.blank,
        traces=args.traces or 0.0, crlf=args.crlf, no_final_newline=args.no_final_newline)


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        result = _generate(args)
    except ValueError as e:
        parser.error(str(e))
    except OSError as e:
        parser.exit(1, f"{parser.prog}: error: {e}\n")
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(result))
    else:
        print(f"wrote {result['files']} files, {result['lines']} lines, {result['bytes']} bytes"
              f" to {args.out} in {seconds:.2f} s"
              f" ({result['bytes'] / 1e6 / max(seconds, 1e-9):.0f} MB/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
