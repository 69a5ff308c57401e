"""The work folder's manifest as a fold over ``WorkspaceChanged`` events, without any I/O."""

from __future__ import annotations

import hashlib

import pytest

from agentjournal.application.audit import verify
from agentjournal.application.service import SessionService
from agentjournal.domain import FileState, Session, SessionConfig, SessionTerminatedError
from agentjournal.domain.chain import event_hash, event_type_name, payload_of

CONFIG = SessionConfig(model="m", system="s", name="n", tools=("execute_command",))
CONTENTS = {"a1": b"first a", "a2": b"second a", "b1": b"#!/bin/sh\n"}
A1, A2, B1 = (
    FileState(hashlib.sha256(CONTENTS[name]).hexdigest(), len(CONTENTS[name]), mode)
    for name, mode in (("a1", 0o644), ("a2", 0o644), ("b1", 0o755))
)


def replay(session: Session) -> Session:
    rebuilt = None
    for event in session.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    return rebuilt


def test_only_what_changed_is_recorded_and_the_manifest_is_the_fold():
    session = Session.start(CONFIG)
    assert session.record_workspace({"a.txt": A1, "bin/run": B1}, "call-1")
    assert not session.record_workspace({"a.txt": A1, "bin/run": B1}, "call-2")  # nothing changed
    assert session.record_workspace({"a.txt": A2}, "call-3")  # a.txt edited, bin/run deleted
    events = [e for e in session.pending_events if isinstance(e, Session.WorkspaceChanged)]
    assert [(e.changed, e.deleted, e.tool_call_id) for e in events] == [
        ({"a.txt": A1, "bin/run": B1}, (), "call-1"),
        ({"a.txt": A2}, ("bin/run",), "call-3"),
    ]
    assert session.files == {"a.txt": A2}
    assert replay(session).state() == session.state()


def test_each_change_is_a_link_of_the_hash_chain():
    session = Session.start(CONFIG)
    session.record_workspace({"a.txt": A1}, "call-1")
    change = session.pending_events[-1]
    assert change.previous_hash == session.pending_events[0].hash
    expected = event_hash(
        event_type_name(type(change)),
        session.id,
        2,
        change.timestamp,
        change.previous_hash,
        payload_of(change),
    )
    assert change.hash == expected


def test_the_manifest_at_every_version_and_in_a_fork(tmp_path):
    service = SessionService({"SQLITE_DBNAME": str(tmp_path / "s.db")})
    session = Session.start(CONFIG)
    session.record_workspace({"a.txt": A1}, "call-1")
    session.record_workspace({"a.txt": A2, "b.txt": B1}, "call-2")
    session.record_workspace({"b.txt": B1}, "call-3")
    service.blobs.add(CONTENTS.values())
    service.save(session)
    assert [dict(service.get_session(session.id, v).files) for v in (1, 2, 3, 4)] == [
        {},
        {"a.txt": A1},
        {"a.txt": A2, "b.txt": B1},
        {"b.txt": B1},
    ]
    fork_id = service.fork(session.id, at_version=3)
    fork = service.get_session(fork_id)
    assert fork.files == {"a.txt": A2, "b.txt": B1}
    assert verify(service, session.id).ok
    assert verify(service, fork_id).ok
    assert service.get_session(session.id).files == {"b.txt": B1}  # the parent is untouched


def test_a_terminated_session_records_no_files():
    session = Session.start(CONFIG)
    session.terminate()
    with pytest.raises(SessionTerminatedError):
        session.record_workspace({"a.txt": A1})
