"""The summary read model: it catches up from the notification log, survives restarts and
never applies an event twice, however many processes catch it up."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest

from agentjournal.application import (
    AmbiguousSessionId,
    ManagedAgent,
    ModelError,
    SessionNotFound,
    SessionService,
)
from agentjournal.application.projection import SessionProjector, SessionSummary, SessionSummaryView
from agentjournal.domain import AssistantMessage, SessionConfig, Status, Usage
from agentjournal.infrastructure.models.scripted import Reply

CONFIG = SessionConfig(model="m", system="s", name="n", tools=())


def a_finished_turn(service: SessionService, session_id, tokens: int) -> None:  # type: ignore[no-untyped-def]
    session = service.get_session(session_id)
    session.begin_turn(f"prompt {tokens}", "w")
    session.add_assistant_message(AssistantMessage("ok"))
    session.record_usage("m", Usage(tokens, 1))
    session.complete_turn()
    service.save(session)


def test_summaries_follow_the_log_and_survive_a_restart(open_service):
    service = open_service()
    sid = service.create_session(CONFIG)
    a_finished_turn(service, sid, 10)
    summary = service.summary(sid)
    assert (summary.status, summary.usage.input_tokens, summary.message_count) == (Status.IDLE, 10, 2)
    assert summary.version == service.get_session(sid).version
    position = service.summaries.position()
    service.close()

    restarted = open_service()
    assert restarted.summaries.position() == position
    a_finished_turn(restarted, sid, 5)
    assert restarted.projector.catch_up() == 5
    assert restarted.summary(sid).usage.input_tokens == 15


def race_at_first_commit(views: list[SessionSummaryView]) -> list[tuple[int, bool]]:
    """Make each view's first commit wait until every view is about to commit, so projectors
    that read the same batch try to store it at once. Returns the log of every commit:
    the position it moved from, and whether it was stored."""
    barrier = threading.Barrier(len(views), timeout=60)
    commits: list[tuple[int, bool]] = []

    def instrument(view: SessionSummaryView) -> None:
        commit, waited = view.commit, threading.Event()

        def racing_commit(summaries: Sequence[SessionSummary], previous: int, position: int) -> bool:
            if not waited.is_set():
                waited.set()
                barrier.wait()
            stored = commit(summaries, previous, position)
            commits.append((previous, stored))
            return stored

        view.commit = racing_commit  # type: ignore[method-assign]

    for view in views:
        instrument(view)
    return commits


def test_racing_projectors_fold_each_event_once(open_service):
    writer = open_service()
    ids = [writer.create_session(CONFIG) for _ in range(5)]
    for sid in ids:
        for tokens in (1, 2, 3):
            a_finished_turn(writer, sid, tokens)
    readers = [open_service() for _ in range(4)]
    for reader in readers:
        reader.projector.batch_size = 7  # many small batches, so the race goes on after the first
    commits = race_at_first_commit([reader.summaries for reader in readers])

    with ThreadPoolExecutor(len(readers)) as pool:
        folded = list(pool.map(lambda r: r.projector.catch_up(), readers))

    # The race happened: all four tried to store the first batch, one commit was stored,
    # three were refused, and across all of them every event was folded exactly once.
    assert sorted(stored for previous, stored in commits if previous == 0) == [False, False, False, True]
    assert sum(folded) == writer.recorder.max_notification_id()
    for sid in ids:
        assert writer.summary(sid).usage.input_tokens == 6
        assert writer.summary(sid).turn_count == 3


def test_listing_is_newest_first_and_filters_by_status(open_service):
    service = open_service()
    first = service.create_session(CONFIG)
    second = service.create_session(CONFIG)
    session = service.get_session(first)
    session.terminate()
    service.save(session)
    assert [s.id for s in service.list_summaries()] == [first, second]
    assert [s.id for s in service.list_summaries(Status.TERMINATED)] == [first]
    assert [s.id for s in service.list_summaries(limit=1, offset=1)] == [second]


def test_a_fork_summary_names_its_parent(open_service):
    service = open_service()
    parent = service.create_session(CONFIG)
    a_finished_turn(service, parent, 7)
    fork = service.fork(parent, 3)
    summary = service.summary(fork)
    assert summary.parent_id == parent and summary.parent_version == 3
    assert summary.message_count == 1 and summary.usage.input_tokens == 0


def test_the_projector_reads_only_new_notifications(open_service):
    service = open_service()
    sid = service.create_session(CONFIG)
    assert service.projector.catch_up() == 1
    assert service.projector.catch_up() == 0
    other = SessionProjector(service.recorder, service.mapper, service.summaries)
    assert other.catch_up() == 0
    session = service.get_session(sid)
    session.set_title("renamed")
    service.save(session)
    assert other.catch_up() == 1 and service.projector.catch_up() == 0  # the position is shared
    assert service.summary(sid).title == "renamed"


def test_sessions_are_found_by_an_unambiguous_prefix(open_service):
    service = open_service()
    seen: dict[str, UUID] = {}
    while True:  # until two ids share their first four characters: a few hundred sessions
        sid = service.create_session(CONFIG)
        prefix = str(sid)[:4]
        if prefix in seen:
            break
        seen[prefix] = sid
    with pytest.raises(AmbiguousSessionId, match=f"start with '{prefix}'"):
        service.find_session(prefix)
    assert service.find_session(str(sid)[:13]) == sid
    assert service.find_session(str(sid).upper()) == sid
    unused = next(f"{n:04x}" for n in range(65536) if f"{n:04x}" not in seen)
    with pytest.raises(SessionNotFound):
        service.find_session(unused)


# -- one bad event must not poison the read model ------------------------------------------------


def test_a_nul_byte_in_a_title_or_an_error_is_replaced_in_the_summary_only(make_agent, service, model_server):
    """PostgreSQL text cannot hold NUL: the summary shows U+FFFD where the log keeps the byte,
    and every session's summary stays readable."""
    before = make_agent()
    before.run("hello")
    poisoned = make_agent()
    model_server.enqueue(Reply(status=400, error="cannot parse \x00 here"))
    with pytest.raises(ModelError, match="cannot parse \x00 here"):
        poisoned.run("look at a\x00b\nsecond line")
    after = make_agent()
    after.run("still listing?")

    summary = service.summary(UUID(poisoned.session_id))
    assert summary.title == "look at a\ufffdb"
    assert "cannot parse \ufffd here" in summary.last_error and summary.status == Status.ERROR
    (prompt,) = poisoned.audit_log(("UserMessageAdded",))
    assert prompt.payload["content"] == "look at a\x00b\nsecond line"
    listed = {str(s.id): s.title for s in service.list_summaries()}
    assert listed == {
        before.session_id: "hello",
        poisoned.session_id: "look at a\ufffdb",
        after.session_id: "still listing?",
    }


