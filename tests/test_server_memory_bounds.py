"""What a server keeps of a session once its turn has ended is bounded, whatever the number
of sessions: working copies (the most recently used, for the next turn's resume from
memory), their computes (each session's own, with its work folder's last scan), listing
checkpoints (of the sessions listed most recently), and nothing else keyed
by a session (stream subscriptions, the runner's stop flags) once its stream and turn are
over. A session whose copy was let go loses nothing: the log is the truth. Counted in the
real application (Starlette's test client runs its lifespan; turns go through litellm to the
scripted model over HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from agentjournal.application.config import ManagedConfig
from agentjournal.infrastructure.server.app import ServerSettings, create_app
from tests.conftest import TEST_KEY
from tests.serving import API_KEY

pytestmark = [pytest.mark.timeout(240), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def turn(client: TestClient, session: str, text: str) -> None:
    """A prompt, from ``send`` to ``session.status_idle`` on a stream opened before it."""
    path = f"/v1/sessions/{session}/events"
    with client.stream("GET", f"{path}/stream") as stream:
        client.post(path, json={"events": [{"type": "user.message", "content": text}]}).raise_for_status()
        for line in stream.iter_lines():
            if line == "event: session.status_idle":
                return
    raise AssertionError("the stream ended before the turn did")


def test_what_a_server_keeps_of_ended_sessions_is_bounded_and_losing_it_loses_nothing(model_server, store):
    settings = ServerSettings(
        api_keys=frozenset({API_KEY}), store=str(store), model_provider="openai",
        model=ManagedConfig(api_base=model_server.base_url, api_key=TEST_KEY),
    )  # fmt: skip
    with TestClient(create_app(settings), headers={"x-api-key": API_KEY}) as client:
        engine: Any = client.app.state.engine  # type: ignore[attr-defined]
        engine.service.working_copies = 4
        engine.runtimes.kept_adapters = 5  # the model's client and the last four sessions' computes
        agent = client.post("/v1/agents", json={"name": "bounds", "model": "gpt-4o-mini"}).json()["id"]
        environment = client.post("/v1/environments", json={
            "name": "bounds", "config": {"type": "cloud", "networking": {"type": "unrestricted"}}}).json()["id"]  # fmt: skip
        sessions = [
            client.post("/v1/sessions", json={"agent": agent, "environment_id": environment}).json()["id"]
            for _ in range(12)
        ]
        for session in sessions:
            turn(client, session, "hello")
            assert client.get(f"/v1/sessions/{session}/events", params={"limit": 2}).status_code == 200

        assert len(engine.service.working) == 4  # the most recent four
        assert len(engine.runtimes._adapters) == 5
        assert len(engine.event_checkpoints._sessions) == engine.event_checkpoints.keep < len(sessions)
        assert engine.doorbell._waiters == {} and engine.runner._stopping == {}

        first = sessions[0]
        assert all(session.hex not in first for session in engine.service.working)  # let go
        turn(client, first, "again")
        listed = client.get(f"/v1/sessions/{first}/events", params={"limit": 100}).json()["data"]
        prompts = [e["content"][0]["text"] for e in listed if e["type"] == "user.message"]
        assert prompts == ["hello", "again"]
        assert [e["type"] for e in listed].count("session.status_idle") == 2
        assert len(engine.service.working) == 4
