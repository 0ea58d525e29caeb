"""The short chaos campaign: a few randomised runs with real faults, every check applied."""

import json
import subprocess
import sys

from .helpers import REPO


def test_short_chaos_campaign_is_exact_and_clean(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "utils.chaos", "--runs", "5", "--quick", "--interruptions", "3",
         "--seed", "11", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "chaos.json").read_text())
    assert len(report["runs"]) == 5
    for run in report["runs"]:
        assert run["exact"] and run["results"] == 1 and not run["hang"], run
        assert not run["traceback"] and run["orphans"] == 0 and run["checkpoint_ok"], run
    assert report["interrupted_job"]["exact"]
    assert sum(report["interrupted_job"]["interruptions"].values()) >= 1
    assert "CHAOS CAMPAIGN" in (tmp_path / "out" / "chaos.txt").read_text()
