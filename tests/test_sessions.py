"""Sessions as event logs: replay, audit, fork, failures and secrets, through the real stack."""

from __future__ import annotations

import json

import msgspec
import pytest

from agentjournal.application import (
    ConfigError,
    InvalidSessionId,
    ModelError,
    SessionService,
    TurnOutcome,
    VersionNotFound,
)
from agentjournal.application.errors import SessionNotFound
from agentjournal.domain import (
    AssistantMessage,
    Session,
    SessionTerminatedError,
    Status,
    StopReason,
    ToolResult,
    UserMessage,
)
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import TEST_KEY, run_python


def tool_turn(server, command="echo hi", final="done"):  # type: ignore[no-untyped-def]
    server.enqueue(
        Reply(text="running", tool_calls=[ScriptedToolCall("execute_command", {"command": command})]),
        Reply(text=final),
    )


def test_state_rebuilt_from_events_equals_the_live_state(make_agent, model_server, open_service):
    agent = make_agent()
    tool_turn(model_server, "printf 'a\\nb'")
    agent.run("first")
    agent.run("second")
    # The copy the service keeps in memory, and the next turn continues from.
    live = agent.service.working[agent.state_at().id]
    assert live.version == agent.state_at().version

    fresh = open_service()
    replayed = fresh.get_session(live.id)
    assert replayed.state() == live.state()
    assert [type(m) for m in replayed.messages] == [
        UserMessage, AssistantMessage, ToolResult, AssistantMessage, UserMessage, AssistantMessage,
    ]  # fmt: skip
    assert replayed.messages[2].output == "a\nb"
    assert replayed.messages[2].exit_code == 0


def test_snapshots_give_the_same_state_as_a_full_replay(make_agent, open_service, monkeypatch):
    monkeypatch.setattr(SessionService, "snapshotting_intervals", {Session: 5})
    snapshotting = open_service()
    agent = make_agent()
    agent.service = snapshotting
    for i in range(4):
        agent.run(f"prompt {i}")
    sid = agent.state_at().id
    assert list(snapshotting.session_snapshots.chunks(sid)), "expected snapshots to have been taken"

    monkeypatch.setattr(SessionService, "snapshotting_intervals", {})
    plain = open_service()
    assert plain.snapshots is None
    for version in range(1, snapshotting.get_session(sid).version + 1):
        assert snapshotting.get_session(sid, version).state() == plain.get_session(sid, version).state()


def test_state_at_each_event_is_the_fold_up_to_it(make_agent):
    agent = make_agent()
    agent.run("Remember: my favorite color is blue")
    entries = agent.audit_log()
    types = [e.type for e in entries]
    assert types == [
        "SessionStarted", "UserMessageAdded", "TitleSet", "TurnStarted", "ComputeAttached",
        "AssistantMessageAdded", "UsageRecorded", "TurnCompleted",
    ]  # fmt: skip
    assert agent.state_at(1).messages == [] and agent.state_at(1).title == ""
    assert agent.state_at(3).title == "Remember: my favorite color is blue"
    assert agent.state_at(4).status == Status.RUNNING
    assert len(agent.state_at(6).messages) == 2
    assert agent.state_at(6).usage.input_tokens == 0
    assert agent.state_at(7).usage.input_tokens > 0
    assert agent.state_at(8).status == Status.IDLE
    with pytest.raises(VersionNotFound, match="numbered 1 to 8"):
        agent.state_at(9)
    with pytest.raises(VersionNotFound):
        agent.state_at(0)


def test_audit_log_has_versions_timestamps_payloads_and_filters(make_agent, model_server):
    agent = make_agent()
    tool_turn(model_server, "echo audit")
    agent.run("go")
    entries = agent.audit_log()
    assert [e.version for e in entries] == list(range(1, len(entries) + 1))
    assert all(a.timestamp <= b.timestamp for a, b in zip(entries, entries[1:]))
    started = agent.audit_log(types=("ToolCallStarted",))
    assert len(started) == 1
    assert json.loads(started[0].payload["call"]["arguments"]) == {"command": "echo audit"}
    result = agent.audit_log(types=("ToolResultRecorded",))[0].payload["result"]
    assert result["output"] == "audit\n" and result["exit_code"] == 0 and result["duration_ms"] > 0
    # The whole log is plain data: it serialises as JSON.
    assert msgspec.json.decode(msgspec.json.encode(entries))


