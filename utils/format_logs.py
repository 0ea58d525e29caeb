"""Synthetic logs in the real formats of docs/formats-contract.md, with exact counts.

The analyser's format parsers (issue 10) need inputs whose true counts are known
without trusting any parser.  ``generate(fmt, ...)`` writes PREFIX1.log ...
PREFIXn.log in one built-in format: records with a seeded mix of the format's own
level spellings (logcat letters, Windows ``Info``, BGL severities, syslog PRI
values, pino numbers, ...), level words planted in messages (``noise``), trace
blocks (Java stack traces, Python tracebacks, Go panics, jul header lines,
logcat separators: ``traces``), malformed and blank lines, optional CRLF and a
missing final newline.  It returns the totals in canonical levels plus
``lines``, ``blank``, ``continuation`` and ``malformed``, counted from the lines
as they are chosen, never by re-reading.

Every line shape below was written from the format's public documentation and
classified by hand against the contract: a record (its canonical level), a
continuation (starts with a space, a tab, ``at ``, ``Caused by:``, ``... N more``,
or the format's own rule), malformed, or blank.  Note that a stack trace's first
line (``java.io.IOException: ...``, ``Traceback (most recent call last):``) is
*malformed* under the contract: it starts with none of those.

Entries (one line, or a record with its trace block) are drawn with numpy in
blocks; the lines are then rendered with one ``%`` per line from pre-built
templates and a per-second cache of the timestamp text.
"""
from __future__ import annotations

import json
import numbers
import os
import re
import time

import numpy as np

EPOCH_S = 1709251200          # 2024-03-01T00:00:00Z: the first timestamp (plus < 1 s)
MAX_STEP_MS = 20              # timestamps advance 1..20 ms per stamped line
BLOCK = 8192                  # entries drawn per block: bounds memory whatever the size
VARIANTS = 6                  # variants per (level, message): ids and line shapes vary
KINDS_TAIL = ("continuation", "malformed", "blank")
MON = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DOW = "Mon Tue Wed Thu Fri Sat Sun".split()
MS3 = [f"{m:03d}" for m in range(1000)]
US6 = [f"{m:03d}{m * 37 % 1000:03d}" for m in range(1000)]

MESSAGES = {
    "TRACE": ["enter dispatch() request={id}", "lock acquired owner=worker-{id}"],
    "DEBUG": ["cache miss key=user:{id}", "pool stats active=3 idle=7 waiters=0",
              "buffer flushed bytes={id}"],
    "INFO": ["request processed in 12 ms id={id}", "connection established peer=10.0.3.17:{id}",
             "checkpoint written seq={id}", "job {id} finished"],
    "NOTICE": ["configuration reloaded generation={id}", "listener restarted on port 8443"],
    "WARN": ["slow response from peer 10.0.3.7 after 2048 ms", "retrying send attempt 2/5 id={id}",
             "disk usage at 91% on /data"],
    "ERROR": ["disk read failed on /dev/sdb1 sector {id}", "authentication failed for user {id}",
              "connection refused by 10.0.3.9:5432"],
    "FATAL": ["out of memory: cannot allocate {id} bytes", "unrecoverable state, shutting down"],
}
MESSAGES["NONE"] = MESSAGES["INFO"]
# Messages that carry level words; only the format's level field counts.
NOISE = ["retry after ERROR from upstream id={id}", "WARN threshold reached, no action taken",
         "cleared FATAL flag on node {id}", "status ERROR->INFO recovered",
         "user searched for 'level=error severity=CRITICAL'", "[ERROR] [WARN] echoed from child {id}"]
# Lines no format parses, none of which starts like a continuation.
GARBAGE = ["Killed", "Segmentation fault (core dumped)", "#@!%^ binary garbage $$$",
           "\udcff\udcfe corrupted \udcc3( bytes", "\x00\x00\x00\x00\x00\x00"]


def _slot(key):
    """Marker of a timestamp slot inside a line template (rendered as %(key)s)."""
    return f"\x01{key}\x02"


T, U, D, E = _slot("t"), _slot("u"), _slot("d"), _slot("e")


def _stamper(per_second, per_line):
    """(sec, ms) -> {slot: text}; per_second(struct_time, sec) is cached for the last second."""
    last = [-1, None]

    def stamp(sec, ms):
        if sec != last[0]:
            last[0], last[1] = sec, per_second(time.gmtime(sec), sec)
        return per_line(last[1], ms)
    return stamp


def _ymd(g, sep="-"):
    return f"{g.tm_year:04d}{sep}{g.tm_mon:02d}{sep}{g.tm_mday:02d}"


def _hms(g, sep=":"):
    return f"{g.tm_hour:02d}{sep}{g.tm_min:02d}{sep}{g.tm_sec:02d}"


def _one(per_second):
    """Slot t: per_second(struct_time, sec), for formats printing whole seconds."""
    return lambda: _stamper(per_second, lambda c, ms: {"t": c})


