"""A page of ``events.list`` is the same JSON, byte for byte, however the page is made: a
session holding every kind of API event is listed as the handler encodes a page, and the
bytes are compared with the API events written out here field by field (their order too),
so a faster projector or decoder cannot change an id, a key's place or a value unseen. The
official SDK's event types parse every event of the page."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
import pytest
from anthropic.types.beta.sessions import BetaManagedAgentsSessionEvent
from pydantic import TypeAdapter

from agentjournal.application import SessionService
from agentjournal.application.work_queue import WORKER_COMPUTE
from agentjournal.domain import (
    AssistantMessage,
    CustomTool,
    McpServer,
    Session,
    SessionConfig,
    ToolCall,
    ToolResult,
    Usage,
)
from agentjournal.infrastructure.server.event_pages import Checkpoints, page_backward, page_forward
from agentjournal.infrastructure.server.wire import event_id, wire_time
from agentjournal.infrastructure.stores.log_rows import RangedLog

pytestmark = pytest.mark.timeout(120)

CONFIG = SessionConfig(
    model="gpt-4o-mini", system="", name="json", tools=("shell", "rm"), networking={"type": "unrestricted"},
    custom_tools=(CustomTool("ask"),), confirm_tools=("rm",), mcp_servers=(McpServer("docs", "http://docs"),),
)  # fmt: skip

SHELL = ToolCall("c-shell", "shell", '{"command": "ls"}')
RM = ToolCall("c-rm", "rm", '{"path": "/"}')
MCP = ToolCall("c-mcp", "mcp__docs__search", '{"q": "x"}')
ASK = ToolCall("c-ask", "ask", "[1, 2]")
ON_WORKER = ToolCall("c-worker", "bash", "not json")


def every_kind(service: SessionService) -> UUID:
    """A session whose log projects every kind of API event the projector writes."""
    session = Session.start(CONFIG, title="json")
    session.begin_turn("hello", "test")
    session.add_assistant_message(AssistantMessage("Let me look.", (SHELL, RM, MCP, ASK)))
    session.record_usage("gpt-4o-mini", Usage(10, 20, 3, 4))
    session.start_tool_call(SHELL)
    session.record_tool_result(ToolResult(SHELL.id, "shell", "a b"))
    session.request_confirmation(RM)
    session.answer_confirmation(RM.id, False, "not that")
    session.record_tool_result(ToolResult(RM.id, "rm", "not run: denied", is_error=True))
    session.start_tool_call(MCP)
    session.record_tool_result(ToolResult(MCP.id, MCP.name, "found"))
    session.request_custom_tool(ASK)
    session.pause_turn()
    session.record_tool_result(ToolResult(ASK.id, "ask", "yes"))
    session.resume_turn("test")
    session.record_mcp_failure("docs", "connection", "refused")
    session.add_assistant_message(AssistantMessage("Done."))
    session.complete_turn()
    session.begin_turn("again", "test")
    session.interrupt_turn("interrupted by the user")
    session.begin_turn("fail", "test")
    session.fail_turn("boom", "ModelError")
    session.change_config(msgspec.structs.replace(CONFIG, compute=WORKER_COMPUTE))
    session.begin_turn("on a worker", "test")
    session.add_assistant_message(AssistantMessage("", (ON_WORKER,)))
    session.request_remote_tool(ON_WORKER)
    session.record_remote_result(ToolResult(ON_WORKER.id, "bash", "ran"), "worker-1")
    session.complete_turn()
    session.terminate()
    service.save_session(session)
    return session.id


def expected(session_id: UUID, times: dict[int, Any]) -> list[dict[str, Any]]:
    """The session's API events, as the API shows them (log version, index, body)."""

    def use(version: int, index: int) -> str:
        return event_id(session_id, version, index)

    text = [{"type": "text", "text": "hello"}]
    bodies: list[tuple[int, int, dict[str, Any]]] = [
        (2, 0, {"type": "user.message", "content": text}),
        (3, 0, {"type": "session.status_running"}),
        (4, 0, {"type": "agent.message", "content": [{"type": "text", "text": "Let me look."}]}),
        (4, 1, {"type": "agent.tool_use", "name": "shell", "input": {"command": "ls"}, "evaluated_permission": "allow"}),
        (4, 2, {"type": "agent.tool_use", "name": "rm", "input": {"path": "/"}, "evaluated_permission": "ask",
                "needs_confirmation": True}),
        (4, 3, {"type": "agent.mcp_tool_use", "name": "search", "input": {"q": "x"}, "mcp_server_name": "docs",
                "evaluated_permission": "ask"}),
        (4, 4, {"type": "agent.custom_tool_use", "name": "ask", "input": {"arguments": [1, 2]}}),
        (5, 0, {"type": "span.model_request_end", "model_request_start_id": use(4, 0), "is_error": False,
                "model_usage": {"input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 3,
                                "cache_creation_input_tokens": 4}}),
        (7, 0, {"type": "agent.tool_result", "tool_use_id": use(4, 1), "content": [{"type": "text", "text": "a b"}],
                "is_error": False}),
        (9, 0, {"type": "user.tool_confirmation", "tool_use_id": use(4, 2), "result": "deny",
                 "deny_message": "not that"}),
        (10, 0, {"type": "agent.tool_result", "tool_use_id": use(4, 2),
                 "content": [{"type": "text", "text": "not run: denied"}], "is_error": True}),
        (12, 0, {"type": "agent.mcp_tool_result", "mcp_tool_use_id": use(4, 3),
                 "content": [{"type": "text", "text": "found"}], "is_error": False}),
        (14, 0, {"type": "session.status_idle", "stop_reason": {"type": "requires_action", "event_ids": [use(4, 4)]}}),
        (15, 0, {"type": "user.custom_tool_result", "custom_tool_use_id": use(4, 4),
                 "content": [{"type": "text", "text": "yes"}], "is_error": False}),
        (16, 0, {"type": "session.status_running"}),
        (17, 0, {"type": "session.error", "error": {"type": "mcp_connection_failed_error", "mcp_server_name": "docs",
                                                    "message": "refused", "retry_status": {"type": "terminal"}}}),
        (18, 0, {"type": "agent.message", "content": [{"type": "text", "text": "Done."}]}),
        (19, 0, {"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}),
        (20, 0, {"type": "user.message", "content": [{"type": "text", "text": "again"}]}),
        (21, 0, {"type": "session.status_running"}),
        (22, 0, {"type": "user.interrupt"}),
        (22, 1, {"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}),
        (23, 0, {"type": "user.message", "content": [{"type": "text", "text": "fail"}]}),
        (24, 0, {"type": "session.status_running"}),
        (25, 0, {"type": "session.error", "error": {"type": "model_request_failed_error", "message": "ModelError: boom",
                                                    "retry_status": {"type": "terminal"}}}),
        (25, 1, {"type": "session.status_idle", "stop_reason": {"type": "retries_exhausted"}}),
        (27, 0, {"type": "user.message", "content": [{"type": "text", "text": "on a worker"}]}),
        (28, 0, {"type": "session.status_running"}),
        (29, 0, {"type": "agent.tool_use", "name": "bash", "input": {"arguments": "not json"},
                 "evaluated_permission": "allow"}),
        (32, 0, {"type": "user.tool_result", "tool_use_id": use(29, 0), "content": [{"type": "text", "text": "ran"}],
                 "is_error": False}),
        (33, 0, {"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}),
        (34, 0, {"type": "session.status_terminated"}),
    ]  # fmt: skip
    return [
        {"id": use(version, index), "processed_at": times[version], **body} for version, index, body in bodies
    ]


def as_listed(page: list[dict[str, Any]], more: bool) -> bytes:
    """A page's body as ``events.list`` writes it."""
    return msgspec.json.encode({"data": page, "next_page": page[-1]["id"] if more else None})


def test_a_page_of_every_kind_of_event_is_the_json_written_out_here(service):
    session_id = every_kind(service)
    log = RangedLog.of(service.events)
    times = {event.originator_version: event.timestamp for event in service.events.get(session_id)}
    events = expected(session_id, times)
    page = as_listed(*page_forward(log, Checkpoints(session_id), None, None, 1000))
    assert page == as_listed(events, False)
    newest_first = as_listed(*page_backward(log, Checkpoints(session_id), None, None, 1000))
    assert newest_first == as_listed(events[::-1], False)
    assert as_listed(*page_forward(log, Checkpoints(session_id), None, None, 7)) == as_listed(
        events[:7], True
    )
    listed = msgspec.json.decode(page)["data"]
    written = [wire_time(event["processed_at"]) for event in events]
    assert [event["processed_at"] for event in listed] == written  # RFC 3339, as wire_time writes it
    sdk = TypeAdapter(BetaManagedAgentsSessionEvent)
    for event in listed:
        if event["type"] != "user.tool_result":  # a self-hosted worker's event: not in the SDK's union
            assert sdk.validate_python(event).type == event["type"]
