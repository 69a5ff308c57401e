"""A session's MCP connections are kept: one MCP session per server for all of a session's
calls and turns, never shared with another session, opened again once when the server
has ended it, and closed when the session ends, falls out of the kept ones, or the server
stops. Against a real FastMCP server over
Streamable HTTP, through the Python API and the client itself."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from agentjournal.application.ports import McpError
from agentjournal.infrastructure.mcp.client import HttpMcpClient
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import wait_until
from tests.mcp_servers import mcp_server
from tests.serving import running_server
from tests.test_server_actions import prompt, send, until_idle

pytestmark = pytest.mark.timeout(120)

TOKEN = "kept-bearer-1c9e5a7d3f"
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def calc_agent(make_agent: Any, url: str) -> Any:
    return make_agent(
        tools=[
            {
                "type": "mcp_toolset",
                "mcp_server_name": "calc",
                "default_config": {"permission_policy": {"type": "always_allow"}},
            }
        ],
        mcp_servers=[{"type": "url", "name": "calc", "url": url}],
    )


def adding(model_server: Any, a: int, b: int) -> None:
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("mcp__calc__add", {"a": a, "b": b})]), Reply(text="done")
    )


def known(url: str, session: str, token: str | None = None) -> bool:
    """Whether the MCP server still knows ``session``: it answers a ping on it, or says 404."""
    headers = {"mcp-session-id": session, "accept": "application/json, text/event-stream"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = httpx.post(url, json=PING, headers=headers, timeout=10)
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


def test_one_mcp_session_serves_every_call_and_turn_of_a_session(make_agent, model_server):
    with mcp_server() as server:
        agent = calc_agent(make_agent, server.url)
        adding(model_server, 1, 2)
        adding(model_server, 3, 4)
        agent.run("first")
        agent.run("second")
        assert server.calls == [("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4})]
        assert len(server.sessions) == 2 and server.sessions[0] == server.sessions[1] != ""


def test_sessions_never_share_a_connection_and_an_ended_session_closes_its_own(make_agent, model_server):
    with mcp_server() as server:
        agent = calc_agent(make_agent, server.url)
        adding(model_server, 1, 1)
        agent.run("one")
        first = agent.session_id
        agent.reset_session()
        adding(model_server, 2, 2)
        agent.run("two")
        assert agent.session_id != first
        one, two = server.sessions
        assert one != two
        agent.terminate()
        wait_until(lambda: not known(server.url, two), "the ended session's MCP session to close")
        assert known(server.url, one)


def test_a_session_the_server_ended_is_opened_again_once(make_agent, model_server):
    with mcp_server() as server:
        agent = calc_agent(make_agent, server.url)
        adding(model_server, 1, 2)
        agent.run("first")
        (ended,) = server.sessions
        deleted = httpx.delete(server.url, headers={"mcp-session-id": ended}, timeout=10)
        assert deleted.status_code == 200 and not known(server.url, ended)
        adding(model_server, 3, 4)
        agent.run("second")
        assert server.calls[-1] == ("add", {"a": 3, "b": 4})
        assert server.sessions[-1] not in ("", ended)
    results = [m for m in agent.state_at().messages if getattr(m, "name", "") == "mcp__calc__add"]
    assert [r.output for r in results][-2:] == ["3", "7"]


def test_a_kept_connection_to_a_server_that_went_away_is_a_connection_error():
    client = HttpMcpClient(allow_private=True, timeout=10)
    try:
        session = client.for_session()
        with mcp_server() as server:
            assert session.call_tool(server.url, None, "add", {"a": 1, "b": 1}).text == "2"
        with pytest.raises(McpError) as refused:
            session.call_tool(server.url, None, "add", {"a": 1, "b": 1})
        assert refused.value.kind == "connection"
    finally:
        client.close()


def test_a_refused_credential_on_a_new_connection_is_an_authentication_error():
    client = HttpMcpClient(allow_private=True, timeout=10)
    try:
        with mcp_server(token=TOKEN) as server:
            session = client.for_session()
            assert [t.name for t in session.list_tools(server.url, TOKEN)] == ["add", "shout"]
            with pytest.raises(McpError) as refused:
                session.list_tools(server.url, "not-the-token")
            assert refused.value.kind == "authentication"
            assert server.tokens_seen[-1] == "not-the-token"
    finally:
        client.close()


def test_the_least_recently_used_sessions_connections_are_closed():
    from agentjournal.application.config import ManagedConfig
    from agentjournal.application.runtimes import Runtimes
    from agentjournal.domain import McpServer, SessionConfig

    client = HttpMcpClient(allow_private=True, timeout=10)
    runtimes = Runtimes(ManagedConfig(model="m"), mcp=client)
    runtimes.kept_adapters = 1
    try:
        with mcp_server() as server:
            recorded = SessionConfig(
                model="m",
                system="",
                name="n",
                tools=(),
                networking={"type": "unrestricted"},
                mcp_servers=(McpServer("calc", server.url),),
            )
            first, second = uuid.uuid4(), uuid.uuid4()
            for session_id in (first, second):
                mcp = runtimes(recorded, session_id).mcp
                assert (
                    mcp is not None and mcp.call_tool(server.url, None, "add", {"a": 1, "b": 1}).text == "2"
                )
            evicted, kept = server.sessions
            wait_until(lambda: not known(server.url, evicted), "the evicted session's MCP session to close")
            assert known(server.url, kept)
            runtimes.close()
            wait_until(lambda: not known(server.url, kept), "the closed runtimes' MCP session to close")
    finally:
        client.close()


def test_a_stopping_server_closes_its_sessions_connections(model_server, store):
    with mcp_server() as server:
        with running_server(model_server.base_url, store, extra=("--allow-private-mcp",)) as running:
            client = running.client()
            agent = client.beta.agents.create(
                name="calculator",
                model="claude-haiku-4-5",
                tools=[{"type": "mcp_toolset", "mcp_server_name": "calc",
                        "default_config": {"permission_policy": {"type": "always_allow"}}}],
                mcp_servers=[{"type": "url", "name": "calc", "url": server.url}],
            )  # fmt: skip
            environment = client.beta.environments.create(name="e")
            session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
            adding(model_server, 2, 3)
            send(client, session.id, prompt("2 + 3?"))
            until_idle(client, session.id)
            (mcp_session,) = server.sessions
            assert known(server.url, mcp_session)  # kept after the turn
        wait_until(lambda: not known(server.url, mcp_session), "the stopped server's MCP session to close")