def _with_ms(per_second):
    """Slot t: per_second(struct_time, sec) followed by the milliseconds."""
    return lambda: _stamper(per_second, lambda c, ms: {"t": c + MS3[ms]})


def _iso_ms():
    """'2024-03-01T12:00:00.123Z' in slot t."""
    return _stamper(lambda g, s: f"{_ymd(g)}T{_hms(g)}.", lambda c, ms: {"t": c + MS3[ms] + "Z"})


def _java_trace(exc="java.io.IOException: Connection reset by peer", frames=3, cause=True,
                logback=False):
    """The lines a Java logger prints under a record: exception line (malformed), frames."""
    lines = [(exc, "malformed")]
    lines += [(f"\tat com.example.svc.Handler{i}.run(Handler{i}.java:{40 + 7 * i})", "continuation")
              for i in range(frames)]
    if cause:
        lines += [("Caused by: java.net.SocketTimeoutException: Read timed out", "continuation"),
                  ("\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
                   "continuation"),
                  (f"\t... 12 {'common frames omitted' if logback else 'more'}", "continuation")]
    return lines


PY_TRACE = [("Traceback (most recent call last):", "malformed"),
            ('  File "/srv/app/worker.py", line 41, in handle', "continuation"),
            ("    result = await fetch(url)", "continuation"),
            ("ConnectionError: status 503", "malformed")]


class Format:
    """One built-in format: its level spellings, line shapes and timestamp slots."""

    def __init__(self, name, levels, record, stamp=None, malformed=(), traces=(), noise=(),
                 entry=None):
        self.name = name
        self.levels = levels              # [(spelling, canonical level, weight)]
        self.record = record              # (spelling, message, variant) -> template text
        self.stamp = stamp                # () -> (sec, ms) -> {slot: text}; None: no timestamp
        self.malformed = list(malformed) + GARBAGE
        self.traces = list(traces)        # [[(template text, kind)]]: mostly a record, then its trace
        self.noise = NOISE + list(noise)
        self.entry = entry or (lambda text, kind: [(text, kind)])  # jul: header + record


def _levels(spec):
    """'INFO:INFO:50 warn:WARN:10' -> [('INFO', 'INFO', 50.0), ('warn', 'WARN', 10.0)]."""
    out = []
    for item in spec.split():
        spelling, canon, weight = item.rsplit(":", 2)
        out.append((spelling, canon, float(weight)))
    return out


def _apache():
    def record(lvl, msg, v):
        if v % 2 and not lvl.startswith("trace"):  # Apache 2.2 (trace1-8 came with 2.4)
            return f"[{T}] [{lvl}] [client 10.0.{v}.7] {msg}"
        mod = ["core", "ssl", "authz_core", "proxy_fcgi", ""][v % 5]  # "" as mod_php/ModSecurity
        return (f"[{U}] [{mod}:{lvl}] [pid 357{v}:tid 43286364{v}6] [client 72.15.99.{v}:5123{v}]"
                f" AH0{v}126: {msg}")

    def per_second(g, s):
        return f"{DOW[g.tm_wday]} {MON[g.tm_mon - 1]} {g.tm_mday:02d} {_hms(g)}", f" {g.tm_year}"
    wsgi = [(f"[{U}] [wsgi:error] [pid 35720:tid 4328636500] mod_wsgi (pid=35720): Exception occurred"
             " processing WSGI script '/srv/app/app.wsgi'.", "ERROR")] + PY_TRACE
    return Format("apache_error", _levels(
        "emerg:FATAL:1 alert:FATAL:1 crit:FATAL:2 error:ERROR:20 warn:WARN:15 notice:NOTICE:15 "
        "info:INFO:25 debug:DEBUG:15 trace3:TRACE:3 trace6:TRACE:2"), record,
        lambda: _stamper(per_second, lambda c, ms: {"t": c[0] + c[1], "u": f"{c[0]}.{US6[ms]}{c[1]}"}),
        malformed=["AH00558: apache2: Could not reliably determine the server's fully qualified domain name",
                   "[Fri Sep 09 10:43:15.40"], traces=[wsgi])


def _nginx():
    def record(lvl, msg, v):
        return f"{T} [{lvl}] 29#29: *{v * 131 + 1} {msg}, client: 172.17.0.{v}, server: localhost"
    php = [(f'{T} [error] 29#29: *31 FastCGI sent in stderr: "PHP message: PHP Fatal error:  Uncaught'
            ' Exception: boom in /var/www/html/index.php:3', "ERROR"),
           ("Stack trace:", "malformed"), ("#0 {main}", "malformed"),
           ('  thrown in /var/www/html/index.php on line 3" while reading response header from upstream,'
            ' client: 172.17.0.1', "continuation")]
    return Format("nginx_error", _levels(
        "debug:DEBUG:10 info:INFO:30 notice:NOTICE:15 warn:WARN:20 error:ERROR:20 crit:FATAL:2 "
        "alert:FATAL:1 emerg:FATAL:1"), record, _one(lambda g, s: f"{_ymd(g, '/')} {_hms(g)}"),
        malformed=["nginx: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)",
                   "2024/03/01 06:36:0"], traces=[php])


