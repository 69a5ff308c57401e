"""Tool policy: what happens to a tool call the model makes, whatever kind of tool it is.

One layer for the seed's tools, Anthropic's agent toolset, custom tools and MCP servers' tools: a call is refused
when its tool is not enabled for the session (the model is offered only the session's tools,
but it may name any) or when one reply makes too many calls; asked about first when the
session's config says it needs confirmation; handed to the client when it is a custom tool;
to a self-hosted environment's worker when one runs the session's tools; run on the
session's compute otherwise. The decision reads only the recorded config, so a
resumed session is governed by what it was created with.
"""

from __future__ import annotations

import enum

import msgspec

from agentjournal.application.mcp_tools import mcp_target
from agentjournal.application.work_queue import runs_on_worker
from agentjournal.domain import SessionConfig, ToolCall, ToolResult

MAX_TOOL_CALLS_PER_REPLY = 64
"""Tool calls one model reply may make; the rest are refused as tool errors."""


class Verdict(enum.Enum):
    REFUSE = "refuse"
    ASK = "ask"
    """Ask the client first (``always_ask``); once allowed, judged again as confirmed."""
    CUSTOM = "custom"
    """The client answers it (a custom tool)."""
    WORKER = "worker"
    """A self-hosted environment's worker runs it; the turn waits for its result."""
    MCP = "mcp"
    """Called on the session's MCP server that offers it."""
    RUN = "run"


class Judgement(msgspec.Struct, frozen=True):
    verdict: Verdict
    reason: str = ""
    """Why a call is refused, for the model to read."""


def judge(config: SessionConfig, call: ToolCall, number: int, confirmed: bool = False) -> Judgement:
    """What to do with the ``number``-th call of a reply. ``confirmed`` calls were allowed by
    the client already."""
    if number > MAX_TOOL_CALLS_PER_REPLY:
        return Judgement(
            Verdict.REFUSE, f"not run: a reply may make at most {MAX_TOOL_CALLS_PER_REPLY} tool calls"
        )
    mcp = mcp_target(config, call.name)
    if call.name not in config.tool_names and mcp is None:
        enabled = sorted(config.tool_names)
        return Judgement(
            Verdict.REFUSE, f"tool {call.name!r} is not enabled in this session; its tools are {enabled}"
        )
    asks = call.name in config.confirm_tools or (mcp is not None and mcp.asks)
    if asks and not confirmed:
        return Judgement(Verdict.ASK)
    if mcp is not None:
        return Judgement(Verdict.MCP)
    if call.name in {t.name for t in config.custom_tools}:
        return Judgement(Verdict.CUSTOM)
    if runs_on_worker(config, call.name):
        return Judgement(Verdict.WORKER)
    return Judgement(Verdict.RUN)


def refusal(call: ToolCall, why: str) -> ToolResult:
    """The error result a refused call gets: the model reads why."""
    return ToolResult(tool_call_id=call.id, name=call.name, output=f"error: {why}", is_error=True)
