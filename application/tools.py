"""The built-in tools, offered to the model and run on a :class:`Compute`.

One registry, :data:`TOOLS`, holds every built-in tool a session can be given: the
four seed tools (:mod:`~agentjournal.application.seed_tools`) and Anthropic's agent
tool set (:mod:`~agentjournal.application.agent_tools`). :func:`run_tool` runs a call
of any of them.

A tool that fails (bad arguments, a refused path, a non-zero exit) is still a
result: the model reads the error and can try again. Only the compute itself
breaking stops the turn.
"""

from __future__ import annotations

import time

from agentjournal.application.agent_tools import AGENT_TOOLS
from agentjournal.application.ports import Compute, ComputeError, ToolSpec
from agentjournal.application.seed_tools import (
    EXECUTE_COMMAND,
    LIST_FILES,
    READ_FILE,
    SEED_TOOLS,
    WRITE_FILE,
)
from agentjournal.application.tool_kit import (
    Outcome,
    Tool,
    ToolArgumentError,
    ToolLimits,
    tool_arguments,
)
from agentjournal.domain import ToolCall, ToolResult

__all__ = [
    "DEFAULT_TOOLS",
    "READS_ONLY",
    "TOOLS",
    "TOOL_SPECS",
    "ToolArgumentError",
    "ToolLimits",
    "run_tool",
    "tool_arguments",
]

DEFAULT_TOOLS = (EXECUTE_COMMAND, READ_FILE, WRITE_FILE, LIST_FILES)

TOOLS: dict[str, Tool] = {**SEED_TOOLS, **AGENT_TOOLS}

READS_ONLY = frozenset({READ_FILE, LIST_FILES, "read", "glob", "grep", "web_fetch", "web_search"})
"""Built-in tools that cannot change the work folder: no workspace snapshot follows their calls."""
TOOL_SPECS: dict[str, ToolSpec] = {name: tool.spec for name, tool in TOOLS.items()}


def run_tool(compute: Compute, call: ToolCall, limits: ToolLimits) -> ToolResult:
    """Run one tool call. Whatever goes wrong with it (its arguments, a refusal or a
    failure of the compute) is an error result for the model, never an exception."""
    started = time.perf_counter()
    tool = TOOLS.get(call.name)
    try:
        if tool is None:
            outcome = Outcome(f"unknown tool {call.name!r}", is_error=True)
        else:
            outcome = tool.run(compute, tool_arguments(call), limits)
    except (ToolArgumentError, ComputeError) as e:
        outcome = Outcome(f"error: {e}", is_error=True)
    return ToolResult(
        tool_call_id=call.id,
        name=call.name,
        output=outcome.output,
        exit_code=outcome.exit_code,
        duration_ms=outcome.duration_ms if outcome.duration_ms is not None else _ms_since(started),
        truncated=outcome.truncated,
        is_error=outcome.is_error,
    )


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
