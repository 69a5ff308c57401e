"""Anthropic's agent tools (bash, read, write, edit, glob, grep, web_fetch, web_search):
their arguments as the official SDK's input types name them, what each does on the host
and in the Docker sandbox, and how a toolset config enables them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from agentjournal.application import ConfigError, ManagedAgent, ManagedConfig
from agentjournal.application.agent_tools import GLOB_LIMIT
from agentjournal.application.tools import ToolLimits, run_tool
from agentjournal.application.toolset import resolve_tools
from agentjournal.domain import SessionConfig, ToolCall, ToolResult
from agentjournal.infrastructure.compute.host import HostCompute
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import TEST_KEY

LIMITS = ToolLimits(timeout=10)
ANTHROPIC_TOOLS = ("bash", "read", "write", "edit", "glob", "grep", "web_fetch", "web_search")


def call(compute: Any, name: str, arguments: object, limits: ToolLimits = LIMITS) -> ToolResult:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return run_tool(compute, ToolCall("call-1", name, text), limits)


def ok(result: ToolResult) -> str:
    assert not result.is_error, result.output
    return result.output


@pytest.fixture
def host(tmp_path) -> HostCompute:  # type: ignore[no-untyped-def]
    compute = HostCompute(tmp_path / "work")
    compute.attach(uuid.uuid4(), None)
    compute.write_file("a.txt", b"one\ntwo\nthree\n")
    return compute


# -- arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("bash", {}, "argument 'command' is required"),
        ("bash", {"command": ["ls"]}, "argument 'command' is required and must be a string"),
        ("bash", {"command": "true", "timeout_ms": "soon"}, "argument 'timeout_ms' must be a number"),
        ("bash", {"command": "true", "timeout_ms": -5}, "argument 'timeout_ms' must be a number"),
        ("bash", {"command": "true", "restart": "yes"}, "argument 'restart' must be true or false"),
        ("bash", {"command": "echo a\x00b"}, "argument 'command' contains a NUL byte"),
        ("read", {"path": "a.txt"}, "argument 'file_path' is required"),
        ("read", {"file_path": "a.txt", "view_range": [1]}, "must be [start_line, end_line]"),
        ("read", {"file_path": "a.txt", "view_range": "1-2"}, "must be [start_line, end_line]"),
        ("read", {"file_path": "a.txt", "view_range": [1, True]}, "must be [start_line, end_line]"),
        ("read", {"file_path": "a.txt", "view_range": [3, 2]}, "selects no lines"),
        ("read", {"file_path": "a.txt", "view_range": [9, 0]}, "starts at line 9, but 'a.txt' has 3 lines"),
        ("write", {"file_path": "b.txt"}, "argument 'content' is required"),
        ("write", {"file_path": "a\x00b", "content": "x"}, "argument 'file_path' contains a NUL byte"),
        ("edit", {"file_path": "a.txt", "old_string": "", "new_string": "x"}, "'old_string' is empty"),
        ("edit", {"file_path": "a.txt", "old_string": "one", "new_string": "one"}, "are the same"),
        (
            "edit",
            {"file_path": "a.txt", "old_string": "one", "new_string": "1", "replace_all": "yes"},
            "argument 'replace_all' must be true or false",
        ),
        (
            "edit",
            {"file_path": "a.txt", "old_string": 1, "new_string": "x"},
            "argument 'old_string' is required",
        ),
        ("glob", {"pattern": ""}, "argument 'pattern' must not be empty"),
        ("glob", {"pattern": "/etc/*"}, "the pattern must be relative"),
        ("glob", {"pattern": "../*"}, "'..' cannot be part of a pattern"),
        ("glob", {"pattern": "src/../../*"}, "'..' cannot be part of a pattern"),
        ("glob", {"pattern": "*", "path": 3}, "argument 'path' must be a string"),
        ("grep", {"pattern": 5}, "argument 'pattern' is required and must be a string"),
        ("grep", {"pattern": "a\x00"}, "argument 'pattern' contains a NUL byte"),
        ("grep", {"pattern": "(unclosed"}, "invalid pattern"),
        ("web_fetch", {}, "argument 'url' is required"),
        ("web_fetch", {"url": "file:///etc/passwd"}, "must be an http or https URL"),
        ("web_fetch", {"url": "example.org/page"}, "must be an http or https URL"),
        ("web_fetch", {"url": "http://[::1/"}, "must be an http or https URL"),
    ],
)
def test_arguments_that_do_not_fit_are_named_for_the_model(host, name, arguments, message):
    result = call(host, name, arguments)
    assert result.is_error
    assert message in result.output
    assert host.read_file("a.txt") == b"one\ntwo\nthree\n"


# -- bash ---------------------------------------------------------------------------------


def test_bash_runs_bash_in_a_new_shell_each_call(either_compute):
    compute = either_compute
    assert ok(
        call(compute, "bash", {"command": '[[ -n x ]] && echo "$0 ${BASH_VERSION:+has a version}"'})
    ) == ("bash has a version\n")
    assert (
        ok(call(compute, "bash", {"command": "echo 'it'\"'\"'s quoted: $((6 * 7))'"}))
        == "it's quoted: $((6 * 7))\n"
    )
    ok(call(compute, "bash", {"command": "mkdir -p sub && cd sub && export GONE=1"}))
    assert (
        ok(call(compute, "bash", {"command": 'basename "$PWD"; echo "[${GONE:-}]"'})).splitlines()[1] == "[]"
    )
    failed = call(compute, "bash", {"command": "echo out; exit 3"})
    assert failed.is_error and failed.exit_code == 3 and failed.output == "out\n"


def test_bash_kills_a_command_at_its_timeout_ms(either_compute):
    result = call(either_compute, "bash", {"command": "sleep 60", "timeout_ms": 500})
    assert result.is_error and "[killed after 0.5 s]" in result.output
    assert result.duration_ms < 10_000
    capped = call(
        either_compute, "bash", {"command": "echo fast", "timeout_ms": 10**9}, ToolLimits(max_timeout=2)
    )
    assert ok(capped) == "fast\n"


def test_bash_restart_is_accepted_and_there_is_nothing_to_restart(host):
    assert "nothing to restart" in ok(call(host, "bash", {"restart": True}))
    assert ok(call(host, "bash", {"command": "echo ran", "restart": True})) == "ran\n"


# -- read, write, edit --------------------------------------------------------------------


def test_read_returns_the_text_exactly_or_the_lines_asked_for(either_compute):
    compute = either_compute
    ok(call(compute, "write", {"file_path": "notes/a.txt", "content": "one\ntwo\nthree\n"}))
    assert ok(call(compute, "read", {"file_path": "notes/a.txt"})) == "one\ntwo\nthree\n"
    assert ok(call(compute, "read", {"file_path": "notes/a.txt", "view_range": [2, 3]})) == "two\nthree"
    assert ok(call(compute, "read", {"file_path": "notes/a.txt", "view_range": [2, 0]})) == "two\nthree\n"
    assert ok(call(compute, "read", {"file_path": "notes/a.txt", "view_range": [2, -1]})) == "two\nthree\n"
    assert ok(call(compute, "read", {"file_path": "notes/a.txt", "view_range": [0, 1]})) == "one"
    missing = call(compute, "read", {"file_path": "nope.txt"})
    assert missing.is_error and "no file 'nope.txt'" in missing.output


def test_read_says_when_a_file_is_cut_and_how_to_read_on(either_compute):
    compute = either_compute
    compute.write_file("big.txt", b"line\n" * 1000)
    result = call(compute, "read", {"file_path": "big.txt"}, ToolLimits(max_output_bytes=100))
    assert result.truncated and result.output.startswith("line\n" * 20)
    assert result.output.endswith("[cut at 100 bytes: read the rest with view_range]")
    assert ok(call(compute, "read", {"file_path": "big.txt", "view_range": [999, 1000]})) == "line\nline"


def test_write_makes_folders_and_says_what_it_wrote(either_compute):
    assert ok(call(either_compute, "write", {"file_path": "a/b/c.txt", "content": "héllo"})) == (
        "wrote 6 bytes to a/b/c.txt"
    )
    assert either_compute.read_file("a/b/c.txt") == "héllo".encode()


def test_edit_replaces_exactly_one_occurrence_or_every_one_when_asked(either_compute):
    compute = either_compute
    compute.write_file("code.py", b"x = 1\ny = 1\nprint(x)\n")
    assert ok(
        call(compute, "edit", {"file_path": "code.py", "old_string": "x = 1", "new_string": "x = 2"})
    ) == ("edited code.py: replaced 1 occurrence")
    assert compute.read_file("code.py") == b"x = 2\ny = 1\nprint(x)\n"
    twice = call(compute, "edit", {"file_path": "code.py", "old_string": " = ", "new_string": "="})
    assert twice.is_error and "'old_string' occurs 2 times in 'code.py'" in twice.output
    missing = call(compute, "edit", {"file_path": "code.py", "old_string": "z = 3", "new_string": "z = 4"})
    assert missing.is_error and "'old_string' was not found in 'code.py'" in missing.output
    assert compute.read_file("code.py") == b"x = 2\ny = 1\nprint(x)\n", "a failed edit changes nothing"
    every = {"file_path": "code.py", "old_string": " = ", "new_string": "=", "replace_all": True}
    assert ok(call(compute, "edit", every)) == "edited code.py: replaced 2 occurrences"
    deleted = {"file_path": "code.py", "old_string": "print(x)\n", "new_string": ""}
    ok(call(compute, "edit", deleted))
    assert compute.read_file("code.py") == b"x=2\ny=1\n"


def test_edit_changes_only_utf8_text_inside_the_work_folder(either_compute):
    compute = either_compute
    compute.write_file("latin1.txt", "café".encode("latin-1"))
    binary = call(compute, "edit", {"file_path": "latin1.txt", "old_string": "caf", "new_string": "tea"})
    assert binary.is_error and "is not UTF-8 text" in binary.output
    assert compute.read_file("latin1.txt") == "café".encode("latin-1")
    ok(call(compute, "bash", {"command": "ln -s /etc/passwd pw && ln -s /etc etc"}))
    for path in ("pw", "etc/hostname", "../outside.txt", "/etc/passwd"):
        refused = call(compute, "edit", {"file_path": path, "old_string": "root", "new_string": "toor"})
        assert refused.is_error and "outside the work folder" in refused.output, path


# -- glob, grep ---------------------------------------------------------------------------


def test_glob_lists_matches_one_a_line_or_says_there_are_none(either_compute):
    compute = either_compute
    ok(call(compute, "bash", {"command": "mkdir -p src/pkg && touch src/a.py src/pkg/b.py README.md"}))
    assert set(ok(call(compute, "glob", {"pattern": "**/*.py"})).splitlines()) == {"src/a.py", "src/pkg/b.py"}
    assert ok(call(compute, "glob", {"pattern": "*.py", "path": "src/pkg"})) == "src/pkg/b.py"
    assert ok(call(compute, "glob", {"pattern": "*.rs"})) == "no matches"
    missing = call(compute, "glob", {"pattern": "*", "path": "nowhere"})
    assert missing.is_error and "no folder 'nowhere'" in missing.output


def test_glob_says_when_it_shows_only_some_matches(host):
    ok(call(host, "bash", {"command": f"for i in $(seq 1 {GLOB_LIMIT + 1}); do touch f$i.log; done"}))
    lines = ok(call(host, "glob", {"pattern": "*.log"})).splitlines()
    assert len(lines) == GLOB_LIMIT + 1 and lines[-1].startswith("[more matches not shown")


def test_grep_shows_path_line_and_text(either_compute):
    compute = either_compute
    compute.write_file("src/app.py", b"import os\n\ndef main():\n    return os.getcwd()\n")
    compute.write_file("notes.md", b"Main ideas\n")
    assert ok(call(compute, "grep", {"pattern": r"os\.\w+\("})) == "src/app.py:4:    return os.getcwd()"
    assert ok(call(compute, "grep", {"pattern": "(?i)^main|def main", "path": "."})).splitlines() == [
        "notes.md:1:Main ideas",
        "src/app.py:3:def main():",
    ]
    assert ok(call(compute, "grep", {"pattern": "absent"})) == "no matches"


@pytest.mark.parametrize("tool", ["glob", "grep"])
@pytest.mark.parametrize("hostile", ["$(touch pwned)", "; touch pwned", "--help", "-e touch"])
def test_a_pattern_or_path_can_run_nothing(either_compute, tool, hostile):
    compute = either_compute
    compute.write_file("kept.txt", b"kept\n")
    for arguments in ({"pattern": hostile}, {"pattern": "x", "path": hostile}):
        call(compute, tool, arguments)
    assert [e.path for e in compute.list_files(".", 100).entries] == ["kept.txt"]


# -- web ----------------------------------------------------------------------------------


def test_web_fetch_returns_a_pages_text(either_compute, web):
    page = ok(call(either_compute, "web_fetch", {"url": f"{web}/page.html"}))
    assert page.startswith(f"{web}/page.html (HTTP 200, text/html)\n\n")
    assert f"Hello there ({web}/plain)" in page and "hidden()" not in page
    missing = call(either_compute, "web_fetch", {"url": f"{web}/missing"})
    assert missing.is_error and "(HTTP 404, text/plain)" in missing.output and "not here" in missing.output
    image = call(either_compute, "web_fetch", {"url": f"{web}/image.png"})
    assert image.is_error and "is image/png, which web_fetch cannot show as text" in image.output
    cut = call(either_compute, "web_fetch", {"url": f"{web}/big"}, ToolLimits(max_output_bytes=1000))
    assert cut.truncated and cut.output.endswith("[the page is cut short]")


def test_web_fetch_without_unrestricted_networking_fetches_nothing(host, serve, requested):
    result = call(host, "web_fetch", {"url": f"{serve('127.0.0.1')}/plain"}, ToolLimits(web=False))
    assert result.is_error and "web_fetch needs unrestricted networking" in result.output
    assert requested == []


@pytest.mark.parametrize(
    ("networking", "allowed"),
    [({}, True), ({"type": "unrestricted"}, True), ({"type": "none"}, False), ({"type": "limited"}, False)],
)
def test_the_web_is_allowed_by_the_sessions_recorded_networking(networking, allowed):
    config = SessionConfig(model="m", system="", name="a", tools=("web_fetch",), networking=networking)
    assert ToolLimits.of(config).web is allowed


def test_web_search_says_there_is_no_search_service(host):
    result = call(host, "web_search", {"query": "anything"})
    assert result.is_error and result.output == "error: no web search service is configured on this server"


# -- toolsets -----------------------------------------------------------------------------


def test_the_agent_toolset_enables_anthropics_tools_by_their_own_names():
    assert resolve_tools([{"type": "agent_toolset_20260401"}]).builtin == ANTHROPIC_TOOLS
    chosen = resolve_tools(
        [
            {
                "type": "agent_toolset_20260401",
                "default_config": {"enabled": False, "permission_policy": {"type": "always_ask"}},
                "configs": [
                    {"name": "read", "enabled": True, "permission_policy": {"type": "always_allow"}},
                    {"name": "edit", "enabled": True},
                    {"name": "web_search", "type": "web_search", "enabled": True},
                ],
            }
        ]
    )
    assert chosen.builtin == ("read", "edit", "web_search")
    assert chosen.confirm == ("edit", "web_search")


def test_tool_names_may_be_seed_or_anthropic_ones_and_search_web_is_refused():
    assert resolve_tools(["execute_command", "edit", "grep", "read_file"]).builtin == (
        "execute_command",
        "edit",
        "grep",
        "read_file",
    )
    with pytest.raises(ConfigError, match="'search_web' is not available: it needs a web search service"):
        resolve_tools(["search_web"])
    assert resolve_tools([{"type": "custom", "name": "search_web"}]).custom[0].name == "search_web"


def test_a_default_config_keeps_the_seed_tools():
    assert ManagedConfig().session_config("host").tools == (
        "execute_command",
        "read_file",
        "write_file",
        "list_files",
    )


def test_a_turn_with_the_agent_toolset(make_agent, model_server, tmp_path):
    work = tmp_path / "work"
    agent = make_agent(tools=[{"type": "agent_toolset_20260401"}], working_dir=str(work))
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("write", {"file_path": "app.py", "content": "print('hi')\n"})]),
        Reply(
            tool_calls=[
                ScriptedToolCall("edit", {"file_path": "app.py", "old_string": "hi", "new_string": "bye"})
            ]
        ),
        Reply(
            tool_calls=[
                ScriptedToolCall("grep", {"pattern": "bye"}),
                ScriptedToolCall("glob", {"pattern": "*.py"}),
            ]
        ),
        Reply(tool_calls=[ScriptedToolCall("bash", {"command": "python3 app.py"})]),
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "true"})]),
        Reply(text="done"),
    )
    assert agent.run("make it say bye") == "done"
    results = [m for m in agent.state_at().messages if isinstance(m, ToolResult)]
    assert [(r.name, r.output, r.is_error) for r in results[:5]] == [
        ("write", "wrote 12 bytes to app.py", False),
        ("edit", "edited app.py: replaced 1 occurrence", False),
        ("grep", "app.py:1:print('bye')", False),
        ("glob", "app.py", False),
        ("bash", "bye\n", False),
    ]
    assert results[5].is_error and "is not enabled in this session" in results[5].output
    offered = {t["function"]["name"]: t["function"] for t in model_server.requests[0]["tools"]}
    assert tuple(offered) == ANTHROPIC_TOOLS
    edit = offered["edit"]["parameters"]
    assert set(edit["properties"]) == {"file_path", "old_string", "new_string", "replace_all"}
    assert sorted(edit["required"]) == ["file_path", "new_string", "old_string"]
    assert set(offered["read"]["parameters"]["properties"]) == {"file_path", "view_range"}
    assert set(offered["bash"]["parameters"]["properties"]) == {"command", "restart", "timeout_ms"}
    assert (work / "app.py").read_text() == "print('bye')\n"


@pytest.mark.docker
def test_a_sandboxed_session_without_networking_has_no_web_fetch(sessions, model_server, service):
    config = ManagedConfig(
        model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY,
        tools=["web_fetch", "bash"], networking={"type": "none"},
    )  # fmt: skip
    managed = ManagedAgent(config=config, compute="docker", store=service)
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("web_fetch", {"url": "http://example.org/"})]),
        Reply(text="offline"),
    )
    try:
        assert managed.run("fetch it") == "offline"
        (result,) = [m for m in managed.state_at().messages if isinstance(m, ToolResult)]
        assert result.is_error and "web_fetch needs unrestricted networking" in result.output
    finally:
        sessions.append(uuid.UUID(managed.session_id))
        managed.terminate()
