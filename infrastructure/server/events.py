"""``/v1/sessions/{id}/events``: send, list and stream a session's events.

``send`` records what the client said and returns at once: a prompt starts a turn
that runs in the background, an answer to a paused turn continues it once nothing
else is awaited, an interrupt closes the running turn. ``list`` and ``stream``
read the session's log from the store (:mod:`.wire` turns it into API events), so
any server process can serve any session, and a stream that reconnects with the
id of the last event it saw (``Last-Event-ID``) goes on from exactly there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentjournal.application.answers import (
    Confirmation,
    Interrupt,
    Prompt,
    Step,
    StepRefused,
    ToolAnswer,
    WorkerResult,
)
from agentjournal.application.errors import SessionNotFound
from agentjournal.application.tool_policy import MAX_TOOL_CALLS_PER_REPLY
from agentjournal.application.work_queue import WorkerKey
from agentjournal.domain import NoPendingAction, Session, Status, ToolResult
from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.errors import ApiError, as_api_error, not_found
from agentjournal.infrastructure.server.event_pages import page_backward, page_forward
from agentjournal.infrastructure.server.ids import SESSION, parse_id, wire_id
from agentjournal.infrastructure.server.query import query_int, query_time
from agentjournal.infrastructure.server.sessions import engine_of, existing_session
from agentjournal.infrastructure.server.wire import (
    USER_INTERRUPT_DETAIL,
    ApiEvent,
    event_id,
    event_position,
)

MAX_LIST_LIMIT = 1000


# -- what a client may send -------------------------------------------------------------


class TextBlock(msgspec.Struct, tag_field="type", tag="text"):
    text: str


class UserMessageIn(msgspec.Struct, tag_field="type", tag="user.message"):
    content: list[TextBlock] | str


class UserInterruptIn(msgspec.Struct, tag_field="type", tag="user.interrupt"):
    pass


class CustomToolResultIn(msgspec.Struct, tag_field="type", tag="user.custom_tool_result"):
    custom_tool_use_id: str
    content: list[TextBlock] | str = []
    is_error: bool | None = None


class ToolConfirmationIn(msgspec.Struct, tag_field="type", tag="user.tool_confirmation"):
    """``result`` is the API's; ``allowed`` (a boolean) is what PraisonAI's hosted backend sends."""

    tool_use_id: str
    result: Literal["allow", "deny"] | None = None
    deny_message: str | None = None
    allowed: bool | None = None


class ContentIn(msgspec.Struct):
    """A block of a tool result; text is kept, other kinds are named."""

    type: str
    text: str = ""


class ToolResultIn(msgspec.Struct, tag_field="type", tag="user.tool_result"):
    """A self-hosted worker's result for an ``agent.tool_use`` it ran."""

    tool_use_id: str
    content: list[ContentIn] | str = []
    is_error: bool | None = None


EventIn = UserMessageIn | UserInterruptIn | CustomToolResultIn | ToolConfirmationIn | ToolResultIn


MAX_EVENTS_PER_SEND = 2 * MAX_TOOL_CALLS_PER_REPLY + 2
"""The most events one ``send`` takes: an answer of each kind for every call a paused turn
can wait on (a reply makes at most ``MAX_TOOL_CALLS_PER_REPLY``), a prompt and an interrupt."""


class SendBody(msgspec.Struct):
    events: Annotated[list[EventIn], msgspec.Meta(min_length=1, max_length=MAX_EVENTS_PER_SEND)]


def _text(content: list[TextBlock] | str) -> str:
    return content if isinstance(content, str) else "\n".join(block.text for block in content)


# -- send -------------------------------------------------------------------------------


