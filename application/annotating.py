"""Annotating a session's events, checking the annotations, and turning them into a
dataset.

Annotations are kept in each session's :class:`~agentjournal.domain.annotation.AnnotationLog`,
an aggregate of its own in the session's store: annotating never appends to the session's
log, so its head hash stays as it was, and a terminated session is annotated like any
other. Each annotation names the event it judges by version and hash, taken from the
stored event itself.

:func:`dataset` writes what evaluation tools read: one JSON object per annotation (JSON
Lines), the turn the annotated event belongs to as chat messages in (``input``) and out
(``output``, ``tool_calls``), with the annotation's note and score and the ids and hashes
that tie the line back to the log. See :class:`DatasetLine` for the shape.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from agentjournal.application.errors import SessionNotFound, StoreError, VersionNotFound
from agentjournal.application.recording import given_or_default
from agentjournal.application.redaction import Redactor
from agentjournal.domain import AssistantMessage, Message, Session, ToolResult, UserMessage
from agentjournal.domain.annotation import Annotation, AnnotationLog, annotation_log_id, check_annotation

if TYPE_CHECKING:
    from agentjournal.application.audit import Verification
    from agentjournal.application.service import SessionService

DATASET_FORMAT = "agentjournal-dataset/1"
SAVE_ATTEMPTS = 6
"""Annotations made at once by several processes race for the log's next version; the
loser loads the log again and appends after the winner, up to this many attempts."""


class AnnotationRecord(msgspec.Struct, frozen=True):
    """An annotation as its log recorded it: when, and where in the annotation log."""

    session_id: UUID
    annotation: Annotation
    created_at: datetime
    log_version: int
    """The annotation's event in the annotation log (the log's first event opens it)."""
    hash: str
    """The hash of the annotation's own event in the annotation log."""


def annotate(
    service: SessionService,
    session_id: UUID,
    version: int,
    note: str = "",
    score: float | None = None,
    redact: Redactor | None = None,
) -> AnnotationRecord:
    """Record a note, a score or both about event ``version`` of a session. The note is
    redacted like everything the store keeps. Raises :class:`SessionNotFound`,
    :class:`VersionNotFound`, or :class:`~agentjournal.domain.annotation.AnnotationRefused`
    for an annotation that says nothing or a score that is no finite number."""
    check_annotation(note, score)
    event = _session_event(service, session_id, version)
    annotation = Annotation(
        id=uuid4(), event_version=version, event_hash=event.hash, event_type=type(event).__name__,
        note=given_or_default(redact)(note), score=None if score is None else float(score),
    )  # fmt: skip
    for attempt in range(1, SAVE_ATTEMPTS + 1):
        log = _log(service, session_id) or AnnotationLog.open(session_id)
        log.annotate(annotation)
        try:
            service.save(log)
            break
        except IntegrityError:
            if attempt == SAVE_ATTEMPTS:
                raise StoreError(
                    f"the annotations of session {session_id} kept changing while this one was being "
                    "saved; nothing was recorded: try again"
                ) from None
            time.sleep(0.01 * attempt)
    return _records(session_id, service.events.get(log.id, gt=log.version - 1))[0]


def annotations_of(service: SessionService, session_id: UUID) -> list[AnnotationRecord]:
    """A session's annotations, oldest first; none for a session never annotated.
    Raises :class:`SessionNotFound` when there is no such session."""
    _first_event(service, session_id)
    return _records(session_id, service.events.get(annotation_log_id(session_id)))


def verify_annotations(service: SessionService, session_id: UUID) -> Verification | None:
    """Check a session's annotation log as a session's log is checked (every event
    against its hash and the one before it), and that every annotation names an event
    of the session by its true hash. None when the session has no annotations. The
    result's ``session_id`` is the annotation log's own id."""
    from agentjournal.application.audit import ChainBreak, Verification, verify

    log_id = annotation_log_id(session_id)
    if not service.recorder.select_events(log_id, limit=1):
        return None
    result = verify(service, log_id)
    if not result.ok:
        return result
    hashes = _event_hashes(service, session_id)
    for record in _records(session_id, service.events.get(log_id)):
        named = record.annotation
        actual = hashes.get(named.event_version)
        if actual != named.event_hash:
            now = f"its hash is now {actual}" if actual else "the session has no such event now"
            problem = (
                f"event {record.log_version} annotates event {named.event_version} of session {session_id} "
                f"as having hash {named.event_hash}, but {now}"
            )
            return Verification(log_id, result.events, result.head, ChainBreak(record.log_version, problem))
    return result


