"""A session's log, as the Managed Agents API shows it: its events, projected.

Nothing here is stored: the API's events are a pure function of the session's own
append-only log, computed as they are read. Each log event becomes zero or more
API events, and each API event's id names where it came from: the session, the
log version and its place among that version's API events
(``sevt_<session hex><version, 10 hex><index, 2 hex>``, and past index 255 a longer
form, see :func:`event_id`). So ids are stable across processes and restarts, an id given back by a client (a ``custom_tool_use_id``,
a ``tool_use_id``) leads straight to the log event and tool call it stands for,
and "everything after this id" is a position in the log: streams that reconnect
resume without gaps or duplicates.

How the log maps:

======================================  ================================================
log event                               API events
======================================  ================================================
``UserMessageAdded``                    ``user.message``
``TurnStarted``, ``TurnResumed``        ``session.status_running``
``AssistantMessageAdded``               ``agent.message`` (its text, if any), then per
                                        tool call ``agent.tool_use`` or, for a custom
                                        tool, ``agent.custom_tool_use``, for an MCP
                                        tool ``agent.mcp_tool_use``
``UsageRecorded``                       ``span.model_request_end`` (its usage)
``ToolConfirmationAnswered``            ``user.tool_confirmation``
``ToolResultRecorded``                  ``agent.tool_result``, or ``user.custom_tool_result``
                                        when the client answered a custom tool, or
                                        ``user.tool_result`` for a call of a self-hosted
                                        worker's tool (a worker's answer, or the server's
                                        "not run" that no worker may run after), or
                                        ``agent.mcp_tool_result`` for an MCP tool
``McpServerFailed``                     ``session.error`` (``mcp_connection_failed_error``
                                        or ``mcp_authentication_failed_error``)
``TurnCompleted``                       ``user.interrupt`` when the user interrupted it,
                                        then ``session.status_idle`` with its stop reason;
                                        nothing for a pause for a worker (still running)
``TurnFailed``                          ``session.error``, ``session.status_idle``
                                        (``retries_exhausted``)
``SessionTerminated``                   ``session.status_terminated``
``SessionForked``                       the messages it starts with, as above
======================================  ================================================

Other events (titles, config changes, sandboxes, packages) have no API event; the
extension routes under ``/x-agentjournal`` show the whole log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from agentjournal.application.mcp_tools import mcp_target
from agentjournal.application.work_queue import WORKER_COMPUTE, WORKER_TOOLS
from agentjournal.domain import (
    AssistantMessage,
    Message,
    Session,
    SessionConfig,
    StopReason,
    ToolCall,
    ToolResult,
    UserMessage,
)
from agentjournal.infrastructure.server.errors import ApiError

EVENT_PREFIX = "sevt_"
USER_INTERRUPT_DETAIL = "interrupted by the user"
"""The detail of a turn the user interrupted (``user.interrupt``), as the runner records it."""

ApiEvent = dict[str, Any]


SHORT_INDEXES = 256
"""Indexes below this are written in two hex digits: every id had that form at first."""

_SHORT_SUFFIXES = tuple(f"{index:02x}" for index in range(SHORT_INDEXES))

_EVENT_ID = re.compile(
    EVENT_PREFIX + r"(?P<session>[0-9a-f]{32})(?P<version>[0-9a-f]{10})"
    r"(?:(?P<short>[0-9a-f]{2})|ff(?P<digits>[3-9a-f])(?P<index>[1-9a-f][0-9a-f]*))"
)


def event_id(session_id: UUID, version: int, index: int) -> str:
    """The id of the API event at ``index`` among those of log ``version``: ``sevt_``, the
    session's hex, the version in 10 hex digits and the index in 2.

    One log event can project more than 256 API events (a fork's first event projects one
    per message it inherits), so an index from 256 on is written ``ff``, then how many hex
    digits it has (one hex digit), then those digits: 256 is ``ff3100``, 4096 ``ff41000``.
    Such an id is longer than any id of the short form, and as text it sorts after every
    id of its version before it (``ff`` is index 255's) and before every id of the next
    version, as its event does: ids compare as the positions they name."""
    return _version_prefix(session_id.hex, version) + _index_suffix(index)


def _version_prefix(session_hex: str, version: int) -> str:
    """What the ids of one log version's API events begin with."""
    return f"{EVENT_PREFIX}{session_hex}{version:010x}"


def _index_suffix(index: int) -> str:
    """What an API event's id ends with: its index among its log version's (see :func:`event_id`)."""
    if index < SHORT_INDEXES:
        return _SHORT_SUFFIXES[index]
    digits = f"{index:x}"
    return f"ff{len(digits):x}{digits}"


def event_position(session_id: UUID, text: str, field: str) -> tuple[int, int]:
    """The (version, index) an event id of this session names, in either form
    :func:`event_id` writes (and only as it writes it, so each position has one id);
    a 400 naming ``field`` (where the id was given) for any other text."""
    found = _EVENT_ID.fullmatch(text)
    if found and found["session"] == session_id.hex:
        if found["short"] is not None:
            return int(found["version"], 16), int(found["short"], 16)
        if len(found["index"]) == int(found["digits"], 16):
            return int(found["version"], 16), int(found["index"], 16)
    raise ApiError(400, f"{field}: {text!r} is not the id of an event of session sesn_{session_id.hex}")


class WireProjector:
    """Turns a session's log events, fed in order from its first, into API events.

    It remembers what later events need from earlier ones: the session's config (which
    tools are custom, confirmed, MCP), and for each call still open the API id of its
    ``tool_use`` event and who was asked to run it. A call is forgotten once its result is
    projected (nothing later names it), so what a projector holds is the config and the
    open calls: it does not grow with the log. Feed it every event from version 1, or
    start from a :meth:`copy` of one fed up to some version and feed it what follows (a
    position filter is applied to the output, not the input).
    """

    def __init__(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.id_head = EVENT_PREFIX + session_id.hex
        """What every id of the session's API events begins with."""
        self.config: SessionConfig | None = None
        self.mcp_calls: set[str] = set()
        """Calls of MCP tools: their results are ``agent.mcp_tool_result``."""
        self.custom_tools: frozenset[str] = frozenset()
        self.confirm_tools: frozenset[str] = frozenset()
        self.call_events: dict[str, str] = {}
        """Tool call id -> the id of its ``agent.tool_use`` / ``agent.custom_tool_use`` event."""
        self.asked_of_client: set[str] = set()
        """Custom tool calls handed to the client: their results are the client's."""
        self.on_workers = False
        """The session's tools run on a self-hosted environment's workers."""
        self.asked_of_worker: set[str] = set()
        """Calls handed to a worker: a pause for them alone is no idle."""
        self.version = 0

    def copy(self) -> WireProjector:
        """This projector as it stands: feeding either one later leaves the other as it was."""
        twin = WireProjector.__new__(WireProjector)
        twin.session_id, twin.config, twin.version = self.session_id, self.config, self.version
        twin.id_head = self.id_head
        twin.custom_tools, twin.confirm_tools = self.custom_tools, self.confirm_tools  # frozen
        twin.on_workers = self.on_workers
        twin.mcp_calls = set(self.mcp_calls)
        twin.call_events = dict(self.call_events)
        twin.asked_of_client = set(self.asked_of_client)
        twin.asked_of_worker = set(self.asked_of_worker)
        return twin

    def feed(self, events: Iterable[Any]) -> Iterator[tuple[int, int, ApiEvent]]:
        """(version, index, API event) for each API event of ``events``."""
        for event in events:
            yield from self.project(event)

    def project(self, event: Any) -> list[tuple[int, int, ApiEvent]]:
        """(version, index, API event) for each API event of the next log event, ``event``.

        ``processed_at`` is the log event's own timestamp, an aware ``datetime`` that the
        JSON encoder (msgspec) writes in RFC 3339 as :func:`wire_time` does, with no text
        made per event in Python. Which projection applies is looked up by the event's
        class in one dict (:data:`_PROJECTIONS`), not tried class by class."""
        self.version = version = event.originator_version
        projection = _PROJECTIONS.get(type(event))
        bodies = projection(self, event) if projection else None
        if not bodies:
            return []
        prefix, moment = f"{self.id_head}{version:010x}", event.timestamp
        if len(bodies) == 1:  # most log events project one API event
            return [(version, 0, {"id": prefix + "00", "processed_at": moment, **bodies[0]})]
        return [
            (version, index, {"id": prefix + _index_suffix(index), "processed_at": moment, **body})
            for index, body in enumerate(bodies)
        ]

    def _id(self, version: int, index: int) -> str:
        """:func:`event_id` of this projector's session (whose hex it made once)."""
        return f"{self.id_head}{version:010x}{_index_suffix(index)}"

    def _config_set(self, event: Any) -> list[dict[str, Any]]:
        self._governed_by(event.config)
        return []

    def _forked(self, event: Any) -> list[dict[str, Any]]:
        self._governed_by(event.config)
        return [body for message in event.messages for body in self._message(message, event)]

    def _user_message_added(self, event: Any) -> list[dict[str, Any]]:
        return [_user_message(event.content)]

    def _assistant_message_added(self, event: Any) -> list[dict[str, Any]]:
        return self._assistant(event.message, event)

    def _running(self, _event: Any) -> list[dict[str, Any]]:
        return [{"type": "session.status_running"}]

    def _usage(self, event: Any) -> list[dict[str, Any]]:
        usage = event.usage
        return [
            {
                "type": "span.model_request_end",
                "model_request_start_id": self._id(event.originator_version - 1, 0),
                "is_error": False,
                "model_usage": {
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "cache_read_input_tokens": usage.cache_read_tokens,
                    "cache_creation_input_tokens": usage.cache_creation_tokens,
                },
            }
        ]

    def _confirmation(self, event: Any) -> list[dict[str, Any]]:
        answer: dict[str, Any] = {
            "type": "user.tool_confirmation",
            "tool_use_id": self.call_events.get(event.tool_call_id, event.tool_call_id),
            "result": "allow" if event.allowed else "deny",
        }
        if not event.allowed and event.reason:
            answer["deny_message"] = event.reason
        return [answer]

    def _asked_of_client(self, event: Any) -> list[dict[str, Any]]:
        self.asked_of_client.add(event.call.id)
        return []

    def _asked_of_worker(self, event: Any) -> list[dict[str, Any]]:
        self.asked_of_worker.add(event.call.id)
        return []

    def _tool_result(self, event: Any) -> list[dict[str, Any]]:
        return [self._result(event.result)]

    def _completed(self, event: Any) -> list[dict[str, Any]]:
        return self._turn_end(event.stop_reason, event.detail)

    def _failed(self, event: Any) -> list[dict[str, Any]]:
        model_failed = event.error_type in ("ModelError", "ModelSetupError")
        error_type = "model_request_failed_error" if model_failed else "unknown_error"
        message = f"{event.error_type}: {event.error}"
        return [
            {"type": "session.error",
             "error": {"type": error_type, "message": message, "retry_status": {"type": "terminal"}}},
            {"type": "session.status_idle", "stop_reason": {"type": "retries_exhausted"}},
        ]  # fmt: skip

    def _mcp_failed(self, event: Any) -> list[dict[str, Any]]:
        error = {
            "type": f"mcp_{event.kind}_failed_error",
            "mcp_server_name": event.server,
            "message": event.message,
            "retry_status": {"type": "terminal"},
        }
        return [{"type": "session.error", "error": error}]

    def _terminated(self, _event: Any) -> list[dict[str, Any]]:
        return [{"type": "session.status_terminated"}]

    def _governed_by(self, config: SessionConfig) -> None:
        self.config = config
        self.custom_tools = frozenset(t.name for t in config.custom_tools)
        self.confirm_tools = frozenset(config.confirm_tools)
        self.on_workers = config.compute == WORKER_COMPUTE

    def _message(self, message: Message, event: Any) -> list[dict[str, Any]]:
        if isinstance(message, UserMessage):
            return [_user_message(message.content)]
        if isinstance(message, ToolResult):
            return [self._result(message)]
        return self._assistant(message, event)

    def _assistant(self, message: AssistantMessage, event: Any) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        if message.content:
            bodies.append({"type": "agent.message", "content": [{"type": "text", "text": message.content}]})
        for call in message.tool_calls:
            # The id this call's event will get: its place among this log event's API events.
            self.call_events[call.id] = self._id(event.originator_version, len(bodies))
            bodies.append(self._tool_use(call))
        return bodies

    def _tool_use(self, call: ToolCall) -> dict[str, Any]:
        body: dict[str, Any] = {"name": call.name, "input": _arguments(call.arguments)}
        if call.name in self.custom_tools:
            return {"type": "agent.custom_tool_use", **body}
        target = mcp_target(self.config, call.name) if self.config else None
        if target is not None:
            self.mcp_calls.add(call.id)
            return {
                "type": "agent.mcp_tool_use",
                **body,
                "name": target.tool,
                "mcp_server_name": target.server.name,
                "evaluated_permission": "ask" if target.asks else "allow",
            }
        if call.name in self.confirm_tools:
            # ``needs_confirmation`` is what PraisonAI's hosted backend looks for.
            return {
                "type": "agent.tool_use",
                **body,
                "evaluated_permission": "ask",
                "needs_confirmation": True,
            }
        return {"type": "agent.tool_use", **body, "evaluated_permission": "allow"}

    def _result(self, result: ToolResult) -> dict[str, Any]:
        body = self._result_body(result)
        call_id = result.tool_call_id  # answered: no later event names it
        self.call_events.pop(call_id, None)
        self.mcp_calls.discard(call_id)
        self.asked_of_client.discard(call_id)
        self.asked_of_worker.discard(call_id)
        return body

    def _result_body(self, result: ToolResult) -> dict[str, Any]:
        use_id = self.call_events.get(result.tool_call_id, result.tool_call_id)
        content = [{"type": "text", "text": result.output}]
        if result.tool_call_id in self.asked_of_client and not result.output.startswith("not run: "):
            return {"type": "user.custom_tool_result", "custom_tool_use_id": use_id, "content": content,
                    "is_error": result.is_error}  # fmt: skip
        if result.tool_call_id in self.mcp_calls:
            return {"type": "agent.mcp_tool_result", "mcp_tool_use_id": use_id, "content": content,
                    "is_error": result.is_error}  # fmt: skip
        if self.on_workers and result.name in WORKER_TOOLS:
            # What a worker reads as answered: its own results, and the calls the server
            # closed without running ("not run: ..."), which no worker may run after.
            return {"type": "user.tool_result", "tool_use_id": use_id, "content": content,
                    "is_error": result.is_error}  # fmt: skip
        return {"type": "agent.tool_result", "tool_use_id": use_id, "content": content,
                "is_error": result.is_error}  # fmt: skip

    def _turn_end(self, stop_reason: StopReason, detail: str) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        if stop_reason == StopReason.INTERRUPTED and detail == USER_INTERRUPT_DETAIL:
            bodies.append({"type": "user.interrupt"})
        if stop_reason == StopReason.REQUIRES_ACTION and set(detail.split()) <= self.asked_of_worker:
            return []  # waiting for a worker: the session is busy, not idle
        if stop_reason == StopReason.REQUIRES_ACTION:
            waiting = [self.call_events.get(call_id, call_id) for call_id in detail.split()]
            reason: dict[str, Any] = {"type": "requires_action", "event_ids": waiting}
        else:
            reason = {"type": "end_turn"}
        bodies.append({"type": "session.status_idle", "stop_reason": reason})
        return bodies


_PROJECTIONS: dict[type, Callable[[WireProjector, Any], list[dict[str, Any]]]] = {
    Session.SessionStarted: WireProjector._config_set,
    Session.ConfigChanged: WireProjector._config_set,
    Session.SessionForked: WireProjector._forked,
    Session.UserMessageAdded: WireProjector._user_message_added,
    Session.AssistantMessageAdded: WireProjector._assistant_message_added,
    Session.TurnStarted: WireProjector._running,
    Session.TurnResumed: WireProjector._running,
    Session.UsageRecorded: WireProjector._usage,
    Session.ToolConfirmationAnswered: WireProjector._confirmation,
    Session.CustomToolRequested: WireProjector._asked_of_client,
    Session.RemoteToolRequested: WireProjector._asked_of_worker,
    Session.ToolResultRecorded: WireProjector._tool_result,
    Session.TurnCompleted: WireProjector._completed,
    Session.TurnFailed: WireProjector._failed,
    Session.McpServerFailed: WireProjector._mcp_failed,
    Session.SessionTerminated: WireProjector._terminated,
}
"""What each log event class projects (and remembers); any other class projects nothing."""


def _user_message(text: str) -> dict[str, Any]:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def _arguments(text: str) -> dict[str, Any]:
    try:
        decoded = msgspec.json.decode(text or "{}")
    except msgspec.DecodeError:
        return {"arguments": text}
    return decoded if isinstance(decoded, dict) else {"arguments": decoded}


def wire_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
