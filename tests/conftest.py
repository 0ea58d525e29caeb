"""Fixtures shared by the test modules that start real jobs in the background."""

from __future__ import annotations

import pytest

from utils.jobcontrol import Jobs


@pytest.fixture
def jobs():
    """The jobs a test starts; at teardown none may still run and no process of theirs may be left."""
    started = Jobs()
    yield started
    started.cleanup()
