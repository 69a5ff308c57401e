"""MCP tools through the Python API, against a real MCP server (the ``mcp`` package's
FastMCP over Streamable HTTP on 127.0.0.1): offered beside the session's other tools,
run under their toolset's permission policy, recorded like any tool call, and a server
that cannot be used is an error the turn goes on without."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentjournal.application import ConfigError
from agentjournal.application.vaults import open_vaults
from agentjournal.domain import ToolResult
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.mcp_servers import mcp_server, unused_url

pytestmark = pytest.mark.timeout(120)

TOKEN = "mcp-bearer-7f3a9c1e5b2d8046"


def toolset(policy: str | None = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "mcp_toolset", "mcp_server_name": "calc", **extra}
    if policy:
        entry["default_config"] = {"permission_policy": {"type": policy}}
    return entry


def mcp_agent(make_agent: Any, url: str, policy: str | None = "always_allow", **changes: Any) -> Any:
    return make_agent(
        tools=["read_file", toolset(policy)],
        mcp_servers=[{"type": "url", "name": "calc", "url": url}],
        **changes,
    )


def results(agent: Any) -> list[ToolResult]:
    return [m for m in agent.state_at().messages if isinstance(m, ToolResult)]


def test_mcp_tools_are_offered_beside_the_others_and_always_allow_runs_them(make_agent, model_server):
    with mcp_server() as server:
        agent = mcp_agent(make_agent, server.url)
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("mcp__calc__add", {"a": 2, "b": 40})]),
            Reply(text="it is 42"),
        )
        assert agent.run("add") == "it is 42"
    offered = [t["function"]["name"] for t in model_server.requests[0]["tools"]]
    assert offered == ["read_file", "mcp__calc__add", "mcp__calc__shout"]
    assert server.calls == [("add", {"a": 2, "b": 40})]
    (result,) = results(agent)
    assert (result.name, result.output, result.is_error) == ("mcp__calc__add", "42", False)
    types = [e.type for e in agent.audit_log()]
    assert "ToolCallStarted" in types and "ToolResultRecorded" in types
    assert agent.verify().ok
    recorded = agent.state_at().config.mcp_servers[0]
    assert (recorded.name, recorded.url, recorded.permission) == ("calc", server.url, "always_allow")


def test_mcp_toolsets_ask_by_default_and_a_denied_call_never_reaches_the_server(make_agent, model_server):
    asked: list[dict[str, Any]] = []

    def confirm(info: dict[str, Any]) -> bool:
        asked.append(info)
        return info["input"]["text"] == "yes"

    with mcp_server() as server:
        agent = mcp_agent(make_agent, server.url, policy=None, on_tool_confirmation=confirm)
        model_server.enqueue(
            Reply(tool_calls=[
                ScriptedToolCall("mcp__calc__shout", {"text": "no"}),
                ScriptedToolCall("mcp__calc__shout", {"text": "yes"}),
            ]),
            Reply(text="done"),
        )  # fmt: skip
        assert agent.run("shout") == "done"
    assert [a["name"] for a in asked] == ["mcp__calc__shout", "mcp__calc__shout"]
    assert server.calls == [("shout", {"text": "yes"})]
    denied, allowed = results(agent)
    assert denied.is_error and "denied" in denied.output
    assert allowed.output == "YES"


def test_a_tool_config_can_disable_or_allow_one_tool(make_agent, model_server):
    configs = [
        {"name": "shout", "enabled": False},
        {"name": "add", "permission_policy": {"type": "always_allow"}},
    ]
    with mcp_server() as server:
        agent = make_agent(
            tools=[toolset(configs=configs)],
            mcp_servers=[{"type": "url", "name": "calc", "url": server.url}],
            on_tool_confirmation=lambda info: pytest.fail(f"asked about {info}"),
        )
        model_server.enqueue(
            Reply(tool_calls=[
                ScriptedToolCall("mcp__calc__shout", {"text": "x"}),
                ScriptedToolCall("mcp__calc__add", {"a": 1, "b": 1}),
            ]),
            Reply(text="ok"),
        )  # fmt: skip
        assert agent.run("go") == "ok"
    assert [t["function"]["name"] for t in model_server.requests[0]["tools"]] == ["mcp__calc__add"]
    refused, added = results(agent)
    assert refused.is_error and "is not enabled" in refused.output
    assert added.output == "2" and server.calls == [("add", {"a": 1, "b": 1})]


def test_the_bearer_reaches_the_mcp_server_and_nowhere_else(make_agent, model_server, store: Path):
    with mcp_server(token=TOKEN) as server:
        agent = mcp_agent(make_agent, server.url, mcp_credentials={server.url: TOKEN})
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("mcp__calc__shout", {"text": TOKEN})]),
            Reply(text="done"),
        )
        assert agent.run("go") == "done"
    assert server.tokens_seen and set(server.tokens_seen) == {TOKEN}
    assert TOKEN not in json.dumps(model_server.requests)
    log = json.dumps([e.payload for e in agent.audit_log()], default=str)
    assert TOKEN not in log and "[redacted:mcp:" in log
    assert all(TOKEN.encode() not in path.read_bytes() for path in store.parent.rglob("*") if path.is_file())
    assert TOKEN not in repr(agent.config)


def test_a_refused_credential_and_an_unreachable_server_are_errors_the_turn_goes_on_without(
    make_agent, model_server
):
    with mcp_server(token=TOKEN) as server:
        agent = make_agent(
            tools=[toolset("always_allow"), {**toolset("always_allow"), "mcp_server_name": "gone"}],
            mcp_servers=[
                {"type": "url", "name": "calc", "url": server.url},
                {"type": "url", "name": "gone", "url": unused_url()},
            ],
            mcp_credentials={server.url: "wrong-token-0123456789"},
        )
        model_server.enqueue(Reply(text="no tools today"))
        assert agent.run("go") == "no tools today"
    assert "tools" not in model_server.requests[0]
    failures = [e.payload for e in agent.audit_log(types=("McpServerFailed",))]
    assert [(f["server"], f["kind"]) for f in failures] == [
        ("calc", "authentication"),
        ("gone", "connection"),
    ]
    assert agent.state_at().turns == 1 and agent.retrieve_session()["status"] == "idle"
    assert "wrong-token-0123456789" not in json.dumps(failures)


def test_an_mcp_toolset_needs_its_server_and_a_confirmation_handler(make_agent):
    with pytest.raises(ConfigError, match="mcp_servers does not define"):
        make_agent(tools=[toolset("always_allow")])
    with pytest.raises(ConfigError, match="on_tool_confirmation"):
        mcp_agent(make_agent, "http://example.org/mcp", policy=None)
    with pytest.raises(ConfigError, match="not an http or https URL"):
        mcp_agent(make_agent, "file:///etc/passwd")


def test_the_turn_ends_as_usual_after_an_mcp_call(make_agent, model_server):
    with mcp_server() as server:
        agent = mcp_agent(make_agent, server.url)
        model_server.enqueue(Reply(tool_calls=[ScriptedToolCall("mcp__calc__nope", {})]), Reply(text="x"))
        agent.run("go")
    (result,) = results(agent)
    assert result.is_error and "nope" in result.output
    assert agent.state_at().status.value == "idle"


def test_a_vault_authenticates_a_python_api_session(make_agent, model_server, service, store: Path):
    vaults = open_vaults(service)
    vault = vaults.create("team")
    with mcp_server(token=TOKEN) as server:
        vaults.add_credential(
            vault.id, {"type": "static_bearer", "mcp_server_url": server.url, "token": TOKEN}
        )
        agent = mcp_agent(make_agent, server.url, vault_ids=[f"vlt_{vault.id.hex}"])
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("mcp__calc__add", {"a": 3, "b": 4})]), Reply(text="7")
        )
        assert agent.run("3 + 4?") == "7"
    assert set(server.tokens_seen) == {TOKEN} and results(agent)[0].output == "7"
    assert agent.state_at().config.vault_ids == (str(vault.id),)
    vault_log = json.dumps([e.__dict__ for e in service.events.get(vault.id)], default=str)
    assert "static_bearer" in vault_log and TOKEN not in vault_log
    assert all(TOKEN.encode() not in path.read_bytes() for path in store.parent.rglob("*") if path.is_file())


def test_a_legacy_sse_server_is_reached_through_the_fallback(make_agent, model_server):
    with mcp_server(sse=True) as server:
        agent = mcp_agent(make_agent, server.url)
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("mcp__calc__shout", {"text": "sse"})]), Reply(text="ok")
        )
        assert agent.run("go") == "ok"
    assert results(agent)[0].output == "SSE" and server.calls == [("shout", {"text": "sse"})]
