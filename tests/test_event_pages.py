"""A page of a session's API events is read from where it starts: every page, in either
order, with or without filters, from a process that kept checkpoints or from one that
did not, is the slice of the whole projected log it stands for, and reading it costs its
own size, counted in stored events through the real store's recorder (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast
from uuid import UUID

import pytest

from agentjournal.application import SessionService
from agentjournal.domain import (
    AssistantMessage,
    CustomTool,
    Session,
    SessionConfig,
    StopReason,
    ToolCall,
    ToolResult,
    Usage,
)
from agentjournal.infrastructure.server import event_pages
from agentjournal.infrastructure.server.event_pages import (
    Checkpoints,
    Position,
    page_backward,
    page_forward,
)
from agentjournal.infrastructure.server.wire import ApiEvent, WireProjector, event_position
from agentjournal.infrastructure.stores.log_rows import RangedLog
from agentjournal.infrastructure.stores.mapper import TypedMapper

pytestmark = pytest.mark.timeout(120)

CONFIG = SessionConfig(
    model="gpt-4o-mini", system="Be brief.", name="pages", tools=(),
    networking={"type": "unrestricted"}, custom_tools=(CustomTool("ask"),),
)  # fmt: skip


class CountingRecorder:
    """The store's own recorder, counting the rows its ranged reads return."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.read = 0

    def select_rows(self, originator_id: UUID, **ranged: Any) -> Any:
        rows = self.recorder.select_rows(originator_id, **ranged)
        self.read += len(rows)
        return rows


def counted(service: SessionService) -> tuple[RangedLog, CountingRecorder]:
    recorder = CountingRecorder(service.events.recorder)
    return RangedLog(cast(TypedMapper, service.mapper), recorder), recorder


def long_session(service: SessionService, turns: int) -> UUID:
    """A session of ``turns`` turns, each with a tool call and its result, and every fifth
    with a custom tool the turn pauses for, answered after the pause."""
    session = Session.start(CONFIG, title="")
    for n in range(turns):
        session.begin_turn(f"question {n}", "test")
        call = ToolCall(f"run{n}", "shell", '{"command": "true"}')
        session.add_assistant_message(AssistantMessage(f"running {n}", (call,)))
        session.start_tool_call(call)
        session.record_tool_result(ToolResult(call.id, "shell", f"ran {n}"))
        session.record_usage("gpt-4o-mini", Usage(3, 4))
        if n % 5 == 4:
            asked = ToolCall(f"ask{n}", "ask", "{}")
            session.add_assistant_message(AssistantMessage("", (asked,)))
            session.request_custom_tool(asked)
            session.pause_turn()
            session.record_tool_result(ToolResult(asked.id, "ask", f"answer {n}"))
            session.resume_turn("test")
        session.add_assistant_message(AssistantMessage(f"done {n}"))
        session.complete_turn(StopReason.END_TURN)
        if n % 20 == 19:
            service.save_session(session)
    service.save_session(session)
    return session.id


def ranged(service: SessionService) -> RangedLog:
    """The session logs as the server's pages read them: the store's rows, decoded."""
    return RangedLog.of(service.events)


def whole(service: SessionService, session_id: UUID) -> list[ApiEvent]:
    """Every API event of the session, projected from its first log event."""
    return [event for _, _, event in WireProjector(session_id).feed(service.events.get(session_id))]


def everything(_event: ApiEvent, _logged: Any) -> bool:
    return True


def walk(events: Any, checkpoints: Checkpoints, order: str, limit: int, keeps: Any = everything
         ) -> Iterator[tuple[list[ApiEvent], bool]]:  # fmt: skip
    read = page_forward if order == "asc" else page_backward
    after: Position | None = None
    while True:
        page, more = read(events, checkpoints, keeps, after, limit)
        yield page, more
        if not more:
            return
        after = event_position(checkpoints.session_id, page[-1]["id"], "page")


def listed(events: Any, checkpoints: Checkpoints, order: str, limit: int, keeps: Any = everything
           ) -> list[ApiEvent]:  # fmt: skip
    return [event for page, _ in walk(events, checkpoints, order, limit, keeps) for event in page]