JAVA_LOGGERS = ["com.example.shop.web.OrderController", "org.apache.kafka.clients.NetworkClient",
                "o.s.b.w.embedded.tomcat.TomcatWebServer", "com.zaxxer.hikari.pool.HikariPool"]
JAVA_THREADS = ["main", "http-nio-8080-exec-3", "pool-2-thread-1", "RMI TCP Connection(2)-127.0.0.1"]


def _log4j():
    def record(lvl, msg, v):
        logger, thread = JAVA_LOGGERS[v % 4], JAVA_THREADS[v % 4]
        if v % 4 == 0:  # log4j PatternLayout %d %-5p [%t] %c - %m
            return f"{T} {lvl:<5} [{thread}] {logger} - {msg}"
        if v % 4 == 1:  # Hadoop
            return f"{T} {lvl} [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: {msg}"
        if v % 4 == 2:  # Spring Boot 2: '.' before the millis, level right-aligned
            return f"{D} {lvl:>5} 45469 --- [{thread[-15:]:>15}] {logger[-40:]:<40} : {msg}"
        return f"{E} {lvl:<5} [{thread}] {logger} - {msg}"  # 'T' between date and time

    def per_second(g, s):
        return f"{_ymd(g)} {_hms(g)}", f"{_ymd(g)}T{_hms(g)}."
    spring = (f"{D} ERROR 45469 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet]    :"
              " Servlet.service() threw exception")
    return Format("log4j", _levels(
        "TRACE:TRACE:3 DEBUG:DEBUG:15 INFO:INFO:50 WARN:WARN:15 ERROR:ERROR:10 FATAL:FATAL:1 "
        "WARNING:WARN:2 warn:WARN:1 info:INFO:1"), record,
        lambda: _stamper(per_second, lambda c, ms: {"t": f"{c[0]},{MS3[ms]}", "d": f"{c[0]}.{MS3[ms]}",
                                                    "e": c[1] + MS3[ms]}),
        malformed=["Picked up JAVA_TOOL_OPTIONS: -Xmx512m", "2024-03-01 12:00:0"],
        traces=[[(f"{T} ERROR [main] {JAVA_LOGGERS[0]} - Order 1842 failed", "ERROR")] + _java_trace(),
                [(spring, "ERROR")] + _java_trace("java.lang.NullPointerException: null", 2, cause=False)])


def _logback():
    def record(lvl, msg, v):
        return f"{T} [{JAVA_THREADS[v % 4]}] {lvl:<5} {JAVA_LOGGERS[v % 4][-36:]} - {msg}"
    exc = "org.springframework.dao.DataIntegrityViolationException: could not execute statement"
    return Format("logback", _levels("TRACE:TRACE:3 DEBUG:DEBUG:20 INFO:INFO:50 WARN:WARN:15 ERROR:ERROR:10"),
                  record, _with_ms(lambda g, s: _hms(g) + "."),
                  malformed=["SLF4J: Class path contains multiple SLF4J bindings.", "17:27:0"],
                  traces=[[(f"{T} [scheduling-1] ERROR c.e.batch.jobs.ImportJob - Import aborted", "ERROR")]
                          + _java_trace(exc, 4, logback=True)])


def _hdfs():
    def record(lvl, msg, v):
        cls = ["dfs.DataNode$DataXceiver", "dfs.FSNamesystem", "dfs.DataNode$PacketResponder"][v % 3]
        return f"{T} {[143, 35, 2561, 19][v % 4]} {lvl} {cls}: {msg}"
    warn = (f"{T} 2561 WARN dfs.DataNode$DataXceiver: 10.251.30.6:50010:Got exception while serving"
            " blk_-2918118818249673980 to /10.251.90.64:")
    return Format("hdfs", _levels("INFO:INFO:80 WARN:WARN:12 ERROR:ERROR:5 DEBUG:DEBUG:3"), record,
                  _one(lambda g, s: f"{_ymd(g, '')[2:]} {_hms(g, '')}"),
                  malformed=["081111 093000 14", "EOF while reading NameNode edit log segment"],
                  traces=[[(warn, "WARN")] + _java_trace("java.net.SocketTimeoutException: 480000 millis"
                                                         " timeout", 3, cause=False)])


