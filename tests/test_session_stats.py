"""A session's ``stats``, folded from its log by the summary projection: the time spent
running (a turn's, counted to now while it runs) and the time since creation (frozen once
the session is terminated); through the official SDK against a real server, and the fold."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from agentjournal.application import SessionService
from agentjournal.application.projection import SessionStats, SessionSummary, session_stats
from agentjournal.domain import Status, Usage
from agentjournal.infrastructure.models.scripted import Reply
from tests.conftest import wait_until
from tests.test_server_sessions import new_session, turn

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(120)]

START = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


def summary(**changes: object) -> SessionSummary:
    fields: dict[str, object] = {
        "id": uuid.uuid4(), "name": "", "model": "m", "status": Status.IDLE, "title": "", "usage": Usage(),
        "message_count": 0, "tool_call_count": 0, "turn_count": 0, "version": 1,
        "created_at": START, "updated_at": START,
    }  # fmt: skip
    return SessionSummary(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_running_turn_counts_to_now_and_termination_freezes_the_duration():
    later = START + timedelta(seconds=100)
    running = summary(active_seconds=5.0, running_since=START + timedelta(seconds=90))
    assert session_stats(running, later) == SessionStats(active_seconds=15.0, duration_seconds=100.0)
    ended = summary(active_seconds=5.0, ended_at=START + timedelta(seconds=30))
    assert session_stats(ended, later).duration_seconds == 30.0
    assert session_stats(ended, later + timedelta(days=1)).active_seconds == 5.0


def test_stats_after_a_turn_come_from_the_log(api_server, store, model_server):
    client = api_server.client()
    session_id = new_session(store)
    fresh = client.beta.sessions.retrieve(session_id)
    assert fresh.stats.active_seconds == 0.0 and fresh.stats.duration_seconds >= 0.0

    model_server.enqueue(Reply(text="a slow reply, word by word", delay=0.05))
    turn(client, session_id, "Take your time.")
    after = client.beta.sessions.retrieve(session_id)
    assert 0.2 < after.stats.active_seconds <= after.stats.duration_seconds

    wait_until(
        lambda: (
            client.beta.sessions.retrieve(session_id).stats.duration_seconds > after.stats.duration_seconds
        ),
        "the duration to grow while the session is open",
    )
    idle = client.beta.sessions.retrieve(session_id)
    assert idle.stats.active_seconds == after.stats.active_seconds  # an idle session is not running
    [listed] = [s for s in client.beta.sessions.list() if s.id == session_id]
    assert listed.stats.active_seconds == after.stats.active_seconds

    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    try:
        service.terminate(uuid.UUID(session_id.removeprefix("sesn_")))
    finally:
        service.close()
    closed = client.beta.sessions.retrieve(session_id)
    assert closed.status == "terminated"
    # microseconds pass between two requests: an open session's duration would differ
    assert client.beta.sessions.retrieve(session_id).stats == closed.stats
