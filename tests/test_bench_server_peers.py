"""The API server's comparison with LangGraph's agent server still runs (quick mode): both
servers start, take turns from the same scripted model and read a history, and the long
listings run. Its numbers are not judged here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(290)]


def test_the_quick_server_comparison_runs_and_reports(tmp_path):
    for module in ("langgraph_api", "langgraph_runtime_inmem", "langgraph_cli"):
        pytest.importorskip(module, reason='the server comparison needs pip install -e ".[bench]"')
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench"), "--server-peers", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())["server_peers"]
    peer = results["langgraph_server"]
    assert peer["turn_no_tool"]["ratio_vs_langgraph"] > 0
    assert peer["turns_per_s"]["agentjournal"] > 0 and peer["turns_per_s"]["langgraph"] > 0
    assert peer["history_read"]["messages"] > 0 and peer["history_read"]["ratio_vs_langgraph"] > 0
    assert "growth_per_1000_sessions_mib" in peer["memory"]["langgraph"]
    listed = results["long_history"]
    assert listed["5000"]["api_events"] > listed["1000"]["api_events"] > 0
    assert "| turn without a tool call |" in done.stdout  # the table
