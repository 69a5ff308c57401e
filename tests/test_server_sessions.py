"""The Managed Agents API's sessions and events, driven by the official ``anthropic`` SDK
against a real server process (uvicorn, real sockets) and the scripted model over HTTP."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from agentjournal.application import SessionService
from agentjournal.domain import SessionConfig
from agentjournal.infrastructure.models.scripted import Reply
from tests.serving import API_KEY

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def new_session(store, **config: object) -> str:  # type: ignore[no-untyped-def]
    """A session made through the Python side of the same store, as the CLI would."""
    fields = {
        "model": "gpt-4o-mini",
        "system": "Be brief.",
        "name": "tester",
        "tools": (),
        "networking": {"type": "unrestricted"},
        **config,
    }
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    try:
        return "sesn_" + service.create_session(SessionConfig(**fields), title="from python").hex  # type: ignore[arg-type]
    finally:
        service.close()


def turn(client, session_id: str, text: str) -> list:  # type: ignore[no-untyped-def]
    """Send a prompt with a stream opened first; the events up to the turn's idle."""
    seen = []
    with client.beta.sessions.events.stream(session_id) as stream:
        client.beta.sessions.events.send(
            session_id, events=[{"type": "user.message", "content": [{"type": "text", "text": text}]}]
        )
        for event in stream:
            seen.append(event)
            if event.type in ("session.status_idle", "session.status_terminated"):
                break
    return seen


def test_a_session_made_in_python_is_retrieved_through_the_sdk(api_server, store):
    session_id = new_session(store)
    session = api_server.client().beta.sessions.retrieve(session_id)
    assert session.id == session_id
    assert session.type == "session"
    assert session.status == "idle"
    assert session.title == "from python"
    assert session.agent.model.id == "gpt-4o-mini"
    assert session.agent.system == "Be brief."
    assert session.usage.input_tokens == 0


def test_a_two_turn_session_remembers_and_streams_every_event(api_server, store, model_server):
    client = api_server.client()
    session_id = new_session(store)
    first = turn(client, session_id, "Hello, my name is Ada.")
    assert [e.type for e in first] == [
        "user.message",
        "session.status_running",
        "agent.message",
        "span.model_request_end",
        "session.status_idle",
    ]
    assert first[-1].stop_reason.type == "end_turn"
    assert first[0].content[0].text == "Hello, my name is Ada."
    second = turn(client, session_id, "What is my name?")
    replies = [e.content[0].text for e in second if e.type == "agent.message"]
    assert replies == ["Your name is Ada."]
    usage = [e.model_usage for e in first + second if e.type == "span.model_request_end"]
    session = client.beta.sessions.retrieve(session_id)
    assert session.usage.input_tokens == sum(u.input_tokens for u in usage) > 0
    assert session.usage.output_tokens == sum(u.output_tokens for u in usage) > 0
    # Every streamed event is in the list, with the same id, in the same order.
    listed = list(client.beta.sessions.events.list(session_id))
    assert [e.id for e in listed] == [e.id for e in first + second]
    assert len({e.id for e in listed}) == len(listed)


def test_events_are_listed_with_filters_order_and_pages(api_server, store):
    client = api_server.client()
    session_id = new_session(store)
    turn(client, session_id, "one")
    turn(client, session_id, "two")
    everything = list(client.beta.sessions.events.list(session_id))
    messages = client.beta.sessions.events.list(session_id, types=["user.message"])
    assert [e.content[0].text for e in messages.data] == ["one", "two"]
    newest = client.beta.sessions.events.list(session_id, order="desc", limit=1)
    assert newest.data[0].id == everything[-1].id
    paged = [e.id for e in client.beta.sessions.events.list(session_id, limit=2)]  # follows next_page
    assert paged == [e.id for e in everything]
    later = client.beta.sessions.events.list(session_id, created_at_gt=everything[4].processed_at)
    assert all(e.processed_at > everything[4].processed_at for e in later.data) and later.data


def test_a_stream_that_reconnects_resumes_after_the_last_event_it_saw(api_server, store):
    client = api_server.client()
    session_id = new_session(store)
    events = turn(client, session_id, "first")
    cut = events[1].id
    with client.beta.sessions.events.stream(session_id, extra_headers={"Last-Event-ID": cut}) as stream:
        again = []
        for event in stream:
            again.append(event)
            if event.type == "session.status_idle":
                break
    assert [e.id for e in again] == [e.id for e in events[2:]]


