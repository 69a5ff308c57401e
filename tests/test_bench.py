"""The benchmark still runs: it drives the turn path directly, so a change there that it no
longer fits shows here, not on the day someone measures. Its numbers are not judged here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_the_quick_benchmark_runs_and_reports(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench"), "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["per_turn_overhead_sqlite"]["median_ms"] > 0
    assert results["open_and_resume_sqlite"]["resume_100_turns"]["median_ms"] > 0
    assert results["command_cost"]["confined_host"]["median_ms"] > 0


def test_the_quick_peer_comparison_runs_and_reports_ratios(tmp_path):
    pytest.importorskip(
        "langgraph.checkpoint.sqlite", reason='the peer comparison needs pip install -e ".[bench]"'
    )
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench"), "--peers-only", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sqlite = json.loads(out.read_text())["peers"]["sqlite"]
    for size in ("10", "50"):
        for mode in ("warm_no_tool", "warm_tool", "cold_no_tool", "cold_tool"):
            assert sqlite["per_turn"][size][mode]["ratio_vs_langgraph_sqlite"] > 0
    first = sqlite["resume_in_process"]["50"]
    assert first["ratio_vs_langgraph_sqlite"] > 0 and first["ratio_vs_praisonai_json"] > 0
    assert sqlite["resume_fresh_process"]["50"]["ratio_vs_praisonai_json"] > 0
    assert sqlite["fork_plus_turn"]["100"]["ratio_vs_langgraph_sqlite"] > 0
    assert sqlite["history"]["100"]["ratio_vs_langgraph_sqlite"] > 0
    assert sqlite["bytes_on_disk"]["100"]["agentjournal_disk_per_encoded"] > 0
    assert "resume fresh process at 50 turns" in done.stdout  # the table


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_quick_model_call_benchmark_runs_and_reports(tmp_path):
    """It starts a server and imports litellm in three new processes: minutes on a busy machine."""
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench"), "--model-call-only", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=560, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())["model_call"]
    ways = ("adapter_fast_path", "adapter_fast_path_unpriced", "adapter_full_path", "openai_sdk", "raw_httpx")
    for way in ways:
        assert (
            results["model_call"][way]["wall"]["n"] == 30
            and results["model_call"][way]["cpu"]["median_ms"] > 0
        )
    assert set(results["model_call"]["cpu_overhead_vs_sdk"]) == set(ways[:3])
    assert 99 < sum(results["model_call"]["fast_path_profile_percent"].values()) < 101
    first = results["first_turn"]
    assert (
        first["first_turn"]["n"] == 1 and first["warm_turn"]["n"] == 5 and first["start_to_listening_s"] > 0
    )
    memory = results["memory"]
    assert memory["server_imports"] < memory["litellm_imported"] <= memory["after_one_call"]
    assert first["serve_idle_rss_mib"] > 0


def test_the_snapshot_benchmark_reports_both_snapshots():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_snapshots.py"), "5", "20", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["files"] == 100 and results["tool_calls"] == 4
    for side in ("command", "snapshot_with_journal", "snapshot_full_scan"):
        assert 0 < results[side]["median"] <= results[side]["p95"]