def annotated_sessions(service: SessionService) -> list[UUID]:
    """Every session of the store that has annotations, most recently updated first."""
    summaries = service.list_summaries(limit=2**62)
    return [s.id for s in summaries if service.recorder.select_events(annotation_log_id(s.id), limit=1)]


# -- the dataset ---------------------------------------------------------------------------


class DatasetEvent(msgspec.Struct, frozen=True):
    """The annotated event: its version and type in the session's log, and its hash."""

    version: int
    type: str
    hash: str


class DatasetAnnotation(msgspec.Struct, frozen=True):
    """The annotation itself, and where its annotation log holds it."""

    id: str
    note: str
    score: float | None
    created_at: datetime
    log_version: int
    hash: str


class DatasetToolCall(msgspec.Struct, frozen=True):
    """A tool call the turn made, with what running it gave back (``output`` is None for
    a call that has no result in the turn)."""

    id: str
    name: str
    arguments: str
    """The JSON text the model wrote."""
    output: str | None
    exit_code: int | None
    is_error: bool


class DatasetLine(msgspec.Struct, frozen=True):
    """One line of ``agentjournal dataset``: one annotation, with the turn it judges.

    ``input`` is what the model was given for the turn, as chat messages (OpenAI's shape:
    ``{"role": "system" | "user" | "assistant" | "tool", "content": ...}``, an assistant's
    ``tool_calls`` and a tool message's ``tool_call_id`` as that API has them): the system
    prompt, and the conversation up to and including the turn's prompt. ``output`` is the
    turn's last reply; ``steps`` every message the turn added (its replies and tool results,
    in the same shape); ``tool_calls`` the calls it made with their results. An event
    outside any turn (the session's start, a title) has ``turn`` None, ``input`` the
    conversation as of that event, and no output.
    """

    format: str
    session_id: str
    turn: int | None
    model: str
    input: list[dict[str, Any]]
    output: str
    steps: list[dict[str, Any]]
    tool_calls: list[DatasetToolCall]
    note: str
    score: float | None
    event: DatasetEvent
    annotation: DatasetAnnotation
    session_head: str
    """The hash of the session's last event when the line was written."""


def dataset(service: SessionService, session_ids: Iterable[UUID]) -> Iterator[DatasetLine]:
    """The dataset lines of these sessions' annotations, session by session, each
    session's in the order they were made."""
    for session_id in session_ids:
        records = annotations_of(service, session_id)
        if records:
            turns = _Turns(service.events.get(session_id))
            yield from (turns.line(record) for record in records)


class _Turns:
    """A session's log folded once, with where each turn begins and ends, to cut any
    annotated event's turn out of it."""

    def __init__(self, events: Iterable[Any]) -> None:
        session: Any = None
        self.counts: dict[int, int] = {}
        """How many messages the session had after each event."""
        self.starts: list[tuple[int, int, str, str]] = []
        """Each turn's TurnStarted: its version, number, and the model and system prompt."""
        self.prompts: dict[int, int] = {}
        """The version of each turn's prompt (the UserMessageAdded before its start)."""
        self.hashes: dict[int, str] = {}
        self.types: dict[int, str] = {}
        last_prompt = 0
        for event in events:
            session = event.mutate(session)
            version = event.originator_version
            self.counts[version] = len(session.messages)
            self.hashes[version] = event.hash
            self.types[version] = type(event).__name__
            if isinstance(event, Session.UserMessageAdded):
                last_prompt = version
            elif isinstance(event, Session.TurnStarted):
                self.starts.append((version, event.turn, session.config.model, session.config.system))
                self.prompts[event.turn] = last_prompt or version
        self.session: Session = session
        self.head = session.chain_head

    def line(self, record: AnnotationRecord) -> DatasetLine:
        annotation = record.annotation
        version = annotation.event_version
        turn = self._turn_of(version)
        messages = self.session.messages
        if turn is None:
            config = self.session.config
            model, system, given, added = config.model, config.system, messages[: self.counts[version]], []
        else:
            index, number, model, system = turn
            start = self.counts[self.starts[index][0]]
            given, added = messages[:start], messages[start : self._end_of(index)]
        replies = [m for m in added if isinstance(m, AssistantMessage)]
        return DatasetLine(
            format=DATASET_FORMAT,
            session_id=str(record.session_id),
            turn=None if turn is None else turn[1],
            model=model,
            input=([{"role": "system", "content": system}] if system else []) + [chat(m) for m in given],
            output=replies[-1].content if replies else "",
            steps=[chat(m) for m in added],
            tool_calls=_tool_calls(added),
            note=annotation.note,
            score=annotation.score,
            event=DatasetEvent(version, self.types.get(version, annotation.event_type), annotation.event_hash),
            annotation=DatasetAnnotation(
                annotation.id.hex, annotation.note, annotation.score, record.created_at, record.log_version,
                record.hash,
            ),
            session_head=self.head,
        )  # fmt: skip

    def _turn_of(self, version: int) -> tuple[int, int, str, str] | None:
        """The turn an event belongs to (its index among the starts, number, model and
        system prompt): the last started at or before it, or the next one when the event
        is that turn's prompt."""
        found = None
        for index, (start, number, model, system) in enumerate(self.starts):
            if start <= version or self.prompts[number] == version:
                found = (index, number, model, system)
        return found

    def _end_of(self, index: int) -> int:
        """How many messages the session had at the end of the turn at ``index``: before
        the next turn's prompt, or all of them for the last turn."""
        if index + 1 == len(self.starts):
            return len(self.session.messages)
        return self.counts[self.prompts[self.starts[index + 1][1]] - 1]


