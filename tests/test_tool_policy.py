"""What a hostile or confused model can make the engine do with tools: only what the
session's recorded config allows, each refusal a tool error the model reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentjournal.application import ModelError
from agentjournal.domain import Status, StopReason, ToolResult
from agentjournal.domain.session import fork_title
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import TEST_KEY


def tool_results(agent: Any) -> list[ToolResult]:
    return [m for m in agent.state_at().messages if isinstance(m, ToolResult)]


def event_types(agent: Any) -> list[str]:
    return [e.type for e in agent.audit_log()]


def test_a_tool_outside_the_allow_list_is_refused_and_never_runs(make_agent, model_server, tmp_path):
    agent = make_agent(tools=["read_file"], working_dir=str(tmp_path / "work"))
    model_server.enqueue(
        Reply(tool_calls=[
            ScriptedToolCall("execute_command", {"command": "touch pwned"}),
            ScriptedToolCall("write_file", {"path": "pwned2", "content": "x"}),
        ]),
        Reply(text="I could not."),
    )  # fmt: skip
    assert agent.run("go") == "I could not."
    refused = tool_results(agent)
    assert [r.is_error for r in refused] == [True, True]
    assert all("is not enabled in this session; its tools are ['read_file']" in r.output for r in refused)
    assert not (tmp_path / "work" / "pwned").exists() and not (tmp_path / "work" / "pwned2").exists()
    assert "ToolCallStarted" not in event_types(agent)
    # The model was offered only what is allowed.
    assert [t["function"]["name"] for t in model_server.requests[0]["tools"]] == ["read_file"]


def test_bad_tool_arguments_are_the_models_to_read_and_the_turn_goes_on(make_agent, model_server):
    agent = make_agent()
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("read_file", "{not json")]),
        Reply(text="fine"),
    )
    assert agent.run("go") == "fine"
    (result,) = tool_results(agent)
    assert result.is_error and "not valid JSON" in result.output


def test_duplicate_and_missing_call_ids_are_made_unique_in_the_log(make_agent, model_server):
    agent = make_agent()
    model_server.enqueue(
        Reply(tool_calls=[
            ScriptedToolCall("execute_command", {"command": "echo one"}, id="same"),
            ScriptedToolCall("execute_command", {"command": "echo two"}, id="same"),
        ]),
        Reply(text="both ran"),
    )  # fmt: skip
    assert agent.run("go") == "both ran"
    assistant = agent.state_at().messages[1]
    assert [c.id for c in assistant.tool_calls] == ["same", "same_2"]
    assert [(r.tool_call_id, r.output.strip()) for r in tool_results(agent)] == [
        ("same", "one"),
        ("same_2", "two"),
    ]
    # The model is shown the same ids it is answered with.
    sent = model_server.requests[-1]["messages"]
    assert [m["tool_call_id"] for m in sent if m["role"] == "tool"] == ["same", "same_2"]


def test_huge_tool_arguments_are_recorded_capped_and_the_tool_gets_them_whole(
    make_agent, model_server, tmp_path, service
):
    work = tmp_path / "work"
    agent = make_agent(max_output_bytes=10_000, working_dir=str(work))
    content = "x" * 200_000
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("write_file", {"path": "big.txt", "content": content})]),
        Reply(text="written"),
    )
    assert agent.run("go") == "written"
    assert (work / "big.txt").read_text() == content
    recorded = agent.state_at().messages[1].tool_calls[0].arguments
    assert len(recorded) < 2_000
    assert json.loads(recorded)["truncated_arguments"]["bytes"] == len(
        json.dumps({"path": "big.txt", "content": content})
    )
    started = [e for e in agent.audit_log() if e.type == "ToolCallStarted"]
    assert len(started[0].payload["call"]["arguments"]) < 2_000
    stored = sum(len(r.state) for r in service.recorder.select_events(agent.state_at().id))
    assert stored < 100_000


def test_a_custom_tool_is_answered_by_the_callback_and_recorded(make_agent, model_server):
    asked: list[tuple[str, dict[str, Any]]] = []

    def lookup(name: str, arguments: dict[str, Any]) -> Any:
        asked.append((name, arguments))
        return {"temperature": 21}

    tool = {"type": "custom", "name": "get_weather", "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}  # fmt: skip
    agent = make_agent(tools=["read_file", tool], on_custom_tool=lookup)
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("get_weather", {"city": "Paris"})]),
        Reply(text="21 degrees"),
    )
    assert agent.run("weather?") == "21 degrees"
    assert asked == [("get_weather", {"city": "Paris"})]
    (result,) = tool_results(agent)
    assert (result.output, result.is_error) == ('{"temperature":21}', False)
    assert "CustomToolRequested" in event_types(agent) and "ToolCallStarted" not in event_types(agent)
    offered = {t["function"]["name"]: t["function"] for t in model_server.requests[0]["tools"]}
    assert offered["get_weather"]["parameters"]["properties"] == {"city": {"type": "string"}}
    assert agent.state_at().config.custom_tools[0].name == "get_weather"


def test_a_failing_custom_tool_handler_is_a_tool_error(make_agent, model_server):
    def broken(name: str, arguments: dict[str, Any]) -> Any:
        raise LookupError("no such city")

    agent = make_agent(tools=[{"type": "custom", "name": "get_weather"}], on_custom_tool=broken)
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("get_weather", {"city": "X"})]), Reply(text="sorry")
    )
    assert agent.run("weather?") == "sorry"
    (result,) = tool_results(agent)
    assert result.is_error and "LookupError: no such city" in result.output


def test_confirmations_are_asked_and_recorded_and_a_denial_reaches_the_model(
    make_agent, model_server, tmp_path
):
    asked: list[dict[str, Any]] = []

    def confirm(info: dict[str, Any]) -> bool:
        asked.append(info)
        return "rm" not in info["input"]["command"]

    toolset = {"type": "agent_toolset_20260401",
               "configs": [{"name": "bash", "permission_policy": {"type": "always_ask"}}]}  # fmt: skip
    agent = make_agent(tools=[toolset], on_tool_confirmation=confirm, working_dir=str(tmp_path / "w"))
    model_server.enqueue(
        Reply(tool_calls=[
            ScriptedToolCall("bash", {"command": "echo allowed"}),
            ScriptedToolCall("bash", {"command": "rm -rf /"}),
            ScriptedToolCall("read", {"file_path": "nothing"}),
        ]),
        Reply(text="done"),
    )  # fmt: skip
    assert agent.run("go") == "done"
    assert [a["input"]["command"] for a in asked] == ["echo allowed", "rm -rf /"]
    allowed, denied, unasked = tool_results(agent)
    assert allowed.output.strip() == "allowed" and not allowed.is_error
    assert denied.is_error and denied.output == "error: the user denied this tool call"
    assert unasked.name == "read"
    answers = [e.payload for e in agent.audit_log() if e.type == "ToolConfirmationAnswered"]
    assert [a["allowed"] for a in answers] == [True, False]
    assert agent.state_at().pending_confirmations == ()


def test_per_turn_usage_is_what_the_turn_used(make_agent, model_server):
    from agentjournal.application import TurnOutcome

    agent = make_agent()
    model_server.enqueue(
        Reply(text="a", prompt_tokens=10, completion_tokens=1),
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "true"})], prompt_tokens=20, completion_tokens=2),
        Reply(text="b", prompt_tokens=30, completion_tokens=3),
    )  # fmt: skip
    agent.run("first")
    outcome = [u for u in agent.updates("second") if isinstance(u, TurnOutcome)][0]
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens) == (50, 5)
    assert (outcome.total_usage.input_tokens, outcome.total_usage.output_tokens) == (60, 6)
    assert outcome.stop_reason == StopReason.END_TURN


@pytest.mark.parametrize("at", ["failed", "later"])
def test_an_error_belongs_to_its_failed_turn(make_agent, model_server, at):
    agent = make_agent()
    model_server.enqueue(Reply(status=400, error="bad request"))
    with pytest.raises(ModelError, match="bad request"):
        agent.run("fails")
    failed_at = agent.state_at().version
    assert "bad request" in agent.state_at().last_error
    if at == "failed":
        fork = agent.fork(at_version=failed_at).state_at()
        assert fork.status == Status.ERROR
        assert fork.last_error == agent.state_at(failed_at).last_error
    else:
        agent.run("works")
        assert agent.state_at().last_error == ""
        assert agent.service.summary(agent.state_at().id).last_error == ""
        assert "bad request" in agent.state_at(failed_at).last_error


def test_forks_at_every_version_equal_the_parent_there(make_agent, model_server):
    """Every event of a session with tool calls, a failed turn and usage is a fork point
    whose first state is the parent's state at that point."""
    agent = make_agent()
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "echo hi"})]),
        Reply(text="ran it"),
        Reply(status=400, error="bad request"),
    )
    agent.run("one")
    with pytest.raises(ModelError, match="bad request"):
        agent.run("two")
    agent.run("three")
    shared = ("messages", "usage", "usage_by_model", "turns", "last_error", "config")
    for version in range(1, agent.state_at().version + 1):
        parent = agent.state_at(version)
        forked = agent.fork(at_version=version)
        fork = forked.state_at(1)
        if parent.status == Status.RUNNING:
            # A fork cannot continue a turn nobody runs: it starts with it interrupted.
            assert forked.state_at().status == Status.IDLE
            assert forked.state_at().messages[: len(parent.messages)] == parent.messages
            continue
        assert {k: fork.state()[k] for k in shared} == {k: parent.state()[k] for k in shared}, version
        assert fork.title == fork_title(parent.title, version)
        assert fork.status == parent.status
        assert fork.lineage is not None and fork.lineage.parent_version == version


