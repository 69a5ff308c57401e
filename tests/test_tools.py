"""Bad tool arguments are tool errors the model reads, never a failed turn."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from agentjournal.application.tools import ToolLimits, run_tool
from agentjournal.domain import Status, StopReason, ToolCall, ToolResult
from agentjournal.infrastructure.compute.host import HostCompute
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall

LIMITS = ToolLimits(timeout=5)


@pytest.fixture
def compute(tmp_path: Path) -> HostCompute:
    host = HostCompute(base=tmp_path)
    host.attach(uuid.uuid4(), None)
    return host


def call(compute: HostCompute, name: str, arguments: object) -> ToolResult:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return run_tool(compute, ToolCall("call-1", name, text), LIMITS)


@pytest.mark.parametrize("timeout", ["soon", [5], {"s": 5}, True, -1, 0, "NaN", float("inf")])
def test_a_timeout_that_is_not_a_positive_number_is_a_tool_error(compute, timeout):
    arguments = json.dumps({"command": "echo ran", "timeout": timeout})
    if timeout == "NaN":
        arguments = '{"command": "echo ran", "timeout": NaN}'
    result = call(compute, "execute_command", arguments)
    assert result.is_error
    assert "argument 'timeout' must be a positive number of seconds" in result.output
    assert "ran" not in result.output


def test_a_timeout_given_as_null_or_a_whole_number_is_accepted(compute):
    assert call(compute, "execute_command", {"command": "echo ran", "timeout": None}).output == "ran\n"
    assert call(compute, "execute_command", {"command": "echo ran", "timeout": 3}).output == "ran\n"


@pytest.mark.parametrize(
    ("name", "arguments", "argument"),
    [
        ("read_file", {"path": "a\x00b"}, "path"),
        ("write_file", {"path": "a\x00b", "content": "x"}, "path"),
        ("list_files", {"path": "sub\x00"}, "path"),
        ("execute_command", {"command": "echo a\x00b"}, "command"),
    ],
)
def test_a_nul_byte_in_a_path_or_command_is_a_tool_error(compute, name, arguments, argument):
    result = call(compute, name, arguments)
    assert result.is_error
    assert f"argument {argument!r} contains a NUL byte" in result.output


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("list_files", {"path": 5}, "argument 'path' must be a string"),
        ("read_file", {"path": ["a"]}, "argument 'path' is required and must be a string"),
        ("write_file", {"path": "a.txt", "content": {"x": 1}}, "argument 'content' is required"),
        ("execute_command", {"command": ["ls", "-l"]}, "argument 'command' is required"),
        ("write_file", '{"path": "a.txt", "content": "\\ud800"}', "argument 'content' is not valid Unicode"),
        ("read_file", '{"path": "\\udcff"}', "argument 'path' is not valid Unicode"),
    ],
)
def test_arguments_of_the_wrong_type_are_named(compute, name, arguments, message):
    result = call(compute, name, arguments)
    assert result.is_error
    assert message in result.output


def test_a_command_too_long_for_the_system_is_a_tool_error(compute):
    result = call(compute, "execute_command", {"command": "echo " + "x" * 200_000})
    assert result.is_error
    assert "the command is 200,005 bytes" in result.output


def test_file_system_errors_on_the_host_are_tool_errors(compute):
    assert not call(compute, "write_file", {"path": "plain.txt", "content": "x"}).is_error
    under_a_file = call(compute, "write_file", {"path": "plain.txt/inside.txt", "content": "x"})
    assert under_a_file.is_error and "plain.txt/inside.txt" in under_a_file.output
    listed_file = call(compute, "list_files", {"path": "plain.txt/inside"})
    assert listed_file.is_error


def test_a_bad_tool_call_in_a_real_turn_is_an_error_result_and_the_turn_goes_on(make_agent, model_server):
    agent = make_agent()
    model_server.enqueue(
        Reply(
            tool_calls=[
                ScriptedToolCall("execute_command", {"command": "echo ran", "timeout": "soon"}),
                ScriptedToolCall("read_file", {"path": "a\x00b"}),
            ]
        ),
        Reply(text="I will fix my arguments."),
    )
    assert agent.run("go") == "I will fix my arguments."
    state = agent.state_at()
    results = [m for m in state.messages if isinstance(m, ToolResult)]
    assert [r.is_error for r in results] == [True, True]
    assert "must be a positive number of seconds" in results[0].output
    assert "contains a NUL byte" in results[1].output
    assert state.status == Status.IDLE
    (completed,) = agent.audit_log(("TurnCompleted",))
    assert completed.payload["stop_reason"] == StopReason.END_TURN.value
    seen_by_model = [m["content"] for m in model_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert seen_by_model == [r.output for r in results]


def test_a_cut_listing_says_so_to_the_model_and_in_the_log(make_agent, model_server):
    agent = make_agent()
    model_server.enqueue(
        Reply(
            tool_calls=[ScriptedToolCall("execute_command", {"command": "seq -f 'f%04g' 1001 | xargs touch"})]
        ),
        Reply(tool_calls=[ScriptedToolCall("list_files", {})]),
        Reply(text="too many to read"),
    )
    assert agent.run("list them") == "too many to read"
    recorded = agent.audit_log(("ToolResultRecorded",))[-1].payload["result"]
    assert recorded["truncated"] and not recorded["is_error"]
    assert recorded["output"].endswith(
        "\nfile\t0\tf1000\n[more files not shown: list a folder below this one]"
    )
    seen_by_model = [m["content"] for m in model_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert seen_by_model[-1] == recorded["output"]
