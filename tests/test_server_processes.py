"""More than one server process on one store: any of them serves, streams and continues
any session (streams read the store, not a process's memory), and a server killed
mid-turn leaves sessions the next server closes by itself."""

from __future__ import annotations

import signal
from uuid import UUID

import pytest

from agentjournal.application import SessionService
from agentjournal.domain import SessionConfig, Status
from agentjournal.infrastructure.models.scripted import Reply
from tests.conftest import wait_until
from tests.serving import running_server
from tests.test_server_actions import prompt, send, until_idle


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


BOTH = pytest.mark.parametrize(
    "store_env", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def kill_mid_turn(model_server, store_env, sessions: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Start a turn in each session on a server, and kill it (SIGKILL) while they run."""
    model_server.enqueue(*[Reply(text="never seen", stall=60)] * len(sessions))
    with running_server(model_server.base_url, store_env=store_env) as doomed:
        for session_id in sessions:
            send(doomed.client(), session_id, prompt("This turn dies with its server."))
        model_server.wait_for_requests(len(sessions))
        doomed.kill()


@BOTH
def test_a_restarted_server_closes_the_turns_its_killed_predecessor_left_running(model_server, store_env):
    sessions = [new_session_in(store_env) for _ in range(3)]
    kill_mid_turn(model_server, store_env, sessions)
    with running_server(model_server.base_url, store_env=store_env) as survivor:
        client = survivor.client()
        # No prompt needed: the server closes them by itself.
        wait_until(lambda: all(client.beta.sessions.retrieve(s).status == "idle" for s in sessions),
                   "the dead turns to be closed")  # fmt: skip
        for session_id in sessions:
            listed = [e.type for e in client.beta.sessions.events.list(session_id)]
            assert listed == ["user.message", "session.status_running", "session.status_idle"]
        model_server.enqueue(Reply(text="Back again."))
        # From the prompt's id: a quick turn may end before a stream opened after send does.
        [sent] = send(client, sessions[0], prompt("Are you there?"))
        after = until_idle(client, sessions[0], extra_headers={"Last-Event-ID": sent.id})
        texts = [e.content[0].text for e in after if e.type == "agent.message"]
        assert texts == ["Back again."]


@BOTH
def test_streams_on_a_live_server_see_the_end_of_turns_a_killed_server_left(model_server, store_env):
    sessions = [new_session_in(store_env) for _ in range(2)]
    with running_server(model_server.base_url, store_env=store_env) as watcher:
        client = watcher.client()
        model_server.enqueue(*[Reply(text="never seen", stall=60)] * len(sessions))
        with running_server(model_server.base_url, store_env=store_env) as doomed:
            for session_id in sessions:
                send(doomed.client(), session_id, prompt("This turn dies with its server."))
            model_server.wait_for_requests(len(sessions))
            streams = [client.beta.sessions.events.stream(s) for s in sessions]
            doomed.kill()
        for stream in streams:
            with stream:
                for event in stream:
                    if event.type in ("session.status_idle", "session.error"):
                        assert event.type == "session.status_idle"
                        break
        assert all(client.beta.sessions.retrieve(s).status == "idle" for s in sessions)


@BOTH
def test_a_clean_stop_records_the_end_of_every_running_and_queued_turn(model_server, store_env):
    sessions = [new_session_in(store_env) for _ in range(3)]
    model_server.enqueue(*[Reply(text="never seen", stall=60)] * 3)
    extra = ("--turn-workers", "1", "--shutdown-grace", "0.5")
    with running_server(model_server.base_url, store_env=store_env, extra=extra) as server:
        for session_id in sessions:
            send(server.client(), session_id, prompt("Wait for me."))
        model_server.wait_for_requests(1)  # one turn runs, two wait for the only worker
        server.process.send_signal(signal.SIGTERM)
        # Without waiting out the stalled model call; uvicorn ends by the signal it handled.
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    service = SessionService(store_env)
    try:
        for session_id in sessions:
            session = service.get_session(UUID(session_id.removeprefix("sesn_")))
            assert session.status == Status.IDLE
            last = service.audit_log(session.id)[-1]
            assert (last.type, last.payload["stop_reason"]) == ("TurnCompleted", "interrupted")
            assert last.payload["detail"] == "the server shut down before the turn ended"
    finally:
        service.close()
