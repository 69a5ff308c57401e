"""Stores and exports written under the project's first name, sessionlog 0.1, still open,
replay, verify and take new turns.

``tests/fixtures/sessionlog-0.1`` was written by that code (``make.py`` there, run from
the last commit before the rename): one session with a tool call, a failed turn and
snapshots every 5 events, a fork of it, and the session's export. Its topics name the
module paths of the time (``domain.session:Session.UserMessageAdded``) and its hashes
cover them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest

from agentjournal import ManagedAgent, RecordedConfigWarning, SessionService
from agentjournal.application import audit
from agentjournal.domain import Session, SessionConfig, Status
from agentjournal.infrastructure.compute.confined import ConfinedHostCompute

FIXTURE = Path(__file__).parent / "fixtures" / "sessionlog-0.1"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())
SESSION = UUID(EXPECTED["session_id"])
FORK = UUID(EXPECTED["fork_id"])


def plain(state: dict[str, Any]) -> Any:
    return json.loads(msgspec.json.encode(state))


def assert_same_state(state: dict[str, Any], old: dict[str, Any]) -> None:
    """``state`` is what the old code's state was, where today's rules agree with its.

    Two rules changed since: the config has fields it lacked (they must hold their
    defaults), and an error shows only while the session is in the error state of the
    turn that failed."""
    now = plain(state)
    new_config_fields = set(now["config"]) - set(old["config"])
    defaults = plain({"config": SessionConfig(model="", system="", name="", tools=())})["config"]
    assert {name: now["config"][name] for name in new_config_fields} == {
        name: defaults[name] for name in new_config_fields
    }
    assert {name: now["config"][name] for name in old["config"]} == old["config"]
    assert now["last_error"] == (old["last_error"] if old["status"] == "error" else "")
    changed = {"config", "last_error"}
    assert {k: v for k, v in now.items() if k in old and k not in changed} == {
        k: v for k, v in old.items() if k not in changed
    }


@pytest.fixture
def legacy_store(tmp_path: Path) -> Path:
    """A copy of the old store: opening a store writes to it (the summary table, WAL)."""
    copy = tmp_path / "sessions.db"
    shutil.copyfile(FIXTURE / "sessions.db", copy)
    return copy


@pytest.fixture
def legacy(legacy_store: Path):  # type: ignore[no-untyped-def]
    service = SessionService(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(legacy_store)}
    )
    yield service
    service.close()


def test_the_fixture_really_is_in_the_old_format(legacy: SessionService) -> None:
    topics = {record.topic for record in legacy.recorder.select_events(SESSION)}
    assert "domain.session:Session.SessionStarted" in topics
    assert all(topic.startswith("domain.session:") for topic in topics)
    assert list(legacy.snapshots.get(SESSION)), "the fixture should hold snapshots"


def test_an_old_store_replays_to_the_state_it_had(legacy: SessionService) -> None:
    assert_same_state(legacy.get_session(SESSION).state(), EXPECTED["session_state"])
    assert_same_state(legacy.get_session(FORK).state(), EXPECTED["fork_state"])
    failed = [e for e in legacy.audit_log(SESSION) if e.type == "TurnFailed"]
    assert len(failed) == 1


def test_an_old_store_loads_the_same_from_snapshots_and_from_events(legacy: SessionService) -> None:
    from_snapshot = legacy.get_session(SESSION)
    replayed: Session | None = None
    for event in legacy.events.get(SESSION):
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert from_snapshot.state() == replayed.state()


def test_an_old_store_verifies(legacy: SessionService) -> None:
    for session_id in (SESSION, FORK):
        result = audit.verify(legacy, session_id)
        assert result.ok, result.broken
    assert [r.ok for r in audit.verify_store(legacy)] == [True, True]


def test_an_old_store_is_listed(legacy: SessionService) -> None:
    summaries = {s.id: s for s in legacy.list_summaries()}
    assert set(summaries) == {SESSION, FORK}
    assert summaries[FORK].parent_id == SESSION
    assert summaries[SESSION].status == Status.IDLE


def test_an_old_session_takes_new_turns_and_its_mixed_chain_verifies(
    legacy: SessionService, config: Any, model_server: Any, tmp_path: Path
) -> None:
    # The old session recorded a work folder under /tmp/legacy; this test's own stands in for it.
    compute = ConfinedHostCompute(tmp_path / "work")
    agent = ManagedAgent(config=msgspec.structs.replace(config, tools=[]), compute=compute, store=legacy)
    with pytest.warns(RecordedConfigWarning, match="keeps its recorded tools"):
        agent.resume_session(SESSION)
    assert agent.run("What is my favorite color?") == "Your favorite color is blue."
    new_topics = {r.topic for r in legacy.recorder.select_events(SESSION, gt=EXPECTED["session_version"])}
    assert new_topics and all(t.startswith("agentjournal.domain.session:") for t in new_topics)
    assert audit.verify(legacy, SESSION).ok

    fork = agent.fork(at_version=3)
    assert fork.session_id is not None
    assert audit.verify(legacy, UUID(fork.session_id)).ok


def test_an_old_export_imports_and_verifies(service: SessionService) -> None:
    with (FIXTURE / "export.jsonl").open("rb") as lines:
        assert audit.import_session(service, lines) == SESSION
    assert_same_state(service.get_session(SESSION).state(), EXPECTED["session_state"])
    assert audit.verify(service, SESSION).ok


def test_an_old_event_whose_content_changed_still_fails_verification(
    legacy: SessionService, legacy_store: Path
) -> None:
    import sqlite3

    record = legacy.recorder.select_events(SESSION, gt=1, limit=1)[0]
    event = legacy.mapper.to_domain_event(record)
    assert isinstance(event, Session.UserMessageAdded)
    altered = type(event)(**{**vars(event), "content": "something else"})
    with sqlite3.connect(legacy_store) as db:
        db.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
            (legacy.mapper.to_stored_event(altered).state, SESSION.hex, record.originator_version),
        )
    result = audit.verify(legacy, SESSION)
    assert result.broken is not None and result.broken.version == record.originator_version