def _spark():
    def record(lvl, msg, v):
        cls = ["executor.Executor", "storage.BlockManager", "scheduler.TaskSetManager"][v % 3]
        return f"{T} {lvl} {cls}: {msg}"
    error = f"{T} ERROR executor.Executor: Exception in task 1.0 in stage 1.0 (TID 5)"
    return Format("spark", _levels("TRACE:TRACE:1 DEBUG:DEBUG:10 INFO:INFO:70 WARN:WARN:12 ERROR:ERROR:7"),
                  record, _one(lambda g, s: f"{_ymd(g, '/')[2:]} {_hms(g)}"),
                  malformed=["SLF4J: Found binding in [jar:file:/opt/spark/jars/slf4j-log4j12-1.7.16.jar]",
                             "17/06/09 20:1"],
                  traces=[[(error, "ERROR")]
                          + _java_trace("java.lang.OutOfMemoryError: Java heap space", 4, cause=False)])


def _zookeeper():
    def record(lvl, msg, v):
        where = ["main:QuorumPeerConfig@101",
                 "QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774",
                 "NIOServerCxn.Factory:0.0.0.0/0.0.0.0:2181:NIOServerCnxn@1007"][v % 3]
        return f"{T} - {lvl:<5} [{where}] - {msg}"  # the level padded to 5
    error = (f"{T} - ERROR [LearnerHandler-/10.10.34.13:58947:LearnerHandler@562] - Unexpected exception"
             " causing shutdown while sock still open")
    return Format("zookeeper", _levels("DEBUG:DEBUG:5 INFO:INFO:70 WARN:WARN:20 ERROR:ERROR:5"), record,
                  _with_ms(lambda g, s: f"{_ymd(g)} {_hms(g)},"),
                  malformed=["ZooKeeper JMX enabled by default", "2015-07-29 19:2"],
                  traces=[[(error, "ERROR")] + _java_trace("java.io.EOFException", 3, cause=False)])


def _openstack():
    def record(lvl, msg, v):
        head = "nova-api.log.1.2017-05-16_13:53:08 " if v % 2 else ""  # the optional log-file token
        return (f"{head}{T} {25746 + v} {lvl} nova.compute.manager"
                f" [req-38101a0b-2096-447d-96ea-a69216241{v:03d} - - - - -] {msg}")
    # oslo.log prefixes every traceback line: records, not continuations.
    tb = [(f"{T} 2931 ERROR nova.compute.manager [instance: b9000564-fe1a-409b-b8cc-1e88b294cd1d] {text}",
           "ERROR")
          for text in ("Instance failed to spawn", "Traceback (most recent call last):",
                       '  File "/usr/lib/python2.7/dist-packages/nova/compute/manager.py", line 2218',
                       "libvirtError: internal error: process exited while connecting to monitor")]
    # A multi-line message is printed raw: its other lines are malformed.
    cmd = [(f"{T} 2931 ERROR oslo_messaging.rpc.server [req-7d8e9f00-1111-4222-8333-444455556666 - - - - -]"
            " ProcessExecutionError: Unexpected error while running command.", "ERROR"),
           ("Command: sudo nova-rootwrap /etc/nova/rootwrap.conf qemu-img convert -O raw a.part a.raw",
            "malformed"),
           ("Exit code: 1", "malformed"),
           ("Stderr: u'qemu-img: error while writing sector 4194304'", "malformed")]
    return Format("openstack", _levels(
        "DEBUG:DEBUG:15 INFO:INFO:65 WARNING:WARN:12 ERROR:ERROR:7 CRITICAL:FATAL:1"), record,
        _with_ms(lambda g, s: f"{_ymd(g)} {_hms(g)}."), malformed=["2017-05-16 00:00:1"], traces=[tb, cmd])


PY_LEVELS = "DEBUG:DEBUG:15 INFO:INFO:45 WARNING:WARN:20 ERROR:ERROR:15 CRITICAL:FATAL:5"


def _python():
    def record(lvl, msg, v):
        return f"{lvl}:{['root', 'myapp.db', 'urllib3.connectionpool', '__main__'][v % 4]}:{msg}"
    return Format("python", _levels(PY_LEVELS), record, malformed=["INFO:myap", "nohup: ignoring input"],
                  traces=[[("ERROR:asyncio:Task exception was never retrieved", "ERROR")] + PY_TRACE])


def _python_asctime():
    def record(lvl, msg, v):
        return f"{T} - {['myapp', 'myapp.db', 'my-service.http', 'celery.worker'][v % 4]} - {lvl} - {msg}"
    error = f"{T} - celery.worker - ERROR - Task tasks.resize raised unexpected: OSError"
    return Format("python_asctime", _levels(PY_LEVELS), record,
                  _with_ms(lambda g, s: f"{_ymd(g)} {_hms(g)},"), malformed=["2024-03-01 12:00:0"],
                  noise=["reconnected after ERROR - see previous line",
                         "GET /health - 200 - WARNING - 1.2ms"],
                  traces=[[(error, "ERROR")] + PY_TRACE])


JUL_SOURCES = ["com.example.App main", "org.apache.catalina.startup.Catalina load",
               "com.example.db.Pool borrow"]