def test_a_confirmation_shows_the_arguments_that_would_run(make_agent, model_server):
    seen: list[Any] = []
    toolset = {
        "type": "agent_toolset_20260401",
        "default_config": {"permission_policy": {"type": "always_ask"}},
    }
    agent = make_agent(
        tools=[toolset], max_output_bytes=100, on_tool_confirmation=lambda info: seen.append(info) or False
    )
    command = "echo " + "x" * 500
    model_server.enqueue(Reply(tool_calls=[ScriptedToolCall("bash", {"command": command})]), Reply(text="ok"))
    agent.run("go")
    assert seen[0]["input"] == {"command": command}
    recorded = agent.state_at().messages[1].tool_calls[0].arguments
    assert "truncated_arguments" in recorded


def test_a_custom_tools_failure_is_redacted_and_its_output_capped(make_agent, model_server):
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"

    def handler(name: str, arguments: dict[str, Any]) -> Any:
        if arguments.get("fail"):
            raise RuntimeError(f"cannot use {key}")
        if arguments.get("odd"):
            return object()  # nothing JSON can encode
        return "y" * 10_000

    agent = make_agent(
        tools=[{"type": "custom", "name": "lookup"}], on_custom_tool=handler, max_output_bytes=1_000
    )
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("lookup", {"fail": True}), ScriptedToolCall("lookup", {"odd": True}),
                          ScriptedToolCall("lookup", {})]),
        Reply(text="done"),
    )  # fmt: skip
    assert agent.run("go") == "done"
    failed, odd, big = tool_results(agent)
    assert failed.is_error and key not in failed.output and "[redacted:openai-key]" in failed.output
    assert odd.is_error and "TypeError" in odd.output
    assert len(big.output) == 1_000 and big.truncated