def test_fork_at_several_points_shares_history_and_leaves_the_parent_alone(make_agent, model_server):
    parent = make_agent()
    parent.run("Remember: my favorite color is blue")
    parent.run("Remember: my favorite food is pasta")
    parent_log = parent.audit_log()
    end_of_first_turn = next(e.version for e in parent_log if e.type == "TurnCompleted")

    for at in (1, 2, end_of_first_turn, parent_log[-1].version):
        fork = parent.fork(at)
        forked = fork.state_at()
        as_of = parent.state_at(at)
        assert forked.messages == as_of.messages
        assert forked.usage == as_of.usage
        assert forked.lineage.parent_id == parent.state_at().id
        assert forked.lineage.parent_version == at
        assert forked.id != as_of.id

    assert parent.audit_log() == parent_log

    fork = parent.fork(end_of_first_turn)
    assert fork.run("What is my favorite color?") == "Your favorite color is blue."
    assert fork.run("What is my favorite food?") == "I don't know your favorite food yet."
    assert parent.run("What is my favorite food?") == "Your favorite food is pasta."


def test_forking_the_same_point_twice_gives_independent_sessions(make_agent):
    parent = make_agent()
    parent.run("hello")
    a, b = parent.fork(2), parent.fork(2)
    assert a.session_id != b.session_id
    a.run("Remember: my favorite color is red")
    b.run("Remember: my favorite color is green")
    assert a.run("What is my favorite color?") == "Your favorite color is red."
    assert b.run("What is my favorite color?") == "Your favorite color is green."
    summary = {s["id"]: s for s in parent.list_sessions()}
    assert summary[a.session_id]["status"] == summary[b.session_id]["status"] == "idle"


def test_fork_mid_turn_starts_with_that_turn_interrupted(make_agent, model_server):
    parent = make_agent()
    tool_turn(model_server)
    parent.run("go")
    mid = next(e.version for e in parent.audit_log() if e.type == "ToolCallStarted")
    fork = parent.fork(mid)
    state = fork.state_at()
    assert state.status == Status.IDLE
    assert isinstance(state.messages[-1], ToolResult) and state.messages[-1].is_error
    assert fork.audit_log()[-1].payload["stop_reason"] == "interrupted"
    assert fork.run("again") == "Noted. (scripted model: 4 messages in this conversation so far)"


def test_fork_beyond_the_end_is_a_clear_error(make_agent):
    agent = make_agent()
    agent.run("hello")
    with pytest.raises(VersionNotFound):
        agent.fork(999)


def test_a_failed_model_call_is_recorded_and_the_session_stays_usable(make_agent, model_server):
    agent = make_agent()
    model_server.enqueue(Reply(status=401, error="invalid api key"))
    with pytest.raises(ModelError, match="invalid api key"):
        agent.run("hello")
    info = agent.retrieve_session()
    assert info["status"] == "error"
    failed = agent.audit_log(types=("TurnFailed",))
    assert len(failed) == 1 and "invalid api key" in failed[0].payload["error"]

    assert agent.run("hello again").startswith("Noted.")
    assert agent.retrieve_session()["status"] == "idle"


def test_transient_model_errors_are_retried(make_agent, model_server):
    agent = make_agent()
    model_server.enqueue(Reply(status=503, error="overloaded"), Reply(text="fine now"))
    assert agent.run("hello") == "fine now"
    assert agent.audit_log(types=("TurnFailed",)) == []


def test_a_reply_cut_off_before_any_text_is_retried_and_never_recorded(make_agent, model_server):
    agent = make_agent(model_max_attempts=2)
    model_server.enqueue(Reply(text="lost on the way", cut=0), Reply(text="whole answer"))
    assert agent.run("hello") == "whole answer"
    assert len(model_server.requests) == 2
    assert agent.audit_log(types=("TurnFailed",)) == []
    assert [m.content for m in agent.state_at().messages] == ["hello", "whole answer"]


def test_a_reply_cut_off_after_text_was_shown_fails_the_turn_and_keeps_the_text_as_partial(
    make_agent, model_server
):
    """A connection dropped mid-reply, once part of it was streamed to the caller: no retry
    (it would show that part twice), a model error, and the text shown recorded with the
    failure, never as the model's message, so the next call sees no half answer."""
    agent = make_agent(model_max_attempts=3)
    model_server.enqueue(Reply(text="The answer is forty-two", cut=12), Reply(text="next answer"))
    shown: list[str] = []
    with pytest.raises(ModelError, match="stopped mid-reply"):
        shown.extend(agent.iter_text("hello"))
    assert "".join(shown) == "The answer i" and len(model_server.requests) == 1
    assert agent.retrieve_session()["status"] == "error"
    (failed,) = agent.audit_log(types=("TurnFailed",))
    assert failed.payload["error_type"] == "ModelError" and failed.payload["partial"] == "The answer i"
    assert agent.audit_log(types=("TurnCompleted", "AssistantMessageAdded")) == []
    assert "The answer i" in agent.timeline()[-1].text
    assert agent.verify().ok

    assert agent.run("hello again") == "next answer"
    assert [m["role"] for m in model_server.requests[-1]["messages"]] == ["system", "user", "user"]
    assert agent.retrieve_session()["status"] == "idle"


