"""MCP servers through the official SDK against a real ``agentjournal serve``: an agent's
``mcp_servers`` and ``mcp_toolset``, the documented events, the confirmation pause, and
the documented ``session.error`` when a server cannot be used."""

from __future__ import annotations

from typing import Any

import pytest

from agentjournal.domain import McpServer, McpToolPolicy
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import wait_until
from tests.mcp_servers import mcp_server
from tests.serving import running_server
from tests.test_server_actions import prompt, send, until_idle
from tests.test_server_sessions import new_session

pytestmark = pytest.mark.timeout(180)


def mcp_session(client: Any, url: str, policy: str | None = None) -> str:
    toolset: dict[str, Any] = {"type": "mcp_toolset", "mcp_server_name": "calc"}
    if policy:
        toolset["default_config"] = {"permission_policy": {"type": policy}}
    agent = client.beta.agents.create(
        name="calculator",
        model="claude-haiku-4-5",
        tools=[toolset],
        mcp_servers=[{"type": "url", "name": "calc", "url": url}],
    )
    environment = client.beta.environments.create(name="e")
    return str(client.beta.sessions.create(agent=agent.id, environment_id=environment.id).id)


@pytest.fixture
def private_ok(model_server, store):  # type: ignore[no-untyped-def]
    with running_server(model_server.base_url, store, extra=("--allow-private-mcp",)) as server:
        yield server


def test_an_mcp_call_waits_for_confirmation_then_runs(private_ok, model_server):
    client = private_ok.client()
    with mcp_server() as server:
        session_id = mcp_session(client, server.url)
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("mcp__calc__add", {"a": 20, "b": 22})]),
            Reply(text="It is 42."),
        )
        send(client, session_id, prompt("20 + 22?"))
        paused = until_idle(client, session_id)
        use = next(e for e in paused if e.type == "agent.mcp_tool_use")
        assert (use.name, use.mcp_server_name, use.input) == ("add", "calc", {"a": 20, "b": 22})
        assert use.evaluated_permission == "ask"
        assert paused[-1].stop_reason.type == "requires_action"
        assert paused[-1].stop_reason.event_ids == [use.id]
        assert server.calls == []

        with client.beta.sessions.events.stream(session_id) as stream:
            send(
                client,
                session_id,
                {"type": "user.tool_confirmation", "tool_use_id": use.id, "result": "allow"},
            )
            rest = []
            for event in stream:
                rest.append(event)
                if event.type == "session.status_idle":
                    break
    assert server.calls == [("add", {"a": 20, "b": 22})]
    result = next(e for e in rest if e.type == "agent.mcp_tool_result")
    assert result.mcp_tool_use_id == use.id and not result.is_error
    assert result.content[0].text == "42"
    assert rest[-1].stop_reason.type == "end_turn"
    listed = [e.type for e in client.beta.sessions.events.list(session_id)]
    assert listed.count("agent.mcp_tool_use") == 1 and listed.count("agent.mcp_tool_result") == 1


def test_a_denied_mcp_call_never_reaches_the_server(private_ok, model_server):
    client = private_ok.client()
    with mcp_server() as server:
        session_id = mcp_session(client, server.url)
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("mcp__calc__shout", {"text": "rm -rf"})]),
            Reply(text="Understood."),
        )
        send(client, session_id, prompt("shout"))
        use = next(e for e in until_idle(client, session_id) if e.type == "agent.mcp_tool_use")
        send(client, session_id, {"type": "user.tool_confirmation", "tool_use_id": use.id, "result": "deny",
                                  "deny_message": "not that"})  # fmt: skip
        wait_until(lambda: len(turn_ends(client, session_id)) == 2, "the turn to end")
    assert server.calls == []
    result = next(
        e for e in client.beta.sessions.events.list(session_id) if e.type == "agent.mcp_tool_result"
    )
    assert result.is_error and result.mcp_tool_use_id == use.id
    assert turn_ends(client, session_id) == ["requires_action", "end_turn"]


def turn_ends(client: Any, session_id: str) -> list[str]:
    events = client.beta.sessions.events.list(session_id)
    return [e.stop_reason.type for e in events if e.type == "session.status_idle"]


def test_always_allow_runs_at_once(private_ok, model_server):
    client = private_ok.client()
    with mcp_server() as server:
        session_id = mcp_session(client, server.url, policy="always_allow")
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("mcp__calc__shout", {"text": "hi"})]), Reply(text="HI it is.")
        )
        send(client, session_id, prompt("shout hi"))
        seen = until_idle(client, session_id)
    use = next(e for e in seen if e.type == "agent.mcp_tool_use")
    assert use.evaluated_permission == "allow" and seen[-1].stop_reason.type == "end_turn"
    assert next(e for e in seen if e.type == "agent.mcp_tool_result").content[0].text == "HI"


def test_a_private_address_is_refused_unless_the_operator_allows_it(api_server, model_server):
    client = api_server.client()
    with mcp_server() as server:
        session_id = mcp_session(client, server.url, policy="always_allow")
        model_server.enqueue(Reply(text="No calculator, then."))
        send(client, session_id, prompt("20 + 22?"))
        seen = until_idle(client, session_id)
    error = next(e for e in seen if e.type == "session.error").error
    assert (error.type, error.mcp_server_name) == ("mcp_connection_failed_error", "calc")
    assert "non-public address" in error.message and error.retry_status.type == "terminal"
    assert seen[-1].stop_reason.type == "end_turn" and server.calls == []
    assert client.beta.sessions.retrieve(session_id).status == "idle"


def test_a_session_made_in_python_shows_its_mcp_servers(api_server, store):
    server = McpServer(
        name="calc", url="https://mcp.example/calc", tools=(McpToolPolicy("add", permission="always_allow"),)
    )
    session = api_server.client().beta.sessions.retrieve(new_session(store, mcp_servers=(server,)))
    (shown,) = session.agent.mcp_servers
    assert (shown.name, shown.url) == ("calc", "https://mcp.example/calc")
    (toolset,) = session.agent.tools
    assert toolset.type == "mcp_toolset" and toolset.default_config.permission_policy.type == "always_ask"
    assert [(c.name, c.permission_policy.type) for c in toolset.configs] == [("add", "always_allow")]
