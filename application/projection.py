"""The session summary read model, kept up to date from the notification log.

``retrieve_session`` and listings read one row per session instead of replaying
a log. The projector folds new events into those rows and records how far it
has read in the same transaction, so it picks up where it left off after a
restart, and two processes catching up at once cannot apply an event twice.

Every query catches the projector up first, so an event whose summary cannot be
stored (a value the table cannot hold) would otherwise fail every query of every
session for ever. The projector therefore folds a batch that fails event by
event, and sets the event that fails aside: that session's row keeps what it had,
moves to the event's version, and its ``last_error`` says which event is missing
from the summary (the log still holds it); the failure is logged, and the
position moves on. An event that cannot even be *read* (an unknown topic, a wrong
cipher key) is not set aside but raised as a :class:`StoreError`: that is this
process's configuration or version, not the event, and skipping it would lose it
for every process that can read it.
"""

from __future__ import annotations

import abc
import builtins
import functools
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import InterfaceError, OperationalError

from agentjournal.application.errors import StoreError
from agentjournal.domain import Session, Status, Usage

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification

log = logging.getLogger(__name__)

STORE_TROUBLE = (OperationalError, InterfaceError)
"""Failures of the store itself (after the commit retries), never of one event: raised."""


class SessionSummary(msgspec.Struct, frozen=True):
    """One session at a glance."""

    id: UUID
    name: str
    model: str
    status: Status
    title: str
    usage: Usage
    message_count: int
    tool_call_count: int
    turn_count: int
    version: int
    created_at: datetime
    updated_at: datetime
    parent_id: UUID | None = None
    parent_version: int | None = None
    last_error: str = ""


class SessionSummaryView(abc.ABC):
    """Where summaries are kept: one implementation per event store."""

    def get(self, session_id: UUID) -> SessionSummary | None:
        return self.get_many([session_id]).get(session_id)

    @abc.abstractmethod
    def get_many(self, session_ids: Iterable[UUID]) -> dict[UUID, SessionSummary]: ...

    @abc.abstractmethod
    def list(
        self, *, status: Status | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionSummary]:
        """Summaries, the most recently updated first."""

    @abc.abstractmethod
    def ids_starting_with(self, prefix: str, limit: int = 2) -> builtins.list[UUID]:
        """Session ids that begin with ``prefix`` (lower-case hex and dashes)."""

    @abc.abstractmethod
    def position(self) -> int:
        """The id of the last notification folded in (0 when none)."""

    @abc.abstractmethod
    def commit(self, summaries: Sequence[SessionSummary], previous: int, position: int) -> bool:
        """Store ``summaries`` and move the position from ``previous`` to ``position``,
        atomically. Returns False, storing nothing, when the position is no longer
        ``previous`` (another process got there first)."""


class SessionProjector:
    """Folds the application's notifications into a :class:`SessionSummaryView`."""

    batch_size = 500
    commit_attempts = 5

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID], view: SessionSummaryView) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.view = view

    def catch_up(self) -> int:
        """Fold in every notification not yet in the view; returns how many were folded."""
        folded = 0
        while True:
            previous = self.view.position()
            notifications = self.recorder.select_notifications(
                start=previous, limit=self.batch_size, inclusive_of_start=False
            )
            if not notifications:
                return folded
            events = [self._event(n) for n in notifications]
            try:
                if self._commit(self._fold(events), previous, notifications[-1].id):
                    folded += len(notifications)
            except STORE_TROUBLE:
                raise
            except Exception:  # one of these events cannot be summarised: find which
                folded += self._fold_one_by_one([n.id for n in notifications], events, previous)

    def _fold(self, events: Sequence[Session.Event]) -> list[SessionSummary]:
        """The rows of the sessions these events belong to, with the events folded in."""
        rows = self.view.get_many({e.originator_id for e in events})
        for event in events:
            rows[event.originator_id] = evolve(event, rows.get(event.originator_id))
        return list(rows.values())

    def _fold_one_by_one(self, positions: list[int], events: list[Session.Event], previous: int) -> int:
        """Fold events one transaction each, setting aside any whose summary cannot be
        stored. Stops early (another projector moved the position first); returns how
        many it folded."""
        folded = 0
        for position, event in zip(positions, events):
            try:
                committed = self._commit(self._fold([event]), previous, position)
            except STORE_TROUBLE:
                raise
            except Exception as e:
                committed = self._set_aside(event, e, previous, position)
            if not committed:
                break
            folded += 1
            previous = position
        return folded

    def _set_aside(self, event: Session.Event, error: Exception, previous: int, position: int) -> bool:
        """Move past ``event``, marking its session's row. If even that row cannot be stored,
        the store is at fault, not the event, and the error is raised."""
        note = (
            f"summary incomplete: event {event.originator_version} ({type(event).__name__}) "
            f"could not be summarised ({type(error).__name__}: {error}); the session's log holds it"
        )
        row = self.view.get(event.originator_id) or _unknown(event)
        committed = self._commit([_touch(row, event, last_error=note)], previous, position)
        if committed:
            log.warning("session %s, notification %d: %s", event.originator_id, position, note)
        return committed

    def _commit(self, summaries: list[SessionSummary], previous: int, position: int) -> bool:
        """Commit a batch; a transient failure (a deadlock, a serialisation failure) rolled
        it back whole, so it is simply read again."""
        attempt = 1
        while True:
            try:
                return self.view.commit(summaries, previous, position)
            except OperationalError:
                if attempt == self.commit_attempts:
                    raise
                time.sleep(0.01 * attempt)
                attempt += 1

    def _event(self, notification: Notification) -> Session.Event:
        try:
            event = self.mapper.to_domain_event(notification)
        except Exception as e:  # an unknown topic, undecodable bytes, a wrong key
            raise StoreError(
                f"notification {notification.id} of this store cannot be read as a session event "
                f"(topic {notification.topic!r}): {e}"
            ) from None
        if not isinstance(event, Session.Event):
            raise StoreError(
                f"notification {notification.id} of this store is not a session event "
                f"(topic {notification.topic!r}): is this another program's store?"
            )
        return event


