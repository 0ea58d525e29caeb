"""tune_allocator keeps the kernel's per-chunk temporaries from being faulted in again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHUNKS = 40
PAGES_PER_CHUNK = (4 << 20) // 4096
# A quarter of a fault per page of data. Measured on glibc 2.36 (3 runs, same
# figures each time): tuned 42-43 faults in all, untuned about 108,000 (2.6 per page).
BOUND = CHUNKS * PAGES_PER_CHUNK // 4

# Counts CHUNKS chunks of 4 MiB after one warm-up chunk; prints the minor page
# faults of the loop. argv[1] == "tuned" calls tune_allocator() first.
PROBE = f"""
import resource, sys
from loganalyser.programs.allocator import tune_allocator
from loganalyser.counting.kernel import count_lines

if sys.argv[1] == "tuned":
    if not tune_allocator():
        print("no-glibc")
        sys.exit()
    assert tune_allocator()  # a second call repeats the first one's answer
line = b"[2026-01-01T00:00:00.000] [INFO] node 7 finished task 12345 in 17 ms\\n"
data = line * ((4 << 20) // len(line))
count_lines(data)  # warm-up: the heap grows to its high-water mark
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({CHUNKS}):
    count_lines(data)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def minor_faults(mode: str) -> str:
    # The user's own allocator settings would make either run something else.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_tuned_allocator_does_not_fault_in_every_chunk_again():
    tuned = minor_faults("tuned")
    if tuned == "no-glibc":
        pytest.skip("no glibc mallopt here")
    assert int(tuned) < BOUND
    # The same loop without the tuning exceeds the bound: the test can fail.
    assert int(minor_faults("untuned")) > BOUND


# Threads of a process that imports numpy after the entry scripts' first call (or without it).
THREADS = """
import os, sys
if sys.argv[1] == "single":
    from loganalyser.programs.allocator import single_threaded_blas
    single_threaded_blas()
import numpy
print(len(os.listdir("/proc/self/task")))
"""


def threads_after_numpy(mode: str, **env_extra: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")} | env_extra
    done = subprocess.run([sys.executable, "-c", THREADS, mode], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2, reason="needs /proc and 2 cores")
def test_numpy_starts_no_blas_threads_in_our_programs():
    assert threads_after_numpy("single") == 1
    # Without the call numpy's OpenBLAS starts a thread per core: the test can fail.
    assert threads_after_numpy("plain") > 1
    # A user's own choice is kept.
    assert threads_after_numpy("single", OPENBLAS_NUM_THREADS="2") > 1


def test_entry_scripts_ask_for_one_blas_thread_before_numpy():
    for script in ("base_log_analyser.py", "parallel_log_analyser.py", "distributed_log_analyser.py"):
        text = (REPO / script).read_text()
        assert text.index("single_threaded_blas()") < text.index("from loganalyser.programs.cli import"), script