def _jul():
    def per_second(g, s):  # SimpleFormatter's default: %1$tb %1$td, %1$tY %1$tl:%1$tM:%1$tS %1$Tp
        return (f"{MON[g.tm_mon - 1]} {g.tm_mday:02d}, {g.tm_year} {g.tm_hour % 12 or 12}:"
                f"{g.tm_min:02d}:{g.tm_sec:02d} {'AM' if g.tm_hour < 12 else 'PM'}")

    def header(v):  # the jul header line: the format's own continuation rule
        return f"{T} {JUL_SOURCES[v % 3]}", "continuation"
    return Format("jul", _levels("SEVERE:ERROR:8 WARNING:WARN:15 INFO:INFO:50 CONFIG:DEBUG:5 "
                                 "FINE:DEBUG:12 FINER:TRACE:6 FINEST:TRACE:4"),
                  lambda lvl, msg, v: f"{lvl}: {msg}", _one(per_second),
                  malformed=["Picked up _JAVA_OPTIONS: -Xmx1g", "SEVE"],
                  traces=[[header(0), ("SEVERE: Request failed", "ERROR")]
                          + _java_trace("java.io.IOException: Broken pipe", 2)],
                  entry=lambda text, kind: [header(len(text)), (text, kind)])


LOGCAT_TAGS = ["ActivityManager", "chatty", "OkHttp", "SELinux", "DEBUG", "System.out"]
LOGCAT_CRASH = ["FATAL EXCEPTION: main", "Process: com.example.app, PID: 12004",
                "java.lang.NullPointerException: Attempt to invoke virtual method on a null object reference",
                "\tat com.example.app.MainActivity.onCreate(MainActivity.java:42)", "\t... 11 more"]


def _logcat(name):
    # liblog's logprint: threadtime "%s %5d %5d %c %-8s: ", brief "%c/%-8s(%5d): ", time "%s %c/%-8s(%5d): "
    def record(lvl, msg, v):
        tag, pid = LOGCAT_TAGS[v % 6], [432, 1702, 12004, 2227][v % 4]
        if name == "logcat_threadtime":
            return f"{T} {pid:5d} {pid + v:5d} {lvl} {tag:<8}: {msg}"
        return ("" if name == "logcat_brief" else f"{T} ") + f"{lvl}/{tag:<8}({pid:5d}): {msg}"
    crash = [("--------- beginning of crash", "continuation")]
    crash += [(record("E", text, 2).replace(f"{LOGCAT_TAGS[2]:<8}", "AndroidRuntime"), "ERROR")
              for text in LOGCAT_CRASH]  # a crash's stack trace lines are records in logcat
    separators = [[(f"--------- beginning of {buf}", "continuation")] for buf in ("main", "system")]
    return Format(name, _levels("V:TRACE:10 D:DEBUG:25 I:INFO:40 W:WARN:13 E:ERROR:10 F:FATAL:1 A:FATAL:1"),
                  record, None if name == "logcat_brief" else
                  _with_ms(lambda g, s: f"{g.tm_mon:02d}-{g.tm_mday:02d} {_hms(g)}."),
                  malformed=["adb: device offline", "- waiting for device -", "03-17 16:13:4"],
                  noise=["E/Other( 12): forwarded by a relay", "W/Tag: printed with System.out"],
                  traces=[crash] + separators)


def _windows_cbs():
    def record(lvl, msg, v):
        return f"{T}, {lvl:<22}{['CBS', 'CSI'][v % 2]:<7}{msg}"
    error = record("Error", "00000011 (F) Error STATUS_OBJECT_NAME_NOT_FOUND originated in function"
                   " Windows::Rtl::SystemImplementation::DirectFileSystemProvider::SysCreateFile", 1)
    return Format("windows_cbs", _levels("Info:INFO:85 Warning:WARN:10 Error:ERROR:5"), record,
                  _one(lambda g, s: f"{_ymd(g)} {_hms(g)}"), malformed=["2016-09-29 02:0"],
                  noise=["Warning: Unrecognized packageExtended attribute.",
                         "Failed to get next element [HRESULT = 0x800f0805 - CBS_E_INVALID_PACKAGE]"],
                  traces=[[(error, "ERROR"), ("[gle=0x80004005]", "malformed")]])


def _bgl():
    def record(lvl, msg, v):
        node = ["R02-M1-N0-C:J12-U11", "R30-M0-N9-C:J16-U01", "NULL"][v % 3]
        tag = ["-", "-", "KERNDTLB", "APPREAD"][v % 4]  # alert tags on INFO lines too: a trap
        comp = ["KERNEL", "APP", "MMCS", "DISCOVERY"][v % 4]
        return f"{tag} {E} {node} {T} {node} RAS {comp} {lvl} {msg}"

    def per_second(g, s):
        return f"{s} {_ymd(g, '.')}", f"{_ymd(g)}-{_hms(g, '.')}."
    return Format("bgl", _levels("INFO:INFO:70 WARNING:WARN:5 SEVERE:ERROR:4 ERROR:ERROR:6 FATAL:FATAL:12 "
                                 "FAILURE:ERROR:3"), record,
                  lambda: _stamper(per_second, lambda c, ms: {"e": c[0], "t": c[1] + US6[ms]}),
                  malformed=["- 1120000009 2005.06.28 R20-M1-N2-I:J18-U1"])


