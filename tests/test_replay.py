"""Property: any sequence of commands (turns, tool calls, failures, interrupts, compute,
packages, titles, forks, termination), saved to a real store that snapshots every three
events, replays to exactly the live aggregate, reads the same at every version whether
loaded from a snapshot or from the first event, and verifies as an unbroken hash chain."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentjournal.application import SessionService, audit
from agentjournal.application.service import project_session
from agentjournal.domain import (
    AssistantMessage,
    ComputeBinding,
    PackageInstall,
    Session,
    SessionConfig,
    SessionError,
    Status,
    StopReason,
    ToolCall,
    ToolResult,
    Usage,
)

CONFIG = SessionConfig(model="m", system="s", name="n", tools=("execute_command", "read_file"))


class SnapshottingService(SessionService):
    """The real service, with a snapshot at every third event instead of every 200th."""

    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Session: 3}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionService]:
    """One SQLite file for every example: each example works on sessions of its own."""
    store: Path = tmp_path_factory.mktemp("replay") / "sessions.db"
    app = SnapshottingService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    yield app
    app.close()


def first_open_call(session: Session) -> ToolCall:
    """The next tool call waiting for its result, or one the session never saw (a refused command)."""
    return (session.open_tool_calls or [ToolCall("unknown", "read_file", "{}")])[0]


def answer(session: Session, n: int) -> None:
    call = first_open_call(session)
    session.record_tool_result(ToolResult(call.id, call.name, f"out {n}", exit_code=n % 2))


def command(session: Session, name: str, n: int) -> Callable[[], None]:
    """What ``name`` does to ``session``; ``n`` makes each command's values its own."""
    calls = (
        ToolCall(f"a{n}", "execute_command", '{"command": "true"}'),
        ToolCall(f"b{n}", "read_file", "{}"),
    )
    return {
        "begin": lambda: session.begin_turn(f"prompt {n} \u00e9\U0001f600", "worker"),
        "reply": lambda: session.add_assistant_message(AssistantMessage(f"reply {n}")),
        "reply_with_calls": lambda: session.add_assistant_message(AssistantMessage("", calls, "m")),
        "start_call": lambda: session.start_tool_call(first_open_call(session)),
        "result": lambda: answer(session, n),
        "usage": lambda: session.record_usage(f"model-{n % 2}", Usage(n, 1, n % 3)),
        "complete": lambda: session.complete_turn(StopReason.END_TURN),
        "fail": lambda: session.fail_turn(f"boom {n}", "ModelError"),
        "interrupt": lambda: session.interrupt_turn("stop"),
        "title": lambda: session.set_title(f"t{n}"),
        "attach": lambda: session.attach_compute(ComputeBinding("docker", f"box{n}", "image")),
        "release": lambda: session.release_compute("done"),
        "packages": lambda: session.record_packages(PackageInstall("pip", ("six",), f"box{n}", "ok")),
        "terminate": lambda: session.terminate("end"),
    }[name]


ALL = ("begin", "reply", "reply_with_calls", "start_call", "result", "usage", "complete", "fail",
       "interrupt", "title", "attach", "release", "packages", "terminate", "fork")  # fmt: skip
BETWEEN_TURNS = ("begin", "begin", "title", "attach", "release", "packages", "usage", "terminate")
IN_A_TURN = ("reply", "reply_with_calls", "reply_with_calls", "usage", "complete", "fail", "interrupt",
             "attach", "packages", "title")  # fmt: skip


def likely(session: Session) -> tuple[str, ...]:
    """Commands the session accepts now, so sequences get far into turns and tool calls."""
    if session.status == Status.TERMINATED:
        return ("fork",)
    if session.status != Status.RUNNING:
        return BETWEEN_TURNS
    return ("start_call", "result") * 3 * bool(session.open_tool_calls) + IN_A_TURN


def run(service: SessionService, data: st.DataObject) -> list[Session]:
    """Apply drawn commands to a new session, saving after each; a fork continues on the fork.
    Mostly commands the session accepts, the rest drawn from all (a refused command must
    record nothing). Returns every session made, as the live aggregates it ends with."""
    live = Session.start(CONFIG)
    service.save(live)
    sessions = [live]
    for n in range(data.draw(st.integers(0, 60), label="commands")):
        name = data.draw(st.sampled_from(likely(live) * 4 + ALL))
        if name == "fork":
            live = service.get_session(service.fork(live.id, data.draw(st.integers(1, live.version))))
            sessions.append(live)
            continue
        with contextlib.suppress(SessionError):
            command(live, name, n)()
        service.save(live)
    return sessions


def everything(session: Session) -> dict[str, Any]:
    """The whole aggregate, beyond ``state()``: its worker, chain head and timestamps too."""
    return {k: v for k, v in vars(session).items() if k != "_pending_events"}


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_command_sequence_replays_from_the_store_and_verifies(service, data):
    for live in run(service, data):
        events = list(service.events.get(live.id))
        assert everything(project_session(None, events)) == everything(live)
        assert everything(service.get_session(live.id)) == everything(live)
        for version in range(1, live.version + 1):
            from_snapshot = service.get_session(live.id, version)
            from_the_start = project_session(None, events[:version])
            assert everything(from_snapshot) == everything(from_the_start), version
        # A chunk is taken by each save that passed a multiple of the interval, so the
        # multiples are all covered, the last one included.
        taken = [0] + [chunk.version for chunk in service.session_snapshots.chunks(live.id)]
        assert all(before // 3 < after // 3 for before, after in zip(taken, taken[1:]))
        assert taken[-1] // 3 == live.version // 3
        assert audit.verify(service, live.id).ok
