"""``mcp_oauth`` credentials are refreshed at their token endpoint: when the MCP server
refuses the access token, or before use when it has expired. The new token is sealed
(the vault records that the secret changed, never its value) and the call made again
once; refresh tokens and client secrets reach the token endpoint and nothing else.
Against a real FastMCP server with a bearer check and a token endpoint on 127.0.0.1,
through the Python API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agentjournal.application import ConfigError
from agentjournal.application.ports import OAuthRefreshError
from agentjournal.application.vaults import open_vaults
from agentjournal.domain import ToolResult
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from agentjournal.infrastructure.secrets.oauth import HttpTokenEndpoint
from tests.mcp_servers import TokenEndpoint, mcp_server, token_endpoint

pytestmark = pytest.mark.timeout(120)

STALE = "access-stale-5e1b7c9d2a"
FRESH = "access-fresh-8c3f0a6e4b"
REFRESH = "refresh-first-2d9a7e1c5f"
ROTATED = "refresh-second-6b4e8d0a3c"
CLIENT_SECRET = "client-secret-9f2c4a7e1d"
SECRETS = (STALE, FRESH, REFRESH, ROTATED, CLIENT_SECRET)


def grant() -> dict[str, str]:
    return {
        "client_id": "agentjournal-tests",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH,
        "access_token": FRESH,
        "next_refresh": ROTATED,
    }


def oauth(endpoint: TokenEndpoint, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "mcp_oauth",
        "mcp_server_url": url,
        "access_token": STALE,
        "refresh": {
            "token_endpoint": endpoint.url,
            "client_id": endpoint.client_id,
            "refresh_token": REFRESH,
            "token_endpoint_auth": {"type": "client_secret_post", "client_secret": CLIENT_SECRET},
            "scope": "tools",
        },
        **extra,
    }


def calc_agent(make_agent: Any, url: str, vault_id: Any) -> Any:
    return make_agent(
        tools=[
            {
                "type": "mcp_toolset",
                "mcp_server_name": "calc",
                "default_config": {"permission_policy": {"type": "always_allow"}},
            }
        ],
        mcp_servers=[{"type": "url", "name": "calc", "url": url}],
        vault_ids=[f"vlt_{vault_id.hex}"],
    )


def adding(model_server: Any) -> None:
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("mcp__calc__add", {"a": 5, "b": 6})]), Reply(text="11")
    )


def assert_nowhere_but_the_servers(
    agent: Any, service: Any, vault_id: Any, model_server: Any, store: Path
) -> None:
    log = json.dumps([e.payload for e in agent.audit_log()], default=str)
    vault_log = json.dumps([e.__dict__ for e in service.events.get(vault_id)], default=str)
    told_model = json.dumps(model_server.requests)
    for secret in SECRETS:
        assert secret not in log and secret not in vault_log and secret not in told_model
        assert all(
            secret.encode() not in path.read_bytes() for path in store.parent.rglob("*") if path.is_file()
        )


def test_a_refused_access_token_is_refreshed_and_the_call_made_again(
    make_agent, model_server, service, store: Path
):
    vaults = open_vaults(service)
    vault = vaults.create("team")
    with token_endpoint(**grant()) as endpoint, mcp_server(token=FRESH) as server:
        _, credential = vaults.add_credential(vault.id, oauth(endpoint, server.url))
        agent = calc_agent(make_agent, server.url, vault.id)
        adding(model_server)
        assert agent.run("5 + 6?") == "11"
        assert server.tokens_seen[0] == STALE and set(server.tokens_seen[1:]) == {FRESH}
        assert server.calls == [("add", {"a": 5, "b": 6})]
    (form,) = endpoint.forms
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH,
        "client_id": "agentjournal-tests",
        "client_secret": CLIENT_SECRET,
        "scope": "tools",
    }
    updates = [e for e in service.events.get(vault.id) if type(e).__name__ == "CredentialUpdated"]
    assert [(e.credential.id, e.secret_changed) for e in updates] == [(credential.id, True)]
    assert updates[0].credential.expires_at  # the grant's expires_in, recorded as a time
    assert vaults.tokens([str(vault.id)], [server.url]) == {server.url: FRESH}
    assert endpoint.refresh_token == ROTATED  # the rotated refresh token is the one kept
    assert not agent.audit_log(types=("McpServerFailed",))
    assert_nowhere_but_the_servers(agent, service, vault.id, model_server, store)


def test_an_expired_access_token_is_refreshed_before_use(make_agent, model_server, service, store: Path):
    vaults = open_vaults(service)
    vault = vaults.create("team")
    soon = (datetime.now(timezone.utc) + timedelta(seconds=5)).isoformat()
    with token_endpoint(**grant()) as endpoint, mcp_server(token=FRESH) as server:
        vaults.add_credential(vault.id, oauth(endpoint, server.url, expires_at=soon))
        agent = calc_agent(make_agent, server.url, vault.id)
        adding(model_server)
        assert agent.run("5 + 6?") == "11"
        assert set(server.tokens_seen) == {FRESH}
    assert len(endpoint.forms) == 1
    assert_nowhere_but_the_servers(agent, service, vault.id, model_server, store)


def test_a_refused_refresh_leaves_the_authentication_error(make_agent, model_server, service):
    vaults = open_vaults(service)
    vault = vaults.create("team")
    with token_endpoint(**{**grant(), "refresh_token": "another-refresh-token"}) as endpoint:
        with mcp_server(token=FRESH) as server:
            vaults.add_credential(vault.id, oauth(endpoint, server.url))
            agent = calc_agent(make_agent, server.url, vault.id)
            model_server.enqueue(Reply(text="no tools"))
            assert agent.run("5 + 6?") == "no tools"
    assert [f.payload["kind"] for f in agent.audit_log(types=("McpServerFailed",))] == ["authentication"]
    assert [form["refresh_token"] for form in endpoint.forms] == [REFRESH]
    assert not [e for e in service.events.get(vault.id) if type(e).__name__ == "CredentialUpdated"]
    results = [m for m in agent.state_at().messages if isinstance(m, ToolResult)]
    assert results == []


def test_refresh_settings_are_checked_when_given(service):
    vaults = open_vaults(service)
    vault = vaults.create("team")
    auth = {"type": "mcp_oauth", "mcp_server_url": "https://mcp.example.com/mcp", "access_token": STALE}
    with pytest.raises(ConfigError, match="auth.refresh.token_endpoint"):
        vaults.add_credential(vault.id, {**auth, "refresh": {"client_id": "c", "refresh_token": REFRESH}})
    with pytest.raises(ConfigError, match="token_endpoint_auth"):
        vaults.add_credential(
            vault.id,
            {
                **auth,
                "refresh": {
                    "token_endpoint": "https://auth.example.com/token",
                    "client_id": "c",
                    "refresh_token": REFRESH,
                    "token_endpoint_auth": {"type": "private_key_jwt"},
                },
            },
        )


def test_a_token_endpoint_on_a_private_address_is_refused_unless_allowed():
    with token_endpoint(**grant()) as endpoint:
        settings = oauth(endpoint, "https://mcp.example.com/mcp")["refresh"]
        with pytest.raises(OAuthRefreshError, match="non-public address") as refused:
            HttpTokenEndpoint().refresh(settings)
        assert endpoint.forms == []
        wrong = {**settings, "refresh_token": "spent-refresh-token-0d8e"}
        with pytest.raises(OAuthRefreshError, match="invalid_grant") as spent:
            HttpTokenEndpoint(allow_private=True).refresh(wrong)
        granted = HttpTokenEndpoint(allow_private=True).refresh(settings)
    assert (granted.access_token, granted.refresh_token, granted.expires_in) == (FRESH, ROTATED, 3600)
    for message in (str(refused.value), str(spent.value)):
        assert all(secret not in message for secret in (*SECRETS, "spent-refresh-token-0d8e"))