SYSLOG = ("FATAL", "FATAL", "FATAL", "ERROR", "WARN", "NOTICE", "INFO", "DEBUG")  # severity 0-7
SYSLOG_WEIGHTS = (1, 1, 2, 10, 15, 12, 50, 9)
SYSLOG_SD = ["-", '[meta sequenceId="1"]', '[exampleSDID@32473 iut="3" eventSource="Application"]']


def _syslog(name):
    levels = [(str(sev), SYSLOG[sev], float(w)) for sev, w in enumerate(SYSLOG_WEIGHTS)]
    if name == "syslog_rfc3164":
        levels.append(("", "NONE", 60.0))  # as syslogd writes files: no <PRI>

    def record(sev, msg, v):
        app = ["sshd", "kernel", "app", "haproxy"][v % 4]
        pri = f"<{[0, 3, 16, 23][v % 4] * 8 + int(sev)}>" if sev else ""  # facility * 8 + severity
        if name == "syslog_rfc3164":
            return f"{pri}{T} web01 {app}[{900 + v}]: {msg}"
        return f"{pri}1 {T} web01.example.com {app} {900 + v} ID47 {SYSLOG_SD[v % 3]} {msg}"
    stamp = _iso_ms if name == "syslog_rfc5424" else _one(
        lambda g, s: f"{MON[g.tm_mon - 1]} {g.tm_mday:>2} {_hms(g)}")
    return Format(name, levels, record, stamp,
                  malformed=["last message repeated 5 times", "<13>1 2024-03-01T12:0", "Mar 11 09:0"],
                  noise=["<11>1 forwarded header inside a message", "kernel reports TIME_ERROR: 0x41"])


JSON_LEVELS = {  # spelling -> '"key":value,' (pino/bunyan numbers, GCP severity, ECS log.level, ...)
    "info": '"level":"info",', "10": '"level":10,', "20": '"level":20,', "30": '"level":30,',
    "40": '"level":40,', "50": '"level":50,', "60": '"level":60,', "3": '"level":3,',
    "Information": '"level":"Information",', "sevWARNING": '"severity":"WARNING",',
    "sevDEFAULT": '"severity":"DEFAULT",', "ecsERROR": '"log.level":"ERROR",',
    "nestwarn": '"log":{"level":"warn","logger":"app.http"},', "lvldebug": '"lvl":"debug",', "none": ""}


def _jsonl():
    def record(spelling, msg, v):
        return (f'{{{JSON_LEVELS[spelling]}"time":"{T}","pid":{4242 + v},"hostname":"web01",'
                f'"msg":{json.dumps(msg, ensure_ascii=False)}}}')
    pretty = [("{", "malformed"), ('  "level": "error",', "continuation"),
              ('  "msg": "pretty-printed object"', "continuation"), ("}", "malformed")]
    node = [(record("50", "request errored", 0), "ERROR"), ("Error: boom", "malformed"),
            ("    at Object.<anonymous> (/app/index.js:3:9)", "continuation"),
            ("    at Module._compile (node:internal/modules/cjs/loader:1256:14)", "continuation")]
    return Format("jsonl", _levels(
        "info:INFO:25 30:INFO:20 50:ERROR:5 60:FATAL:1 10:TRACE:3 20:DEBUG:10 40:WARN:6 sevWARNING:WARN:5 "
        "sevDEFAULT:DEFAULT:2 ecsERROR:ERROR:3 nestwarn:WARN:3 lvldebug:DEBUG:4 Information:INFO:5 "
        "3:ERROR:2 none:NONE:6"), record, _iso_ms,
        malformed=['{"level":"error","msg":"truncated json', '[{"level":"error"}]', "not json at all"],
        noise=['payload {"level":"error"} echoed back', "level=fatal in a quoted string"],
        traces=[pretty, node])


def _logfmt():
    def record(spelling, msg, v):
        quoted = '"' + msg.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if spelling == "heroku":  # Heroku's router: at= is no level key
            return (f'at=info method=GET path=/ host=myapp.herokuapp.com fwd="204.204.{v}.204" dyno=web.1'
                    f" connect=1ms service=18ms status=200 bytes={v} protocol=https")
        key, value = spelling.split("=")
        if key == "lvl":
            return f"t={T} lvl={value} msg={quoted} logger=alerting"
        return f"time={T} {key}={value} msg={quoted} id={v}"
    panic = [(f'time={T} level=error msg="worker crashed"', "ERROR"),
             ("panic: runtime error: invalid memory address or nil pointer dereference", "malformed"),
             ("", "blank"), ("goroutine 1 [running]:", "malformed"), ("main.main()", "malformed"),
             ("\t/app/main.go:12 +0x1d", "continuation"), ("exit status 2", "malformed")]
    return Format("logfmt", _levels(
        "level=trace:TRACE:2 level=debug:DEBUG:15 level=info:INFO:40 level=warn:WARN:12 "
        "level=error:ERROR:8 level=fatal:FATAL:1 level=WARNING:WARN:2 lvl=info:INFO:5 lvl=crit:FATAL:1 "
        "heroku:NONE:6 loglevel=error:NONE:2"), record, _iso_ms,
        malformed=["exit status 1", "goroutine 7 [chan receive]:"],
        noise=["user set level=error", 'new="level=fatal" requested'], traces=[panic])


