"""Keeps glibc malloc from returning the kernel's per-chunk memory to the OS.

Each 4 MiB chunk makes numpy temporaries of a few MiB. With glibc's default
settings they are mmap'd and munmap'd (or the heap top is trimmed) on every
chunk, so every page is faulted in again: on a 2 GB folder that was half the
wall time, all of it system time. `tune_allocator` raises the mmap and trim
thresholds once per process so freed chunks stay in the heap for the next
chunk. Fixing M_MMAP_THRESHOLD turns off glibc's dynamic threshold; that is
intended. The peak memory is the same (the pages were touched anyway); what
changes is that a process keeps its high-water mark instead of giving it back.

`single_threaded_blas` is the other start-up setting: numpy's OpenBLAS starts a
thread per core at import, which nothing here uses (no linear algebra), and
with several ranks per host those threads only compete with the counting
(seen at 3.6% of a worker's samples under perf).
"""

from __future__ import annotations

import ctypes
import os

_MIB = 1 << 20
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3

# (mallopt parameter, glibc tunable name, values to try in order). Measured on
# 2 GB of seed-format logs and on 300 MB of 13-byte lines (temporaries up to
# 64 MiB): 256 MiB / 1 GiB settle sys time in both; 32 MiB / 256 MiB only in
# the first. The top pad made no measurable difference; 64 MiB only saves brk
# calls while the heap grows (address space, not resident memory). Glibc
# builds that cap the mmap threshold at 32 MiB refuse 256 MiB: then 32 MiB.
# The mmap threshold goes first: the others also freeze it, at 128 KiB.
_SETTINGS = (
    (M_MMAP_THRESHOLD, "mmap_threshold", (256 * _MIB, 32 * _MIB)),
    (M_TRIM_THRESHOLD, "trim_threshold", (1024 * _MIB,)),
    (M_TOP_PAD, "top_pad", (64 * _MIB,)),
)

_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_blas() -> None:
    """Asks numpy's BLAS for one thread, unless the user chose; call before numpy is imported."""
    for name in _BLAS_THREADS:
        os.environ.setdefault(name, "1")


_tuned: bool | None = None  # the first call's answer; later calls repeat it


def tune_allocator() -> bool:
    """Sets glibc's malloc thresholds for this process (once); never raises.

    Returns False where there is no glibc mallopt (macOS, musl) or glibc
    refused a setting. A setting the user made in the environment
    (MALLOC_MMAP_THRESHOLD_=..., GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...)
    is left as the user made it.
    """
    global _tuned
    if _tuned is None:
        try:
            _tuned = _apply()
        except Exception:  # ctypes and libc lookups fail in many ways; tuning is optional
            _tuned = False
    return _tuned


def _apply() -> bool:
    if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):  # ValueError elsewhere
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    for param, name, values in _SETTINGS:
        if f"MALLOC_{name.upper()}_" in os.environ or f"glibc.malloc.{name}" in tunables:
            continue
        if not any(mallopt(param, value) == 1 for value in values):
            return False
    return True
