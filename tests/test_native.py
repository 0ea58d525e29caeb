"""The compiled scanners (loganalyser/counting/native): built wherever a C compiler is, and
turned off by LOGANALYSER_NATIVE=0. What each scanner computes is checked against its numpy
twin in that twin's tests (test_field_steps.py and the format tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loganalyser.counting import native

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted(p.stem for p in (REPO / "loganalyser/counting/native").glob("*.c"))


def test_there_are_scanners():
    assert "lines" in SOURCES


@pytest.mark.parametrize("name", SOURCES)
def test_each_scanner_was_built_where_a_compiler_is(name):
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the numpy path counts alone")
    if not native.ENABLED:
        pytest.skip("LOGANALYSER_NATIVE=0 in this run")
    assert native.load(name) is not None, f"_{name} was not built: run `make install` (setup.py builds it)"
    assert name in native.in_use()


def test_zero_turns_them_off():
    code = "from loganalyser.counting import native; print(native.load('lines'), native.in_use())"
    env = dict(os.environ, LOGANALYSER_NATIVE="0")
    shown = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "None []"