def _access():
    def record(status, msg, v):
        path = "/search?q=" + re.sub(r"[^A-Za-z0-9=]+", "+", msg)[:40]
        if v % 3 == 0:  # Common Log Format
            return f'10.0.{v}.4 - - [{T}] "GET {path} HTTP/1.1" {status} {v * 97 if v else "-"}'
        return (f'10.0.{v}.4 - {"alice" if v % 2 else "-"} [{T}] "GET {path} HTTP/1.1" {status} {v * 311}'
                ' "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Firefox/123.0"')
    return Format("access", _levels(
        "200:INFO:70 304:INFO:8 301:INFO:3 101:INFO:1 404:WARN:8 403:WARN:2 400:WARN:1 499:WARN:1 "
        "500:ERROR:3 502:ERROR:1 503:ERROR:1 504:ERROR:1"), record,
        _one(lambda g, s: f"{g.tm_mday:02d}/{MON[g.tm_mon - 1]}/{g.tm_year}:{_hms(g)} +0000"),
        malformed=["#Fields: date time c-ip cs-method cs-uri-stem sc-status",
                   "10.0.0.12 - - [01/Mar/2024:12:00:0"])


FORMATS = {f.name: f for f in (  # in the contract's order
    _apache(), _nginx(), _log4j(), _logback(), _hdfs(), _spark(), _zookeeper(), _openstack(),
    _python(), _python_asctime(), _jul(), _logcat("logcat_threadtime"), _logcat("logcat_brief"),
    _logcat("logcat_time"), _windows_cbs(), _bgl(), _syslog("syslog_rfc5424"),
    _syslog("syslog_rfc3164"), _jsonl(), _logfmt(), _access())}


class Table:
    """Every entry of one format (a record, a noise record, a trace block, a malformed or
    blank line) as pre-rendered lines, with the probability of drawing it."""

    def __init__(self, fmt, noise, malformed, blank, traces, rng):
        self.kinds = sorted({canon for _, canon, _ in fmt.levels}) + list(KINDS_TAIL)
        kind_id = {k: i for i, k in enumerate(self.kinds)}
        ids = [str(rng.integers(10 ** (d - 1), 10 ** d)) for d in rng.integers(1, 8, VARIANTS)]
        traces = traces if fmt.traces else 0.0  # no trace blocks: those entries stay records
        plain, total = max(0.0, 1.0 - noise - malformed - blank - traces), sum(w for *_, w in fmt.levels)
        entries = []  # (lines [(text, kind)], probability)
        for spelling, canon, weight in fmt.levels:
            for msgs, share, n_var in ((MESSAGES.get(canon, MESSAGES["INFO"]), plain, VARIANTS),
                                       (fmt.noise, noise, 2)):
                p = share * weight / total / (len(msgs) * n_var)
                entries += [(fmt.entry(fmt.record(spelling, m.replace("{id}", ids[v]), v), canon), p)
                            for m in msgs for v in range(n_var)]
        entries += [([(text, "malformed")], malformed / len(fmt.malformed)) for text in fmt.malformed]
        entries += [(block, traces / len(fmt.traces)) for block in fmt.traces]
        entries.append(([("", "blank")], blank))
        entries = [(lines, p) for lines, p in entries if p > 0]
        self.lines = [tuple(_compile(text, kind_id[kind]) for text, kind in lines) for lines, _ in entries]
        self.p = np.array([p for _, p in entries]) / sum(p for _, p in entries)
        # Stands in for a blank last line when the file has no final newline (it would vanish).
        self.blank = kind_id["blank"]
        self.fallback = next(ls[-1] for ls in self.lines if ls[-1][2] != self.blank)
        self.stamp = fmt.stamp

    def mean_line_bytes(self, crlf):
        """Expected bytes per line (its end included), for --total-bytes."""
        stamp = self.stamp() if self.stamp else None
        size = [sum(len(_render(ln, stamp, EPOCH_S, 0).encode("utf-8", "surrogateescape")) for ln in ls)
                for ls in self.lines]
        n = np.array([len(ls) for ls in self.lines])
        return float(self.p @ size) / float(self.p @ n) + (2 if crlf else 1)


