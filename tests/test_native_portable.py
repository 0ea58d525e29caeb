"""The compiled scanners' portable C equals what this machine builds.

Where the compiler has SSE2 (every x86-64), the scanners read 16 or 64 bytes at a
time with it, and their plain-C paths (a machine without SSE2: ARM, say) never run
here. So each scanner is built once more with SSE2 turned off, and every format is
counted with those builds, on the generator's lines with bytes changed: the counts
must equal the built scanners' and the per-line rule's.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from loganalyser.counting import native
from loganalyser.counting.formats import FormatSet, json_bits, logfmt_bits, native_steps, swar, vectorised
from utils import format_logs

SOURCES = sorted((Path(native.__file__).parent).glob("*.c"))
COMPILER = shutil.which("cc") or shutil.which("gcc")
# where each portable module goes in: the name each module of the package imports it by
USERS = {"lines": [(swar, "_LINES")], "steps": [(native_steps, "_STEPS"), (vectorised, "_STEPS")],
         "json": [(json_bits, "_SCANNER")], "logfmt": [(logfmt_bits, "COMPILED")]}

pytestmark = pytest.mark.skipif(COMPILER is None or native.in_use() != sorted(USERS),
                                reason="no C compiler, or the scanners are not built (or turned off)")


@pytest.fixture(scope="module")
def portable(tmp_path_factory) -> dict:
    """Each scanner built without SSE2, loaded from its own file."""
    folder = tmp_path_factory.mktemp("portable")
    modules = {}
    for source in SOURCES:
        target = folder / f"_{source.stem}{sysconfig.get_config_var('EXT_SUFFIX')}"
        subprocess.run([COMPILER, "-O2", "-std=c11", "-Wall", "-Werror", "-shared", "-fPIC", "-U__SSE2__",
                        f"-I{sysconfig.get_paths()['include']}", str(source), "-o", str(target)], check=True)
        spec = importlib.util.spec_from_file_location(f"portable._{source.stem}", target)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[source.stem] = module
    assert sorted(modules) == sorted(USERS)
    return modules


def damaged_corpus(name: str, seed: int, folder: Path) -> bytes:
    format_logs.generate(name, str(folder), files=1, lines=800, seed=seed, noise=0.1, malformed=0.05, traces=0.05,
                         crlf=seed == 1)
    data = bytearray((folder / "node1.log").read_bytes())
    rng = random.Random(seed)
    for _ in range(len(data) // 40):  # fields cut short, runs joined, CR, NUL, non-UTF-8, quotes and escapes
        data[rng.randrange(len(data))] = rng.choice(b" \t\r\n\x00\x01:[]()<>{}=,\"\\/0123456789aAZ-._\xff")
    return bytes(data)


@pytest.mark.parametrize("seed", range(2))
def test_portable_newline_offsets(portable, seed):
    rng = random.Random(seed)
    for size in (0, 1, 63, 64, 65, 1000, 70_000):
        data = bytes(rng.choice(b"\nab\n\r\x00") if rng.random() < 0.5 else 97 for _ in range(size))
        v = np.frombuffer(data, dtype=np.uint8)
        assert np.array_equal(np.frombuffer(portable["lines"].newline_offsets(v), dtype=np.int64),
                              np.flatnonzero(v == 10))


@pytest.mark.parametrize("name", sorted(format_logs.FORMATS))  # every format but the seed's (its own numpy kernel)
@pytest.mark.parametrize("seed", range(2))
def test_every_format_counts_the_same_with_the_portable_scanners(portable, name, seed, tmp_path, monkeypatch):
    data = damaged_corpus(name, seed, tmp_path)
    built = FormatSet.standard().dialect(name)
    for stem, users in USERS.items():
        for module, attribute in users:
            monkeypatch.setattr(module, attribute, portable[stem])
    plain_c = FormatSet.standard().dialect(name)  # its programs take the portable interpreter
    for cut in (len(data), len(data) - 1, len(data) // 2):
        piece = data[:cut]
        assert plain_c.count(piece) == built.count(piece) == built.count_reference(piece), (name, cut)
