"""What each model call costs and how long it takes, recorded in the log and shown by
the command line, the Python views and the API; per-tool statistics."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agentjournal.application import ManagedAgent, SessionService, audit, views
from agentjournal.application.tracing import Cost, percentile, session_trace
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.serving import API_KEY
from tests.test_cli import agentjournal
from tests.test_server_sessions import new_session, turn

pytestmark = pytest.mark.timeout(180)

FIXTURE = Path(__file__).parent / "fixtures" / "sessionlog-0.1"


def litellm_price(model: str, input_tokens: int, output_tokens: int) -> float:
    """The price litellm's bundled table gives, read from the table itself."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    prices: dict[str, Any] = litellm.model_cost[model]
    return float(
        input_tokens * prices["input_cost_per_token"] + output_tokens * prices["output_cost_per_token"]
    )


def bash(command: str) -> ScriptedToolCall:
    return ScriptedToolCall(name="execute_command", arguments={"command": command})


def test_a_priced_model_call_records_its_timing_and_cost(make_agent, model_server):
    agent = make_agent(tools=["execute_command"])
    model_server.enqueue(Reply(tool_calls=[bash("true")], delay=0.05), Reply(text="done", delay=0.05))
    agent.run("go")
    usages = [e.payload for e in agent.audit_log(("UsageRecorded",))]
    assert len(usages) == 2
    for payload in usages:
        call, usage = payload["call"], payload["usage"]
        assert call["cost_usd"] == pytest.approx(
            litellm_price("gpt-4o-mini", usage["input_tokens"], usage["output_tokens"])
        )
        assert 0 < call["first_token_ms"] <= call["duration_ms"]
    # Each reply streams its chunks 0.05 s apart.
    assert usages[1]["call"]["duration_ms"] >= 50
    assert agent.verify().ok

    summary = agent.service.summary(agent.state_at().id)
    assert summary.cost.known and summary.cost.usd == pytest.approx(
        sum(u["call"]["cost_usd"] for u in usages)
    )
    assert summary.model_ms == pytest.approx(sum(u["call"]["duration_ms"] for u in usages))


def test_an_unknown_price_is_recorded_and_shown_as_unknown_never_zero(make_agent, model_server):
    agent = make_agent(model="openai/scripted-local-model")
    agent.run("hello")
    (usage,) = agent.audit_log(("UsageRecorded",))
    assert usage.payload["call"]["cost_usd"] is None
    summary = agent.service.summary(agent.state_at().id)
    assert summary.cost == Cost(usd=0.0, unpriced=1)
    assert views.session_listing(summary)["cost"] == {"usd": None, "unpriced_calls": 1}
    assert views.format_cost(summary.cost) == "unknown"
    assert views.format_cost(Cost(usd=0.5, unpriced=2)) == "$0.500000 + 2 calls unpriced"


def test_the_trace_nests_calls_in_turns_with_per_tool_statistics(make_agent, model_server):
    agent = make_agent(tools=["execute_command"])
    model_server.enqueue(
        Reply(tool_calls=[bash("true"), bash("exit 3"), bash("true")]),
        Reply(text="first done"),
        Reply(tool_calls=[bash("true")]),
        Reply(text="second done"),
    )
    agent.run("one")
    agent.run("two")
    trace = session_trace(agent.service.events.get(agent.state_at().id))
    assert [(t.turn, t.outcome, len(t.model_calls), len(t.tool_calls)) for t in trace.turns] == [
        (1, "end_turn", 2, 3),
        (2, "end_turn", 2, 1),
    ]
    for turn_span in trace.turns:
        assert turn_span.ended_at is not None
        for call in (*turn_span.model_calls, *turn_span.tool_calls):
            assert turn_span.started_at <= call.started_at <= call.ended_at <= turn_span.ended_at
    (stats,) = trace.tool_stats()
    durations = sorted(c.duration_ms for c in trace.tool_calls)
    assert (stats.name, stats.calls, stats.failures) == ("execute_command", 4, 1)
    assert stats.median_ms == pytest.approx((durations[1] + durations[2]) / 2)
    assert stats.p95_ms == durations[-1]
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 95) == 10.0
    assert percentile([5.0], 95) == 5.0
    shown = views.session_trace(trace)
    assert shown["turns"][0]["model_calls"][0]["cost_usd"] > 0
    assert shown["tool_stats"][0]["failures"] == 1


def test_the_command_line_shows_cost_and_durations(config, model_server, store):
    agent = ManagedAgent(config=msgspec.structs.replace(config, tools=["execute_command"]), store=str(store))
    model_server.enqueue(Reply(tool_calls=[bash("true")]), Reply(text="done"))
    agent.run("go")
    agent.service.close()
    listed = agentjournal("list", store=store).stdout
    assert "cost" in listed.splitlines()[0] and "$0.0000" in listed
    shown = agentjournal("show", agent.session_id, store=store).stdout
    assert "cost: $" in shown and "2 model calls" in shown
    assert "tool execute_command: 1 calls, 0 failed, median" in shown
    detail = json.loads(agentjournal("show", agent.session_id, "--json", store=store).stdout)
    assert detail["cost"]["usd"] > 0 and detail["trace"]["turns"][0]["outcome"] == "end_turn"
    timeline = agentjournal("timeline", agent.session_id, store=store).stdout
    model_lines = [line for line in timeline.splitlines() if "  model  " in line]
    assert len(model_lines) == 2 and all("first token" in line and "cost $" in line for line in model_lines)
    assert "turn ended (end_turn); tokens" in timeline and ", cost $" in timeline


def test_an_old_log_loads_and_verifies_unchanged_with_calls_of_unknown_time_and_price(tmp_path):
    copy = tmp_path / "sessions.db"
    shutil.copyfile(FIXTURE / "sessions.db", copy)
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(copy)})
    try:
        for summary in service.list_summaries():
            assert audit.verify(service, summary.id).ok
            trace = session_trace(service.events.get(summary.id))
            calls = trace.model_calls
            assert all(c.duration_ms is None and c.cost_usd is None for c in calls)
            assert trace.cost.unpriced == len(calls) == summary.cost.unpriced
    finally:
        service.close()


def test_the_api_session_carries_its_cost_as_an_extension(api_server, store):
    client = api_server.client()
    session_id = new_session(store)
    turn(client, session_id, "Hello")
    import httpx

    body = httpx.get(
        f"{api_server.url}/v1/sessions/{session_id}",
        headers={"x-api-key": API_KEY, "anthropic-beta": "managed-agents-2026-04-01"},
    ).json()
    extension = body["x_agentjournal"]
    assert extension["cost"]["usd"] > 0 and extension["cost"]["unpriced_calls"] == 0
    assert extension["model_ms"] > 0


def test_usage_recorded_without_timing_verifies_and_counts_as_unpriced(service):
    from agentjournal.domain import AssistantMessage, SessionConfig, Usage

    session_id = service.create_session(SessionConfig(model="m", system="s", name="n", tools=()))
    session = service.get_session(session_id)
    session.begin_turn("hello", "test")
    session.add_assistant_message(AssistantMessage("hi"))
    session.record_usage("m", Usage(3, 4))
    session.complete_turn()
    service.save(session)
    assert audit.verify(service, session_id).ok
    (call,) = session_trace(service.events.get(session_id)).model_calls
    assert call.duration_ms is None and call.cost_usd is None
    assert service.summary(session_id).cost == Cost(unpriced=1)
