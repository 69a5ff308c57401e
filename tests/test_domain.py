"""The Session aggregate's rules, without any I/O."""

from __future__ import annotations

import pytest

from agentjournal.domain import (
    AssistantMessage,
    NoTurnInProgress,
    Session,
    SessionBusy,
    SessionConfig,
    SessionTerminatedError,
    Status,
    ToolCall,
    ToolResult,
    UnknownToolCall,
    Usage,
    derive_title,
)

CONFIG = SessionConfig(model="m", system="s", name="n", tools=("execute_command",))


def replay(session: Session) -> Session:
    """Rebuild a session from the events it has collected so far."""
    rebuilt = None
    for event in session.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    return rebuilt


def started() -> Session:
    session = Session.start(CONFIG)
    session.begin_turn("Fix the failing test in tests/test_io.py please", "w1")
    return session


def test_a_turn_runs_from_prompt_to_completion():
    session = started()
    call = ToolCall("c1", "execute_command", '{"command": "pytest"}')
    session.add_assistant_message(AssistantMessage("running tests", (call,)))
    session.record_usage("m", Usage(10, 5))
    session.start_tool_call(call)
    session.record_tool_result(ToolResult("c1", "execute_command", "1 passed", exit_code=0))
    session.add_assistant_message(AssistantMessage("fixed"))
    session.record_usage("m", Usage(20, 3, cache_read_tokens=4))
    session.complete_turn()
    assert session.status == Status.IDLE
    assert session.usage == Usage(30, 8, cache_read_tokens=4)
    assert session.usage_by_model == {"m": Usage(30, 8, cache_read_tokens=4)}
    assert session.title == "Fix the failing test in tests/test_io.py please"
    assert replay(session).state() == session.state()


def test_a_second_turn_cannot_start_while_one_runs():
    session = started()
    with pytest.raises(SessionBusy, match="worker w1"):
        session.begin_turn("again", "w2")


def test_tool_results_must_answer_an_open_call():
    session = started()
    session.add_assistant_message(AssistantMessage("", (ToolCall("c1", "execute_command", "{}"),)))
    with pytest.raises(UnknownToolCall):
        session.record_tool_result(ToolResult("c2", "execute_command", "?"))
    with pytest.raises(UnknownToolCall):
        session.start_tool_call(ToolCall("c3", "execute_command", "{}"))


def test_failing_or_interrupting_a_turn_answers_its_open_tool_calls():
    for end in ("fail", "interrupt"):
        session = started()
        calls = (ToolCall("a", "execute_command", "{}"), ToolCall("b", "read_file", "{}"))
        session.add_assistant_message(AssistantMessage("", calls))
        session.record_tool_result(ToolResult("a", "execute_command", "ok"))
        if end == "fail":
            session.fail_turn("boom", "RuntimeError")
            assert session.status == Status.ERROR and session.last_error == "RuntimeError: boom"
        else:
            session.interrupt_turn("crash")
            assert session.status == Status.IDLE
        closing = session.messages[-1]
        assert isinstance(closing, ToolResult) and closing.tool_call_id == "b" and closing.is_error
        assert session.open_tool_calls == []


def test_commands_need_a_turn_in_progress():
    session = Session.start(CONFIG)
    with pytest.raises(NoTurnInProgress):
        session.add_assistant_message(AssistantMessage("hi"))
    with pytest.raises(NoTurnInProgress):
        session.complete_turn()


def test_terminated_sessions_refuse_everything_but_forking():
    session = started()
    session.terminate("bye")
    assert session.status == Status.TERMINATED
    with pytest.raises(SessionTerminatedError):
        session.begin_turn("more", "w1")
    fork = session.fork()
    assert fork.status == Status.IDLE
    assert fork.messages == session.messages


def test_a_fork_is_titled_apart_from_its_parent():
    session = started()
    session.set_title("fix the tests")
    fork = session.fork()
    assert fork.title == f"fix the tests (fork at event {session.version})"
    fork.begin_turn("go on", "w1")
    assert fork.fork().title == f"fix the tests (fork at event {fork.version})"  # marked once
    assert Session.start(CONFIG).fork().title == "(fork at event 1)"


@pytest.mark.parametrize(
    ("prompt", "title"),
    [
        ("\n\n  Hello there  \nsecond line", "Hello there"),
        ("x" * 100, "x" * 59 + "\u2026"),
        ("", ""),
    ],
)
def test_titles_come_from_the_first_line_of_the_prompt(prompt, title):
    assert derive_title(prompt) == title


def test_an_explicit_title_is_kept():
    session = Session.start(CONFIG, title="Nightly triage")
    session.begin_turn("something else", "w")
    assert session.title == "Nightly triage"
