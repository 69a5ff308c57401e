"""The benchmark still runs: it drives the turn path directly, so a change there that it no
longer fits shows here, not on the day someone measures. Its numbers are not judged here."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_the_quick_benchmark_runs_and_reports(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench"), "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["per_turn_overhead_sqlite"]["median_ms"] > 0
    assert results["open_and_resume_sqlite"]["resume_100_turns"]["median_ms"] > 0