@pytest.mark.parametrize("limit", [1, 3, 7, 100])
def test_pages_both_ways_are_the_whole_log_at_every_boundary(service, limit):
    session_id = long_session(service, 30)
    reference = whole(service, session_id)
    asked = {e["id"] for e in reference if e["type"] == "agent.custom_tool_use"}
    answers = [e["custom_tool_use_id"] for e in reference if e["type"] == "user.custom_tool_result"]
    assert len(answers) == 6 and set(answers) == asked  # a result names its call across the pause
    kept = Checkpoints(session_id)
    assert listed(ranged(service), kept, "asc", limit) == reference
    assert listed(ranged(service), kept, "desc", limit) == reference[::-1]
    assert listed(ranged(service), kept, "asc", limit) == reference  # again, from its checkpoints

    # A cursor from another process: nothing kept, the same page.
    for cut in (0, limit - 1, len(reference) // 2, len(reference) - 2, len(reference) - 1):
        after = event_position(session_id, reference[cut]["id"], "page")
        forward, more = page_forward(ranged(service), Checkpoints(session_id), everything, after, limit)
        assert forward == reference[cut + 1 : cut + 1 + limit]
        assert more == (cut + 1 + limit < len(reference))
        backward, more = page_backward(ranged(service), Checkpoints(session_id), everything, after, limit)
        assert backward == reference[max(0, cut - limit) : cut][::-1]
        assert more == (cut - limit > 0)


def test_filters_hold_across_cursors_and_time_is_the_log_events_own(service):
    session_id = long_session(service, 25)
    reference = whole(service, session_id)
    logged = {e.originator_version: e for e in service.events.get(session_id)}
    kinds = {"agent.custom_tool_use", "user.custom_tool_result", "session.status_idle"}

    def of_kinds(event: ApiEvent, _logged: Any) -> bool:
        return event["type"] in kinds

    wanted = [e for e in reference if e["type"] in kinds]
    kept = Checkpoints(session_id)
    pages = list(walk(ranged(service), kept, "asc", 2, of_kinds))
    assert [e for page, _ in pages for e in page] == wanted and len(pages) == (len(wanted) + 1) // 2
    assert listed(ranged(service), kept, "desc", 4, of_kinds) == wanted[::-1]

    middle = logged[len(logged) // 2].timestamp

    def later(_event: ApiEvent, log_event: Any) -> bool:
        return bool(log_event.timestamp > middle)

    expected = [
        e for e in reference if logged[event_position(session_id, e["id"], "id")[0]].timestamp > middle
    ]
    assert expected and len(expected) < len(reference)
    assert listed(ranged(service), Checkpoints(session_id), "asc", 5, later) == expected
    assert listed(ranged(service), Checkpoints(session_id), "desc", 5, later) == expected[::-1]


def test_a_fork_pages_through_its_inherited_history_and_on_past_the_fork_point(service):
    parent = long_session(service, 60)
    fork_id = service.fork(parent)
    fork = service.get_session(fork_id)
    for n in range(3):
        fork.begin_turn(f"after the fork {n}", "test")
        fork.add_assistant_message(AssistantMessage(f"forked {n}"))
        fork.complete_turn()
    service.save_session(fork)
    reference = whole(service, fork_id)
    inherited = [e for e in reference if event_position(fork_id, e["id"], "id")[0] == 1]
    assert len(inherited) > 256  # past the short ids, all from the fork's first event
    assert [e["type"] for e in reference[-3:]] == [
        "session.status_running",
        "agent.message",
        "session.status_idle",
    ]
    for limit in (100, 128, 255):
        assert listed(ranged(service), Checkpoints(fork_id), "asc", limit) == reference
        assert listed(ranged(service), Checkpoints(fork_id), "desc", limit) == reference[::-1]
    for cut in (255, 256, 300, len(inherited) - 1, len(inherited)):  # within the fork point, and past it
        after = event_position(fork_id, reference[cut]["id"], "page")
        page, _ = page_forward(ranged(service), Checkpoints(fork_id), everything, after, 10)
        assert page == reference[cut + 1 : cut + 11]


def test_a_page_reads_its_own_size_of_the_log_not_the_whole_log(service, monkeypatch):
    monkeypatch.setattr(event_pages, "FIRST_INTERVAL", 16)
    monkeypatch.setattr(event_pages, "MAX_PERIODIC", 8)
    session_id = long_session(service, 120)
    events, recorder = counted(service)
    length = sum(1 for _ in service.events.get(session_id))
    assert length > 1000
    kept, limit = Checkpoints(session_id), 20

    reads = []
    for _page, _ in walk(events, kept, "asc", limit):
        reads.append(recorder.read)
        recorder.read = 0
    # Each page reads a range just past its own events; together, the log about once.
    assert max(reads) <= 4 * (limit + 1) and sum(reads) <= 2 * length
    assert len(kept.periodic) <= 8 and kept.interval * 8 * 2 > length  # few, evenly spread

    # Newest first: each page reads from the nearest checkpoint below it, never the log.
    reads = []
    for _page, _ in walk(events, kept, "desc", limit):
        reads.append(recorder.read)
        recorder.read = 0
    assert max(reads) <= kept.interval + 4 * (limit + 1) < length // 2

    # A process that kept nothing reads up to its cursor once, then pages from there.
    fresh = Checkpoints(session_id)
    middle = whole(service, session_id)[length // 2]
    page, _ = page_forward(events, fresh, everything, event_position(session_id, middle["id"], "page"), limit)
    first, recorder.read = recorder.read, 0
    page, _ = page_forward(
        events, fresh, everything, event_position(session_id, page[-1]["id"], "page"), limit
    )
    assert first > length // 3 and recorder.read <= 4 * (limit + 1)
