"""MCP tools in a session: how they are named to the model, offered, allowed and run.

A session's recorded config lists its MCP servers with their toolsets' policies
(:class:`~agentjournal.domain.McpServer`). When a turn runs, each server is asked
for its tools through the :class:`~agentjournal.application.ports.McpClient` port;
those its toolset enables are offered to the model beside the session's other tools,
named ``mcp__<server>__<tool>`` (a model's tool names take letters, digits, ``_`` and
``-`` only, so other characters become ``_``). A server that cannot be reached, or
that refuses the credential, is recorded (``McpServerFailed``, the cloud API's
``session.error``) and the turn goes on without its tools.

A call is recognised from the recorded config alone (:func:`mcp_target`), so a call
confirmed while its turn was paused runs in whichever process continues the turn,
under the permission policy the session recorded: ``always_ask`` (the default for MCP
toolsets) asks the client first, ``always_allow`` runs at once. Credentials are the
caller's (``tokens``, by server URL) and are never recorded. A server that refuses its
token is asked once more with a renewed one, when ``refresh`` can renew it (an OAuth
credential with refresh settings).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import msgspec

from agentjournal.application.ports import McpClient, McpError, ToolSpec
from agentjournal.application.tool_kit import ToolArgumentError, capped, tool_arguments
from agentjournal.domain import McpServer, Session, SessionConfig, ToolCall, ToolResult

T = TypeVar("T")

PREFIX = "mcp__"
SEPARATOR = "__"
ALWAYS_ASK = "always_ask"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class McpTarget(msgspec.Struct, frozen=True):
    """The server and tool an MCP call goes to, and whether the client must allow it first."""

    server: McpServer
    tool: str
    asks: bool


def model_name(server: str, tool: str) -> str:
    """The name the model knows an MCP tool by."""
    return f"{PREFIX}{_UNSAFE.sub('_', server)}{SEPARATOR}{_UNSAFE.sub('_', tool)}"


def mcp_target(config: SessionConfig, name: str) -> McpTarget | None:
    """The MCP server and tool a call named ``name`` goes to, when the session has such a
    server and its toolset enables the tool; else None (the call is not an MCP call the
    session allows)."""
    best: tuple[int, McpServer] | None = None
    for server in config.mcp_servers:
        prefix = f"{PREFIX}{_UNSAFE.sub('_', server.name)}{SEPARATOR}"
        if name.startswith(prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), server)
    if best is None:
        return None
    length, server = best
    tool = name[length:]
    enabled, permission = server.policy_of(tool)
    if not tool or not enabled:
        return None
    return McpTarget(server, tool, permission == ALWAYS_ASK)


def offered_mcp_tools(
    session: Session,
    client: McpClient | None,
    tokens: Mapping[str, str],
    redact: Callable[[str], str],
    refresh: Callable[[str], bool] | None = None,
) -> list[ToolSpec]:
    """The MCP tools to offer the model this turn: each server's tools that its toolset
    enables. A server that cannot be used is recorded on ``session`` (not yet saved)
    with a message ``redact`` made safe, and left out."""
    specs: list[ToolSpec] = []
    for server in session.config.mcp_servers:
        try:
            if client is None:
                raise McpError("this process has no MCP client")
            listed = _renewing(functools.partial(client.list_tools, server.url), server.url, tokens, refresh)
        except McpError as e:
            session.record_mcp_failure(server.name, e.kind, redact(str(e)))
            continue
        for tool in listed:
            if server.policy_of(tool.name)[0]:
                name = model_name(server.name, tool.name)
                specs.append(ToolSpec(name, tool.description, dict(tool.input_schema)))
    return specs


def run_mcp_tool(
    client: McpClient | None,
    target: McpTarget,
    call: ToolCall,
    tokens: Mapping[str, str],
    max_output_bytes: int,
    refresh: Callable[[str], bool] | None = None,
) -> ToolResult:
    """Run one MCP call. Whatever goes wrong (its arguments, the server) is an error
    result for the model, never an exception."""
    started = time.perf_counter()
    try:
        if client is None:
            raise McpError("this process has no MCP client")
        arguments = tool_arguments(call)
        outcome = _renewing(
            lambda token: client.call_tool(target.server.url, token, target.tool, arguments),
            target.server.url,
            tokens,
            refresh,
        )
        output, truncated = capped(outcome.text.encode(), max_output_bytes)
        is_error = outcome.is_error
    except (ToolArgumentError, McpError) as e:
        output, truncated, is_error = f"error: {e}", False, True
    return ToolResult(
        tool_call_id=call.id,
        name=call.name,
        output=output,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        truncated=truncated,
        is_error=is_error,
    )


def _renewing(
    use: Callable[[str | None], T], url: str, tokens: Mapping[str, str], refresh: Callable[[str], bool] | None
) -> T:
    """``use`` with the server's token; once more with a renewed token when the server
    refused it and ``refresh`` renewed it."""
    try:
        return use(tokens.get(url))
    except McpError as e:
        if e.kind != "authentication" or refresh is None or not refresh(url):
            raise
    return use(tokens.get(url))