def test_wrong_or_missing_keys_are_refused_in_anthropics_shape(api_server, store):
    session_id = new_session(store)
    with pytest.raises(anthropic.AuthenticationError) as wrong:
        api_server.client(key="not-a-key").beta.sessions.retrieve(session_id)
    assert wrong.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    missing = httpx.get(f"{api_server.url}/v1/sessions/{session_id}")
    assert missing.status_code == 401
    assert missing.json()["type"] == "error"
    bearer = httpx.get(
        f"{api_server.url}/v1/sessions/{session_id}", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert bearer.status_code == 200


def test_unknown_ids_are_404_and_bad_bodies_400_naming_the_field(api_server, store):
    client = api_server.client()
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.beta.sessions.retrieve("sesn_" + "0" * 32)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    session_id = new_session(store)
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.beta.sessions.events.send(session_id, events=[{"type": "user.message", "content": 42}])  # type: ignore[list-item]
    assert "events[0].content" in str(bad.value)
    with pytest.raises(anthropic.BadRequestError, match="events"):
        client.beta.sessions.events.send(session_id, events=[{"type": "user.nonsense"}])  # type: ignore[list-item]
    huge = "x" * (5 * 1024 * 1024)
    with pytest.raises(anthropic.APIStatusError) as too_large:
        client.beta.sessions.events.send(
            session_id, events=[{"type": "user.message", "content": [{"type": "text", "text": huge}]}]
        )
    assert too_large.value.status_code == 413
    # Nothing of the refused requests reached the log.
    assert list(client.beta.sessions.events.list(session_id)) == []


def test_a_session_is_updated_archived_and_deleted(api_server, store, model_server):
    client = api_server.client()
    session_id = new_session(store, metadata={"team": "red"})
    updated = client.beta.sessions.update(
        session_id, title="renamed", metadata={"team": None, "owner": "ada"}
    )
    assert updated.title == "renamed"
    assert updated.metadata == {"owner": "ada"}
    archived = client.beta.sessions.archive(session_id)
    assert archived.archived_at is not None
    with pytest.raises(anthropic.BadRequestError, match="archived"):
        client.beta.sessions.events.send(
            session_id, events=[{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]
        )
    deleted = client.beta.sessions.delete(session_id)
    assert deleted.type == "session_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.retrieve(session_id)
    assert model_server.requests == []


def test_the_server_refuses_to_start_without_keys_unless_told_and_only_on_loopback(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "AGENTJOURNAL_API_KEYS"}
    base = [sys.executable, "-m", "agentjournal", "--store", str(tmp_path / "s.db"), "serve", "--port", "0"]
    no_keys = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60)
    assert no_keys.returncode == 2 and "AGENTJOURNAL_API_KEYS" in no_keys.stderr
    exposed = subprocess.run([*base, "--no-auth", "--host", "0.0.0.0"], env=env, capture_output=True, text=True,
                             timeout=60)  # fmt: skip
    assert exposed.returncode == 2 and "loopback" in exposed.stderr


def test_without_auth_on_loopback_requests_need_no_key(model_server, store):
    from tests.serving import running_server

    session_id = new_session(store)
    with running_server(model_server.base_url, store, keys="", extra=("--no-auth",)) as server:
        assert httpx.get(f"{server.url}/v1/sessions/{session_id}").status_code == 200


def test_a_stream_opened_just_after_send_sees_the_whole_running_turn(api_server, store, model_server):
    client = api_server.client()
    session_id = new_session(store)
    model_server.enqueue(Reply(text="slowly " * 20, hold=True))
    sent = client.beta.sessions.events.send(
        session_id, events=[{"type": "user.message", "content": [{"type": "text", "text": "go"}]}]
    )
    model_server.wait_for_requests(1)  # the turn is running, and stays so until released
    with client.beta.sessions.events.stream(session_id) as stream:
        seen = []
        for event in stream:
            seen.append(event)
            if len(seen) == 1:
                model_server.release()
            if event.type == "session.status_idle":
                break
    assert seen[0].id == sent.data[0].id and seen[0].type == "user.message"
    assert [e.type for e in seen][-2:] == ["span.model_request_end", "session.status_idle"]


def test_a_failed_model_call_is_a_session_error_and_the_session_stays_usable(api_server, store, model_server):
    client = api_server.client()
    session_id = new_session(store)
    model_server.enqueue(Reply(status=400, error="the model refuses"), Reply(text="Recovered."))
    failed = turn(client, session_id, "first")
    error = next(e for e in failed if e.type == "session.error")
    assert "the model refuses" in error.error.message
    assert error.error.type == "model_request_failed_error"  # a set-up error is the model's failure too
    assert failed[-1].stop_reason.type == "retries_exhausted"
    assert client.beta.sessions.retrieve(session_id).status == "idle"
    assert [e.content[0].text for e in turn(client, session_id, "again") if e.type == "agent.message"] == [
        "Recovered."
    ]