def test_redaction_cannot_hide_what_a_tool_was_given(make_agent, model_server, tmp_path):
    """A credential shape inside one argument is redacted there; it cannot swallow the
    fields around it, so the record still shows the command that ran."""
    agent = make_agent(working_dir=str(tmp_path / "work"))
    arguments = '{"a": "-----BEGIN RSA PRIVATE KEY-----", "command": "touch ran", "b": "-----END RSA PRIVATE KEY-----"}'
    model_server.enqueue(Reply(tool_calls=[ScriptedToolCall("execute_command", arguments)]), Reply(text="ok"))
    agent.run("go")
    assert (tmp_path / "work" / "ran").exists()
    started = [e for e in agent.audit_log() if e.type == "ToolCallStarted"][0]
    assert json.loads(started.payload["call"]["arguments"])["command"] == "touch ran"


def test_secrets_in_call_ids_names_and_config_texts_are_redacted(make_agent, model_server, service):
    key = TEST_KEY
    agent = make_agent(name=f"agent-{key}", metadata={"note": key}, tools=["read_file"])
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall(f"tool-{key}", {}, id=f"id-{key}")]), Reply(text="ok")
    )
    agent.run("go")
    stored = b"".join(r.state for r in service.recorder.select_events(agent.state_at().id))
    assert key.encode() not in stored
    assert "[redacted:api_key]" in agent.state_at().config.name


def test_one_reply_cannot_make_tool_calls_without_end(make_agent, model_server, tmp_path):
    from agentjournal.application.tool_policy import MAX_TOOL_CALLS_PER_REPLY

    agent = make_agent(working_dir=str(tmp_path / "work"))
    many = [
        ScriptedToolCall("execute_command", {"command": f"touch f{i}"})
        for i in range(MAX_TOOL_CALLS_PER_REPLY + 5)
    ]
    model_server.enqueue(Reply(tool_calls=many), Reply(text="ok"))
    agent.run("go")
    results = tool_results(agent)
    assert [r.is_error for r in results] == [False] * MAX_TOOL_CALLS_PER_REPLY + [True] * 5
    assert "at most 64 tool calls" in results[-1].output
    assert len(list((tmp_path / "work").glob("f*"))) == MAX_TOOL_CALLS_PER_REPLY


def test_a_custom_tool_gets_only_a_json_object(make_agent, model_server):
    asked: list[Any] = []
    agent = make_agent(
        tools=[{"type": "custom", "name": "note"}], on_custom_tool=lambda n, a: asked.append(a) or "ok"
    )
    model_server.enqueue(Reply(tool_calls=[ScriptedToolCall("note", "[1, 2]")]), Reply(text="ok"))
    agent.run("go")
    assert asked == []
    assert "must be a JSON object" in tool_results(agent)[0].output
