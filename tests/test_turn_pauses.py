"""Turns that pause for the client (``requires_action``) and continue, at the service level,
with the litellm adapter against the scripted model over HTTP and real stores."""

from __future__ import annotations

import pytest

from agentjournal.application.ports import TextDelta
from agentjournal.application.runtimes import Runtimes
from agentjournal.application.turns import TurnOutcome
from agentjournal.domain import (
    AnswersMissing,
    CustomTool,
    NoPendingAction,
    SessionConfig,
    Status,
    StopReason,
    ToolResult,
)
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall

LOOKUP = CustomTool(name="lookup", description="Look something up.")


def paused_session(service, config, model_server, **fields):  # type: ignore[no-untyped-def]
    recorded = SessionConfig(**{"model": config.model, "system": "", "name": "t", "tools": (),
                                "networking": {"type": "unrestricted"}, **fields})  # fmt: skip
    session_id = service.create_session(recorded)
    return session_id, Runtimes(config, defer_actions=True)


def outcome(updates) -> TurnOutcome:  # type: ignore[no-untyped-def]
    return [u for u in updates if isinstance(u, TurnOutcome)][-1]


def test_a_custom_tool_call_pauses_the_turn_and_its_answer_continues_it(service, config, model_server):
    session_id, runtimes = paused_session(service, config, model_server, custom_tools=(LOOKUP,))
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("lookup", {"q": "x"}), ScriptedToolCall("lookup", {"q": "y"})]),
        Reply(text="Both found."),
    )
    paused = outcome(service.run_turn(session_id, "look up x and y", runtimes))
    assert paused.stop_reason == StopReason.REQUIRES_ACTION
    session = service.get_session(session_id)
    assert session.status == Status.IDLE and session.paused
    first, second = session.awaiting
    with pytest.raises(AnswersMissing):
        list(service.continue_turn(session_id, runtimes))
    assert not service.answer_tool(session_id, first, "x is 1").ready
    assert service.answer_tool(session_id, second, "y is 2").ready
    with pytest.raises(NoPendingAction):
        service.answer_tool(session_id, second, "again")
    done = outcome(service.continue_turn(session_id, runtimes))
    assert (done.stop_reason, done.text) == (StopReason.END_TURN, "Both found.")
    results = [m for m in service.get_session(session_id).messages if isinstance(m, ToolResult)]
    assert [r.output for r in results] == ["x is 1", "y is 2"]


def test_a_new_prompt_instead_of_an_answer_closes_the_waiting_calls(service, config, model_server):
    session_id, runtimes = paused_session(service, config, model_server, custom_tools=(LOOKUP,))
    model_server.enqueue(Reply(tool_calls=[ScriptedToolCall("lookup", {})]), Reply(text="Fine."))
    outcome(service.run_turn(session_id, "look it up", runtimes))
    assert outcome(service.run_turn(session_id, "never mind", runtimes)).text == "Fine."
    results = [m for m in service.get_session(session_id).messages if isinstance(m, ToolResult)]
    assert results[0].is_error and "new message" in results[0].output


def test_a_paused_turn_can_be_interrupted_and_forked(service, config, model_server):
    session_id, runtimes = paused_session(service, config, model_server, custom_tools=(LOOKUP,))
    model_server.enqueue(Reply(tool_calls=[ScriptedToolCall("lookup", {})]))
    outcome(service.run_turn(session_id, "look it up", runtimes))
    fork = service.get_session(service.fork(session_id))
    assert not fork.paused and not fork.open_tool_calls
    service.interrupt(session_id)
    session = service.get_session(session_id)
    assert not session.paused and not session.awaiting and session.status == Status.IDLE


def test_an_old_turn_closing_late_does_not_end_the_next_turn(service, config, model_server):
    session_id, runtimes = paused_session(service, config, model_server)
    model_server.enqueue(Reply(text="first"), Reply(text="second"))
    old = service.start_turn(session_id, "one", runtimes)
    assert isinstance(next(old.updates), TextDelta)  # the first turn is mid-reply
    service.interrupt(session_id)
    new = service.start_turn(session_id, "two", runtimes)
    old.updates.close()  # the interrupted turn's runner stops only now
    assert service.get_session(session_id).status == Status.RUNNING
    assert outcome(new.updates).text == "second"
