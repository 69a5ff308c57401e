"""A session's log read as the store's rows (``RangedLog``) is the log eventsourcing reads:
the same events, of the same classes, with the same state, for every range, through the
store's cipher; and a row that does not decode is refused, never skipped (SQLite and
PostgreSQL)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from eventsourcing.cipher import AESCipher
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent

from agentjournal.application import SessionService
from agentjournal.domain import AssistantMessage, Session, SessionConfig, ToolCall, ToolResult, Usage
from agentjournal.infrastructure.stores.log_rows import RangedLog

pytestmark = pytest.mark.timeout(120)

CONFIG = SessionConfig(
    model="gpt-4o-mini", system="", name="rows", tools=(), networking={"type": "unrestricted"}
)


def grown(service: SessionService, turns: int) -> UUID:
    session = Session.start(CONFIG, title="")
    for n in range(turns):
        session.begin_turn(f"question {n}", "test")
        call = ToolCall(f"c{n}", "shell", '{"command": "true"}')
        session.add_assistant_message(AssistantMessage(f"running {n}", (call,)))
        session.start_tool_call(call)
        session.record_tool_result(ToolResult(call.id, "shell", f"ran {n}"))
        session.record_usage("gpt-4o-mini", Usage(3, 4))
        session.add_assistant_message(AssistantMessage(f"done {n}"))
        session.complete_turn()
    service.save_session(session)
    return session.id


def as_read(events: Any) -> list[tuple[type, dict[str, Any]]]:
    return [(type(event), dict(vars(event))) for event in events]


def same_as_eventsourcing(service: SessionService, session_id: UUID) -> None:
    log = RangedLog.of(service.events)
    length = len(list(service.events.get(session_id)))
    for gt, lte, limit in [(None, None, None), (0, None, 7), (5, 20, None), (length - 3, None, 100),
                           (length, None, None), (3, 3, None), (None, 10, 4)]:  # fmt: skip
        expected = as_read(service.events.get(session_id, gt=gt, lte=lte, limit=limit))
        assert as_read(log.get(session_id, gt=gt, lte=lte, limit=limit)) == expected
    assert as_read(log.get(session_id))[-1][1]["originator_version"] == length


def test_the_rows_decode_to_the_events_eventsourcing_reads(service):
    session_id = grown(service, 12)
    grown(service, 3)  # another session's rows stay its own
    same_as_eventsourcing(service, session_id)


def test_an_encrypted_store_reads_the_same_through_its_cipher(store_env):
    service = SessionService({**store_env, "CIPHER_TOPIC": "eventsourcing.cipher:AESCipher",
                              "CIPHER_KEY": AESCipher.create_key(32)})  # fmt: skip
    try:
        session_id = grown(service, 5)
        same_as_eventsourcing(service, session_id)
        stored = service.events.recorder.select_events(session_id, limit=1)[0].state
        assert b"question 0" not in stored and b"rows" not in stored  # the rows are ciphertext
    finally:
        service.close()


def test_a_row_that_does_not_decode_is_refused_not_skipped(service):
    session_id = grown(service, 2)
    length = len(list(service.events.get(session_id)))
    topic = "agentjournal.domain.session:Session.UserMessageAdded"
    damaged = StoredEvent(session_id, length + 1, topic, bytes([0xC1, 1]) + b"\xff not MessagePack")
    service.events.recorder.insert_events([damaged])
    log = RangedLog.of(service.events)
    assert len(list(log.get(session_id, lte=length))) == length
    with pytest.raises(MapperDeserialisationError, match=f"originator_version {length + 1}"):
        list(log.get(session_id))
    with pytest.raises(MapperDeserialisationError):
        list(service.events.get(session_id))  # as eventsourcing refuses it


def test_rows_in_the_transcoders_format_among_typed_rows_decode_as_eventsourcing_reads_them(service):
    """A read decodes typed rows in one loop; a row written in the transcoder's format (as
    every row was before the typed mapper) takes the per-row path within the same read."""
    session_id = grown(service, 2)
    session = service.get_session(session_id)
    session.begin_turn("in the old format", "test")
    session.add_assistant_message(AssistantMessage("still read"))
    untyped = [Mapper.to_stored_event(service.mapper, event) for event in session.collect_events()]
    assert all(stored.state[0] != 0xC1 for stored in untyped)  # not the typed format
    service.events.recorder.insert_events(untyped)
    grown_further = service.get_session(session_id)
    grown_further.complete_turn()
    service.save_session(grown_further)  # a typed row after them
    same_as_eventsourcing(service, session_id)