def counted_usage(entry) -> Usage:  # type: ignore[no-untyped-def]
    return Usage(**entry.payload["usage"])


def record_impossible_usage(service: SessionService, agent: ManagedAgent) -> None:
    """Record more input tokens than a 64-bit column holds, as a log written before the
    model adapter refused such usage, or imported from elsewhere, may hold."""
    session = service.get_session(UUID(agent.session_id))
    session.record_usage("hostile", Usage(input_tokens=2**63))
    service.save_session(session)


def test_an_event_the_summary_table_cannot_hold_is_set_aside(make_agent, service, model_server, caplog):
    """A hostile model reports more input tokens than a 64-bit column holds. The log records
    what it said; that session's summary leaves the event out and says so in its last error;
    the summaries of all other sessions, and that session's later events, are still folded in."""
    caplog.set_level(logging.WARNING, logger="agentjournal.application.projection")
    before = make_agent()
    before.run("hello")
    hostile = make_agent()
    hostile.run("count this")
    record_impossible_usage(service, hostile)
    after = make_agent()
    after.run("still listing?")

    summaries = {str(s.id): s for s in service.list_summaries()}
    assert set(summaries) == {before.session_id, hostile.session_id, after.session_id}
    assert summaries[after.session_id].message_count == 2
    counted, usage = hostile.audit_log(("UsageRecorded",))
    assert usage.payload["usage"]["input_tokens"] == 2**63
    left_out = f"event {usage.version} (UsageRecorded) could not be summarised"
    set_aside = summaries[hostile.session_id]
    assert left_out in set_aside.last_error and "the session's log holds it" in set_aside.last_error
    assert set_aside.usage == counted_usage(counted) and set_aside.status == Status.IDLE
    assert set_aside.version == hostile.state_at().version
    assert left_out in caplog.text and hostile.session_id in caplog.text

    model_server.enqueue(Reply(text="sane again", prompt_tokens=7))
    hostile.run("and now?")
    summary = service.summary(UUID(hostile.session_id))
    assert summary.usage.input_tokens == counted_usage(counted).input_tokens + 7
    assert summary.message_count == 4 and summary.turn_count == 2
    warnings = [r for r in caplog.records if r.name == "agentjournal.application.projection"]
    assert len(warnings) == 1  # set aside once, not at every query


def test_a_session_whose_first_event_cannot_be_summarised_is_still_listed(make_agent, service, model_server):
    """A fork of that session starts with its parent's impossible usage: with no row to mark,
    the summary holds what it knows, the id, and says it is incomplete."""
    hostile = make_agent()
    hostile.run("count this")
    record_impossible_usage(service, hostile)
    fork = service.fork(UUID(hostile.session_id))

    summary = service.summary(fork)
    assert summary.status == Status.ERROR and summary.title == "" and summary.version == 1
    assert summary.last_error.startswith(
        "summary incomplete: event 1 (SessionForked) could not be summarised"
    )
    assert fork in {s.id for s in service.list_summaries(Status.ERROR)}