def _compile(text, kind):
    """(template, stamped, kind id): a stamped template is rendered by template % slots."""
    if "\x01" not in text:
        return text, False, kind
    return re.sub(r"\x01(\w)\x02", r"%(\1)s", text.replace("%", "%%")), True, kind


def _render(line, stamp, sec, ms):
    return line[0] % stamp(sec, ms) if line[1] else line[0]


def _write_file(path, n_lines, table, seeds, crlf, final_newline):
    """Write one file block by block; return (lines per kind, bytes)."""
    rng, tick = (np.random.default_rng(s) for s in seeds.spawn(2))
    stamp = table.stamp() if table.stamp else None
    clock = EPOCH_S * 1000 + int(tick.random() * 1000)
    counts = np.zeros(len(table.kinds), np.int64)
    end, done, written = "\r\n" if crlf else "\n", 0, 0
    with open(path, "wb") as f:
        while done < n_lines:
            drawn = rng.choice(len(table.lines), BLOCK, p=table.p).tolist()
            lines = [ln for i in drawn for ln in table.lines[i]][:n_lines - done]
            last = done + len(lines) == n_lines
            if last and not final_newline and lines[-1][2] == table.blank:
                lines[-1] = table.fallback
            stamped = sum(ln[1] for ln in lines)
            ms = clock + np.cumsum(1 + (tick.random(stamped) * MAX_STEP_MS).astype(np.int64))
            clock = int(ms[-1]) if stamped else clock
            times = zip(*(a.tolist() for a in np.divmod(ms, 1000)))
            out = [t % stamp(*next(times)) if s else t for t, s, _ in lines]
            counts += np.bincount([ln[2] for ln in lines], minlength=len(counts))
            data = (end.join(out) + (end if final_newline or not last else "")).encode(
                "utf-8", "surrogateescape")
            f.write(data)
            written += len(data)
            done += len(lines)
    return counts, written


def _check(fmt, files, lines, prefix, seed, fractions, no_final_newline):
    """Reject bad arguments with a ValueError whose message fits one line."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (one of: seed, {', '.join(FORMATS)})")
    check_arguments(files, lines, prefix, seed, fractions, no_final_newline)


def check_arguments(files, lines, prefix, seed, fractions, no_final_newline):
    """The checks every generator makes (this one and generate_logs' seed format)."""
    if not isinstance(files, numbers.Integral) or files < 1:
        raise ValueError(f"--files must be a positive integer, got {files!r}")
    if not isinstance(lines, numbers.Integral) or lines < 0:
        raise ValueError(f"--lines must be an integer >= 0, got {lines!r}")
    if not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"--seed must be an integer >= 0, got {seed!r}")
    if not prefix or "/" in prefix or os.sep in prefix or "\0" in prefix:
        raise ValueError(f"--prefix must be a plain file name part, got {prefix!r}")
    for name, value in fractions.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"--{name} must be a fraction in [0, 1], got {value!r}")
    if sum(fractions.values()) > 1.0 + 1e-9:
        raise ValueError(f"--{' + --'.join(fractions)} must not exceed 1")
    if no_final_newline and fractions["blank"] >= 1.0:
        raise ValueError("--no-final-newline needs a non-blank last line; lower --blank")


def generate(fmt, out_dir="sample_logs", files=10, lines=5000, seed=42, *, prefix="node",
             total_bytes=None, noise=0.0, malformed=0.0, blank=0.0, traces=0.0, crlf=False,
             no_final_newline=False) -> dict:
    """Write PREFIX1.log..PREFIXn.log in format fmt; return the exact totals.

    noise, malformed, blank and traces are fractions of entries: an entry is one
    line, or for traces a record with the lines a logger prints under it.
    total_bytes (an int), when given, replaces lines.  Counts are canonical
    levels; lines = blank + continuation + malformed + sum(counts).
    """
    fractions = dict(noise=noise, malformed=malformed, blank=blank, traces=traces)
    _check(fmt, files, lines, prefix, seed, fractions, no_final_newline)
    seeds = [np.random.SeedSequence(seed, spawn_key=(k,)) for k in range(files + 1)]
    table = Table(FORMATS[fmt], noise, malformed, blank, traces, np.random.default_rng(seeds[0]))
    if total_bytes is not None:
        lines = max(1, round(total_bytes / files / table.mean_line_bytes(crlf)))
    os.makedirs(out_dir, exist_ok=True)
    counts, written = np.zeros(len(table.kinds), np.int64), 0
    for k in range(1, files + 1):
        c, b = _write_file(os.path.join(out_dir, f"{prefix}{k}.log"), int(lines), table, seeds[k],
                           crlf, not no_final_newline)
        counts, written = counts + c, written + b
    totals = dict(zip(table.kinds, counts.tolist()))
    tail = {k: totals.pop(k) for k in KINDS_TAIL}
    return {"format": fmt, "counts": totals, "lines": int(files * lines), "blank": tail["blank"],
            "continuation": tail["continuation"], "malformed": tail["malformed"], "files": files,
            "bytes": written}
