"""Annotations: notes and scores on a session's events, in a hash-chained log of their
own, checked like sessions; and the dataset made from them. Through the application on
SQLite and PostgreSQL, the command line in its own process, and the API of a real server."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from agentjournal.application import ManagedAgent, SessionService, annotating, audit
from agentjournal.application.errors import SessionNotFound, VersionNotFound
from agentjournal.application.redaction import Redactor
from agentjournal.domain.annotation import AnnotationRefused, annotation_log_id
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import ROOT
from tests.serving import API_KEY
from tests.test_server_sessions import new_session

pytestmark = pytest.mark.timeout(120)

HEADERS = {"x-api-key": API_KEY}


@pytest.fixture
def worked(make_agent, model_server) -> ManagedAgent:  # type: ignore[no-untyped-def]
    """A session of two turns: a tool call and its answer, then a plain reply."""
    agent = make_agent()
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "echo checked"})]),
        Reply(text="all done"),
        Reply(text="second answer"),
    )
    agent.run("check it")
    agent.run("and again")
    return agent  # type: ignore[no-any-return]


def session_of(agent: ManagedAgent) -> UUID:
    assert agent.session_id is not None
    return UUID(agent.session_id)


def version_of(agent: ManagedAgent, event_type: str, nth: int = 0) -> int:
    return [e.version for e in agent.audit_log() if e.type == event_type][nth]


def stored_hash(agent: ManagedAgent, version: int) -> str:
    return str(next(e.payload["hash"] for e in agent.audit_log() if e.version == version))


# -- the application ------------------------------------------------------------------------


def test_an_annotation_names_its_event_and_leaves_the_session_log_as_it_was(worked, service):
    session_id = session_of(worked)
    before = audit.verify(service, session_id)
    result = version_of(worked, "ToolResultRecorded")

    first = annotating.annotate(service, session_id, result, "the command was right", 0.9)
    second = annotating.annotate(service, session_id, 1, score=-1)

    after = audit.verify(service, session_id)
    assert (after.events, after.head) == (before.events, before.head)
    assert first.annotation.event_version == result
    assert first.annotation.event_type == "ToolResultRecorded"
    assert first.annotation.event_hash == stored_hash(worked, result)
    assert (first.annotation.note, first.annotation.score) == ("the command was right", 0.9)
    assert second.annotation.event_hash == stored_hash(worked, 1) and second.annotation.note == ""
    listed = annotating.annotations_of(service, session_id)
    assert [r.annotation.id for r in listed] == [first.annotation.id, second.annotation.id]
    assert [r.log_version for r in listed] == [2, 3]  # the log's first event opens it
    checked = annotating.verify_annotations(service, session_id)
    assert checked is not None and checked.ok and checked.events == 3 and checked.head == second.hash
    assert checked.session_id == annotation_log_id(session_id) != session_id
    whole_store = {r.session_id: r.ok for r in audit.verify_store(service)}
    assert whole_store == {session_id: True, annotation_log_id(session_id): True}


def test_a_terminated_session_is_annotated(worked, service):
    session_id = session_of(worked)
    service.terminate(session_id, "done")
    last = service.get_session(session_id).version
    made = annotating.annotate(service, session_id, last, "ended at the right moment")
    assert made.annotation.event_type == "SessionTerminated"
    assert service.get_session(session_id).version == last


def test_an_annotation_that_says_nothing_or_names_no_event_is_refused(worked, service):
    session_id = session_of(worked)
    head = service.get_session(session_id).version
    for note, score in (("", None), ("   ", None), ("x", float("nan")), ("x", float("inf"))):
        with pytest.raises(AnnotationRefused):
            annotating.annotate(service, session_id, 1, note, score)
    with pytest.raises(AnnotationRefused, match="at most"):
        annotating.annotate(service, session_id, 1, "x" * 10_001)
    for version in (0, head + 1):
        with pytest.raises(VersionNotFound, match=f"numbered 1 to {head}"):
            annotating.annotate(service, session_id, version, "x")
    with pytest.raises(SessionNotFound):
        annotating.annotate(service, UUID(int=7), 1, "x")
    with pytest.raises(SessionNotFound):  # an annotation log is no session to annotate
        annotating.annotate(service, annotation_log_id(session_id), 1, "x")
    assert annotating.annotations_of(service, session_id) == []
    assert annotating.verify_annotations(service, session_id) is None


def test_a_note_is_redacted_like_everything_recorded(worked, service):
    secret = "sk-live-annotation-secret-0042"
    made = annotating.annotate(
        service, session_of(worked), 1, f"the key {secret} leaked", redact=Redactor({"LEAKED": secret})
    )
    assert made.annotation.note == "the key [redacted:LEAKED] leaked"
    lines = list(annotating.dataset(service, [session_of(worked)]))
    assert secret not in json.dumps([line.note for line in lines])


def test_the_dataset_holds_each_annotated_turn_in_chat_form(worked, service):
    session_id = session_of(worked)
    result = version_of(worked, "ToolResultRecorded")
    second_prompt = version_of(worked, "UserMessageAdded", 1)
    annotating.annotate(service, session_id, result, "ran the right command", 1)
    annotating.annotate(service, session_id, second_prompt, "a vague prompt", 0)
    annotating.annotate(service, session_id, 1, "the config")
    records = annotating.annotations_of(service, session_id)

    first, second, outside = annotating.dataset(service, [session_id])

    assert first.format == "agentjournal-dataset/1" and first.session_id == str(session_id)
    assert first.turn == 1 and first.model == "openai/gpt-4o-mini"
    assert [m["role"] for m in first.input] == ["system", "user"]
    assert first.input[-1] == {"role": "user", "content": "check it"}
    assert first.output == "all done"
    assert [m["role"] for m in first.steps] == ["assistant", "tool", "assistant"]
    (call,) = first.tool_calls
    assert call.name == "execute_command" and json.loads(call.arguments) == {"command": "echo checked"}
    assert call.output is not None and "checked" in call.output and call.exit_code == 0
    assert first.steps[0]["tool_calls"][0]["id"] == call.id == first.steps[1]["tool_call_id"]
    assert (first.note, first.score) == ("ran the right command", 1.0)
    assert first.event.version == result and first.event.hash == stored_hash(worked, result)
    assert first.annotation.hash == records[0].hash and first.annotation.id == records[0].annotation.id.hex
    assert first.session_head == audit.verify(service, session_id).head

    # The prompt of a turn belongs to that turn, and its input holds the turns before it.
    assert second.turn == 2 and second.output == "second answer" and second.tool_calls == []
    assert [m["role"] for m in second.input] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert second.input[-1]["content"] == "and again"
    # An event outside any turn: the conversation as of it, and no output.
    assert outside.turn is None and outside.output == "" and outside.steps == []
    assert [m["role"] for m in outside.input] == ["system"]


def test_a_fork_has_annotations_of_its_own(worked, service):
    parent = session_of(worked)
    fork = service.fork(parent, version_of(worked, "TurnCompleted"))
    annotating.annotate(service, fork, 1, "on the fork")
    assert annotating.annotations_of(service, parent) == []
    assert [r.annotation.note for r in annotating.annotations_of(service, fork)] == ["on the fork"]
    assert annotating.annotated_sessions(service) == [fork]
    (line,) = annotating.dataset(service, [fork])  # the fork's start: the conversation it inherited
    assert line.turn is None and line.event.type == "SessionForked"
    assert [m["role"] for m in line.input] == ["system", "user", "assistant", "tool", "assistant"]


# -- tampering ------------------------------------------------------------------------------


@pytest.fixture
def sqlite_service(store: Path) -> Iterator[SessionService]:
    """A store in an SQLite file, whose rows the tests alter with SQLite's own client and
    the command line opens."""
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    yield service
    service.close()


@pytest.fixture
def on_disk(config, model_server, sqlite_service) -> UUID:  # type: ignore[no-untyped-def]
    """A session of one turn with a tool call, in the SQLite file; its id."""
    agent = ManagedAgent(config=config, store=sqlite_service)
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "echo from-cli"})]),
        Reply(text="done"),
    )
    agent.run("run it")
    return session_of(agent)


def rewrite(store: Path, aggregate: UUID, version: int, old: bytes, new: bytes) -> None:
    with sqlite3.connect(store) as db:
        (state,) = db.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
            (aggregate.hex, version),
        ).fetchone()
        assert old in state
        db.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
            (bytes(state).replace(old, new), aggregate.hex, version),
        )


def test_an_altered_annotation_is_detected(on_disk, sqlite_service, store):
    session_id, service = on_disk, sqlite_service
    annotating.annotate(service, session_id, 1, "a fair start", 0.5)
    annotating.annotate(service, session_id, 2, "a clear prompt", 0.75)
    rewrite(store, annotation_log_id(session_id), 2, b"a fair start", b"a poor start")

    checked = annotating.verify_annotations(service, session_id)

    assert checked is not None and checked.broken is not None
    assert checked.broken.version == 2 and "altered" in checked.broken.problem
    assert audit.verify(service, session_id).ok  # the session's own log is untouched


def test_an_annotation_catches_its_event_changed_under_it(on_disk, sqlite_service, store):
    """The annotation keeps the hash of the event it judged: a session event re-hashed
    after the annotation was made no longer matches it."""
    session_id, service = on_disk, sqlite_service
    made = annotating.annotate(service, session_id, 2, "a clear prompt")
    old = made.annotation.event_hash.encode()
    rewrite(store, session_id, 2, old, bytes(reversed(old)))

    checked = annotating.verify_annotations(service, session_id)

    assert checked is not None and checked.broken is not None and checked.broken.version == 2
    assert f"annotates event 2 of session {session_id}" in checked.broken.problem
    assert "its hash is now" in checked.broken.problem


# -- the command line -----------------------------------------------------------------------


def agentjournal(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentjournal", "--store", str(store), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_annotate_list_verify_and_dataset_from_the_command_line(on_disk, store, tmp_path):
    session_id = on_disk
    wire = f"sesn_{session_id.hex}"
    made = agentjournal(
        "annotate", str(session_id)[:8], "2", "--note", "good prompt", "--score", "4", store=store
    )
    assert made.returncode == 0, made.stderr
    shown = agentjournal("annotate", wire, "1", "--note", "start", "--json", store=store)
    assert shown.returncode == 0, shown.stderr
    second = json.loads(shown.stdout)
    assert second["event"]["version"] == 1 and second["event"]["type"] == "SessionStarted"

    listed = agentjournal("annotations", str(session_id), "--json", store=store)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["id"] for r in rows] == [made.stdout.strip(), second["id"]]
    assert rows[0]["score"] == 4.0 and rows[0]["note"] == "good prompt"

    verified = agentjournal("verify", str(session_id), store=store)
    assert verified.returncode == 0
    lines = verified.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"ok      {annotation_log_id(session_id)}  3 events")
    assert f"the annotations of {session_id}" in lines[1]

    out = tmp_path / "dataset.jsonl"
    written = agentjournal("dataset", "--all", "-o", str(out), store=store)
    assert written.returncode == 0, written.stderr
    assert "2 annotation(s) from 1 session(s)" in written.stderr
    data = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["event"]["version"] for d in data] == [2, 1]
    assert data[0]["turn"] == 1 and data[0]["output"] == "done"
    assert data[0]["tool_calls"][0]["name"] == "execute_command"
    to_stdout = agentjournal("dataset", "--session", wire, store=store)
    assert [json.loads(line) for line in to_stdout.stdout.splitlines()] == data


def test_bad_annotations_from_the_command_line_are_refused_plainly(on_disk, store, tmp_path):
    session_id = str(on_disk)
    for args, status, says in (
        (("annotate", session_id, "1"), 2, "needs a note, a score, or both"),
        (("annotate", session_id, "1", "--score", "high"), 2, "'high' is not a number"),
        (("annotate", session_id, "1", "--score", "nan"), 2, "not a finite number"),
        (("annotate", session_id, "999", "--note", "x"), 3, "has no event 999"),
        (("annotate", "0" * 32, "1", "--note", "x"), 3, "no session 00000000-"),
        (("dataset", "--all", "-o", str(tmp_path / "missing" / "out.jsonl")), 2, "cannot write"),
    ):
        done = agentjournal(*args, store=store)
        assert done.returncode == status, (args, done.stderr)
        assert says in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_the_command_line_says_when_the_annotation_log_was_altered(on_disk, store):
    session_id = on_disk
    assert agentjournal("annotate", str(session_id), "1", "--note", "honest", store=store).returncode == 0
    rewrite(store, annotation_log_id(session_id), 2, b"honest", b"faked!")
    verified = agentjournal("verify", str(session_id), store=store)
    assert verified.returncode == 1
    assert verified.stdout.splitlines()[0].startswith("ok")
    assert verified.stdout.splitlines()[1].startswith(f"BROKEN  {annotation_log_id(session_id)}  at event 2")
    listed = agentjournal("annotations", str(session_id), store=store)
    assert listed.returncode == 1 and "BROKEN at its event 2" in listed.stderr


# -- the API --------------------------------------------------------------------------------


def test_annotations_over_http(api_server, store):
    session_id = new_session(store)
    url = f"{api_server.url}/x-agentjournal/v1/sessions/{session_id}/annotations"
    assert httpx.get(url, headers=HEADERS).json() == {"data": [], "verification": None}

    made = httpx.post(url, headers=HEADERS, json={"version": 1, "note": "a sound config", "score": 0.8})
    assert made.status_code == 200, made.text
    annotation = made.json()
    assert annotation["session_id"] == session_id and annotation["event"]["type"] == "SessionStarted"
    log = httpx.get(f"{api_server.url}/x-agentjournal/v1/sessions/{session_id}/log", headers=HEADERS).json()
    assert annotation["event"]["hash"] == log["data"][0]["payload"]["hash"]

    terminated = httpx.post(
        f"{api_server.url}/x-agentjournal/v1/sessions/{session_id}/terminate", headers=HEADERS, json={}
    )
    assert terminated.status_code == 200, terminated.text
    later = httpx.post(url, headers=HEADERS, json={"version": 2, "score": 1})
    assert later.status_code == 200, later.text

    listed = httpx.get(url, headers=HEADERS).json()
    assert [a["id"] for a in listed["data"]] == [annotation["id"], later.json()["id"]]
    assert listed["verification"]["ok"] and listed["verification"]["events"] == 3
    head = httpx.get(
        f"{api_server.url}/x-agentjournal/v1/sessions/{session_id}/verify", headers=HEADERS
    ).json()
    assert head["ok"] and head["events"] == 2  # started, terminated: the annotations added none


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"version": 1}, 400),
        ({"version": 1, "note": " "}, 400),
        ({"version": "1", "note": "x"}, 400),
        ({"version": 1, "score": "high"}, 400),
        ({"version": 1, "score": True}, 400),
        ({"version": 1, "note": "x", "author": "me"}, 400),
        ({"note": "x"}, 400),
        ({"version": 99, "note": "x"}, 404),
        ({"version": 0, "note": "x"}, 404),
        ({"version": -(2**63), "note": "x"}, 404),
        ({"version": 1, "note": "x" * 10_001}, 400),
        ([], 400),
    ],
)
def test_bad_annotation_bodies_get_clear_errors(api_server, store, body, status):
    session_id = new_session(store)
    url = f"{api_server.url}/x-agentjournal/v1/sessions/{session_id}/annotations"
    answer = httpx.post(url, headers=HEADERS, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["type"] == "error" and answer.json()["error"]["message"]


def test_annotations_need_a_key_and_an_existing_session(api_server, store):
    missing = f"{api_server.url}/x-agentjournal/v1/sessions/sesn_{'1' * 32}/annotations"
    assert httpx.post(missing, json={"version": 1, "note": "x"}).status_code == 401
    assert httpx.post(missing, headers=HEADERS, json={"version": 1, "note": "x"}).status_code == 404
    assert httpx.get(missing, headers=HEADERS).status_code == 404


def test_an_altered_annotation_log_shows_over_http(api_server, store):
    session_id = new_session(store)
    url = f"{api_server.url}/x-agentjournal/v1/sessions/{session_id}/annotations"
    assert httpx.post(url, headers=HEADERS, json={"version": 1, "note": "genuine"}).status_code == 200
    rewrite(store, annotation_log_id(UUID(session_id[5:])), 2, b"genuine", b"forged!")
    checked = httpx.get(url, headers=HEADERS).json()["verification"]
    assert not checked["ok"] and checked["broken"]["version"] == 2
