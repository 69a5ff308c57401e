"""MCP tools' names and policies, and the Vault aggregate's rules: pure functions of the
recorded config and of the vault's events."""

from __future__ import annotations

import msgspec
import pytest

from agentjournal.application import ConfigError
from agentjournal.application.mcp_tools import mcp_target, model_name
from agentjournal.application.toolset import mcp_servers, resolve_tools
from agentjournal.domain import Credential, McpServer, McpToolPolicy, SessionConfig, Vault, VaultError

pytestmark = pytest.mark.timeout(30)


def config(*servers: McpServer) -> SessionConfig:
    return SessionConfig(model="m", system="", name="a", tools=(), mcp_servers=servers)


def test_a_call_is_known_by_its_server_and_tool_and_its_policy_comes_from_the_record():
    github = McpServer(
        name="git.hub",
        url="https://mcp.example/gh",
        permission="always_ask",
        tools=(McpToolPolicy("merge", enabled=False), McpToolPolicy("list_prs", permission="always_allow")),
    )
    session = config(
        github, McpServer(name="git.hub__x", url="https://mcp.example/x", permission="always_allow")
    )
    assert model_name("git.hub", "list_prs") == "mcp__git_hub__list_prs"
    listed = mcp_target(session, "mcp__git_hub__list_prs")
    assert listed is not None and (listed.server.name, listed.tool, listed.asks) == (
        "git.hub",
        "list_prs",
        False,
    )
    asked = mcp_target(session, "mcp__git_hub__create_issue")
    assert asked is not None and asked.asks
    assert mcp_target(session, "mcp__git_hub__merge") is None  # disabled
    longest = mcp_target(session, "mcp__git_hub__x__run")
    assert longest is not None and (longest.server.name, longest.tool) == ("git.hub__x", "run")
    assert mcp_target(session, "mcp__other__run") is None and mcp_target(session, "read_file") is None


def test_toolsets_and_servers_are_joined_and_checked():
    toolset = resolve_tools([
        {"type": "mcp_toolset", "mcp_server_name": "calc",
         "default_config": {"enabled": False, "permission_policy": {"type": "auto"}},
         "configs": [{"name": "add", "enabled": True}]},
    ])  # fmt: skip
    (server,) = mcp_servers(toolset, [{"type": "url", "name": "calc", "url": "http://127.0.0.1:1/mcp"}])
    assert (server.url, server.enabled, server.permission) == ("http://127.0.0.1:1/mcp", False, "always_ask")
    assert server.policy_of("add") == (True, "always_ask") and server.policy_of("sub") == (
        False,
        "always_ask",
    )
    with pytest.raises(ConfigError, match="not referenced by any mcp_toolset"):
        mcp_servers(
            toolset, [{"type": "url", "name": "calc", "url": "http://a/"}, {"name": "b", "url": "http://b/"}]
        )
    with pytest.raises(ConfigError, match="names must be unique"):
        mcp_servers(toolset, [{"name": "calc", "url": "http://a/"}, {"name": "calc", "url": "http://b/"}])


def credential(url: str = "https://mcp.example/a", ref: str = "ref-1") -> Credential:
    return Credential(id="c1", kind="static_bearer", mcp_server_url=url, secret_ref=ref)


def test_a_vault_records_which_credentials_exist_never_their_values():
    vault = Vault.create("team", {})
    vault.add_credential(credential())
    with pytest.raises(VaultError, match="already has a credential"):
        vault.add_credential(msgspec.structs.replace(credential(), id="c2"))
    assert vault.update_credential(msgspec.structs.replace(credential(), secret_ref="ref-2"))
    assert not vault.update_credential(msgspec.structs.replace(credential(), secret_ref="ref-2"))
    with pytest.raises(VaultError, match="cannot change"):
        vault.update_credential(credential(url="https://elsewhere"))
    events = vault.collect_events()
    assert [type(e).__name__ for e in events] == ["VaultCreated", "CredentialAdded", "CredentialUpdated"]
    assert events[-1].secret_changed is True
    assert vault.credential_for("https://mcp.example/a") is not None
    vault.archive_credential("c1")
    assert vault.credential_for("https://mcp.example/a") is None
    vault.archive()
    with pytest.raises(VaultError, match="archived"):
        vault.add_credential(msgspec.structs.replace(credential(), id="c3", mcp_server_url="https://b"))
    vault.delete()
    with pytest.raises(VaultError, match="deleted"):
        vault.delete()