def test_max_turns_stops_a_looping_agent(make_agent, model_server):
    agent = make_agent(max_turns=2)
    call = ScriptedToolCall("execute_command", {"command": "true"})
    model_server.enqueue(*[Reply(text=f"step {i}", tool_calls=[call]) for i in range(3)])
    outcomes = [u for u in agent.updates("loop") if isinstance(u, TurnOutcome)]
    assert outcomes[0].stop_reason == StopReason.MAX_TURNS
    assert len(model_server.requests) == 2
    assert agent.retrieve_session()["status"] == "idle"


def test_a_caller_that_stops_iterating_leaves_the_turn_interrupted(make_agent, model_server):
    agent = make_agent()
    model_server.enqueue(Reply(text="a long answer " * 20))
    updates = agent.updates("talk")
    next(updates)
    updates.close()
    last = agent.audit_log()[-1]
    assert last.type == "TurnCompleted" and last.payload["stop_reason"] == "interrupted"
    assert agent.retrieve_session()["status"] == "idle"


def test_tool_calls_survive_a_restart_and_reach_the_model(make_agent, model_server, store_env):
    agent = make_agent()
    tool_turn(model_server, "echo remembered-output")
    agent.run("use a tool")
    child = run_python(
        f"""
        from agentjournal.application import ManagedAgent, ManagedConfig
        agent = ManagedAgent(config=ManagedConfig(model="openai/gpt-4o-mini",
            api_base={model_server.base_url!r}, api_key={TEST_KEY!r}), store={store_env!r})
        agent.resume_session({agent.session_id!r})
        print(agent.run("and now?"))
        """
    )
    assert child.returncode == 0, child.stderr
    history = model_server.requests[-1]["messages"]
    roles = [m["role"] for m in history]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assistant = history[2]
    assert assistant["tool_calls"][0]["function"]["name"] == "execute_command"
    assert history[3]["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert history[3]["content"] == "remembered-output\n"


def test_secrets_never_reach_the_event_store(make_agent, model_server, service):
    secret = "s3cr3t-value-for-the-tool"
    agent = make_agent(env={"DEPLOY_TOKEN": secret})
    tool_turn(model_server, "echo token=$DEPLOY_TOKEN; echo sk-proj-abcdefghijklmnopqrstuvwx")
    agent.run(f"the key is {TEST_KEY}")
    result = agent.state_at().messages[2]
    assert result.output == "token=[redacted:env:DEPLOY_TOKEN]\n[redacted:openai-key]\n"
    assert agent.state_at().config.env_names == ("DEPLOY_TOKEN",)

    stored = b"".join(n.state for n in service.recorder.select_notifications(start=None, limit=10_000))
    assert secret.encode() not in stored
    assert TEST_KEY.encode() not in stored
    assert b"DEPLOY_TOKEN" in stored


def test_resuming_an_unknown_session_is_a_clear_error(make_agent):
    agent = make_agent()
    with pytest.raises(SessionNotFound):
        agent.resume_session("7d4e2a1c-0000-4000-8000-000000000000")
    with pytest.raises(InvalidSessionId, match="not a session id"):
        agent.resume_session("not-a-session")
    with pytest.raises(ConfigError):
        agent.restore_ids({"nothing": 1})


def test_terminated_sessions_refuse_new_turns(make_agent):
    agent = make_agent()
    agent.run("hello")
    agent.terminate("done")
    assert agent.retrieve_session()["status"] == "terminated"
    with pytest.raises(SessionTerminatedError, match="terminated; fork it"):
        agent.run("more")
    assert agent.fork().run("more").startswith("Noted.")


def test_a_kept_session_catches_up_with_turns_appended_elsewhere(make_agent, model_server, open_service):
    first = make_agent()
    first.run("Remember: my favorite color is blue")
    elsewhere = make_agent()
    elsewhere.service = open_service()  # another process's view of the same store
    elsewhere.resume_session(first.session_id)
    elsewhere.run("Remember: my favorite food is pasta")

    assert first.run("What is my favorite food?") == "Your favorite food is pasta."
    versions = [e.version for e in first.audit_log()]
    assert versions == list(range(1, len(versions) + 1))
    assert first.state_at().turns == 3


def test_text_streams_as_an_iterator_and_asynchronously(make_agent, model_server):
    import asyncio

    agent = make_agent()
    model_server.enqueue(Reply(text="streamed in several pieces"), Reply(text="and asynchronously too"))
    pieces = list(agent.iter_text("go"))
    assert len(pieces) > 1 and "".join(pieces) == "streamed in several pieces"

    async def collect() -> list[str]:
        return [text async for text in agent.stream("again")]

    assert "".join(asyncio.run(collect())) == "and asynchronously too"
    assert agent.verify().ok
    assert [e.actor for e in agent.timeline()][:2] == ["session", "user"]
