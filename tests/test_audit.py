"""The audit log as evidence: tamper detection, encryption at rest, export and import,
timeline, diff, and bad input."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.cipher import AESCipher

from agentjournal.application import (
    ConfigError,
    ManagedAgent,
    ManagedConfig,
    SessionService,
    StoreError,
    audit,
)
from agentjournal.application.errors import AgentJournalError
from agentjournal.domain import ToolResult
from agentjournal.domain.chain import event_hash, event_type_name, payload_of
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import TEST_KEY


@pytest.fixture
def sqlite_env(store: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)}


@pytest.fixture
def recorded(model_server, sqlite_env):  # type: ignore[no-untyped-def]
    """A session with two turns, one with a tool call, in an SQLite file."""
    service = SessionService(sqlite_env)
    agent = ManagedAgent(
        config=ManagedConfig(model="openai/m", api_base=model_server.base_url, api_key=TEST_KEY),
        store=service,
    )
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "echo checked"})]), Reply(text="ok")
    )
    agent.run("check it")
    agent.run("Remember: my favorite color is blue")
    yield agent
    service.close()


def rewrite(store: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(store) as db:
        db.execute(sql, params)


def stored_state(store: Path, version: int) -> bytes:
    with sqlite3.connect(store) as db:
        (state,) = db.execute(
            "SELECT state FROM stored_events WHERE originator_version = ?", (version,)
        ).fetchone()
    return bytes(state)


def version_of(agent: ManagedAgent, event_type: str) -> int:
    return next(e.version for e in agent.audit_log() if e.type == event_type)


def reencode(agent: ManagedAgent, event, **changes):  # type: ignore[no-untyped-def]
    """The stored bytes of ``event`` with some fields changed (and its hash left as it was)."""
    changed = dataclasses.replace(event, **changes)
    return agent.service.mapper.to_stored_event(changed).state


def test_an_untouched_log_verifies(recorded):
    result = audit.verify(recorded.service, recorded.state_at().id)
    assert result.ok and result.events == len(recorded.audit_log())
    fork = recorded.fork(3)
    assert audit.verify(recorded.service, fork.state_at().id).ok
    assert [r.ok for r in audit.verify_store(recorded.service)] == [True, True]


def test_an_altered_event_is_named(recorded, store):
    version = version_of(recorded, "UserMessageAdded")
    event = list(recorded.service.events.get(recorded.state_at().id, gt=version - 1, lte=version))[0]
    rewrite(store, "UPDATE stored_events SET state = ? WHERE originator_version = ?",
            reencode(recorded, event, content="delete all the things"), version)  # fmt: skip
    result = audit.verify(recorded.service, event.originator_id)
    assert result.broken is not None and result.broken.version == version
    assert "altered" in result.broken.problem


def test_an_altered_and_rehashed_event_breaks_the_next_link(recorded, store):
    version = version_of(recorded, "ToolResultRecorded")
    event = list(recorded.service.events.get(recorded.state_at().id, gt=version - 1, lte=version))[0]
    forged = dataclasses.replace(
        event, result=ToolResult(event.result.tool_call_id, "execute_command", "all good")
    )
    forged = dataclasses.replace(forged, hash=event_hash(
        event_type_name(type(forged)), forged.originator_id, version, forged.timestamp, forged.previous_hash,
        payload_of(forged),
    ))  # fmt: skip
    rewrite(store, "UPDATE stored_events SET state = ? WHERE originator_version = ?",
            recorded.service.mapper.to_stored_event(forged).state, version)  # fmt: skip
    result = audit.verify(recorded.service, event.originator_id)
    assert result.broken is not None and result.broken.version == version + 1
    assert "does not follow" in result.broken.problem


def test_a_removed_event_is_named(recorded, store):
    rewrite(store, "DELETE FROM stored_events WHERE originator_version = 4")
    result = audit.verify(recorded.service, recorded.state_at(3).id)
    assert result.broken is not None and result.broken.version == 4 and "missing" in result.broken.problem


def test_reordered_events_are_named(recorded, store):
    a, b = stored_state(store, 5), stored_state(store, 6)
    rewrite(store, "UPDATE stored_events SET state = ? WHERE originator_version = 5", b)
    rewrite(store, "UPDATE stored_events SET state = ? WHERE originator_version = 6", a)
    result = audit.verify(recorded.service, recorded.state_at(1).id)
    assert result.broken is not None and result.broken.version == 5


def test_a_removed_last_event_is_noticed_through_the_summary(recorded, store):
    session_id = recorded.state_at().id
    recorded.retrieve_session()  # the summary table has now seen every event
    last = recorded.audit_log()[-1].version
    rewrite(store, "DELETE FROM stored_events WHERE originator_version = ?", last)
    result = audit.verify(recorded.service, session_id)
    assert result.broken is not None and result.broken.version == last and "removed" in result.broken.problem


def test_damaged_bytes_are_named(recorded, store):
    rewrite(store, "UPDATE stored_events SET state = ? WHERE originator_version = 2", b"\xc1garbage")
    result = audit.verify(recorded.service, recorded.state_at(1).id)
    assert (
        result.broken is not None and result.broken.version == 2 and "cannot be read" in result.broken.problem
    )


def test_a_fork_chains_from_its_parent(recorded, store):
    fork = recorded.fork(4)
    fork_id = fork.state_at().id
    first = list(recorded.service.events.get(fork_id, lte=1))[0]
    forged = dataclasses.replace(first, previous_hash="0" * 64)
    forged = dataclasses.replace(forged, hash=event_hash(
        event_type_name(type(forged)), fork_id, 1, forged.timestamp, forged.previous_hash, payload_of(forged)
    ))  # fmt: skip
    rewrite(store, "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 1",
            recorded.service.mapper.to_stored_event(forged).state, fork_id.hex)  # fmt: skip
    result = audit.verify(recorded.service, fork_id)
    assert result.broken is not None and "does not chain from its parent's event 4" in result.broken.problem


def test_the_cli_reports_a_broken_chain_with_a_failing_exit(recorded, store):
    from tests.test_cli import agentjournal

    ok = agentjournal("verify", store=store)
    assert ok.stdout.startswith("ok ")
    rewrite(store, "DELETE FROM stored_events WHERE originator_version = 3")
    broken = agentjournal("verify", str(recorded.state_at(1).id), store=store, check=False)
    assert broken.returncode == 1 and "BROKEN" in broken.stdout and "at event 3" in broken.stdout


def test_encrypted_stores_hold_no_plaintext(model_server, tmp_path):
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "secret.db"),
        "CIPHER_KEY": AESCipher.create_key(32),
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    }
    service = SessionService(env)
    agent = ManagedAgent(
        config=ManagedConfig(model="openai/m", api_base=model_server.base_url, api_key=TEST_KEY),
        store=service,
    )
    model_server.enqueue(Reply(text="The launch code is tangerine-42."))
    agent.run("Project Nightingale: what is the launch code?")
    assert agent.retrieve_session()["title"] == "Project Nightingale: what is the launch code?"
    assert audit.verify(service, agent.state_at().id).ok
    service.close()

    stored = b"".join(path.read_bytes() for path in tmp_path.glob("secret.db*"))
    for plaintext in (b"Nightingale", b"tangerine", b"launch code"):
        assert plaintext not in stored

    wrong = SessionService({**env, "CIPHER_KEY": AESCipher.create_key(32)})
    result = audit.verify(wrong, UUID(agent.session_id))
    assert (
        result.broken is not None and result.broken.version == 1 and "cannot be read" in result.broken.problem
    )
    wrong.close()


def test_export_and_import_give_an_identical_verifiable_session(recorded, tmp_path):
    session_id = recorded.state_at().id
    lines = list(audit.export_session(recorded.service, session_id))
    other = SessionService(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "o.db")}
    )
    assert audit.import_session(other, lines) == session_id
    assert other.audit_log(session_id) == recorded.service.audit_log(session_id)
    assert other.get_session(session_id).state() == recorded.state_at().state()
    assert audit.verify(other, session_id) == audit.verify(recorded.service, session_id)
    assert other.summary(session_id).title == recorded.retrieve_session()["title"]
    with pytest.raises(AgentJournalError, match="already in this store"):
        audit.import_session(other, lines)
    other.close()


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda lines: [b"{not json"], "line 1 of the import is not an exported event"),
        (lambda lines: [lines[0].replace(b"agentjournal-events/1", b"other/9")], "format 'other/9'"),
        (
            lambda lines: [
                lines[0].replace(b"agentjournal.domain.session:Session.SessionStarted", b"os:system")
            ],
            "not a session event",
        ),
        (lambda lines: lines[1:], "numbered 1, 2, 3"),
        (lambda lines: [], "nothing to import"),
    ],
)
def test_a_bad_import_is_refused_whole(recorded, tmp_path, mangle, message):
    lines = list(audit.export_session(recorded.service, recorded.state_at().id))
    other = SessionService(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "o.db")}
    )
    with pytest.raises(AgentJournalError, match=message):
        audit.import_session(other, mangle(lines))
    assert other.list_summaries() == []
    other.close()


def test_the_timeline_tells_who_did_what(recorded):
    fork = recorded.fork(4)
    entries = audit.timeline(recorded.service, recorded.state_at().id)
    texts = [f"{e.actor}: {e.text}" for e in entries]
    assert "user: check it" in texts
    assert any(t.startswith("tool: execute_command -> exit 0,") and t.endswith("ms: checked") for t in texts)
    assert any(t.startswith("session: turn ended (end_turn); tokens ") for t in texts)
    forked = audit.timeline(recorded.service, fork.state_at().id)
    assert forked[0].text.startswith(f"forked from {recorded.session_id} at event 4")


def test_diff_names_a_grandchild_and_cousins_by_their_forks(recorded):
    service, root = recorded.service, recorded.state_at().id
    child = service.fork(root, 4)
    grandchild = service.fork(child, 1)
    cousin = service.fork(service.fork(root, 2), 1)

    assert audit.diff(service, root, grandchild).relation == (
        f"{grandchild} was forked from {child} at event 1, which was forked from {root} at event 4"
    )
    assert audit.diff(service, grandchild, root).relation == audit.diff(service, root, grandchild).relation
    assert (
        audit.diff(service, child, grandchild).relation == f"{grandchild} was forked from {child} at event 1"
    )
    cousins = audit.diff(service, grandchild, cousin).relation
    assert cousins.startswith(f"both descend from {root}: {grandchild} was forked from {child}")
    assert cousins.endswith(f"which was forked from {root} at event 2")
    assert audit.diff(service, child, service.fork(root, 3)).relation == f"both were forked from {root}"


def test_diff_shows_where_a_fork_parts_from_its_parent(recorded):
    fork = recorded.fork(version_of(recorded, "TurnCompleted"))
    fork.run("Remember: my favorite color is green")
    result = audit.diff(recorded.service, recorded.state_at().id, fork.state_at().id)
    assert "was forked from" in result.relation
    assert result.shared_messages == 4  # prompt, tool call, its result, the reply
    assert [audit.describe(m) for m in result.left_only][0] == "user: Remember: my favorite color is blue"
    assert [audit.describe(m) for m in result.right_only][0] == "user: Remember: my favorite color is green"


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    garbage = tmp_path / "not.db"
    garbage.write_bytes(b"this is not a database " * 100)
    with pytest.raises(StoreError, match="cannot use .*not.db as a session store: file is not a database"):
        SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(garbage)})
    assert garbage.read_bytes() == b"this is not a database " * 100


def test_another_programs_store_is_a_clear_error(tmp_path):
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, "
                   "state BLOB, PRIMARY KEY (originator_id, originator_version))")  # fmt: skip
        db.execute(
            "INSERT INTO stored_events VALUES ('6af517aa5f0e4467a882d600577f82a9', 1, 'shop.orders:Order.Created', x'80')"
        )
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(foreign)})
    with pytest.raises(StoreError, match="cannot be read as an agentjournal event.*shop.orders"):
        service.list_summaries()
    service.close()


def test_an_oversized_prompt_is_refused_before_anything_is_recorded(model_server, tmp_path):
    agent = ManagedAgent(
        config=ManagedConfig(model="openai/m", api_base=model_server.base_url, api_key=TEST_KEY,
                             max_prompt_chars=1000),
        store=tmp_path / "s.db",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="1,001 characters; the limit is 1,000"):
        agent.run("x" * 1001)
    assert agent.retrieve_session()["id"] == "" and model_server.requests == []


def test_invalid_utf8_tool_output_is_recorded_readably(model_server, tmp_path):
    agent = ManagedAgent(
        config=ManagedConfig(model="openai/m", api_base=model_server.base_url, api_key=TEST_KEY),
        store=tmp_path / "s.db",
    )
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "printf 'a\\377\\300b'"})]),
        Reply(text="ok"),
    )
    agent.run("bytes")
    result = next(m for m in agent.state_at().messages if isinstance(m, ToolResult))
    assert result.output == "a\ufffd\ufffdb"
    assert audit.verify(agent.service, agent.state_at().id).ok
