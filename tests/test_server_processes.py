"""More than one server process on one store: any of them serves, streams and continues
any session (streams read the store, not a process's memory), and a server killed
mid-turn leaves a session the next turn recovers."""

from __future__ import annotations

import pytest

from agentjournal.application import SessionService
from agentjournal.domain import SessionConfig
from agentjournal.infrastructure.models.scripted import Reply
from tests.serving import running_server
from tests.test_server_actions import prompt, send


def new_session_in(store_env: dict[str, str]) -> str:
    service = SessionService(store_env)
    try:
        config = SessionConfig(model="gpt-4o-mini", system="", name="t", tools=(),
                               networking={"type": "unrestricted"})  # fmt: skip
        return "sesn_" + service.create_session(config).hex
    finally:
        service.close()


@pytest.mark.parametrize("store_env", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_two_servers_on_postgresql_serve_one_session(model_server, store_env):
    session_id = new_session_in(store_env)
    with running_server(model_server.base_url, store_env=store_env) as a, \
            running_server(model_server.base_url, store_env=store_env) as b:  # fmt: skip
        on_a, on_b = a.client(), b.client()
        # A stream on B sees the turn that A runs.
        with on_b.beta.sessions.events.stream(session_id) as stream:
            send(on_a, session_id, prompt("Hello, my name is Ada."))
            seen = []
            for event in stream:
                seen.append(event.type)
                if event.type == "session.status_idle":
                    break
        assert seen[:2] == ["user.message", "session.status_running"] and "agent.message" in seen
        # B continues the session A started, and remembers it.
        with on_b.beta.sessions.events.stream(session_id) as stream:
            send(on_b, session_id, prompt("What is my name?"))
            texts = []
            for event in stream:
                if event.type == "agent.message":
                    texts.append(event.content[0].text)
                if event.type == "session.status_idle":
                    break
        assert texts == ["Your name is Ada."]
        assert [e.id for e in on_a.beta.sessions.events.list(session_id)] == [
            e.id for e in on_b.beta.sessions.events.list(session_id)
        ]


@pytest.mark.parametrize(
    "store_env", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_server_killed_mid_turn_leaves_a_session_the_next_turn_recovers(model_server, store_env):
    session_id = new_session_in(store_env)
    model_server.enqueue(Reply(text="never seen", stall=60))
    with running_server(model_server.base_url, store_env=store_env) as doomed:
        send(doomed.client(), session_id, prompt("This turn dies with its server."))
        model_server.wait_for_requests(1)
        doomed.kill()
    with running_server(model_server.base_url, store_env=store_env) as survivor:
        client = survivor.client()
        assert client.beta.sessions.retrieve(session_id).status == "running"  # as the log last said
        model_server.enqueue(Reply(text="Back again."))
        with client.beta.sessions.events.stream(session_id) as stream:
            send(client, session_id, prompt("Are you there?"))
            seen = []
            for event in stream:
                seen.append(event)
                if event.type == "session.status_idle" and seen[-2].type == "span.model_request_end":
                    break
        assert [e.content[0].text for e in seen if e.type == "agent.message"] == ["Back again."]
        listed = [e.type for e in client.beta.sessions.events.list(session_id)]
        # The dead turn is closed (idle) before the new prompt, and nothing of it is lost.
        assert listed[:3] == ["user.message", "session.status_running", "session.status_idle"]
        assert client.beta.sessions.retrieve(session_id).status == "idle"
