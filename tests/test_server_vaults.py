"""Vaults through the official SDK against a real ``agentjournal serve``: credentials are
write-only, sealed outside the log, matched to a session's MCP servers by URL, and the
token reaches the MCP server and nothing else (responses, events, the log, exports, the
store's files, the model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from eventsourcing.cipher import AESCipher

from agentjournal.application.store import open_store
from agentjournal.application.vaults import open_vaults
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import wait_until
from tests.mcp_servers import mcp_server, token_endpoint
from tests.serving import API_KEY, running_server
from tests.test_server_actions import prompt, send, until_idle

pytestmark = pytest.mark.timeout(180)

TOKEN = "vault-bearer-4b1d9e77c2a05f38"


@pytest.fixture
def server(model_server, store):  # type: ignore[no-untyped-def]
    with running_server(model_server.base_url, store, extra=("--allow-private-mcp",)) as running:
        yield running


def calculator_session(client: Any, url: str, vault_ids: list[str]) -> str:
    agent = client.beta.agents.create(
        name="calculator",
        model="claude-haiku-4-5",
        tools=[{"type": "mcp_toolset", "mcp_server_name": "calc",
                "default_config": {"permission_policy": {"type": "always_allow"}}}],
        mcp_servers=[{"type": "url", "name": "calc", "url": url}],
    )  # fmt: skip
    environment = client.beta.environments.create(name="e")
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id, vault_ids=vault_ids)
    assert session.vault_ids == vault_ids
    return str(session.id)


def test_vaults_and_credentials_are_managed_and_secrets_never_come_back(server):
    client = server.client()
    vault = client.beta.vaults.create(display_name="team", metadata={"owner": "core"})
    assert vault.id.startswith("vlt_") and (vault.type, vault.display_name) == ("vault", "team")
    credential = client.beta.vaults.credentials.create(
        vault.id, display_name="calc", auth={"type": "static_bearer", "mcp_server_url": "https://mcp.example/a",
                                             "token": TOKEN},
    )  # fmt: skip
    assert (
        credential.auth.type == "static_bearer" and credential.auth.mcp_server_url == "https://mcp.example/a"
    )
    oauth = client.beta.vaults.credentials.create(
        vault.id, auth={"type": "mcp_oauth", "mcp_server_url": "https://mcp.example/b", "access_token": TOKEN + "x",
                        "expires_at": "2030-01-01T00:00:00Z"},
    )  # fmt: skip
    assert oauth.auth.type == "mcp_oauth" and oauth.auth.expires_at is not None
    shown = [
        client.beta.vaults.retrieve(vault.id),
        *client.beta.vaults.list(),
        *client.beta.vaults.credentials.list(vault.id),
        client.beta.vaults.credentials.retrieve(credential.id, vault_id=vault.id),
        client.beta.vaults.credentials.update(credential.id, vault_id=vault.id, display_name="renamed"),
    ]
    assert all(TOKEN not in json.dumps(item.model_dump(mode="json")) for item in shown)
    assert [c.id for c in client.beta.vaults.credentials.list(vault.id)] == [oauth.id, credential.id]
    with pytest.raises(anthropic.BadRequestError, match="already has a credential"):
        client.beta.vaults.credentials.create(
            vault.id, auth={"type": "static_bearer", "mcp_server_url": "https://mcp.example/a", "token": "t"}
        )
    client.beta.vaults.credentials.archive(credential.id, vault_id=vault.id)
    assert [c.id for c in client.beta.vaults.credentials.list(vault.id)] == [oauth.id]
    client.beta.vaults.credentials.delete(oauth.id, vault_id=vault.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.vaults.credentials.retrieve(oauth.id, vault_id=vault.id)
    assert client.beta.vaults.archive(vault.id).archived_at is not None
    assert [v.id for v in client.beta.vaults.list()] == []
    client.beta.vaults.delete(vault.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.vaults.retrieve(vault.id)


def test_the_vault_token_reaches_the_mcp_server_and_nowhere_else(server, model_server, store: Path):
    client = server.client()
    vault = client.beta.vaults.create(display_name="team")
    with mcp_server(token=TOKEN) as mcp:
        credential = client.beta.vaults.credentials.create(
            vault.id, auth={"type": "static_bearer", "mcp_server_url": mcp.url, "token": TOKEN}
        )
        session_id = calculator_session(client, mcp.url, [vault.id])
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("mcp__calc__add", {"a": 1, "b": 2})]), Reply(text="3")
        )
        send(client, session_id, prompt("1 + 2?"))
        seen = until_idle(client, session_id)
        assert next(e for e in seen if e.type == "agent.mcp_tool_result").content[0].text == "3"
        assert set(mcp.tokens_seen) == {TOKEN}

        # A rotated secret that the server refuses: the documented error, and the session goes on.
        client.beta.vaults.credentials.update(
            credential.id, vault_id=vault.id,
            auth={"type": "static_bearer", "mcp_server_url": mcp.url, "token": "rotated-but-wrong-91c4"},
        )  # fmt: skip
        model_server.enqueue(Reply(text="cannot reach the calculator"))
        send(client, session_id, prompt("again"))
        wait_until(lambda: len(_idles(client, session_id)) == 2, "the second turn to end")
    error = next(e for e in client.beta.sessions.events.list(session_id) if e.type == "session.error").error
    assert (error.type, error.mcp_server_name) == ("mcp_authentication_failed_error", "calc")

    headers = {"x-api-key": API_KEY}
    hex_id = session_id.removeprefix("sesn_")
    exported = httpx.get(f"{server.url}/x-agentjournal/v1/sessions/{hex_id}/export", headers=headers).text
    log = httpx.get(f"{server.url}/x-agentjournal/v1/sessions/{hex_id}/log", headers=headers).text
    events = json.dumps([e.model_dump(mode="json") for e in client.beta.sessions.events.list(session_id)])
    for text in (exported, log, events, json.dumps(model_server.requests)):
        assert TOKEN not in text and "rotated-but-wrong-91c4" not in text
    for path in store.parent.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_an_oauth_credential_is_refreshed_when_the_server_refuses_it(server, model_server, store: Path):
    client = server.client()
    vault = client.beta.vaults.create(display_name="team")
    secrets = {"stale": "oauth-stale-3a8e1f", "fresh": "oauth-fresh-7c2d9b", "refresh": "oauth-refresh-5e0a4c",
               "rotated": "oauth-rotated-1b6f8d", "client": "oauth-client-secret-9d3e7a"}  # fmt: skip
    grant = {"client_id": "calc-app", "client_secret": secrets["client"], "refresh_token": secrets["refresh"],
             "access_token": secrets["fresh"], "next_refresh": secrets["rotated"]}  # fmt: skip
    with token_endpoint(**grant) as endpoint, mcp_server(token=secrets["fresh"]) as mcp:
        credential = client.beta.vaults.credentials.create(
            vault.id,
            auth={
                "type": "mcp_oauth",
                "mcp_server_url": mcp.url,
                "access_token": secrets["stale"],
                "refresh": {
                    "token_endpoint": endpoint.url,
                    "client_id": "calc-app",
                    "refresh_token": secrets["refresh"],
                    "token_endpoint_auth": {
                        "type": "client_secret_basic",
                        "client_secret": secrets["client"],
                    },
                },
            },
        )
        assert credential.auth.expires_at is None
        session_id = calculator_session(client, mcp.url, [vault.id])
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("mcp__calc__add", {"a": 2, "b": 2})]), Reply(text="4")
        )
        send(client, session_id, prompt("2 + 2?"))
        seen = until_idle(client, session_id)
        assert next(e for e in seen if e.type == "agent.mcp_tool_result").content[0].text == "4"
        assert mcp.tokens_seen[0] == secrets["stale"] and set(mcp.tokens_seen[1:]) == {secrets["fresh"]}
    assert [form["refresh_token"] for form in endpoint.forms] == [secrets["refresh"]]
    assert "client_secret" not in endpoint.forms[0]  # client_secret_basic: in the Authorization header
    assert not [e for e in seen if e.type == "session.error"]
    refreshed = client.beta.vaults.credentials.retrieve(credential.id, vault_id=vault.id)
    assert refreshed.auth.expires_at is not None

    headers = {"x-api-key": API_KEY}
    hex_id = session_id.removeprefix("sesn_")
    exported = httpx.get(f"{server.url}/x-agentjournal/v1/sessions/{hex_id}/export", headers=headers).text
    log = httpx.get(f"{server.url}/x-agentjournal/v1/sessions/{hex_id}/log", headers=headers).text
    events = json.dumps([e.model_dump(mode="json") for e in client.beta.sessions.events.list(session_id)])
    shown = json.dumps(refreshed.model_dump(mode="json"))
    for secret in secrets.values():
        for text in (exported, log, events, shown, json.dumps(model_server.requests)):
            assert secret not in text
        for path in store.parent.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_a_session_names_only_vaults_that_exist(server):
    client = server.client()
    environment = client.beta.environments.create(name="e")
    agent = client.beta.agents.create(name="a", model="claude-haiku-4-5")
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.create(
            agent=agent.id, environment_id=environment.id, vault_ids=["vlt_" + "0" * 32]
        )
    archived = client.beta.vaults.create(display_name="old")
    client.beta.vaults.archive(archived.id)
    with pytest.raises(anthropic.BadRequestError, match="archived"):
        client.beta.sessions.create(agent=agent.id, environment_id=environment.id, vault_ids=[archived.id])


def _idles(client: Any, session_id: str) -> list[Any]:
    return [e for e in client.beta.sessions.events.list(session_id) if e.type == "session.status_idle"]


def test_a_server_that_cannot_open_the_vaults_says_so_at_start(model_server, store):
    service = open_store(store)
    vaults = open_vaults(service)
    vault = vaults.create("team")
    vaults.add_credential(
        vault.id, {"type": "static_bearer", "mcp_server_url": "https://mcp.example", "token": TOKEN}
    )
    service.close()
    other_key = AESCipher.create_key(32)
    # A start that fails never says it listens (the line comes once the application started).
    with pytest.raises(RuntimeError, match="(?s)did not start: '' .*cannot be opened with this key"):
        with running_server(model_server.base_url, store, store_env={"AGENTJOURNAL_VAULT_KEY": other_key}):
            pass