def chat(message: Message) -> dict[str, Any]:
    """A message in the chat shape evaluation tools read (OpenAI's)."""
    if isinstance(message, UserMessage):
        return {"role": "user", "content": message.content}
    if isinstance(message, AssistantMessage):
        reply: dict[str, Any] = {"role": "assistant", "content": message.content}
        if message.tool_calls:
            reply["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in message.tool_calls
            ]
        return reply
    assert isinstance(message, ToolResult)
    return {
        "role": "tool",
        "tool_call_id": message.tool_call_id,
        "name": message.name,
        "content": message.output,
    }


def _tool_calls(messages: list[Message]) -> list[DatasetToolCall]:
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolResult)}
    calls = []
    for message in messages:
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls:
                result = results.get(call.id)
                calls.append(DatasetToolCall(
                    call.id, call.name, call.arguments,
                    result.output if result else None, result.exit_code if result else None,
                    result.is_error if result else False,
                ))  # fmt: skip
    return calls


# -- the store ---------------------------------------------------------------------------


def _log(service: SessionService, session_id: UUID) -> AnnotationLog | None:
    found: object
    try:
        found = service.repository.get(annotation_log_id(session_id))
    except AggregateNotFoundError:
        return None
    assert isinstance(found, AnnotationLog)
    return found


def _records(session_id: UUID, events: Iterable[Any]) -> list[AnnotationRecord]:
    return [
        AnnotationRecord(session_id, e.annotation, e.timestamp, e.originator_version, e.hash)
        for e in events
        if isinstance(e, AnnotationLog.AnnotationAdded)
    ]


def _first_event(service: SessionService, session_id: UUID) -> Any:
    """The session's first event; :class:`SessionNotFound` when the id is no session's."""
    first = service.recorder.select_events(session_id, limit=1)
    event = service.mapper.to_domain_event(first[0]) if first else None
    if not isinstance(event, Session.Event):
        raise SessionNotFound(session_id)
    return event


def _session_event(service: SessionService, session_id: UUID, version: int) -> Any:
    """Event ``version`` of a session, as stored."""
    _first_event(service, session_id)
    found = service.recorder.select_events(session_id, gt=version - 1, lte=version) if version >= 1 else []
    if not found:
        latest = service.recorder.select_events(session_id, desc=True, limit=1)
        raise VersionNotFound(session_id, version, latest[0].originator_version)
    return service.mapper.to_domain_event(found[0])


def _event_hashes(service: SessionService, session_id: UUID) -> dict[int, str]:
    """Each event's hash, by version, as the session's log holds it now."""
    events: list[Any] = [
        service.mapper.to_domain_event(r) for r in service.recorder.select_events(session_id)
    ]
    return {e.originator_version: e.hash for e in events}


def annotation_view(record: AnnotationRecord, session_id: str | None = None) -> dict[str, Any]:
    """An annotation as the CLI and the API show it; ``session_id`` is the session's id
    in the caller's form (default: the UUID)."""
    annotation = record.annotation
    return {
        "id": annotation.id.hex,
        "session_id": session_id or str(record.session_id),
        "event": {
            "version": annotation.event_version,
            "type": annotation.event_type,
            "hash": annotation.event_hash,
        },
        "note": annotation.note,
        "score": annotation.score,
        "created_at": record.created_at.isoformat(),
        "log_version": record.log_version,
        "hash": record.hash,
    }
