"""Statistics beyond counts (time range, timeline, templates, groups, filters).

The oracle is the generator (utils/generate_logs.py --stats), which knows each
line's timestamp and template from how it built the line; the three programs
must match it exactly at several -np, with files cut into many tasks, and
after an interrupted run is resumed. Pure parts are checked directly: merging
the statistics of any cut of a file gives those of one pass, and capped
template tables keep true counts inside the bounds they state.
"""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import pytest

from loganalyser.counting.analysis import Analysis, LineStats
from loganalyser.counting.analysis.options import AnalysisError, parse_bucket, parse_instant
from loganalyser.counting.analysis.pairs import logfmt_fields
from loganalyser.counting.analysis.stats import COUNT, ERROR
from loganalyser.counting.analysis.templates import Masker
from loganalyser.counting.analysis.timestamps import compile_layout, epoch_ms, iso
from loganalyser.counting.formats import FormatSet
from loganalyser.counting.reader import analyse_range
from utils import format_logs, generate_logs
from utils.generate_logs import statistics_mismatch
from utils.jobcontrol import assert_no_processes, rank_pid, signal_pid, wait_for

from .helpers import json_of, program_cmd, program_env, run_program

BUCKET_S = 10
STATS_OPTIONS = ["--bucket", "10s", "--top", "1000", "--by", "file", "--json"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analysis")
    expected = generate_logs.generate(str(folder), files=4, lines=6000, seed=5, noise=0.1, malformed=0.05,
                                      blank=0.02, crlf=True, no_final_newline=True, stats=True, bucket_s=BUCKET_S)
    return folder, expected


def assert_matches_oracle(doc: dict, expected: dict) -> None:
    assert {k: v for k, v in doc["counts"].items() if v} == {k: v for k, v in expected["counts"].items() if v}
    assert statistics_mismatch(doc, expected["stats"]) == []  # time range, files, timeline, templates, groups
    assert doc["time_range"]["untimed"] == 0
    assert doc["templates"]["exact"] is True
    for level, entries in doc["top_templates"].items():
        for entry in entries:  # an example is a real line of its level and template
            assert f"] [{level}] " in entry["example"].upper() or f"[{level}]" in entry["example"].upper()


def test_sequential_matches_the_oracle(corpus):
    folder, expected = corpus
    assert_matches_oracle(json_of(run_program("base_log_analyser.py", folder, *STATS_OPTIONS)), expected)


@pytest.mark.parametrize("np", [2, 3])
def test_static_parallel_matches_the_oracle(corpus, np):
    folder, expected = corpus
    doc = json_of(run_program("parallel_log_analyser.py", folder, *STATS_OPTIONS, np=np))
    assert_matches_oracle(doc, expected)


@pytest.mark.parametrize("np", [3, 4])
def test_distributed_matches_the_oracle_with_files_cut_into_many_tasks(corpus, tmp_path, np):
    folder, expected = corpus
    doc = json_of(run_program("distributed_log_analyser.py", folder, *STATS_OPTIONS, "--chunk-size", "64K",
                              "--checkpoint-dir", tmp_path / "ck", "--no-progress", np=np))
    assert doc["tasks"] > 8
    assert_matches_oracle(doc, expected)


def test_filters_apply_to_every_statistic(corpus):
    folder, expected = corpus
    oracle = expected["stats"]
    failing = {level: sum(n for t, n in table.items() if "fail" in t) for level, table in oracle["templates"].items()}
    doc = json_of(run_program("base_log_analyser.py", folder, "--grep", "fail", "--top", "50", "--json"))
    assert doc["counts"] == {k: v for k, v in failing.items() if v}
    assert all("fail" in e["template"] for entries in doc["top_templates"].values() for e in entries)
    assert doc["filters"] == {"level": None, "grep": "fail", "since": None, "until": None}

    # a time window of whole buckets: the buckets' sums
    starts = sorted(oracle["timeline"])
    since, until = starts[1], starts[3]
    window = {}
    for start in starts[1:3]:
        for level, n in oracle["timeline"][start].items():
            window[level] = window.get(level, 0) + n
    doc = json_of(run_program("base_log_analyser.py", folder, "--since", since, "--until", until, "--level", "error,warn",
                              "--bucket", "10s", "--json"))
    assert doc["counts"] == {k: v for k, v in window.items() if k in ("ERROR", "WARN")}
    assert [b["start"] for b in doc["timeline"]["buckets"]] == starts[1:3]
    assert doc["filters"]["level"] == ["ERROR", "WARN"] and doc["filters"]["since"] == since


def test_a_level_filter_alone_keeps_the_fast_path_and_its_counts(corpus):
    folder, expected = corpus
    doc = json_of(run_program("base_log_analyser.py", folder, "--level", "ERROR,FATAL", "--json"))
    assert doc["counts"] == {"ERROR": expected["counts"]["ERROR"]}
    assert doc["lines"] == expected["lines"] and "time_range" not in doc  # no per-line pass was made


def test_csv_files_hold_the_statistics(corpus, tmp_path):
    folder, expected = corpus
    out = tmp_path / "csv"
    json_of(run_program("base_log_analyser.py", folder, *STATS_OPTIONS, "--csv", out))
    assert {p.name for p in out.iterdir()} == {"counts.csv", "timeline.csv", "templates.csv", "groups.csv", "files.csv"}
    rows = (out / "timeline.csv").read_text().splitlines()
    assert len(rows) == 1 + len(expected["stats"]["timeline"])


def test_an_interrupted_job_resumes_with_exact_statistics(corpus, tmp_path, jobs):
    folder, expected = corpus
    ck = tmp_path / "ck"
    cmd = program_cmd("distributed_log_analyser.py", folder, *STATS_OPTIONS, "--checkpoint-dir", ck, "--chunk-size",
                      "64K", "--checkpoint-every", 1, "--task-delay", 0.3, "--no-progress", np=3)
    job = jobs.start(cmd, str(ck), env=program_env(), cwd=tmp_path)
    wait_for(lambda: any(p.name.isdigit() for p in ck.glob("*")) or not job.running(), 60, "a first checkpoint")
    master = wait_for(lambda: rank_pid(0, str(ck)), 40, "the master's pid")
    assert signal_pid(master, signal.SIGINT)
    assert job.wait(60) == 4, job.stderr[-2000:]
    assert_no_processes(str(ck))
    rerun = jobs.start(cmd, str(ck), env=program_env(), cwd=tmp_path)
    assert rerun.wait(90) == 0, rerun.stderr[-2000:]
    doc = json.loads(rerun.stdout)
    assert doc["resumed_from"]
    assert_matches_oracle(doc, expected)


# --- pure parts -------------------------------------------------------------------------


def _lines_file(path: Path, rng: random.Random, n: int) -> None:
    """Seed-format lines with varied messages, numbers, timestamps and traps."""
    words = ["disk", "read", "failed", "user", "login", "retry", "ERROR", "[WARN]"]
    out = []
    for i in range(n):
        kind = rng.random()
        ts = f"2026-01-{rng.randint(1, 3):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00.{rng.randint(0, 999):03d}"
        if kind < 0.05:
            out.append("")
        elif kind < 0.1:
            out.append("\tat com.example.Main(Main.java:12)")
        elif kind < 0.13:
            out.append(f"[{ts}] no level {i}")
        else:
            level = rng.choice(["INFO", "warn", "ERROR", "Debug", "fatal"])
            message = " ".join(rng.choice(words) for _ in range(rng.randint(0, 4)))
            if rng.random() < 0.6:
                message += f" id={rng.randint(0, 10 ** rng.randint(1, 6))} after {rng.randint(0, 99)}ms"
            out.append(f"[{ts}] [{level}] {message}")
    path.write_bytes(("\r\n" if rng.random() < 0.5 else "\n").join(out).encode())


def _cut_and_merge(path: Path, formats: FormatSet, rng: random.Random, fmt: str = "seed"):
    size = path.stat().st_size
    cuts = sorted({0, size, *(rng.randrange(size) for _ in range(rng.randint(0, 12)))})
    parts = [analyse_range(str(path), a, b - a, chunk_size=rng.choice([64, 512, 4096]), fmt=fmt, formats=formats)
             for a, b in zip(cuts, cuts[1:])]
    rng.shuffle(parts)  # the order results arrive in must not matter
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


@pytest.mark.parametrize("seed", range(25))
def test_statistics_of_any_cut_merge_to_those_of_one_pass(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "a.log"
    _lines_file(path, rng, rng.randint(1, 400))
    analysis = Analysis(bucket_s=rng.choice([60, 3600, 86400]), top=5, by="file",
                        grep=rng.choice([None, "fail", "id="]), levels=rng.choice([None, ("ERROR", "FATAL")]))
    formats = FormatSet.standard(analysis=analysis)
    whole = analyse_range(str(path), formats=formats)
    merged = _cut_and_merge(path, formats, rng)
    assert merged.counts == whole.counts
    assert merged.stats.to_dict() == whole.stats.to_dict()


@pytest.mark.parametrize("seed", range(10))
def test_capped_templates_keep_true_counts_inside_their_bounds(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "a.log"
    lines = [f"[2026-01-01T00:00:00] [INFO] event-{rng.choice('abcdefghijklmnopqrstuvwxyz' * 2)}"
             f"{rng.choice('abcdefghij')} happened" for _ in range(2000)]
    path.write_text("\n".join(lines) + "\n")
    exact = analyse_range(str(path), formats=FormatSet.standard(analysis=Analysis(top=1)))
    truth = {t: e[COUNT] for t, e in exact.stats.templates["INFO"].items()}
    capped = _cut_and_merge(path, FormatSet.standard(analysis=Analysis(top=1, max_templates=20)), rng)
    table, bound = capped.stats.templates["INFO"], capped.stats.bounds.get("INFO", 0)
    assert len(truth) > 20 and len(table) <= 20 and capped.stats.capped
    for template, true_count in truth.items():
        if template in table:
            assert table[template][COUNT] - table[template][ERROR] <= true_count <= table[template][COUNT]
        else:
            assert true_count <= bound


def test_uncapped_merge_is_exact_and_flags_nothing():
    a, b = LineStats(max_templates=10), LineStats(max_templates=10)
    a.count_template("INFO", "x <NUM>", "f", 5, "x 1")
    b.count_template("INFO", "x <NUM>", "f", 2, "x 2")
    b.count_template("INFO", "y", "f", 9, "y")
    merged = LineStats().add(a).add(b)
    assert merged.templates["INFO"]["x <NUM>"][:2] == [2, 0] and not merged.capped
    assert merged.templates["INFO"]["x <NUM>"][4] == "x 2"  # the first occurrence (smallest offset) is the example


@pytest.mark.parametrize("message,template", [
    ("Disk read failed on 42", "Disk read failed on <NUM>"),
    ("Connection established id=1234567", "Connection established id=<VAL>"),
    ("Opened /var/log/app.log for user \"bob\"", "Opened <PATH> for user <STR>"),
    ("session 3f2a9c1e-4b5d-11ee-be56-0242ac120002 from 192.168.1.2:443", "session <UUID> from <IP>"),
    ("addr 0x7ffe12ab retry 3.5s", "addr <HEX> retry <NUM>s"),
    ("Received blk_-1608999687919862906 from /10.250.10.6", "Received blk_-<NUM> from /<IP>"),
    ("status [ERROR->INFO] recovered", "status [ERROR->INFO] recovered"),
])
def test_masks(message, template):
    assert Masker().template(message) == template


def test_user_masks_come_first():
    assert Masker([r"node-[a-z]+"]).template("node-alpha down after 3 tries") == "<*> down after <NUM> tries"


@pytest.mark.parametrize("layout,text,year,expected", [
    ("yyyy-MM-ddTHH:mm:ss[.SSS]", "2026-01-01T00:00:00.123", None, "2026-01-01T00:00:00.123"),
    ("dd/MMM/yyyy:HH:mm:ss Z", "10/Oct/2000:13:55:36 -0700", None, "2000-10-10T20:55:36.000"),
    ("EEE MMM dd HH:mm:ss[.SSSSSS] yyyy", "Wed Oct 11 14:32:52.123456 2000", None, "2000-10-11T14:32:52.123"),
    ("MMM dd HH:mm:ss", "Jan  5 01:02:03", 2025, "2025-01-05T01:02:03.000"),
    ("yyMMdd HHmmss", "081109 203615", None, "2008-11-09T20:36:15.000"),
    ("RFC 3339", "2003-10-11T22:14:15.003+02:00", None, "2003-10-11T20:14:15.003"),
    ("yyyy-MM-dd-HH.mm.ss.SSSSSS", "2005-06-03-15.42.50.363779", None, "2005-06-03T15:42:50.363"),
    ("yy/MM/dd HH:mm:ss", "17/06/09 20:10:40", None, "2017-06-09T20:10:40.000"),
    ("MM-dd HH:mm:ss.SSS", "03-17 16:13:38.811", 2024, "2024-03-17T16:13:38.811"),
])
def test_timestamp_layouts(layout, text, year, expected):
    m = compile_layout(layout).match(text)
    assert m and iso(epoch_ms(m, year)) == expected


def test_impossible_dates_and_dateless_layouts_give_no_time():
    assert epoch_ms(compile_layout("yyyy/MM/dd HH:mm:ss").match("2026/02/29 10:00:00"), None) is None
    assert epoch_ms(compile_layout("MMM dd HH:mm:ss").match("Jan  5 01:02:03"), None) is None  # no year known
    assert compile_layout("HH:mm:ss.SSS") is None


def test_every_builtin_timestamp_layout_reads_its_own_samples():
    from loganalyser.counting.analysis.lines import LinePass
    formats = FormatSet.standard()
    read = 0
    for name in formats.names:
        spec = formats.specs[name]
        if not spec.timestamp:
            continue
        lines = LinePass(formats.dialect(name), Analysis(bucket_s=60))
        for line, level in spec.samples:
            if level in (None, "continuation", "blank"):
                continue
            text = lines._fields(line).get("timestamp")
            if text is not None and lines.stamp is not None:
                assert lines._time(text, 2026) is not None, (name, line)
                read += 1
    assert read >= 15


def test_option_parsing():
    assert parse_bucket("5m") == 300 and parse_bucket("1d") == 86400
    assert parse_instant("--since", "2026-01-01") == parse_instant("--since", "2026-01-01T00:00:00")
    for bad in ("0m", "5", "m", "1y"):
        with pytest.raises(AnalysisError):
            parse_bucket(bad)


@pytest.mark.parametrize("args,needle", [
    (["--bucket", "0m"], "--bucket"),
    (["--since", "2026-01-02", "--until", "2026-01-01"], "--until"),
    (["--grep", "("], "--grep"),
    (["--since", "yesterday"], "--since"),
    (["--by", "planet"], "--by"),
])
def test_bad_options_are_one_line_usage_errors(corpus, args, needle):
    folder, _ = corpus
    proc = run_program("base_log_analyser.py", folder, *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr


def test_groups_come_from_the_format_fields_or_the_path(tmp_path):
    syslog = tmp_path / "sys.log"
    syslog.write_text("<34>1 2026-01-01T00:00:00Z alpha sshd 1 - - login failed\n"
                      "<30>1 2026-01-01T00:00:01Z beta cron 2 - - job 7 started\n"
                      "<30>1 2026-01-01T00:00:02Z alpha cron 3 - - job 8 started\n")
    doc = json_of(run_program("base_log_analyser.py", syslog, "--by", "host", "--json"))
    assert doc["groups"] == {"by": "host", "capped": False,
                             "counts": {"alpha": {"FATAL": 1, "INFO": 1}, "beta": {"INFO": 1}}}
    doc = json_of(run_program("base_log_analyser.py", syslog, "--by", "component", "--json"))
    assert doc["groups"]["counts"] == {"cron": {"INFO": 2}, "sshd": {"FATAL": 1}}

    for host in ("n1", "n2"):
        (tmp_path / host).mkdir()
        (tmp_path / host / "app.log").write_text(f"[2026-01-01T00:00:00] [INFO] up on {host}\n" * (2 if host == "n1" else 3))
    doc = json_of(run_program("base_log_analyser.py", tmp_path / "n1", tmp_path / "n2", "--by", "host",
                              "--host-from-path", r"/(n\d)/", "--json"))
    assert doc["groups"]["counts"] == {"n1": {"INFO": 2}, "n2": {"INFO": 3}}


def test_yearless_timestamps_take_the_files_year_or_year(tmp_path):
    import os
    log = tmp_path / "messages.log"
    log.write_text("<13>Jan  5 01:02:03 host app: started\n<11>Feb 28 23:59:59 host app: failed\n")
    moment = 1718000000  # 2024-06-10
    os.utime(log, (moment, moment))
    doc = json_of(run_program("base_log_analyser.py", log, "--bucket", "1d", "--json"))
    assert (doc["time_range"]["first"], doc["time_range"]["last"]) == ("2024-01-05T01:02:03.000", "2024-02-28T23:59:59.000")
    doc = json_of(run_program("base_log_analyser.py", log, "--bucket", "1d", "--year", "2021", "--json"))
    assert doc["time_range"]["first"] == "2021-01-05T01:02:03.000"
    assert [b["start"] for b in doc["timeline"]["buckets"]] == ["2021-01-05T00:00:00", "2021-02-28T00:00:00"]


@pytest.mark.parametrize("line,fields", [
    (b'time=2024-03-01T12:00:00Z level=warn msg="disk \\"sda\\" full" host=db1 logger=disk',
     {"timestamp": "2024-03-01T12:00:00Z", "message": 'disk "sda" full', "host": "db1", "component": "disk"}),
    (b"ts=1709294400 lvl=info msg=started caller=main.go:42",  # epoch seconds; a bare message
     {"timestamp": "1709294400", "message": "started", "component": "main.go:42"}),
    (b'level=info msg="user set level" new="time=1999-01-01 msg=nested"',  # a key inside quotes is no pair
     {"message": "user set level"}),
    (b"message=second msg=first event=third", {"message": "first"}),  # the keys' order, not the line's
    (b"msg=one msg=two", {"message": "one"}),  # a key given twice: its first pair
    (b'xmsg=no amsg="no" level=info', {}),  # keys are whole words
    (b'msg="unterminated level=info', {"message": ""}),  # no closing quote: an empty bare value
    (b"panic: runtime error", {}),
])
def test_logfmt_records_give_their_fields_from_their_pairs(line, fields):
    assert logfmt_fields(line) == fields


def test_logfmt_statistics_read_time_and_message_from_pairs(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b'time=2024-03-01T12:00:00Z level=warn msg="disk 90% full" logger=disk\r\n'
                    b'time=2024-03-01T12:59:59Z level=error msg="request 17 failed" logger=http\r\n'
                    b"t=2024-03-01T13:00:00Z lvl=error msg=\"request 18 failed\" logger=http\r\n"
                    b"level=info msg=untimed logger=http")
    doc = json_of(run_program("base_log_analyser.py", log, "--json", "--bucket", "1h", "--top", "2",
                              "--by", "component", "--grep", "failed|full"))
    assert doc["formats"] == {"logfmt": 1}
    assert doc["time_range"]["first"] == "2024-03-01T12:00:00.000" and doc["time_range"]["last"] == "2024-03-01T13:00:00.000"
    assert doc["timeline"]["buckets"] == [{"start": "2024-03-01T12:00:00", "counts": {"ERROR": 1, "WARN": 1}},
                                          {"start": "2024-03-01T13:00:00", "counts": {"ERROR": 1}}]
    assert [(t["template"], t["count"]) for t in doc["top_templates"]["ERROR"]] == [("request <NUM> failed", 2)]
    assert doc["groups"]["counts"] == {"disk": {"WARN": 1}, "http": {"ERROR": 2}}


@pytest.mark.parametrize("seed", range(5))
def test_logfmt_statistics_of_any_cut_merge_to_those_of_one_pass(tmp_path, seed):
    rng = random.Random(seed)
    totals = format_logs.generate("logfmt", str(tmp_path), files=1, total_bytes=rng.randint(2_000, 40_000), seed=seed,
                                  traces=0.05, noise=0.05, malformed=0.02, blank=0.02)
    path = tmp_path / "node1.log"
    analysis = Analysis(bucket_s=rng.choice([60, 3600]), top=5, by="component", grep=rng.choice([None, "fail"]))
    formats = FormatSet.standard(analysis=analysis)
    whole = analyse_range(str(path), fmt="logfmt", formats=formats)
    assert whole.stats.untimed < sum(whole.counts.values())  # the generator's records carry time= or t=
    assert sum(whole.counts.values()) <= sum(totals["counts"].values())
    merged = _cut_and_merge(path, formats, rng, "logfmt")
    assert merged.counts == whole.counts
    assert merged.stats.to_dict() == whole.stats.to_dict()


@pytest.mark.parametrize("fmt,line,component", [
    ("log4j", "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster",
     "org.apache.hadoop.mapreduce.v2.app.MRAppMaster"),
    ("log4j", "2024-03-01 12:00:00,123 ERROR [pool-1-thread-3] com.example.Service - request failed: WARN threshold",
     "com.example.Service"),
    ("log4j", "2024-03-01T12:00:00.123Z  WARN 12345 --- [main] o.s.b.StartupInfoLogger : slow start",
     "o.s.b.StartupInfoLogger"),
    ("log4j", "2024-03-01 12:00:00,123 INFO just a message without a logger", None),
    ("logback", "16:09:35.130 [http-nio-8080-exec-1] WARN  c.e.web.Controller - slow request", "c.e.web.Controller"),
    ("hdfs", "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating",
     "dfs.DataNode$PacketResponder"),
    ("spark", "17/06/09 20:11:11 ERROR executor.Executor: Exception in task 0.0", "executor.Executor"),
    ("zookeeper", "2015-07-29 19:04:12,394 - WARN  [RecvWorker:188978561024:QuorumCnxManager$RecvWorker@762] - "
     "Connection broken", "QuorumCnxManager$RecvWorker"),
    ("zookeeper", "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - "
     "Notification time out: 3200", "FastLeaderElection"),
    ("windows_cbs", "2016-09-28 04:30:31, Warning               CBS    Unable to load the previous value", "CBS"),
    ("logcat_threadtime", "03-17 16:13:38.839  1702  8671 E PowerManagerService: release:lock=166121161",
     "PowerManagerService"),
    ("logcat_threadtime", "03-01 00:00:00.590   432   436 V DEBUG   : lock acquired", "DEBUG"),  # padded tag
    ("logcat_time", "03-01 00:00:00.590 V/DEBUG   (  432): lock acquired", "DEBUG"),
    ("logcat_brief", "W/ActivityManager(  586): Unable to start service", "ActivityManager"),
    ("logcat_brief", "D/OkHttp  ( 4021): <-- 200 OK", "OkHttp"),
    ("syslog_rfc3164", "<13>Feb  5 17:32:18 10.0.0.99 myproc[8710]: use the BFG!", "myproc"),
    ("syslog_rfc3164", "<34>Oct 11 22:14:15 mymachine su: 'su root' failed", "su"),
])
def test_components_come_from_each_formats_own_field(fmt, line, component):
    match = FormatSet.standard().specs[fmt].pattern.match(line.encode())
    assert match is not None and match.group("level")
    assert (match.group("component").decode() if match.group("component") else None) == component