@functools.singledispatch
def evolve(event: Any, summary: SessionSummary | None) -> SessionSummary:
    """The summary after ``event``. Events that change nothing summarised only bump the version."""
    return _touch(summary, event)


def _touch(summary: SessionSummary | None, event: Any, **changes: Any) -> SessionSummary:
    assert summary is not None, f"{type(event).__name__} before the session began"
    return msgspec.structs.replace(
        summary, version=event.originator_version, updated_at=event.timestamp, **changes
    )


def _unknown(event: Session.Event) -> SessionSummary:
    """A row for a session whose first event could not be summarised: all it knows is an id."""
    return SessionSummary(
        id=event.originator_id, name="", model="", status=Status.ERROR, title="", usage=Usage(),
        message_count=0, tool_call_count=0, turn_count=0, version=event.originator_version,
        created_at=event.timestamp, updated_at=event.timestamp,
    )  # fmt: skip


def _first(event: Session.SessionStarted | Session.SessionForked, **fields: Any) -> SessionSummary:
    """The summary of a session's first event; ``fields`` override the empty defaults."""
    defaults: dict[str, Any] = {
        "status": Status.IDLE, "usage": Usage(), "message_count": 0, "tool_call_count": 0, "turn_count": 0,
    }  # fmt: skip
    return SessionSummary(
        id=event.originator_id,
        name=event.config.name,
        model=event.config.model,
        title=event.title,
        version=event.originator_version,
        created_at=event.timestamp,
        updated_at=event.timestamp,
        **(defaults | fields),
    )


@evolve.register
def _(event: Session.SessionStarted, summary: None) -> SessionSummary:
    return _first(event)


@evolve.register
def _(event: Session.SessionForked, summary: None) -> SessionSummary:
    return _first(
        event,
        status=event.status,
        usage=event.usage,
        message_count=len(event.messages),
        tool_call_count=sum(len(getattr(m, "tool_calls", ())) for m in event.messages),
        turn_count=event.turns,
        parent_id=event.lineage.parent_id,
        parent_version=event.lineage.parent_version,
    )


@evolve.register
def _(event: Session.UserMessageAdded, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, message_count=summary.message_count + 1)


@evolve.register
def _(event: Session.TurnStarted, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, status=Status.RUNNING, turn_count=event.turn, last_error="")


@evolve.register
def _(event: Session.AssistantMessageAdded, summary: SessionSummary) -> SessionSummary:
    return _touch(
        summary,
        event,
        message_count=summary.message_count + 1,
        tool_call_count=summary.tool_call_count + len(event.message.tool_calls),
    )


@evolve.register
def _(event: Session.ToolResultRecorded, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, message_count=summary.message_count + 1)


@evolve.register
def _(event: Session.UsageRecorded, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, usage=summary.usage + event.usage)


@evolve.register
def _(event: Session.TitleSet, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, title=event.title)


@evolve.register
def _(event: Session.TurnCompleted, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, status=Status.IDLE)


@evolve.register
def _(event: Session.TurnFailed, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, status=Status.ERROR, last_error=f"{event.error_type}: {event.error}")


@evolve.register
def _(event: Session.ConfigChanged, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, name=event.config.name, model=event.config.model)


@evolve.register
def _(event: Session.SessionTerminated, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, status=Status.TERMINATED)
