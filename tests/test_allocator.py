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
