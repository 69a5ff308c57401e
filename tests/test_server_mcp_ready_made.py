"""A ready-made MCP server from the package index (the reference ``mcp-server-time``
behind ``mcp-proxy``, neither written here) through the official SDK against a real
``agentjournal serve``: its tools offered, a call run and its result in the documented
events, over Streamable HTTP and over the legacy SSE fallback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.mcp_servers import time_server
from tests.serving import running_server
from tests.test_server_actions import prompt, send, until_idle

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@pytest.fixture
def private_ok(model_server, store):  # type: ignore[no-untyped-def]
    with running_server(model_server.base_url, store, extra=("--allow-private-mcp",)) as server:
        yield server


@pytest.fixture(scope="module")
def time_mcp():  # type: ignore[no-untyped-def]
    with time_server() as base:
        yield base


def time_session(client: Any, url: str) -> str:
    agent = client.beta.agents.create(
        name="clock",
        model="claude-haiku-4-5",
        tools=[
            {
                "type": "mcp_toolset",
                "mcp_server_name": "time",
                "default_config": {"permission_policy": {"type": "always_allow"}},
            }
        ],
        mcp_servers=[{"type": "url", "name": "time", "url": url}],
    )
    environment = client.beta.environments.create(name="e")
    return str(client.beta.sessions.create(agent=agent.id, environment_id=environment.id).id)


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
def test_a_ready_made_server_is_offered_and_called(private_ok, model_server, time_mcp, path):
    client = private_ok.client()
    session_id = time_session(client, time_mcp + path)
    noon = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("mcp__time__convert_time", noon)]),
        Reply(text="It is 21:00 in Tokyo."),
    )
    send(client, session_id, prompt("Noon UTC in Tokyo?"))
    seen = until_idle(client, session_id)
    offered = [t["function"]["name"] for t in model_server.requests[0]["tools"]]
    assert offered == ["mcp__time__get_current_time", "mcp__time__convert_time"]
    use = next(e for e in seen if e.type == "agent.mcp_tool_use")
    assert (use.name, use.mcp_server_name, use.input) == ("convert_time", "time", noon)
    result = next(e for e in seen if e.type == "agent.mcp_tool_result")
    assert result.mcp_tool_use_id == use.id and not result.is_error
    converted = json.loads(result.content[0].text)
    assert converted["target"]["timezone"] == "Asia/Tokyo"
    assert converted["target"]["datetime"].endswith("T21:00:00+09:00")
    assert seen[-1].stop_reason.type == "end_turn"
    told = json.loads(model_server.requests[1]["messages"][-1]["content"])
    assert told["target"]["datetime"] == converted["target"]["datetime"]