async def send_events(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    body = await read_json(request, SendBody)
    key: WorkerKey | None = getattr(request.state, "worker_key", None)
    if key is not None and not all(isinstance(event, ToolResultIn) for event in body.events):
        raise ApiError(403, "a worker key may send only user.tool_result events")
    sent = await asyncio.to_thread(_record, engine, session_id, body.events, key)
    return JSONResponse({"data": sent})


@dataclass(frozen=True)
class _Command:
    """One event of a send, checked: where it stands in the send, the application's step
    (with the log's tool call id for an API event id), and the event to echo (a prompt's and
    an interrupt's echoes are made from the step)."""

    where: str
    step: Step
    echo: ApiEvent | None = None


def _record(
    engine: Any, session_id: UUID, events: list[EventIn], key: WorkerKey | None = None
) -> list[ApiEvent]:
    """Record a send's events in order. The whole send is checked first, each event and
    then all of them applied to the session in memory, so an event the session would
    refuse (a second prompt, an answer nobody waits for) refuses the send before anything
    of it is recorded. Only a change made meanwhile by another request can still refuse
    a later event after earlier ones were recorded."""
    existing_session(engine, session_id)
    commands = [_command(engine, session_id, f"events[{n}]", event) for n, event in enumerate(events)]
    try:
        engine.service.check_steps(session_id, [command.step for command in commands])
    except StepRefused as e:
        refused = as_api_error(e.reason)
        raise ApiError(refused.status, f"{commands[e.index].where}: {refused.message}", refused.error_type,
                       refused.error_code) from None  # fmt: skip
    worker = engine.service.work.worker_of(key, str(session_id)) if key is not None else "client"
    return [_perform(engine, session_id, command, worker) for command in commands]


MAX_INITIAL_EVENTS = 50
"""The most ``initial_events`` a new session takes, as the cloud documents."""


def initial_prompts(engine: Any, events: list[dict[str, Any]]) -> list[EventIn]:
    """A new session's ``initial_events``, checked before the session is recorded:
    ``user.message`` events only (``user.define_outcome`` waits for outcomes), at most
    :data:`MAX_INITIAL_EVENTS`."""
    if len(events) > MAX_INITIAL_EVENTS:
        raise ApiError(400, f"initial_events: at most {MAX_INITIAL_EVENTS} events, not {len(events)}")
    for n, event in enumerate(events):
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "user.define_outcome":
            raise ApiError(
                400, f"initial_events[{n}]: user.define_outcome is not supported until outcomes exist"
            )
        if kind != "user.message":
            raise ApiError(400, f"initial_events[{n}].type: must be 'user.message', not {kind!r}")
    try:
        prompts: list[EventIn] = msgspec.convert(events, type=list[UserMessageIn])
    except msgspec.ValidationError as e:
        raise ApiError(400, f"initial_events: {e}") from None
    for n, prompt in enumerate(prompts):
        _command(engine, UUID(int=0), f"initial_events[{n}]", prompt)  # its text, as a send checks it
    return prompts


def send_initial(engine: Any, session_id: UUID, prompts: list[EventIn]) -> None:
    """Start a new session's first turn from its checked ``initial_events``: their messages
    are its first events, in order, and one turn answers them all (as the cloud processes
    them before the session goes idle)."""
    commands = [_command(engine, session_id, f"initial_events[{n}]", p) for n, p in enumerate(prompts)]
    engine.runner.start(session_id, [c.step.text for c in commands if isinstance(c.step, Prompt)])
    engine.doorbell.ring(session_id)


def _command(engine: Any, session_id: UUID, where: str, event: EventIn) -> _Command:
    if isinstance(event, UserMessageIn):
        text = _text(event.content)
        if not text.strip():
            raise ApiError(400, f"invalid request body: {where}.content has no text")
        limit = engine.runtimes.config.max_prompt_chars
        if len(text) > limit:
            raise ApiError(400, f"invalid request body: {where}.content is over {limit:,} characters")
        return _Command(where, Prompt(text))
    if isinstance(event, UserInterruptIn):
        return _Command(where, Interrupt(USER_INTERRUPT_DETAIL))
    if isinstance(event, ToolResultIn):
        call_id = _tool_call_id(engine, session_id, event.tool_use_id, f"{where}.tool_use_id")
        output = event.content if isinstance(event.content, str) else _blocks_text(event.content)
        return _Command(
            where, WorkerResult(call_id, output, bool(event.is_error)), msgspec.to_builtins(event)
        )
    if isinstance(event, CustomToolResultIn):
        call_id = _tool_call_id(engine, session_id, event.custom_tool_use_id, f"{where}.custom_tool_use_id")
        answer = ToolAnswer(call_id, _text(event.content), bool(event.is_error))
        return _Command(where, answer, msgspec.to_builtins(event))
    call_id = _tool_call_id(engine, session_id, event.tool_use_id, f"{where}.tool_use_id")
    if event.result is None and event.allowed is None:
        raise ApiError(400, f"invalid request body: {where}.result is required ('allow' or 'deny')")
    allowed = event.result == "allow" if event.result is not None else bool(event.allowed)
    echo = {"type": "user.tool_confirmation", "tool_use_id": event.tool_use_id,
            "result": "allow" if allowed else "deny"}  # fmt: skip
    return _Command(where, Confirmation(call_id, allowed, event.deny_message or ""), echo)


def _perform(engine: Any, session_id: UUID, command: _Command, worker: str) -> ApiEvent:
    """Record one checked command; the echo of the event, with its id in the log."""
    redact = engine.runtimes.config.redactor()
    step = command.step
    if isinstance(step, WorkerResult):
        assert command.echo is not None
        try:
            answered = engine.service.answer_from_worker(
                session_id, step.call_id, step.output, step.is_error, worker, redact
            )
        except NoPendingAction:
            recorded = _result_of(
                engine.service.get_session(session_id), step.call_id, engine.service.events.get
            )
            if recorded is None:
                raise
            return _echo(session_id, recorded, command.echo)  # a duplicate: the first one stands
        if answered.ready and answered.paused:
            engine.runner.resume(session_id)
        engine.doorbell.ring(session_id)
        return _echo(session_id, answered.version, command.echo)
    if isinstance(step, Prompt):
        version = engine.runner.start(session_id, step.text)
        echo: ApiEvent = {"type": "user.message", "content": [{"type": "text", "text": step.text}]}
    elif isinstance(step, Interrupt):
        version, echo = engine.runner.interrupt(session_id), {"type": "user.interrupt"}
    else:
        assert command.echo is not None
        if isinstance(step, ToolAnswer):
            answered = engine.service.answer_tool(
                session_id, step.call_id, step.output, step.is_error, redact
            )
        else:
            answered = engine.service.answer_confirmation(
                session_id, step.call_id, step.allowed, step.reason, redact
            )
        version, echo = answered.version, command.echo
        if answered.ready and answered.paused:
            engine.runner.resume(session_id)
    engine.doorbell.ring(session_id)
    return _echo(session_id, version, echo)


def _blocks_text(blocks: list[ContentIn]) -> str:
    return "\n".join(block.text if block.type == "text" else f"[{block.type} block]" for block in blocks)


def _result_of(session: Session, call_id: str, events: Any) -> int | None:
    """The log version that recorded the result of ``call_id``, if one did (a worker's post
    that comes again: its first one stands); ``events`` reads the session's log newest first."""
    if not any(isinstance(m, ToolResult) and m.tool_call_id == call_id for m in session.messages):
        return None
    for event in events(session.id, desc=True):
        if isinstance(event, Session.ToolResultRecorded) and event.result.tool_call_id == call_id:
            return int(event.originator_version)
    return None


def _echo(session_id: UUID, version: int, body: dict[str, Any]) -> ApiEvent:
    return {"id": event_id(session_id, version, 0), "processed_at": None, **body}


def _tool_call_id(engine: Any, session_id: UUID, given: str, field: str) -> str:
    """The log's tool call id behind the API id of an ``agent.tool_use`` or
    ``agent.custom_tool_use`` event."""
    version, index = event_position(session_id, given, f"invalid request body: {field}")
    events = list(engine.service.events.get(session_id, gt=version - 1, lte=version))
    if events and isinstance(events[0], Session.AssistantMessageAdded):
        message = events[0].message
        position = index - (1 if message.content else 0)
        if 0 <= position < len(message.tool_calls):
            return str(message.tool_calls[position].id)
    raise ApiError(400, f"invalid request body: {field} {given!r} is not a tool use event of this session")


# -- list -------------------------------------------------------------------------------


class _Filter(msgspec.Struct):
    types: frozenset[str]
    gt: datetime | None
    gte: datetime | None
    lt: datetime | None
    lte: datetime | None

    def keeps_all(self) -> bool:
        """Whether this filter keeps every event (none of its bounds is given)."""
        return (
            not self.types and self.gt is None and self.gte is None and self.lt is None and self.lte is None
        )

    def keeps(self, event: ApiEvent, logged: Any) -> bool:
        """Whether the page shows ``event``, projected from the log event ``logged``: its
        time is the log event's own (``processed_at`` is written from it)."""
        if self.types and event["type"] not in self.types:
            return False
        if self.gt is None and self.gte is None and self.lt is None and self.lte is None:
            return True
        moment: datetime = logged.timestamp
        return not (
            (self.gt and not moment > self.gt)
            or (self.gte and not moment >= self.gte)
            or (self.lt and not moment < self.lt)
            or (self.lte and not moment <= self.lte)
        )


def _moment(request: Request, bound: str) -> datetime | None:
    """A ``created_at[gt]`` bound (the SDK's spelling; ``created_at_gt`` is taken too)."""
    name = f"created_at[{bound}]"
    return query_time(request, name if name in request.query_params else f"created_at_{bound}")


async def list_events(request: Request) -> Response:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    limit = query_int(request, "limit", 100, 1, MAX_LIST_LIMIT)
    order = request.query_params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ApiError(400, f"query parameter 'order' must be 'asc' or 'desc', not {order!r}")
    page = request.query_params.get("page")
    after = event_position(session_id, page, "query parameter 'page'") if page else None
    wanted = _Filter(
        types=frozenset(request.query_params.getlist("types") + request.query_params.getlist("types[]")),
        gt=_moment(request, "gt"),
        gte=_moment(request, "gte"),
        lt=_moment(request, "lt"),
        lte=_moment(request, "lte"),
    )
    data, more = await asyncio.to_thread(_page, engine, session_id, wanted, order, after, limit)
    body = msgspec.json.encode({"data": data, "next_page": data[-1]["id"] if more else None})
    return Response(body, media_type="application/json")  # msgspec writes a page of 1,000 in a ms


def _page(engine: Any, session_id: UUID, wanted: _Filter, order: str, after: tuple[int, int] | None,
          limit: int) -> tuple[list[ApiEvent], bool]:  # fmt: skip
    """One page, read from the log where it starts (see :mod:`.event_pages`)."""
    listed_session(engine, session_id)
    checkpoints = engine.event_checkpoints.of(session_id)
    read = page_forward if order == "asc" else page_backward
    return read(engine.event_log, checkpoints, None if wanted.keeps_all() else wanted.keeps, after, limit)


def listed_session(engine: Any, session_id: UUID) -> None:
    """A 404 unless the session exists and is not deleted, read from its summary (a row),
    not its state (which grows with its log)."""
    try:
        summary = engine.service.summary(session_id)
    except SessionNotFound:
        raise not_found("session", wire_id(SESSION, session_id)) from None
    if summary.deleted:
        raise not_found("session", wire_id(SESSION, session_id))


# -- stream -----------------------------------------------------------------------------


async def stream_events(request: Request) -> EventSourceResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    resume_after = request.headers.get("last-event-id")
    session = await asyncio.to_thread(existing_session, engine, session_id)
    start = (
        event_position(session_id, resume_after, "header Last-Event-ID")
        if resume_after
        else _live_start(engine, session)
    )
    return EventSourceResponse(_events_after(request, engine, session_id, start), ping=15)


def _live_start(engine: Any, session: Session) -> tuple[int, int]:
    """Where a new stream begins: at the running turn's prompt while a turn runs (so a
    stream opened just after ``send`` misses nothing of it), at the log's end otherwise
    (so it does not show again how the last turn ended). A client that sent first and
    may have missed a quick turn's end gives the id ``send`` returned as ``Last-Event-ID``."""
    if session.status == Status.RUNNING:
        # Newest first, decoded one by one: only the running turn's events are read.
        for event in engine.service.events.get(session.id, desc=True):
            if isinstance(event, Session.UserMessageAdded):
                return event.originator_version, -1
    return session.version + 1, -1  # past every API event of the last version, however many


async def _events_after(request: Request, engine: Any, session_id: UUID, start: tuple[int, int]
                        ) -> AsyncIterator[dict[str, str]]:  # fmt: skip
    """The session's API events after ``start``, as they are appended; the stream ends once
    the session is terminated (nothing can happen to it after that), or the client leaves."""
    projector = engine.event_checkpoints.of(session_id).below(start[0])
    interval = engine.settings.poll_interval
    terminated = False
    with engine.doorbell.subscription(session_id) as rung:
        while True:
            rung.clear()
            events = await asyncio.to_thread(_read_after, engine, session_id, projector.version)
            for version, index, event in projector.feed(events):
                terminated = terminated or event["type"] == "session.status_terminated"
                if (version, index) > start:
                    yield {
                        "event": event["type"],
                        "id": event["id"],
                        "data": msgspec.json.encode(event).decode(),
                    }
            if terminated or await request.is_disconnected():
                return
            try:
                await asyncio.wait_for(rung.wait(), interval)
            except TimeoutError:
                pass


def _read_after(engine: Any, session_id: UUID, version: int) -> list[Any]:
    """The session's log events after ``version``, decoded (in the thread that reads them)."""
    return list(engine.event_log.get(session_id, gt=version))


routes = [
    Route("/v1/sessions/{session_id}/events", send_events, methods=["POST"]),
    Route("/v1/sessions/{session_id}/events", list_events, methods=["GET"]),
    Route("/v1/sessions/{session_id}/events/stream", stream_events, methods=["GET"]),
]
