"""bench/group_rotation.py, the evidence for docs/performance.md "Group-code rotation", runs: its
quick burst on AWS's round trips (`--aws fake`) passes the simulator test's checks it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_rotation_bench_runs_on_the_fake_with_round_trips_and_its_checks_pass():
    run = subprocess.run([sys.executable, "bench/group_rotation.py", "--aws", "fake", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "5 ms per DynamoDB request and 10 ms per SQS request" in out
    assert out.count("[ok]") == 7 and "FAILED" not in out, out
    crossings = re.search(r"threshold crossings (\d+), join-way updates (\d+) \[one per crossing\]", out)
    assert crossings and int(crossings[1]) == int(crossings[2]) >= 1, out
